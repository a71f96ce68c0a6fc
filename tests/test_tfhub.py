"""TF-Hub embedder: a SavedModel the test builds itself, loaded through tensorflow-hub, in RunInference."""
import json
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_hub")

import apache_beam as beam  # noqa: E402
from apache_beam.testing.test_pipeline import TestPipeline  # noqa: E402
from apache_beam.testing.util import assert_that  # noqa: E402

from agentflow import AgentEvent, Embed, model_from_spec  # noqa: E402
from agentflow.job import run  # noqa: E402
from agentflow.models.tfhub import TFHubTextEmbeddingHandler  # noqa: E402

BUCKETS = 4096


class _HashedBagOfWords(tf.Module):
  """Lower-cased words hashed into buckets, averaged: a tiny, deterministic text embedder."""

  def __init__(self, dim):
    super().__init__()
    self.table = tf.Variable(tf.random.stateless_normal([BUCKETS, dim], seed=[7, 11]))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def __call__(self, texts):
    words = tf.strings.split(tf.strings.regex_replace(tf.strings.lower(texts), r"[^a-z0-9 ]", " "))
    return tf.reduce_mean(tf.gather(self.table, tf.strings.to_hash_bucket_fast(words, BUCKETS)), axis=1)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfhub") / "bow-384")
  tf.saved_model.save(_HashedBagOfWords(384), path)
  return path


def test_handler_probes_dimension_and_normalises(saved_model):
  h = TFHubTextEmbeddingHandler(saved_model)
  assert h.dimension == 384 and h.model_id == "tfhub:bow-384"
  v = h.embed(h.load_model(), ["reset my password", "my password reset", "export notes to pdf"])
  assert v.shape == (3, 384)
  np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
  assert v[0] @ v[1] > 0.99 > v[0] @ v[2]


def test_spec_and_missing_path(saved_model, tmp_path):
  assert isinstance(model_from_spec(f"tfhub:{saved_model}"), TFHubTextEmbeddingHandler)
  with pytest.raises(ValueError, match="does not exist"):
    TFHubTextEmbeddingHandler(str(tmp_path / "nope"))


def test_embed_stage_with_tfhub(saved_model):
  h = TFHubTextEmbeddingHandler(saved_model, dimension=384)
  events = [AgentEvent(event_id=f"e{i}", session_id="s", text=t, timestamp=1.0)
            for i, t in enumerate(["cancel my plan", "my plan cancel", "weather in paris"])]
  with TestPipeline() as p:
    out = p | beam.Create(events) | Embed(h) | beam.combiners.ToList()

    def check(batches):
      v = {e.event_id: e.embedding for e in batches[0]}
      assert {e.model_id for e in batches[0]} == {"tfhub:bow-384"}
      assert v["e0"] @ v["e1"] > 0.99 and v["e0"] @ v["e2"] < 0.9
    assert_that(out, check)


def test_dimension_checked_against_store(saved_model, tmp_path):
  small = str(tmp_path / "bow-8")
  tf.saved_model.save(_HashedBagOfWords(8), small)
  from agentflow import AgentGraph, LocalVectorStore, RetrievalAnswerPolicy
  with pytest.raises(ValueError, match="8 does not match the store's schema dimension 384"):
    AgentGraph(TFHubTextEmbeddingHandler(small), LocalVectorStore(str(tmp_path / "s"), 384),
               RetrievalAnswerPolicy())


def test_pipeline_runs_with_tfhub_model(saved_model, tmp_path):
  kb = tmp_path / "kb.jsonl"
  kb.write_text("\n".join(json.dumps(x) for x in [
      {"id": "kb-1", "question": "how do I cancel my plan", "answer": "Billing > Cancel.", "topic": "billing"},
      {"id": "kb-2", "question": "export notes to pdf", "answer": "File > Export.", "topic": "export"}]))
  events = tmp_path / "events.jsonl"
  events.write_text("\n".join(json.dumps({"event_id": f"e{i}", "session_id": "s", "text": t,
                                          "timestamp": 1772442900 + i})
                              for i, t in enumerate(["cancel my plan please", "export my notes to pdf"])))
  summary = run(["--input", str(events), "--knowledge", str(kb), "--model", f"tfhub:{saved_model}",
                 "--store", f"local:{tmp_path}/store", "--decisions_output", str(tmp_path / "d.jsonl"),
                 "--dead_letter_output", str(tmp_path / "dl.jsonl"), "--progress_interval", "0"],
                out=open(os.devnull, "w"))
  assert summary.accounted and summary.decisions == 2
  got = {d["event_id"]: d for d in map(json.loads, open(tmp_path / "d.jsonl"))}
  assert got["e0"]["metadata"]["knowledge_id"] == "kb-1" and got["e1"]["metadata"]["knowledge_id"] == "kb-2"
  assert {d["model_id"] for d in got.values()} == {"tfhub:bow-384"}
