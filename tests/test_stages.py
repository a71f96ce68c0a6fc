"""Each stage alone on DirectRunner, with TestPipeline and assert_that."""
import json

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from agentflow import (
  AgentEvent,
  Decide,
  Embed,
  Preprocess,
  RetrievalAnswerPolicy,
  Retrieve,
  RetrieveConfig,
  VectorUpsert,
)
from agentflow.models import SentenceTransformerHandler
from agentflow.models.base import EmbeddingModelHandler
from agentflow.policies.base import DecisionPolicy
from agentflow.stores.base import TransientReason
from agentflow.stores.local import LocalVectorStore
from agentflow.types import KIND_KNOWLEDGE, Hit, Retrieval, document_id


def _event(i, text, kind="event", **attrs):
  return AgentEvent(event_id=f"e{i}", session_id=f"s{i % 2}", text=text, timestamp=1000.0 + i,
                    attributes=attrs, kind=kind)


def test_preprocess_splits_good_and_bad():
  good = json.dumps({"event_id": "a", "session_id": "s", "text": " Hi  there ",
                     "timestamp": "2026-01-01T00:00:00Z"})
  bad = ["{not json", json.dumps([1]), json.dumps({"session_id": "s", "timestamp": 1}),
         b"\xff\xfe"]
  with TestPipeline() as p:
    events, dead = p | beam.Create([good] + bad) | Preprocess().with_dead_letters()
    assert_that(events | beam.Map(lambda e: (e.event_id, e.text, e.timestamp)),
                equal_to([("a", "Hi there", 1767225600.0)]), label="events")
    assert_that(dead | beam.Map(lambda d: (d.stage, d.reason)),
                equal_to([("preprocess", "invalid_json"), ("preprocess", "not_an_object"),
                          ("preprocess", "missing_field"), ("preprocess", "invalid_utf8")]),
                label="dead")


def test_stage_without_dead_letters_fails_loudly():
  with pytest.raises(Exception, match="invalid_json"):
    with TestPipeline() as p:
      _ = p | beam.Create(["nope"]) | Preprocess()


def test_embed_produces_normalised_vectors_that_capture_meaning(handler):
  texts = ["How do I reset my password?", "I forgot my password, how can I change it?",
           "What is the weather in Paris tomorrow?"]
  with TestPipeline() as p:
    out = (p | beam.Create([_event(i, t) for i, t in enumerate(texts)]) | Embed(handler)
           | beam.combiners.ToList())

    def check(batch):
      [events] = batch
      by_id = {e.event_id: e.embedding for e in events}
      assert all(v.shape == (384,) and abs(np.linalg.norm(v) - 1) < 1e-3 for v in by_id.values())
      assert float(by_id["e0"] @ by_id["e1"]) > float(by_id["e0"] @ by_id["e2"]) + 0.3
      assert {e.model_id for e in events} == {"sentence-transformers/all-MiniLM-L6-v2"}
    assert_that(out, check)


class _BrokenHandler(EmbeddingModelHandler):
  dimension = 8
  model_id = "broken"

  def load_model(self):
    return None

  def embed(self, model, texts):
    if any("boom" in t for t in texts):
      raise RuntimeError("model exploded")
    return np.ones((len(texts), 8), np.float32)

  def batch_elements_kwargs(self):
    return {"max_batch_size": 1}


def test_embed_dead_letters_failed_inferences():
  with TestPipeline() as p:
    ok, dead = (p | beam.Create([_event(1, "fine"), _event(2, "boom")])
                | Embed(_BrokenHandler()).with_dead_letters())
    assert_that(ok | beam.Map(lambda e: e.event_id), equal_to(["e1"]), label="ok")
    assert_that(dead | beam.Map(lambda d: (d.stage, d.reason, d.event_id, "exploded" in d.error)),
                equal_to([("embed", "inference_error", "e2", True)]), label="dead")


_CALL_SIZES = []


class _CountingSentenceTransformerHandler(SentenceTransformerHandler):
  """The model is skipped: each call's batch size is recorded."""

  def load_model(self):
    return None

  def embed(self, model, texts):
    _CALL_SIZES.append(len(texts))
    return np.tile(_vec(0, 384), (len(texts), 1))


