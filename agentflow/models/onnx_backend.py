"""ONNX Runtime backend for a sentence-transformers model, exported from its PyTorch modules at load time.

The whole module chain (transformer, pooling, normalisation) is traced into one ONNX graph
in memory, so nothing is written to disk or downloaded, and the vectors match the PyTorch
model's to float rounding. ONNX Runtime runs that graph faster on CPU than PyTorch eager
mode (`python -m benchmarks.encode_chunks --variants torch:16,onnx:16` prints the ratio).
"""
from __future__ import annotations

import io
import warnings
from typing import Sequence

import numpy as np

OPSET = 17


def _traceable(model, names):
  """The sentence-transformers modules as one torch module over positional tensors, for tracing."""
  import torch

  class Chain(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.chain = torch.nn.ModuleList(list(model))

    def forward(self, *tensors):
      features = dict(zip(names, tensors))
      for module in self.chain:
        features = module(features)
      return features["sentence_embedding"]

  return Chain().eval()


class OnnxSentenceEncoder:
  """A sentence-transformers model exported to ONNX; `encode` mirrors `SentenceTransformer.encode`."""

  def __init__(self, model):
    import onnxruntime as ort
    import torch

    self._tokenizer = model.tokenizer
    self._max_length = int(model.max_seq_length)
    sample = self._tokenizer(["a", "b c"], padding=True, return_tensors="pt")
    self._names = list(sample.keys())
    axes = {name: {0: "batch", 1: "tokens"} for name in self._names}
    axes["embedding"] = {0: "batch"}
    graph = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
      warnings.simplefilter("ignore")
      torch.onnx.export(_traceable(model, self._names), tuple(sample[n] for n in self._names), graph,
                        input_names=self._names, output_names=["embedding"], dynamic_axes=axes,
                        opset_version=OPSET, dynamo=False)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle ONNX Runtime threads spin by default, taking CPU from the rest of the job's stages.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    self._session = ort.InferenceSession(graph.getvalue(), options, providers=["CPUExecutionProvider"])
    self.dimension = int(self._run(sample).shape[1])

  def _run(self, tokens) -> np.ndarray:
    return self._session.run(None, {n: np.asarray(tokens[n], dtype=np.int64) for n in self._names})[0]

  def encode(self, texts: Sequence[str], batch_size: int = 32, normalize_embeddings: bool = False) -> np.ndarray:
    """Embeds `texts` in length-sorted chunks of `batch_size`; rows come back in input order."""
    texts = list(texts)
    out = np.empty((len(texts), self.dimension), dtype=np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for start in range(0, len(texts), batch_size):
      rows = order[start:start + batch_size]
      tokens = self._tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                               max_length=self._max_length, return_tensors="np")
      out[rows] = self._run(tokens)
    if normalize_embeddings:
      out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out
