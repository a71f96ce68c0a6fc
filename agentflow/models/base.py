"""The embedding model extension point: a Beam `ModelHandler` from text to a vector."""
from __future__ import annotations

import abc
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult


class EmbeddingModelHandler(ModelHandler[str, PredictionResult, object], abc.ABC):
  """A RunInference handler that embeds text; `dimension` is known before loading.

  Knowing the dimension up front lets the pipeline check it against the store's schema
  at construction time instead of failing on the first bundle. Batching knobs are kept
  here rather than passed to `ModelHandler.__init__`, whose signature differs across
  Beam versions.
  """

  def __init__(self, min_batch_size: int = 1, max_batch_size: int = 64,
               max_batch_duration_secs: Optional[int] = None, large_model: bool = False):
    super().__init__()
    self._batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}
    if max_batch_duration_secs is not None:
      self._batching["max_batch_duration_secs"] = max_batch_duration_secs
    self._large_model = large_model

  def batch_elements_kwargs(self) -> Mapping[str, Any]:
    return self._batching

  def share_model_across_processes(self) -> bool:
    return self._large_model

  @property
  @abc.abstractmethod
  def dimension(self) -> int:
    """Output vector dimension."""

  @property
  @abc.abstractmethod
  def model_id(self) -> str:
    """Identifier written on every embedded event (which model, which version)."""

  @abc.abstractmethod
  def embed(self, model: object, texts: Sequence[str]) -> np.ndarray:
    """Embed a batch: [len(texts), dimension] float32, L2-normalised."""

  def run_inference(self, batch, model, inference_args=None):
    vectors = self.embed(model, list(batch))
    if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
      raise ValueError(f"model {self.model_id} returned shape {vectors.shape}; expected "
                       f"[{len(batch)}, {self.dimension}]")
    return [PredictionResult(x, v, self.model_id) for x, v in zip(batch, vectors)]

  def get_num_bytes(self, batch) -> int:
    return sum(len(x.encode("utf-8")) if isinstance(x, str) else np.asarray(x).nbytes for x in batch)


def sentence_transformers_path(spec: str) -> Optional[str]:
  """The directory a `sentence-transformers[:PATH]` spec names ("" for the packaged default);
  None when `spec` names another kind of model."""
  kind, _, path = spec.partition(":")
  return path if kind in ("sentence-transformers", "st", "") else None


def model_from_spec(spec: str, backend: str = "torch", **kwargs) -> EmbeddingModelHandler:
  """`sentence-transformers[:PATH]` (default: the packaged all-MiniLM-L6-v2) or `tfhub:PATH`.

  `backend` picks the sentence-transformers runtime (torch or onnx); a TF-Hub model runs on TensorFlow.
  """
  st_path = sentence_transformers_path(spec)
  if st_path is not None:
    from agentflow.models.sentence_transformers import SentenceTransformerHandler
    return SentenceTransformerHandler(st_path or None, backend=backend, **kwargs)
  kind, _, path = spec.partition(":")
  if kind == "tfhub" and path:
    if backend != "torch":
      raise ValueError(f"backend {backend!r} is for sentence-transformers models; a TF-Hub model runs on TensorFlow")
    from agentflow.models.tfhub import TFHubTextEmbeddingHandler
    return TFHubTextEmbeddingHandler(path, **kwargs)
  raise ValueError(f"unknown model spec {spec!r}; expected 'sentence-transformers[:PATH]' or 'tfhub:PATH'")
