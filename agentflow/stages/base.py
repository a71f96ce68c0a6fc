"""What every stage shares: its dead-letter output, its Beam metrics, its retry policy.

`RetryPolicy` lives in `agentflow.retry` (stores use it too) and is re-exported here.

A stage used alone (`events | Preprocess()`) returns its main output and fails the
pipeline on the first record it cannot handle, as Beam's RunInference does by default.
`Stage.with_dead_letters()` returns `(main, dead_letters)` instead, so nothing is lost
and nothing fails: each `DeadLetter` carries the stage, a short reason code, the error
and the payload to replay.
"""
from __future__ import annotations

import copy

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from agentflow.observability import metrics
from agentflow.retry import RetryPolicy
from agentflow.types import DeadLetter, payload_of, trace_id_for

MAIN = "main"
DEAD_LETTER = "dead_letter"

__all__ = ["DEAD_LETTER", "MAIN", "DeadLetterError", "RetryPolicy", "Stage", "StageCounters"]


class DeadLetterError(RuntimeError):
  """Raised by a stage used without `with_dead_letters()` when a record fails."""


def _raise(dl: DeadLetter):
  raise DeadLetterError(f"{dl.stage} failed ({dl.reason}): {dl.error}")


class StageCounters:
  """Beam counters `<stage>.in`, `<stage>.out`, `<stage>.dead_letter.<reason>` and `<stage>.latency_us`."""

  def __init__(self, stage: str):
    self.stage = stage
    self.inputs = metrics.counter(f"{stage}.in")
    self.outputs = metrics.counter(f"{stage}.out")
    self.latency_us = metrics.distribution(f"{stage}.latency_us")
    self._reasons: dict = {}

  def dead_letter(self, reason: str, error: str, payload: str, event_id: str = "",
                  trace_id: str = "") -> TaggedOutput:
    counter = self._reasons.get(reason)
    if counter is None:
      counter = self._reasons[reason] = metrics.counter(f"{self.stage}.dead_letter.{reason}")
    counter.inc()
    return TaggedOutput(DEAD_LETTER, DeadLetter(
        self.stage, reason, error[:2000], payload, event_id, trace_id or trace_id_for(payload)))


  def event_dead_letter(self, reason: str, error: str, event) -> TaggedOutput:
    """Dead letter for an already-parsed event: its (redacted) payload, id and trace id."""
    return self.dead_letter(reason, error, payload_of(event), event.event_id, event.trace_id)


class Stage(beam.PTransform):
  """Base of the five stage transforms; subclasses implement `expand_tagged`.

  Bad records go one of three ways, as with Beam's own transforms: fail the pipeline (the
  default, like RunInference), come back beside the main output (`with_dead_letters()`, like
  `ParDo.with_exception_handling()`), or go to a Beam `ErrorHandler`
  (`with_error_handler(handler)`). Either way each is a typed `DeadLetter` with a stable
  reason code, not an exception tuple.
  """

  _dead_letters = False
  _error_handler = None

  def with_dead_letters(self):
    """Return `(main, dead_letters)` from this transform instead of failing on bad records."""
    clone = copy.copy(self)
    clone._dead_letters = True
    return clone

  def with_error_handler(self, error_handler):
    """Send dead letters to a Beam `ErrorHandler` (apache_beam.transforms.error_handling); return main.

    `None` keeps the default (fail on the first bad record), as Beam's transforms do.
    """
    clone = copy.copy(self)
    clone._error_handler = error_handler
    return clone

  def expand_tagged(self, pcoll):
    """Return an object with `.main` and `.dead_letter` PCollections (e.g. a DoOutputsTuple)."""
    raise NotImplementedError

  def expand(self, pcoll):
    out = self.expand_tagged(pcoll)
    main, dead = out[MAIN], out[DEAD_LETTER]
    if self._dead_letters:
      return main, dead
    if self._error_handler is not None:
      self._error_handler.add_error_pcollection(dead)
      return main
    _ = dead | "FailOnDeadLetter" >> beam.Map(_raise)
    return main
