"""Dedupe: exactly one event per (tenant, event_id) within a horizon of event time.

At-least-once sources (Pub/Sub, Kafka, a file replayed by hand) deliver some events
twice. The first delivery of an id goes on; a redelivery with the same payload is dropped
and counted (`dedupe.duplicates`), so nobody gets the same reply twice; the same id with
a different payload is dead-lettered `conflicting_event_id`, because deciding it too
would answer twice and silently replace the first text in the store.

The id is remembered in Beam state keyed by (tenant, event_id) and forgotten by an
event-time timer `horizon_s` after the event's timestamp, so streaming state stays
bounded; in a bounded run the watermark only moves at the end, so the whole input is
within the horizon. On runners whose timers fire at once (Prism 2.62:
`agentflow.io.runners.TIMERS_FIRE_AT_ONCE_RUNNERS`) no timer is set and an id is remembered
for the life of the job. Nothing is remembered across runs: a rerun decides its events again
and writes them under the same store ids, so the store still holds one document each.
Only the key is grouped: the expensive stages after this one stay parallel.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Tuple

import apache_beam as beam
from apache_beam.coders import StrUtf8Coder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from agentflow.io.runners import state_expires
from agentflow.observability import metrics
from agentflow.stages.base import DEAD_LETTER, MAIN, Stage, StageCounters
from agentflow.stages.state_cache import weigh_state_without_module_scan
from agentflow.types import payload_of


@dataclass(frozen=True)
class DedupeConfig:
  """`horizon_s`: how long (event time, after an event's timestamp) its id is remembered."""
  horizon_s: float = 24 * 3600.0

  def __post_init__(self):
    if not (isinstance(self.horizon_s, (int, float)) and math.isfinite(self.horizon_s) and self.horizon_s > 0):
      raise ValueError(f"the dedupe horizon must be a positive number of seconds, got {self.horizon_s!r}; "
                       "leave dedupe out (GraphConfig(dedupe=None), --dedupe_horizon_s 0) to turn it off")


def _digest_of(event) -> str:
  """The digest Dedupe compares: the one Preprocess took of the raw message, else one of the event."""
  return event.payload_digest or hashlib.blake2b(payload_of(event).encode("utf-8"), digest_size=16).hexdigest()


class _FirstDeliveryFn(beam.DoFn):
  """Lets the first delivery of each key through; subclasses decide when a key is forgotten."""
  FIRST = ReadModifyWriteStateSpec("first_digest", StrUtf8Coder())

  def __init__(self, config: DedupeConfig):
    self.config = config

  def setup(self):
    weigh_state_without_module_scan()
    self.counters = StageCounters("dedupe")
    self.duplicates = metrics.counter("dedupe.duplicates")

  def first_delivery(self, keyed, first, remember):
    """The event if its key is new (then `remember()` arms the key's expiry), a dead letter if
    the key came with another payload, nothing (counted) for a redelivery."""
    _, event = keyed
    self.counters.inputs.inc()
    digest = _digest_of(event)
    seen = first.read()
    if seen is None:
      first.write(digest)
      remember()
      self.counters.outputs.inc()
      return [event]
    if seen == digest:
      self.duplicates.inc()
      return []
    return [self.counters.event_dead_letter(
        "conflicting_event_id", f"event id {event.event_id[:64]!r} already came with a different payload; "
        "give each event its own id (or leave event_id out to derive one from the content)", event)]


class _DedupeFn(_FirstDeliveryFn):
  """Forgets a key by an event-time timer `horizon_s` after its event's timestamp."""
  # Its own timer name: the DirectRunner (2.62) mixes up same-named timers of two stateful
  # DoFns in one pipeline when their key coders differ (SessionMemory's is "expiry").
  EXPIRY = TimerSpec("dedupe_forget", TimeDomain.WATERMARK)

  def process(self, keyed, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam,
              first=beam.DoFn.StateParam(_FirstDeliveryFn.FIRST), expiry=beam.DoFn.TimerParam(EXPIRY)):
    return self.first_delivery(
        keyed, first, lambda: expiry.set(min(Timestamp.of(timestamp) + self.config.horizon_s, window.max_timestamp())))

  @on_timer(EXPIRY)
  def expire(self, first=beam.DoFn.StateParam(_FirstDeliveryFn.FIRST)):
    first.clear()


class _DedupeForTheJobFn(_FirstDeliveryFn):
  """Remembers every key for the life of the job: no timer (for runners whose timers fire at once)."""

  def process(self, keyed, first=beam.DoFn.StateParam(_FirstDeliveryFn.FIRST)):
    return self.first_delivery(keyed, first, lambda: None)


def _key(event):
  return f"{event.tenant}\x1f{event.event_id}", event


class Dedupe(Stage):
  """`AgentEvent`s -> the first delivery of each (tenant, event_id); redeliveries dropped and counted."""

  def __init__(self, config: DedupeConfig = DedupeConfig()):
    super().__init__()
    self.config = config

  def expand_tagged(self, pcoll):
    fn = (_DedupeFn if state_expires(pcoll.pipeline) else _DedupeForTheJobFn)(self.config)
    return (pcoll | "KeyByEventId" >> beam.Map(_key).with_output_types(Tuple[str, Any])
            | "FirstDelivery" >> beam.ParDo(fn).with_outputs(DEAD_LETTER, main=MAIN))
