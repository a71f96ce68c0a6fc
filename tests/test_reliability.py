"""Faults lose nothing: a store outage mid-run dead-letters with a reason, replaying the
dead letters after recovery completes the run, and replaying everything adds no duplicates."""
import json

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline

from agentflow import AgentGraph, IngestKnowledge, QueryFilter, RetrievalAnswerPolicy, RetryPolicy, UpsertConfig
from agentflow.stages.graph import GraphConfig
from agentflow.stages.retrieve import RetrieveConfig
from agentflow.stores.local import LocalVectorStore

KB = [json.dumps({"id": "kb-1", "question": "How do I reset my password?", "answer": "Settings > Security.",
                  "topic": "account"})]


class OutageStore(LocalVectorStore):
  """Fails every upsert whose batch holds an event in `down_for` (class-level, shared by copies)."""
  down_for = set()
  failures = 0

  def upsert(self, docs):
    if any(d.event_id in type(self).down_for for d in docs):
      type(self).failures += 1
      raise ConnectionError("store unavailable (injected outage)")
    return super().upsert(docs)


def _events(n):
  return [json.dumps({"event_id": f"r{i}", "session_id": f"s{i % 5}", "text": f"question number {i} about my account",
                      "timestamp": 1772442900 + i}) for i in range(n)]


_SEEN = {}


def _collect(key, value):
  _SEEN.setdefault(key, []).append(value)


def _run(store, handler, messages, out):
  """Runs the graph; `out["decisions"]` gets decided event ids, `out["dead"]` dead letters."""
  tag = str(id(out))
  config = GraphConfig(upsert=UpsertConfig(batch_size=8, retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.001)),
                       retrieve=RetrieveConfig(batch_size=8))
  with TestPipeline() as p:
    decisions, dead = (p | beam.Create(messages) | AgentGraph(handler, store, RetrievalAnswerPolicy(), config)
                       .with_dead_letters())
    _ = decisions | "d" >> beam.Map(lambda d, t=tag: _collect(t + "d", d.event_id))
    _ = dead | "dl" >> beam.Map(lambda d, t=tag: _collect(t + "dl", d))
  out["decisions"].extend(_SEEN.pop(tag + "d", []))
  out["dead"].extend(_SEEN.pop(tag + "dl", []))


def test_outage_dead_letters_then_replay_completes(tmp_path, handler):
  store = OutageStore(str(tmp_path / "store"), handler.dimension)
  with TestPipeline() as p:
    _ = p | beam.Create(KB) | IngestKnowledge(handler, store)
  messages = _events(40)
  OutageStore.down_for = {f"r{i}" for i in range(10, 20)}
  OutageStore.failures = 0
  first = {"decisions": [], "dead": []}
  _run(store, handler, messages, first)
  assert OutageStore.failures >= 3
  assert len(first["decisions"]) + len(first["dead"]) == 40
  assert first["dead"], "the outage must produce dead letters"
  assert {d.reason for d in first["dead"]} == {"store_unavailable"}
  assert all(d.stage == "upsert" and "injected outage" in d.error for d in first["dead"])
  OutageStore.down_for = set()
  replay = {"decisions": [], "dead": []}
  _run(store, handler, [d.payload for d in first["dead"]], replay)
  assert replay["dead"] == []
  assert sorted(first["decisions"] + replay["decisions"]) == sorted(f"r{i}" for i in range(40))
  with store:
    assert store.count(QueryFilter(kind="event")) == 40
  again = {"decisions": [], "dead": []}
  _run(store, handler, messages, again)
  with store:
    assert store.count(QueryFilter(kind="event")) == 40
    assert store.count() == 42  # 40 events, the knowledge question and its answer document
