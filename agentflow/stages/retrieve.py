"""Retrieve: pair each embedded event with its nearest stored contexts."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

import apache_beam as beam
import numpy as np

from agentflow.observability import metrics
from agentflow.stages.base import DEAD_LETTER, MAIN, RetryPolicy, Stage
from agentflow.stages.batching import StoreBatchingDoFn
from agentflow.stores.base import QueryFilter, VectorStore
from agentflow.types import KIND_KNOWLEDGE, Retrieval


@dataclass(frozen=True)
class RetrieveConfig:
  """What counts as context for an event.

  `kind`: only documents of this kind (default: the knowledge base; None = any).
  `same_session` / `same_tenant`: restrict to the event's session / tenant.
  `window_s`: only documents no older than this many seconds before the event (and not after it).
  The event's own document is never returned.
  """
  k: int = 5
  kind: Optional[str] = KIND_KNOWLEDGE
  same_session: bool = False
  same_tenant: bool = True
  window_s: Optional[float] = None
  batch_size: int = 64
  retry: RetryPolicy = field(default_factory=RetryPolicy)

  def filter_for(self, event) -> QueryFilter:
    return QueryFilter(
        session_id=event.session_id if self.same_session else None,
        tenant=event.tenant if self.same_tenant else None, kind=self.kind,
        since=event.timestamp - self.window_s if self.window_s is not None else None,
        until=event.timestamp + 1e-6 if self.window_s is not None else None)


class _RetrieveFn(StoreBatchingDoFn):
  stage = "retrieve"

  def setup(self):
    super().setup()
    self.empty = metrics.counter("retrieve.no_hits")

  def handle_batch(self, events):
    groups = defaultdict(list)
    for i, event in enumerate(events):
      groups[self.config.filter_for(event)].append(i)
    for flt, indices in groups.items():
      vectors = np.stack([events[i].embedding for i in indices])
      texts = [events[i].text for i in indices]
      try:
        hits = self.config.retry.call(lambda v=vectors, f=flt, t=texts: self.store.query(v, self.config.k + 1, f, t),
                                      on_retry=lambda _: self.retries.inc())
      except Exception as e:  # pylint: disable=broad-except
        for i in indices:
          yield i, self.counters.event_dead_letter("store_unavailable", f"{type(e).__name__}: {e}", events[i])
        continue
      for i, event_hits in zip(indices, hits):
        own = events[i].doc_id
        kept = [h for h in event_hits if h.id != own][:self.config.k]
        if not kept:
          self.empty.inc()
        self.counters.outputs.inc()
        yield i, Retrieval(event=events[i], hits=kept)


class Retrieve(Stage):
  """Embedded `AgentEvent`s -> `Retrieval`s holding the top-k `Hit`s, queried in batches."""

  def __init__(self, store: VectorStore, config: RetrieveConfig = RetrieveConfig()):
    super().__init__()
    self.store, self.config = store, config

  def expand_tagged(self, pcoll):
    return pcoll | "Retrieve" >> beam.ParDo(_RetrieveFn(self.store, self.config)).with_outputs(
        DEAD_LETTER, main=MAIN)
