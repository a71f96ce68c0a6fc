"""Dedupe: one event per (tenant, event_id) within the horizon, in batch and streaming; the
graph's accounting with dropped duplicates; reruns into the same store."""
import json

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to

from agentflow import AgentGraph, IngestKnowledge, Preprocess, QueryFilter, RetrievalAnswerPolicy
from agentflow.observability.summary import RunSummary
from agentflow.stages.dedupe import Dedupe, DedupeConfig
from agentflow.stores.local import LocalVectorStore

T0 = 1772442900


def _msg(event_id, text="hello", ts=T0, **extra):
  return json.dumps({"event_id": event_id, "session_id": "s", "text": text, "timestamp": ts, **extra})


def _run(p):
  result = p.run()
  result.wait_until_finish()
  return RunSummary.from_result(result)


def test_redeliveries_are_dropped_and_counted_and_a_reused_id_is_dead_lettered():
  no_id = json.dumps({"session_id": "s", "text": "no id here", "timestamp": T0})
  msgs = [_msg("a"), _msg("a"), json.dumps(json.loads(_msg("a")), indent=2, sort_keys=True),  # same object
          _msg("b", "first text"), _msg("b", "second text"),
          _msg("c", tenant="t1"), _msg("c", tenant="t2"), no_id, no_id]
  p = TestPipeline()
  events, dead = (p | beam.Create(msgs) | Preprocess() | Dedupe().with_dead_letters())
  assert_that(events | beam.Map(lambda e: (e.tenant, e.event_id)) | beam.Filter(lambda k: not k[1].startswith("h-")),
              equal_to([("", "a"), ("", "b"), ("t1", "c"), ("t2", "c")]), label="events")
  assert_that(dead | beam.Map(lambda d: (d.stage, d.reason, d.event_id)),
              equal_to([("dedupe", "conflicting_event_id", "b")]), label="dead")
  summary = _run(p)
  assert summary.other.get("dedupe.in") is None and summary.stages["dedupe"] == {"in": 9, "out": 5}
  assert (summary.duplicates, summary.dead_letter_reasons) == (3, {"dedupe.conflicting_event_id": 1})


def _streaming():
  options = PipelineOptions()
  options.view_as(StandardOptions).streaming = True
  return TestPipeline(options=options)


def test_streaming_remembers_an_id_for_the_horizon_of_event_time_then_forgets_it():
  horizon = 3600
  stream = (TestStream().advance_watermark_to(T0 - 10)
            .add_elements([_msg("a")]).advance_processing_time(1)
            .add_elements([_msg("a")]).advance_processing_time(1)         # redelivered: dropped
            .add_elements([_msg("a", "other text")]).advance_processing_time(1)  # reused id: dead letter
            .advance_watermark_to(T0 + horizon - 1).advance_processing_time(1)
            .add_elements([_msg("a")]).advance_processing_time(1)         # still within the horizon: dropped
            .advance_watermark_to(T0 + horizon + 1).advance_processing_time(1)
            .add_elements([_msg("a")])                                     # forgotten: goes on again
            .advance_watermark_to_infinity())
  p = _streaming()
  events, dead = p | stream | Preprocess() | Dedupe(DedupeConfig(horizon_s=horizon)).with_dead_letters()
  assert_that(events | beam.Map(lambda e: (e.event_id, e.text)), equal_to([("a", "hello"), ("a", "hello")]),
              label="events")
  assert_that(dead | beam.Map(lambda d: d.reason), equal_to(["conflicting_event_id"]), label="dead")
  p.run().wait_until_finish()


@pytest.mark.parametrize("horizon", [0, -1, float("inf"), float("nan")])
def test_horizon_must_be_a_positive_number_of_seconds(horizon):
  with pytest.raises(ValueError, match="--dedupe_horizon_s 0"):
    DedupeConfig(horizon_s=horizon)


KB = [json.dumps({"id": "kb-1", "question": "How do I reset my password?", "answer": "Settings > Security.",
                  "topic": "account"})]


_SEEN = {}


def _collect(tag, record):
  _SEEN.setdefault(tag, []).append(record)


def test_graph_decides_each_event_once_and_a_rerun_gives_the_same_decisions_and_documents(tmp_path, handler):
  store = LocalVectorStore(str(tmp_path / "store"), handler.dimension)
  with TestPipeline() as p:
    _ = p | beam.Create(KB) | IngestKnowledge(handler, store)
  msgs = [_msg(f"e{i}", f"how do I reset my password, attempt {i}", T0 + i) for i in range(5)]
  runs = []
  for run in range(2):
    p = TestPipeline()
    decisions, dead = (p | beam.Create(msgs + msgs[:2] + msgs[:1])
                       | AgentGraph(handler, store, RetrievalAnswerPolicy()).with_dead_letters())
    _ = decisions | "d" >> beam.Map(lambda d, t=f"run{run}": _collect(t, d))
    _ = dead | "dl" >> beam.Map(lambda d, t=f"run{run}": _collect(t, d))
    summary = _run(p)
    assert (summary.inputs, summary.decisions, summary.dead_letters, summary.duplicates) == (8, 5, 0, 3)
    assert summary.accounted
    runs.append(sorted(_SEEN.pop(f"run{run}"), key=lambda d: d.event_id))
  assert [d.event_id for d in runs[0]] == [f"e{i}" for i in range(5)]
  assert [d.to_json() for d in runs[0]] == [d.to_json() for d in runs[1]]
  assert {d.action for d in runs[0]} == {"reply"}
  with store:
    assert store.count(QueryFilter(kind="event")) == 5


def _timer_domains(p):
  """{ParDo's unique name: [time domain of each timer family]} of a built pipeline."""
  from apache_beam.portability.api import beam_runner_api_pb2
  out = {}
  for t in p.to_runner_api().components.transforms.values():
    if t.spec.urn == "beam:transform:pardo:v1":
      payload = beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload)
      if payload.state_specs:
        out[t.unique_name] = [s.time_domain for s in payload.timer_family_specs.values()]
  return out


@pytest.mark.parametrize("runner,timers", [("DirectRunner", 1), ("FlinkRunner", 1), ("PrismRunner", 0)])
def test_the_horizon_timer_is_set_except_on_runners_whose_timers_fire_at_once(runner, timers):
  """Prism (2.62) fires every timer at once: there Dedupe keeps its state without one."""
  p = beam.Pipeline(options=PipelineOptions([f"--runner={runner}", "--streaming"]))
  _ = p | beam.Create([_msg("a")]) | Preprocess() | Dedupe()
  (name, domains), = _timer_domains(p).items()
  assert "Dedupe/FirstDelivery" in name and len(domains) == timers


def test_without_its_timer_an_id_is_remembered_past_the_horizon():
  from agentflow.stages.dedupe import _DedupeForTheJobFn, _key
  horizon = 3600
  stream = (TestStream().advance_watermark_to(T0 - 10)
            .add_elements([_msg("a")]).advance_processing_time(1)
            .advance_watermark_to(T0 + horizon + 1).advance_processing_time(1)
            .add_elements([_msg("a")])                                     # still remembered: dropped
            .advance_watermark_to_infinity())
  p = _streaming()
  events = (p | stream | Preprocess() | beam.Map(_key)
            | beam.ParDo(_DedupeForTheJobFn(DedupeConfig(horizon_s=horizon))).with_outputs("dead_letter", main="main"))
  assert_that(events.main | beam.Map(lambda e: e.event_id), equal_to(["a"]))
  p.run().wait_until_finish()
