"""TF-Hub / SavedModel text embedder, loaded with tensorflow-hub from a local path or URL.

Any TF2 SavedModel (or TF-Hub module) that maps a batch of strings to a [batch, dim]
float tensor works, e.g. a Universal Sentence Encoder directory. Only local paths are
used by the tests and examples; a URL would make tensorflow-hub download at load time.
TensorFlow and torch's triton both bundle LLVM: in one process, load triton (any
sentence-transformers model) before TensorFlow, or keep the two models in separate workers.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from agentflow.models.base import EmbeddingModelHandler
from agentflow.models.loaded import keep_loaded
from agentflow.observability import metrics


def _load(path: str):
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  try:
    import tensorflow_hub as hub
  except ImportError as e:
    raise RuntimeError("TF-Hub models need the 'tfhub' extra: pip install 'agentflow[tfhub]'") from e
  return hub.load(path)


def _call(model, texts: Sequence[str]) -> np.ndarray:
  import tensorflow as tf
  out = model(tf.constant(list(texts), dtype=tf.string))
  if isinstance(out, dict):
    out = out.get("default", out.get("outputs", next(iter(out.values()))))
  return np.asarray(out, dtype=np.float32)


class TFHubTextEmbeddingHandler(EmbeddingModelHandler):
  """RunInference handler for a TF-Hub text embedder; vectors are L2-normalised.

  `dimension` may be given to avoid loading the model at pipeline construction; when
  omitted it is probed once by embedding a single string.
  """

  def __init__(self, model_path: str, dimension: Optional[int] = None, min_batch_size: int = 1,
               max_batch_size: int = 64, max_batch_duration_secs: Optional[int] = None):
    super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size,
                     max_batch_duration_secs=max_batch_duration_secs)
    self._path = model_path if "://" in model_path else os.path.abspath(model_path)
    if "://" not in model_path and not os.path.isdir(self._path):
      raise ValueError(f"TF-Hub model directory {self._path} does not exist")
    self._dimension = int(dimension) if dimension else int(_call(_load(self._path), ["probe"]).shape[-1])

  @property
  def dimension(self) -> int:
    return self._dimension

  @property
  def model_id(self) -> str:
    return f"tfhub:{os.path.basename(self._path.rstrip('/'))}"

  def update_model_path(self, model_path: Optional[str] = None):
    if model_path:
      self._path = model_path if "://" in model_path else os.path.abspath(model_path)

  def load_model(self):
    return keep_loaded(("tfhub", self._path), lambda: _load(self._path))

  def embed(self, model, texts: Sequence[str]) -> np.ndarray:
    vectors = _call(model, texts)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

  def get_metrics_namespace(self) -> str:
    return metrics.INFERENCE_NAMESPACE
