"""Session memory: earlier turns reach Decide, sessions are isolated, state expires after the TTL."""
import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from agentflow import AgentEvent
from agentflow.stages.memory import MemoryConfig, SessionMemory
from agentflow.types import Retrieval


def _r(i, session, ts):
  return Retrieval(event=AgentEvent(event_id=f"e{i}", session_id=session, text=f"turn {i}", timestamp=ts))


def _streaming():
  o = PipelineOptions()
  o.view_as(StandardOptions).streaming = True
  return o


def _summary(r):
  return r.event.event_id, tuple(t["event_id"] for t in r.memory)


def test_memory_holds_earlier_turns_of_the_same_session_only():
  stream = TestStream().advance_watermark_to(0)
  for i, (session, ts) in enumerate([("a", 10), ("b", 11), ("a", 12), ("a", 13), ("b", 14), ("a", 15)]):
    stream = stream.add_elements([TimestampedValue(_r(i, session, ts), ts)])
  stream = stream.advance_watermark_to_infinity()
  with TestPipeline(options=_streaming()) as p:
    out = p | stream | SessionMemory(MemoryConfig(max_turns=2, ttl_s=1000)) | beam.Map(_summary)
    assert_that(out, equal_to([("e0", ()), ("e1", ()), ("e2", ("e0",)), ("e3", ("e0", "e2")),
                               ("e4", ("e1",)), ("e5", ("e2", "e3"))]))


def test_memory_expires_after_ttl():
  stream = (TestStream().advance_watermark_to(0)
            .add_elements([TimestampedValue(_r(0, "a", 10), 10)])
            .add_elements([TimestampedValue(_r(1, "a", 20), 20)])
            .advance_watermark_to(200)
            .add_elements([TimestampedValue(_r(2, "a", 300), 300)])
            .advance_watermark_to_infinity())
  with TestPipeline(options=_streaming()) as p:
    out = p | stream | SessionMemory(MemoryConfig(ttl_s=100)) | beam.Map(_summary)
    assert_that(out, equal_to([("e0", ()), ("e1", ("e0",)), ("e2", ())]))


def test_batch_memory_only_shows_earlier_timestamps():
  items = [_r(0, "a", 30), _r(1, "a", 10), _r(2, "a", 20)]
  with TestPipeline() as p:
    out = p | beam.Create(items) | SessionMemory() | beam.Map(_summary)
    assert_that(out | beam.Filter(lambda s: s[0] == "e1"), equal_to([("e1", ())]))


@pytest.mark.parametrize("runner,timers", [("DirectRunner", 1), ("PrismRunner", 0)])
def test_the_ttl_timer_is_set_except_on_runners_whose_timers_fire_at_once(runner, timers):
  """Prism (2.62) fires every timer at once, which would forget a session as soon as it spoke."""
  from apache_beam.portability.api import beam_runner_api_pb2
  p = beam.Pipeline(options=PipelineOptions([f"--runner={runner}", "--streaming"]))
  _ = p | beam.Create([_r(0, "a", 10)]) | SessionMemory()
  payloads = [beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload)
              for t in p.to_runner_api().components.transforms.values() if t.spec.urn == "beam:transform:pardo:v1"]
  assert [len(pl.timer_family_specs) for pl in payloads if pl.state_specs] == [timers]
