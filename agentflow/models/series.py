"""A numeric-series embedder for ticks and sensor windows, as a RunInference handler.

A window of readings (one channel, or several as equal-length rows) becomes a fixed-size
vector: each channel is resampled to `points` samples, z-normalised (so the vector
describes the shape of the movement, not its level), optionally differenced, then all
channels are concatenated and L2-normalised. Deterministic and dependency-free, so
pattern matching on price movements or sensor traces runs through the same Embed,
VectorUpsert and Retrieve stages as text.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from agentflow.models.base import EmbeddingModelHandler


class SeriesEmbeddingHandler(EmbeddingModelHandler):
  """Embeds windows shaped [n] or [channels, n] into `channels * points` dimensions.

  `scale="z"` removes level and amplitude (shape matching, e.g. price patterns);
  `scale="level"` divides each channel by its `reference` (normal) value and appends one
  constant component, so that level shifts and spike sizes change the direction of the
  vector and therefore its cosine similarity (e.g. sensors). Adds one dimension.
  """

  def __init__(self, points: int = 32, channels: int = 1, returns: bool = False, scale: str = "z",
               reference: Sequence[float] = (), max_batch_size: int = 256):
    super().__init__(max_batch_size=max_batch_size)
    if scale not in ("z", "level"):
      raise ValueError("scale must be 'z' or 'level'")
    self.points, self.channels, self.returns, self.scale = points, channels, returns, scale
    self.reference = tuple(float(r) for r in reference) or (1.0,) * channels
    if len(self.reference) != channels:
      raise ValueError(f"reference needs {channels} values, got {len(self.reference)}")

  @property
  def dimension(self) -> int:
    return self.points * self.channels + (1 if self.scale == "level" else 0)

  @property
  def model_id(self) -> str:
    return f"series:{self.scale}{'-returns' if self.returns else ''}-{self.channels}x{self.points}"

  def load_model(self):
    return None

  def _one(self, window) -> np.ndarray:
    x = np.atleast_2d(np.asarray(window, dtype=np.float64))
    if x.shape[0] != self.channels or x.shape[1] < 2 or not np.all(np.isfinite(x)):
      raise ValueError(f"window must be {self.channels} finite channel(s) of >= 2 readings, got {x.shape}")
    if self.returns:
      x = np.diff(np.log(np.maximum(x, 1e-12)), axis=1) if x.shape[1] > 2 else x
    grid = np.linspace(0, x.shape[1] - 1, self.points)
    rows = []
    for c, row in enumerate(x):
      r = np.interp(grid, np.arange(row.shape[0]), row)
      if self.scale == "z":
        r = (r - r.mean()) / (r.std() + 1e-9)
      else:
        r = r / self.reference[c]
      rows.append(r)
    v = np.concatenate(rows)
    if self.scale == "level":
      v = np.concatenate([v, [np.sqrt(v.shape[0])]])
    return v / max(np.linalg.norm(v), 1e-12)

  def embed(self, model, windows) -> np.ndarray:
    return np.stack([self._one(w) for w in windows]).astype(np.float32)
