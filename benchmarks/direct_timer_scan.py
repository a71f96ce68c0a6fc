"""The streaming DirectRunner's timer scan per monitor round: Beam's full scan against agentflow's index.

  python -m benchmarks.direct_timer_scan [--keys 1000,10000,100000] [--rounds 20]

Each key holds what Dedupe leaves in a streaming job: one event-time timer a day ahead (its
horizon). Both columns call the runner's own `_TransformWatermarks.extract_transform_timers`
on one step: over a plain dict of keyed states it is Beam's scan, which asks every key's state
for due timers on every round of the runner's monitor, holding the GIL; over
`agentflow.io.direct_timers.TrackedStates` it asks only keys whose earliest timer is due.
It prints milliseconds per round for both and their ratio, and the events a job at 50
events/s has seen when Beam's scan reaches 10 ms a round.
"""
from __future__ import annotations

import argparse
import time

from apache_beam.runners.direct.evaluation_context import DirectUnmergedState
from apache_beam.runners.direct.watermark_manager import _TransformWatermarks
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.utils.timestamp import Timestamp

from agentflow.io import direct_timers
from agentflow.io.direct_timers import TrackedStates

from benchmarks.common import save

DAY = 24 * 3600


class _Clock:
  def time(self):
    return Timestamp(10)


def watermarks(states):
  """Beam's watermark tracker of one stateful step over `states`, its input watermark at 10 s."""
  tracker = _TransformWatermarks(_Clock(), states, "Dedupe")
  tracker._input_watermark = Timestamp(10)
  return tracker


def per_round_ms(tracker, rounds):
  """Milliseconds per scan, after a first scan that indexes the writes (each key once, as the
  first round after a bundle's commit does in a job)."""
  tracker.extract_transform_timers()
  start = time.perf_counter()
  for _ in range(rounds):
    fired, _ = tracker.extract_transform_timers()
    assert not fired
  return (time.perf_counter() - start) * 1000 / rounds


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--keys", default="1000,10000,100000", help="comma-separated numbers of keys with a timer")
  ap.add_argument("--rounds", type=int, default=20)
  args = ap.parse_args(argv)
  direct_timers.install()  # keyed states in a plain dict still get Beam's scan
  rows = []
  print("| keys with a timer | Beam's scan ms/round | indexed ms/round | Beam / indexed |")
  print("|---|---|---|---|")
  for n in (int(k) for k in args.keys.split(",")):
    beams, indexed = {}, TrackedStates()
    for i in range(n):
      state = DirectUnmergedState()
      state.set_timer("window", "dedupe_forget", TimeDomain.WATERMARK, Timestamp(DAY + i))
      beams[str(i).encode()] = indexed[str(i).encode()] = state
    full = per_round_ms(watermarks(beams), args.rounds)
    fast = per_round_ms(watermarks(indexed), args.rounds)
    rows.append({"keys": n, "beam_ms": round(full, 3), "indexed_ms": round(fast, 4)})
    print(f"| {n:,} | {full:.2f} | {fast:.4f} | {full / fast:,.0f}x |")
  slope = rows[-1]["beam_ms"] / rows[-1]["keys"]
  print(f"Beam's scan reaches 10 ms a round after {10 / slope:,.0f} events at one timer each "
        f"({10 / slope / 50 / 60:.1f} minutes at 50 events/s)")
  save("direct_timer_scan", {"rounds": args.rounds, "rows": rows})


if __name__ == "__main__":
  main()
