"""VectorUpsert: write each embedded event to the store under its deterministic id."""
from __future__ import annotations

from dataclasses import dataclass, field

import apache_beam as beam

from agentflow.batching import StoreBatchingDoFn
from agentflow.stage import DEAD_LETTER, MAIN, RetryPolicy, Stage
from agentflow.stores.base import VectorStore


@dataclass(frozen=True)
class UpsertConfig:
  """Batch size and retry policy; after the last retry a batch is dead-lettered, not dropped."""
  batch_size: int = 64
  retry: RetryPolicy = field(default_factory=RetryPolicy)


def _retryable(e: Exception) -> bool:
  return not isinstance(e, (ValueError, TypeError)) and getattr(e, "retryable", True)


class _UpsertFn(StoreBatchingDoFn):
  stage = "upsert"

  def handle_batch(self, events):
    try:
      results = self.config.retry.call(lambda: self.store.upsert([e.to_document() for e in events]),
                                       retryable=_retryable, on_retry=lambda _: self.retries.inc())
    except Exception as e:  # pylint: disable=broad-except
      reason = "invalid_document" if isinstance(e, (ValueError, TypeError)) else "store_unavailable"
      for i, event in enumerate(events):
        yield i, self.counters.event_dead_letter(reason, f"{type(e).__name__}: {e}", event)
      return
    for i, (event, error) in enumerate(zip(events, results)):
      if error is None:
        self.counters.outputs.inc()
        yield i, event
      else:
        yield i, self.counters.event_dead_letter("store_rejected", error, event)


class VectorUpsert(Stage):
  """Upserts embedded events (id = `document_id(event_id, tenant)`) and passes them on once written.

  Because events are emitted only after their batch is written, a Retrieve stage after
  this one always sees them.
  """

  def __init__(self, store: VectorStore, config: UpsertConfig = UpsertConfig()):
    super().__init__()
    self.store, self.config = store, config

  def expand_tagged(self, pcoll):
    return pcoll | "Upsert" >> beam.ParDo(_UpsertFn(self.store, self.config)).with_outputs(
        DEAD_LETTER, main=MAIN)