def test_embed_hands_the_model_full_batches_not_an_adaptive_ramp():
  """Calls of 1024 texts encode faster than calls of 256 (less padding), so RunInference
  gives the sentence-transformers model `max_batch_size` texts per call by default."""
  _CALL_SIZES.clear()
  with TestPipeline() as p:
    out = (p | beam.Create([_event(i, f"text {i}") for i in range(1300)], reshuffle=False)
           | Embed(_CountingSentenceTransformerHandler(max_batch_size=600)))
    assert_that(out | beam.combiners.Count.Globally(), equal_to([1300]))
  assert _CALL_SIZES[:2] == [600, 600] and sum(_CALL_SIZES) == 1300, _CALL_SIZES
  _CALL_SIZES.clear()
  with TestPipeline() as p:
    _ = (p | beam.Create([_event(i, f"text {i}") for i in range(300)], reshuffle=False)
         | Embed(_CountingSentenceTransformerHandler(max_batch_size=600, min_batch_size=1)))
  assert _CALL_SIZES[0] < 300, "an explicit min_batch_size lets Beam's adaptive batching start small"


def test_embed_rejects_model_store_dimension_mismatch(handler):
  with pytest.raises(ValueError, match="384-d vectors but the store schema expects 128-d"):
    Embed(handler, expected_dimension=128)


def _vec(seed, dim=8):
  v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
  return v / np.linalg.norm(v)


def test_upsert_then_retrieve_finds_knowledge_not_self(tmp_path):
  store = LocalVectorStore(str(tmp_path), 8)
  kb = [_event(100 + i, f"kb {i}", kind=KIND_KNOWLEDGE, answer=f"a{i}").with_embedding(_vec(i), "m")
        for i in range(5)]
  queries = [_event(i, f"q {i}").with_embedding(_vec(i) + 0.05 * _vec(50 + i), "m") for i in range(5)]
  with TestPipeline() as p:
    _ = p | "kb" >> beam.Create(kb) | "UpsertKb" >> VectorUpsert(store)
  with TestPipeline() as p:
    written = p | beam.Create(queries) | VectorUpsert(store)
    retrieved = written | Retrieve(store, RetrieveConfig(k=2))
    assert_that(retrieved | beam.Map(lambda r: (r.event.event_id, r.hits[0].metadata["answer"],
                                                r.hits[0].kind, len(r.hits))),
                equal_to([(f"e{i}", f"a{i}", "knowledge", 2) for i in range(5)]))
  with store:
    assert store.count() == 10
    events_only = RetrieveConfig(k=3, kind="event")
    hits = store.query(np.stack([queries[0].embedding]), 3, events_only.filter_for(queries[0]))[0]
    assert hits[0].id == queries[0].doc_id


class _FlakyStore(LocalVectorStore):
  failures = 0

  def upsert(self, docs):
    if type(self).failures > 0:
      type(self).failures -= 1
      raise ConnectionError("store down")
    return super().upsert(docs)


def test_upsert_retries_then_dead_letters(tmp_path):
  from agentflow import RetryPolicy, UpsertConfig
  events = [_event(i, "x").with_embedding(_vec(i), "m") for i in range(3)]
  fast = RetryPolicy(max_attempts=3, initial_backoff_s=0.001)
  _FlakyStore.failures = 2
  with TestPipeline() as p:
    ok, dead = (p | beam.Create(events)
                | VectorUpsert(_FlakyStore(str(tmp_path / "a"), 8), UpsertConfig(retry=fast)).with_dead_letters())
    assert_that(ok | beam.Map(lambda e: e.event_id), equal_to(["e0", "e1", "e2"]), label="ok")
    assert_that(dead, equal_to([]), label="dead")
  _FlakyStore.failures = 100
  with TestPipeline() as p:
    ok, dead = (p | beam.Create(events)
                | VectorUpsert(_FlakyStore(str(tmp_path / "b"), 8), UpsertConfig(retry=fast)).with_dead_letters())
    assert_that(ok, equal_to([]), label="ok")
    assert_that(dead | beam.Map(lambda d: (d.event_id, d.reason, "store down" in d.error)),
                equal_to([(f"e{i}", "store_unavailable", True) for i in range(3)]), label="dead")


