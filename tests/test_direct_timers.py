"""The DirectRunner's indexed timer scan (agentflow.io.direct_timers) fires what Beam's full scan
fires, round after round, and looks at keys with due timers only."""
import random

from apache_beam.runners.direct.evaluation_context import DirectUnmergedState
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.trigger import _ReadModifyWriteStateTag
from apache_beam.utils.timestamp import Timestamp

from agentflow.io import direct_timers
from agentflow.io.direct_timers import TrackedStates

_TAG = _ReadModifyWriteStateTag("seen")


def _beams_scan(states, watermark, now):
  """What `_TransformWatermarks.extract_transform_timers` collects: every key's due timers."""
  expired, realtime = [], False
  for key, state in states.items():
    timers, had_realtime = state.get_timers(watermark=watermark, processing_time=now)
    realtime |= had_realtime
    expired.extend((key, timer) for timer in timers)
  return sorted(expired, key=repr), realtime


def _commit(states, key, change):
  """A bundle's write as the runner makes it: a copy of the key's state, changed, put back."""
  state = states[key].copy() if key in states else DirectUnmergedState()
  change(state)
  states[key] = state


def test_due_timers_match_beams_scan_over_rounds_of_writes_clears_and_a_moving_watermark():
  rng = random.Random(7)
  states, watermark, now = TrackedStates(), Timestamp(0), Timestamp(1000)
  for _ in range(400):
    key = f"k{rng.randrange(60)}".encode()
    name = rng.choice(["forget", "expiry"])
    domain = rng.choice([TimeDomain.WATERMARK] * 4 + [TimeDomain.REAL_TIME])
    when = Timestamp(rng.randrange(0, 300))
    if rng.random() < 0.25:
      _commit(states, key, lambda s, n=name, d=domain: s.clear_timer("w", n, d))
    elif rng.random() < 0.1:
      _commit(states, key, lambda s: s.set_global_state(_TAG, 1))  # a write that sets no timer
    else:
      _commit(states, key, lambda s, n=name, d=domain, t=when: s.set_timer("w", n, d, t))
    if rng.random() < 0.3:
      watermark, now = watermark + rng.randrange(0, 20), now + rng.randrange(0, 20)
    got, realtime = states.due_timers(watermark, now)
    assert (sorted(got, key=repr), realtime) == _beams_scan(states, watermark, now)
    assert states.due_timers(watermark, now)[0] == got  # fired again until the step clears them


def test_keys_without_due_timers_are_not_asked(monkeypatch):
  states = TrackedStates()
  for i in range(1000):
    _commit(states, f"k{i}".encode(), lambda s, i=i: s.set_timer("w", "forget", TimeDomain.WATERMARK,
                                                                  Timestamp(100 + i)))
  asked = []
  beams = DirectUnmergedState.get_timers
  monkeypatch.setattr(DirectUnmergedState, "get_timers",
                      lambda self, **kw: asked.append(self) or beams(self, **kw))
  assert states.due_timers(Timestamp(50), Timestamp(0)) == ([], False)
  assert asked == []
  fired, _ = states.due_timers(Timestamp(104), Timestamp(0))
  assert sorted(key for key, _ in fired) == [b"k0", b"k1", b"k2", b"k3", b"k4"]
  assert len(asked) == 5
  _commit(states, b"k0", lambda s: s.set_timer("w", "poll", TimeDomain.REAL_TIME, Timestamp(10)))
  assert states.due_timers(Timestamp(0), Timestamp(0)) == ([], True)
  _commit(states, b"k0", lambda s: s.clear_timer("w", "poll", TimeDomain.REAL_TIME))
  assert states.due_timers(Timestamp(0), Timestamp(0)) == ([], False)


def test_installed_scan_fires_dedupes_horizon_timer_on_a_streaming_pipeline(monkeypatch):
  from tests.test_dedupe import test_streaming_remembers_an_id_for_the_horizon_of_event_time_then_forgets_it
  direct_timers.install()
  scans = []
  indexed = TrackedStates.due_timers
  monkeypatch.setattr(TrackedStates, "due_timers", lambda self, *a: scans.append(1) or indexed(self, *a))
  test_streaming_remembers_an_id_for_the_horizon_of_event_time_then_forgets_it()
  assert scans
