"""Progress lines on stderr while a job runs, from the worker that sees the outputs."""
from __future__ import annotations

import sys
import time

import apache_beam as beam


class _ProgressFn(beam.DoFn):

  def __init__(self, interval_s: float, label: str):
    self.interval_s, self.label = interval_s, label

  def setup(self):
    self.start = self.last = time.monotonic()
    self.counts = {}

  def process(self, element):
    kind = "dead letters" if hasattr(element, "reason") else "decisions"
    self.counts[kind] = self.counts.get(kind, 0) + 1
    now = time.monotonic()
    if now - self.last >= self.interval_s:
      self.last = now
      self._print(now)

  def teardown(self):
    if self.counts:
      self._print(time.monotonic())

  def _print(self, now):
    total = sum(self.counts.values())
    rate = total / max(now - self.start, 1e-9)
    parts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()))
    print(f"[{self.label}] {parts} ({rate:.1f} events/s)", file=sys.stderr, flush=True)


class ShowProgress(beam.PTransform):
  """Prints running counts of decisions and dead letters every `interval_s` seconds."""

  def __init__(self, interval_s: float = 5.0, label: str = "agentflow"):
    super().__init__()
    self.interval_s, self.label = interval_s, label

  def expand(self, pcoll):
    return pcoll | "Progress" >> beam.ParDo(_ProgressFn(self.interval_s, self.label))
