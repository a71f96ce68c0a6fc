"""Per-session memory: the last N turns of each session, kept in Beam state keyed by session id.

`SessionMemory` sits between Retrieve and Decide and fills `Retrieval.memory` with the
session's earlier turns (oldest first), so a policy can use the conversation so far.
State expires `ttl_s` after a session's latest event (an event-time timer), so idle
sessions do not hold state forever. Memory reflects turns this worker has already seen:
in streaming that is arrival order; in batch only turns with earlier timestamps are shown.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer

from agentflow.observability import metrics
from agentflow.stages.state_cache import weigh_state_without_module_scan


@dataclass(frozen=True)
class MemoryConfig:
  """`max_turns` kept per session; state is cleared `ttl_s` seconds (event time) after the last turn."""
  max_turns: int = 10
  ttl_s: float = 3600.0


class _MemoryFn(beam.DoFn):
  TURNS = ReadModifyWriteStateSpec("turns", PickleCoder())
  EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

  def __init__(self, config: MemoryConfig):
    self.config = config

  def setup(self):
    weigh_state_without_module_scan()
    self.expired = metrics.counter("memory.expired_sessions")

  def process(self, keyed, turns=beam.DoFn.StateParam(TURNS), expiry=beam.DoFn.TimerParam(EXPIRY)):
    _, retrieval = keyed
    event = retrieval.event
    history = turns.read() or []
    earlier = [t for t in history if t["timestamp"] <= event.timestamp and t["event_id"] != event.event_id]
    turn = {"event_id": event.event_id, "role": "user", "text": event.text, "timestamp": event.timestamp}
    kept = sorted([t for t in history if t["event_id"] != event.event_id] + [turn],
                  key=lambda t: t["timestamp"])[-self.config.max_turns:]
    turns.write(kept)
    expiry.set(max(t["timestamp"] for t in kept) + self.config.ttl_s)
    yield dataclasses.replace(retrieval, memory=tuple(earlier[-self.config.max_turns:]))

  @on_timer(EXPIRY)
  def expire(self, turns=beam.DoFn.StateParam(TURNS)):
    turns.clear()
    self.expired.inc()


class SessionMemory(beam.PTransform):
  """`Retrieval` -> the same `Retrieval` with `.memory` holding the session's earlier turns."""

  def __init__(self, config: MemoryConfig = MemoryConfig()):
    super().__init__()
    self.config = config

  def expand(self, pcoll):
    return (pcoll | "KeyBySession" >> beam.Map(lambda r: (f"{r.event.tenant}\x1f{r.event.session_id}", r))
            | "Remember" >> beam.ParDo(_MemoryFn(self.config)))
