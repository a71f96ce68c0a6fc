"""Embed: `AgentEvent` -> `AgentEvent` with `.embedding`, through Beam's RunInference.

The event itself is the RunInference key (`KeyedModelHandler`), so no join is needed
to put vectors back on their events, and RunInference's batching, model sharing and
model-update side inputs all apply unchanged.
"""
from __future__ import annotations

from typing import Callable, Optional

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from agentflow.models.base import EmbeddingModelHandler
from agentflow.stages.base import DEAD_LETTER, MAIN, Stage, StageCounters


class _AttachFn(beam.DoFn):

  def __init__(self, dimension: int):
    self.dimension = dimension

  def setup(self):
    self.counters = StageCounters("embed")

  def process(self, keyed):
    event, result = keyed
    vector = result.inference
    if getattr(vector, "shape", (len(vector),))[-1] != self.dimension:
      yield self.counters.event_dead_letter(
          "dimension_mismatch", f"model returned {len(vector)}-d vector, expected {self.dimension}", event)
      return
    self.counters.outputs.inc()
    yield event.with_embedding(vector, result.model_id or "")


def _describe(error) -> str:
  """RunInference reports failures as (type, repr, traceback lines); keep the repr."""
  if isinstance(error, tuple) and len(error) >= 2:
    return str(error[1])
  return f"{type(error).__name__}: {error}"


class _FailedBatchFn(beam.DoFn):
  """Failed batches arrive on an untagged PCollection, so this emits plain `DeadLetter`s."""

  def setup(self):
    self.counters = StageCounters("embed")

  def process(self, failed):
    batch, error = failed
    for event, _text in batch:
      yield self.counters.event_dead_letter("inference_error", _describe(error), event).value


def text_of(event):
  """The text an event is embedded by (the default `Embed` key)."""
  return event.text


class _Key(beam.DoFn):

  def __init__(self, input_fn: Callable):
    self.input_fn = input_fn

  def setup(self):
    self.counters = StageCounters("embed")

  def process(self, event):
    self.counters.inputs.inc()
    try:
      yield event, self.input_fn(event)
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
