"""The onnx backend: the same sentence-transformers model, exported at load time, run on ONNX Runtime."""
import numpy as np
import pytest

from agentflow.models import SentenceTransformerHandler
from agentflow.models.base import model_from_spec

TEXTS = [
    "How do I reset my password?",
    "ok",
    "Le colis n'est jamais arrivé, que faire ?",
    "東京の天気はどうですか 🌧️",
    "refund " * 400,  # past max_seq_length (256 tokens): both backends truncate
    "I forgot my password, how can I change it?",
    "What is the weather in Paris tomorrow?",
]


@pytest.fixture(scope="module")
def onnx():
  handler = SentenceTransformerHandler(backend="onnx", encode_batch_size=3)
  return handler, handler.load_model()


def test_onnx_vectors_match_torch_row_for_row(handler, st_model, onnx):
  onnx_handler, onnx_model = onnx
  want = handler.embed(st_model, TEXTS)
  got = onnx_handler.embed(onnx_model, TEXTS)
  assert got.shape == want.shape == (len(TEXTS), 384) and got.dtype == np.float32
  assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
  assert float(np.min(np.sum(got * want, axis=1))) > 0.9999
  assert float(np.max(np.abs(got - want))) < 1e-3
  # Chunks are length-sorted inside the call; rows still come back in input order.
  assert np.allclose(onnx_handler.embed(onnx_model, TEXTS[::-1]), got[::-1], atol=1e-5)
  assert np.allclose(onnx_handler.embed(onnx_model, TEXTS[:1]), got[:1], atol=1e-5)


def test_onnx_handler_keeps_the_models_identity_and_dimension(onnx):
  onnx_handler, onnx_model = onnx
  assert onnx_handler.dimension == onnx_model.dimension == 384
  assert onnx_handler.model_id == SentenceTransformerHandler().model_id


def test_bad_backend_choices_fail_when_the_handler_is_built():
  with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
    SentenceTransformerHandler(backend="tensorrt")
  with pytest.raises(ValueError, match="cpu only"):
    SentenceTransformerHandler(backend="onnx", device="cuda")
  with pytest.raises(ValueError, match="TF-Hub model runs on TensorFlow"):
    model_from_spec("tfhub:/some/saved_model", backend="onnx")
  assert model_from_spec("sentence-transformers", backend="onnx")._backend == "onnx"


def test_a_streaming_job_loads_the_model_once_not_per_bundle(monkeypatch):
  """The DirectRunner sets up RunInference per bundle; the exported model must survive between them."""
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
  from apache_beam.testing.test_pipeline import TestPipeline
  from apache_beam.testing.test_stream import TestStream
  from apache_beam.testing.util import assert_that, equal_to

  from agentflow import AgentEvent, Embed
  from agentflow.models import loaded

  loaded.release_all()
  loads = []
  original = SentenceTransformerHandler._load
  monkeypatch.setattr(SentenceTransformerHandler, "_load", lambda self: loads.append(1) or original(self))
  stream = TestStream().advance_watermark_to(0)
  for i in range(4):
    stream = stream.add_elements([AgentEvent(event_id=f"e{i}", session_id="s", text=f"message {i}",
                                             timestamp=float(i))]).advance_processing_time(1)
  options = PipelineOptions()
  options.view_as(StandardOptions).streaming = True
  with TestPipeline(options=options) as p:
    out = p | stream.advance_watermark_to_infinity() | Embed(SentenceTransformerHandler(backend="onnx"))
    assert_that(out | beam.Map(lambda e: (e.event_id, e.embedding.shape)),
                equal_to([(f"e{i}", (384,)) for i in range(4)]))
  assert len(loads) == 1
