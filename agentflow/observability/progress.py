"""Progress lines on stderr while a job runs, from the worker that sees the outputs."""
from __future__ import annotations

import sys
import time

import apache_beam as beam


class _ProgressFn(beam.DoFn):
  """Counts outputs; prints every `interval_s`, with a rate measured from the first output it saw.

  A batch runner may hand this step every output in one burst after the model has run; a
  rate over a burst shorter than one interval says nothing, so then only counts are printed
  (the run summary gives the run's own elapsed time).
  """

  def __init__(self, interval_s: float, label: str):
    self.interval_s, self.label = interval_s, label

  def setup(self):
    self.first = self.last = None
    self.counts = {}

  def process(self, element):
    kind = "dead letters" if hasattr(element, "reason") else "decisions"
    self.counts[kind] = self.counts.get(kind, 0) + 1
    now = time.monotonic()
    if self.first is None:
      self.first = self.last = now
    elif now - self.last >= self.interval_s:
      self.last = now
      self._print(now)
    return ()

  def teardown(self):
    if self.counts:
      self._print(time.monotonic())

  def _print(self, now):
    parts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()))
    span = now - self.first
    rate = f" ({sum(self.counts.values()) / span:.1f} events/s over {span:.1f} s)" if span >= self.interval_s else ""
    print(f"[{self.label}] {parts}{rate}", file=sys.stderr, flush=True)


class ShowProgress(beam.PTransform):
  """Prints running counts of decisions and dead letters every `interval_s` seconds."""

  def __init__(self, interval_s: float = 5.0, label: str = "agentflow"):
    super().__init__()
    self.interval_s, self.label = interval_s, label

  def expand(self, pcoll):
    return pcoll | "Progress" >> beam.ParDo(_ProgressFn(self.interval_s, self.label))
