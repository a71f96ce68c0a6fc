"""The streaming DirectRunner's timer scan, indexed: the monitor looks only at keys with a due timer.

Beam's DirectRunner (2.62) finds fired timers by asking every key's state of every stateful
step for its timers on every round of its monitor (`_TransformWatermarks.extract_transform_timers`),
and a key's state stays until its timers are cleared. Dedupe keeps one event-time timer per event
id for its whole horizon (a day by default), so on a streaming job each round's scan grew with the
events seen: the job got slower the longer it ran (docs/performance.md).

Here each step's keyed states are a dict that records which keys were written (a bundle's state
is committed by replacing the key's entry, and that is the only way the runner changes it); the
scan re-reads those keys' timers, keeps a heap of each key's earliest event-time timer and the
set of keys with processing-time timers, and asks only the keys whose earliest timer is due. It
returns what Beam's scan returns: every timer at or before the watermark (processing time for
real-time timers), again on every round until the step clears it.
"""
from __future__ import annotations

import heapq
import itertools
import threading
from typing import Dict, List, Tuple

from apache_beam.transforms.timeutil import TimeDomain

_INSTALLED = []


def install() -> None:
  """Makes the DirectRunner in this process keep keyed states in `TrackedStates` and scan them
  through their index."""
  if _INSTALLED:
    return
  from apache_beam.runners.direct import evaluation_context, watermark_manager

  def initialize_keyed_states(self, root_transforms, value_to_consumers):
    transforms = [*root_transforms, *(c for consumers in value_to_consumers.values() for c in consumers)]
    return {transform: TrackedStates() for transform in transforms}

  def extract_transform_timers(self):
    if not isinstance(self._keyed_states, TrackedStates):
      return beams_scan(self)
    with self._lock:
      expired, has_realtime_timer = self._keyed_states.due_timers(self._input_watermark, self._clock.time())
      fired = [watermark_manager.TimerFiring(key, window, name, domain, timestamp, dynamic_timer_tag=tag)
               for key, (window, (name, domain, timestamp, tag)) in expired]
      self._fired_timers.update(fired)
      return fired, has_realtime_timer

  beams_scan = watermark_manager._TransformWatermarks.extract_transform_timers
  evaluation_context.EvaluationContext._initialize_keyed_states = initialize_keyed_states
  watermark_manager._TransformWatermarks.extract_transform_timers = extract_transform_timers
  _INSTALLED.append(True)


class TrackedStates(dict):
  """A step's keyed states (encoded key -> state), indexed by when their timers are due."""

  def __init__(self):
    super().__init__()
    self._lock = threading.Lock()
    self._written = set()
    self._version: Dict[object, int] = {}
    self._heap: List[Tuple[object, int, int, object]] = []  # (earliest timer, tie, version, key)
    self._realtime = set()
    self._tie = itertools.count()

  def __setitem__(self, key, state):
    with self._lock:
      super().__setitem__(key, state)
      self._written.add(key)

  def _reindex(self) -> None:
    with self._lock:
      written, self._written = self._written, set()
    for key in written:
      version = self._version[key] = self._version.get(key, 0) + 1
      self._realtime.discard(key)
      state = self.get(key)
      earliest = None
      for timers in getattr(state, "timers", {}).values():
        for (_, time_domain, _), timestamp in timers.items():
          if time_domain == TimeDomain.WATERMARK:
            earliest = timestamp if earliest is None else min(earliest, timestamp)
          else:
            self._realtime.add(key)
      if earliest is not None:
        heapq.heappush(self._heap, (earliest, next(self._tie), version, key))

  def due_timers(self, watermark, now) -> Tuple[List[Tuple[object, tuple]], bool]:
    """(encoded key, expired timer) for every timer due at `watermark` / `now`, as Beam's
    `get_timers` gives them; and whether any key has a processing-time timer."""
    self._reindex()
    due, keep = set(self._realtime), []
    while self._heap and self._heap[0][0] <= watermark:
      entry = heapq.heappop(self._heap)
      if self._version.get(entry[3]) == entry[2]:
        due.add(entry[3])
        keep.append(entry)
    for entry in keep:  # still due until the step clears the timer (a write re-indexes the key)
      heapq.heappush(self._heap, entry)
    expired = []
    for key in due:
      timers, _ = self[key].get_timers(watermark=watermark, processing_time=now)
      expired.extend((key, timer) for timer in timers)
    return expired, bool(self._realtime)
