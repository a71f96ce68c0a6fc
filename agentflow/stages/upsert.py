"""VectorUpsert: write each embedded event to the store under its deterministic id."""
from __future__ import annotations

from dataclasses import dataclass, field

import apache_beam as beam

from agentflow.stages.base import DEAD_LETTER, MAIN, RetryPolicy, Stage
from agentflow.stages.batching import StoreBatchingDoFn
from agentflow.stores.base import StoreError, TransientReason, VectorStore


@dataclass(frozen=True)
class UpsertConfig:
  """Batch size and retry policy; what is still unwritten after the last retry is dead-lettered, not dropped."""
  batch_size: int = 64
  retry: RetryPolicy = field(default_factory=RetryPolicy)


def _retryable(e: Exception) -> bool:
  return not isinstance(e, (ValueError, TypeError)) and getattr(e, "retryable", True)


class UpsertFn(StoreBatchingDoFn):
  """Writes batches; retries documents the store calls transient, dead-letters the rest with reasons.

  Subclasses change what is written by overriding `document` and `dead_letter`.
  """
  stage = "upsert"

  def document(self, element):
    return element.to_document()

  def dead_letter(self, reason, error, element):
    return self.counters.event_dead_letter(reason, error, element)

  def handle_batch(self, events):
    try:
      docs = [self.document(e) for e in events]
    except (ValueError, TypeError, AttributeError):
      yield from self._one_by_one(events)
      return
    results = [None] * len(events)
    pending = list(range(len(events)))

    def write():
      nonlocal pending
      for i, error in zip(pending, self.store.upsert([docs[i] for i in pending])):
        results[i] = error
      pending = [i for i in pending if isinstance(results[i], TransientReason)]
      if pending:
        raise StoreError(f"{len(pending)} of {len(docs)} documents not written: {results[pending[0]]}",
                         retryable=True)

    failure = None
    try:
      self.config.retry.call(write, retryable=_retryable, on_retry=lambda _: self.retries.inc())
    except Exception as e:  # pylint: disable=broad-except
      failure = e
    for i, event in enumerate(events):
      if failure is not None and i in pending:
        reason = "invalid_document" if isinstance(failure, (ValueError, TypeError)) else "store_unavailable"
        detail = results[i] if isinstance(results[i], TransientReason) else f"{type(failure).__name__}: {failure}"
        yield i, self.dead_letter(reason, detail, event)
      elif results[i] is None:
        self.counters.outputs.inc()
        yield i, event
      else:
        yield i, self.dead_letter("store_rejected", results[i], event)

  def _one_by_one(self, elements):
    """A batch holding an element that is no document: dead-letter those, write the rest."""
    good = []
    for i, element in enumerate(elements):
      try:
        self.document(element)
        good.append(i)
      except (ValueError, TypeError, AttributeError) as e:
        yield i, self.dead_letter("invalid_document", f"{type(e).__name__}: {e}", element)
    for j, out in self.handle_batch([elements[i] for i in good]):
      yield good[j], out


class VectorUpsert(Stage):
  """Upserts embedded events (id = `document_id(event_id, tenant, kind)`) and passes them on once written.

  Because events are emitted only after their batch is written, a Retrieve stage after
  this one always sees them.
  """

  def __init__(self, store: VectorStore, config: UpsertConfig = UpsertConfig()):
    super().__init__()
    self.store, self.config = store, config

  def expand_tagged(self, pcoll):
    return pcoll | "Upsert" >> beam.ParDo(UpsertFn(self.store, self.config)).with_outputs(
        DEAD_LETTER, main=MAIN)