class _ThrottlingStore(LocalVectorStore):
  """Throttles odd-numbered documents for the first `rounds` writes; rejects "bad" ids outright."""
  rounds = 0
  writes = []

  def upsert(self, docs):
    type(self).writes.append([d.event_id for d in docs])
    throttle = type(self).rounds > 0
    type(self).rounds -= 1
    written = super().upsert([d for d in docs if not (throttle and int(d.event_id[1:]) % 2)])
    it = iter(written)
    return [TransientReason("HTTP 429: overload") if throttle and int(d.event_id[1:]) % 2
            else "HTTP 400: bad" if d.event_id == "e4" else next(it) for d in docs]


def test_upsert_retries_only_transiently_failed_documents(tmp_path):
  from agentflow import RetryPolicy, UpsertConfig
  events = [_event(i, "x").with_embedding(_vec(i), "m") for i in range(5)]
  fast = RetryPolicy(max_attempts=3, initial_backoff_s=0.001)
  _ThrottlingStore.rounds, _ThrottlingStore.writes = 2, []
  with TestPipeline() as p:
    ok, dead = (p | beam.Create(events)
                | VectorUpsert(_ThrottlingStore(str(tmp_path / "a"), 8), UpsertConfig(retry=fast))
                .with_dead_letters())
    assert_that(ok | beam.Map(lambda e: e.event_id), equal_to(["e0", "e1", "e2", "e3"]), label="ok")
    assert_that(dead | beam.Map(lambda d: (d.event_id, d.reason)), equal_to([("e4", "store_rejected")]),
                label="dead")
  assert sorted(map(sorted, _ThrottlingStore.writes)) == [["e0", "e1", "e2", "e3", "e4"], ["e1", "e3"], ["e1", "e3"]]
  _ThrottlingStore.rounds, _ThrottlingStore.writes = 100, []
  with TestPipeline() as p:
    ok, dead = (p | beam.Create(events)
                | VectorUpsert(_ThrottlingStore(str(tmp_path / "b"), 8), UpsertConfig(retry=fast))
                .with_dead_letters())
    assert_that(ok | beam.Map(lambda e: e.event_id), equal_to(["e0", "e2"]), label="ok")
    assert_that(dead | beam.Map(lambda d: (d.event_id, d.reason, d.error)),
                equal_to([("e1", "store_unavailable", "HTTP 429: overload"),
                          ("e3", "store_unavailable", "HTTP 429: overload"),
                          ("e4", "store_rejected", "HTTP 400: bad")]), label="dead")


class _Exploding(DecisionPolicy):
  def decide(self, retrieval):
    raise KeyError("bad")


def test_decide_reply_escalate_and_policy_errors():
  ev = _event(1, "q")
  kb1, kb2 = document_id("kb1", namespace=KIND_KNOWLEDGE), document_id("kb2", namespace=KIND_KNOWLEDGE)
  answer = Hit(id=kb1, score=0.83, text="known q", kind="knowledge", metadata={"answer": "do X"})
  weak = Hit(id=kb2, score=0.31, text="other", kind="knowledge", metadata={"answer": "do Y"})

  with TestPipeline() as p:
    ds = (p | beam.Create([Retrieval(ev, [weak, answer]), Retrieval(_event(2, "r"), [weak]),
                           Retrieval(_event(3, "s"), [])])
          | Decide(RetrievalAnswerPolicy(threshold=0.6)))
    assert_that(ds | beam.Map(lambda d: (d.event_id, d.action, d.response, tuple(d.cited_ids), d.confidence)),
                equal_to([("e1", "reply", "do X", (kb1,), 0.83),
                          ("e2", "escalate", "", (kb2,), 0.69),
                          ("e3", "escalate", "", (), 1.0)]))
  with TestPipeline() as p:
    ok, dead = p | beam.Create([Retrieval(ev, [])]) | Decide(_Exploding()).with_dead_letters()
    assert_that(dead | beam.Map(lambda d: (d.stage, d.reason, d.event_id)),
                equal_to([("decide", "policy_error", "e1")]))
