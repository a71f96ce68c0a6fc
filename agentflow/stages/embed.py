"""Embed: `AgentEvent` -> `AgentEvent` with `.embedding`, through Beam's RunInference.

The event itself is the RunInference key (`KeyedModelHandler`), so no join is needed
to put vectors back on their events, and RunInference's batching, model sharing and
model-update side inputs all apply unchanged. The key also carries the element's
timestamp: RunInference's batching emits a batch at the end of its window (the end of
time in the global window), and each event gets its own timestamp back afterwards, so
event-time windowing downstream sees event time.
"""
from __future__ import annotations

from typing import Callable, Optional

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.windowed_value import WindowedValue

from agentflow.models.base import EmbeddingModelHandler
from agentflow.stages.base import DEAD_LETTER, MAIN, Stage, StageCounters


def _restamped(output, timestamp, window):
  """`output` (plain or tagged) at its event's own `timestamp`, in the window it was batched in."""
  if isinstance(output, TaggedOutput):
    return TaggedOutput(output.tag, WindowedValue(output.value, timestamp, (window,)))
  return WindowedValue(output, timestamp, (window,))


class _AttachFn(beam.DoFn):

  def __init__(self, dimension: int):
    self.dimension = dimension

  def setup(self):
    self.counters = StageCounters("embed")

  def process(self, keyed, window=beam.DoFn.WindowParam):
    (event, timestamp), result = keyed
    vector = result.inference
    if getattr(vector, "shape", (len(vector),))[-1] != self.dimension:
      yield _restamped(self.counters.event_dead_letter(
          "dimension_mismatch", f"model returned {len(vector)}-d vector, expected {self.dimension}", event),
          timestamp, window)
      return
    self.counters.outputs.inc()
    yield _restamped(event.with_embedding(vector, result.model_id or ""), timestamp, window)


def _describe(error) -> str:
  """RunInference reports failures as (type, repr, traceback lines); keep the repr."""
  if isinstance(error, tuple) and len(error) >= 2:
    return str(error[1])
  return f"{type(error).__name__}: {error}"


class _FailedBatchFn(beam.DoFn):
  """Failed batches arrive on an untagged PCollection, so this emits plain `DeadLetter`s."""

  def setup(self):
    self.counters = StageCounters("embed")

  def process(self, failed, window=beam.DoFn.WindowParam):
    batch, error = failed
    for (event, timestamp), _text in batch:
      yield _restamped(self.counters.event_dead_letter("inference_error", _describe(error), event).value,
                       timestamp, window)


def text_of(event):
  """The text an event is embedded by (the default `Embed` key)."""
  return event.text


class _Key(beam.DoFn):

  def __init__(self, input_fn: Callable):
    self.input_fn = input_fn

  def setup(self):
    self.counters = StageCounters("embed")

  def process(self, event, timestamp=beam.DoFn.TimestampParam):
    self.counters.inputs.inc()
    try:
      yield (event, timestamp), self.input_fn(event)
    except Exception as e:  # pylint: disable=broad-except
      yield self.counters.event_dead_letter("bad_model_input", f"{type(e).__name__}: {e}", event)


class Embed(Stage):
  """Embeds each event with `handler` (any `EmbeddingModelHandler`).

  The model input is `input_fn(event)`: the text by default, or e.g. a window of
  readings for a series model. `model_metadata_pcoll` is passed to RunInference so a side
  input (e.g. from `WatchFilePattern`) can swap models without a restart.
  """

  def __init__(self, handler: EmbeddingModelHandler, model_metadata_pcoll=None,
               expected_dimension: Optional[int] = None, input_fn: Callable = text_of):
    super().__init__()
    if expected_dimension is not None and expected_dimension != handler.dimension:
      raise ValueError(f"model {handler.model_id} produces {handler.dimension}-d vectors but the "
                       f"store schema expects {expected_dimension}-d")
    self.handler = handler
    self.model_metadata_pcoll = model_metadata_pcoll
    self.input_fn = input_fn

  def expand_tagged(self, pcoll):
    keyed = pcoll | "Key" >> beam.ParDo(_Key(self.input_fn)).with_outputs(DEAD_LETTER, main=MAIN)
    main, other = (keyed[MAIN] | "RunInference" >> RunInference(
        KeyedModelHandler(self.handler), model_metadata_pcoll=self.model_metadata_pcoll)
                   .with_exception_handling())
    attached = main | "Attach" >> beam.ParDo(_AttachFn(self.handler.dimension)).with_outputs(
        DEAD_LETTER, main=MAIN)
    failed = other.failed_inferences | "FailedBatches" >> beam.ParDo(_FailedBatchFn())
    dead = (keyed[DEAD_LETTER], attached[DEAD_LETTER], failed) | "MergeDeadLetters" >> beam.Flatten()
    return {MAIN: attached[MAIN], DEAD_LETTER: dead}
