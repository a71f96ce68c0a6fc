"""Per-session memory: the last N turns of each session, kept in Beam state keyed by session id.

`SessionMemory` sits between Retrieve and Decide and fills `Retrieval.memory` with the
session's earlier turns (oldest first), so a policy can use the conversation so far.
State expires `ttl_s` after a session's latest event (an event-time timer), so idle
sessions do not hold state forever; on runners whose timers fire at once (Prism 2.62:
`agentflow.io.runners.TIMERS_FIRE_AT_ONCE_RUNNERS`) no timer is set and sessions are kept
for the life of the job. Memory reflects turns this worker has already seen: in streaming
that is arrival order; in batch only turns with earlier timestamps are shown.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer

from agentflow.io.runners import state_expires
from agentflow.observability import metrics
from agentflow.stages.state_cache import weigh_state_without_module_scan


@dataclass(frozen=True)
class MemoryConfig:
  """`max_turns` kept per session; state is cleared `ttl_s` seconds (event time) after the last
  turn, where the runner's timers can be trusted (`agentflow.io.runners.state_expires`)."""
  max_turns: int = 10
  ttl_s: float = 3600.0


class _SessionTurnsFn(beam.DoFn):
  """Keeps each session's last turns; subclasses decide when a session is forgotten."""
  TURNS = ReadModifyWriteStateSpec("turns", PickleCoder())

  def __init__(self, config: MemoryConfig):
    self.config = config

  def setup(self):
    weigh_state_without_module_scan()
    self.expired = metrics.counter("memory.expired_sessions")

  def remember(self, keyed, turns):
    """(the turns now kept, the retrieval with the session's earlier turns as its memory)."""
    _, retrieval = keyed
    event = retrieval.event
    history = turns.read() or []
    earlier = [t for t in history if t["timestamp"] <= event.timestamp and t["event_id"] != event.event_id]
    turn = {"event_id": event.event_id, "role": "user", "text": event.text, "timestamp": event.timestamp}
    kept = sorted([t for t in history if t["event_id"] != event.event_id] + [turn],
                  key=lambda t: t["timestamp"])[-self.config.max_turns:]
    turns.write(kept)
    return kept, dataclasses.replace(retrieval, memory=tuple(earlier[-self.config.max_turns:]))


class _MemoryFn(_SessionTurnsFn):
  """Forgets a session by an event-time timer `ttl_s` after its latest turn."""
  EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

  def process(self, keyed, turns=beam.DoFn.StateParam(_SessionTurnsFn.TURNS), expiry=beam.DoFn.TimerParam(EXPIRY)):
    kept, retrieval = self.remember(keyed, turns)
    expiry.set(max(t["timestamp"] for t in kept) + self.config.ttl_s)
    yield retrieval

  @on_timer(EXPIRY)
  def expire(self, turns=beam.DoFn.StateParam(_SessionTurnsFn.TURNS)):
    turns.clear()
    self.expired.inc()


class _MemoryForTheJobFn(_SessionTurnsFn):
  """Keeps every session for the life of the job: no timer (for runners whose timers fire at once)."""

  def process(self, keyed, turns=beam.DoFn.StateParam(_SessionTurnsFn.TURNS)):
    yield self.remember(keyed, turns)[1]


class SessionMemory(beam.PTransform):
  """`Retrieval` -> the same `Retrieval` with `.memory` holding the session's earlier turns."""

  def __init__(self, config: MemoryConfig = MemoryConfig()):
    super().__init__()
    self.config = config

  def expand(self, pcoll):
    return (pcoll | "KeyBySession" >> beam.Map(lambda r: (f"{r.event.tenant}\x1f{r.event.session_id}", r))
            | "Remember" >> beam.ParDo(
                (_MemoryFn if state_expires(pcoll.pipeline) else _MemoryForTheJobFn)(self.config)))
