"""Any agentflow `VectorStore` (Vespa included) behind Beam's own RAG and Enrichment interfaces.

- `StoreWriteConfig` is a `VectorDatabaseWriteConfig`: `chunks | VectorDatabaseWriteTransform(config)`
  writes Beam `Chunk`s (with embeddings) to the store, upserting by `Chunk.id`.
- `StoreEnrichmentHandler` is an `EnrichmentSourceHandler`: `rows | Enrichment(handler)` adds the
  nearest stored contexts to each `beam.Row` that carries an embedding.

`apache_beam.ml.rag.ingestion.base` first ships in apache-beam 2.63; with the pinned 2.62 an
equivalent two-class interface is defined here, and the real one is used when it is importable.
"""
from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import dataclass, field
from typing import Optional, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.io.requestresponse import UserCodeExecutionException, UserCodeQuotaException
from apache_beam.ml.rag.types import Chunk
from apache_beam.transforms.enrichment import EnrichmentSourceHandler

from agentflow.stages.base import DEAD_LETTER, MAIN, RetryPolicy, Stage
from agentflow.stages.upsert import UpsertFn
from agentflow.stores.base import QueryFilter, StoreError, VectorStore
from agentflow.types import KIND_KNOWLEDGE, Document

try:
  from apache_beam.ml.rag.ingestion.base import VectorDatabaseWriteConfig, VectorDatabaseWriteTransform
except ImportError:  # apache-beam < 2.63

  class VectorDatabaseWriteConfig(abc.ABC):
    """How to write `Chunk`s to one vector database (Beam >= 2.63 defines this class)."""

    @abc.abstractmethod
    def create_write_transform(self) -> beam.PTransform:
      """The PTransform that writes a PCollection of embedded `Chunk`s."""

  class VectorDatabaseWriteTransform(beam.PTransform):
    """Applies `config.create_write_transform()` (Beam >= 2.63 defines this class)."""

    def __init__(self, database_config: VectorDatabaseWriteConfig):
      super().__init__()
      if not isinstance(database_config, VectorDatabaseWriteConfig):
        raise TypeError(f"database_config must be a VectorDatabaseWriteConfig, not {type(database_config)}")
      self.database_config = database_config

    def expand(self, pcoll):
      return pcoll | self.database_config.create_write_transform()


def chunk_to_document(chunk: Chunk, kind: str = KIND_KNOWLEDGE) -> Document:
  """A stored document for `chunk`: id, dense embedding and text; `session_id`, `tenant`,
  `kind` and `timestamp` may come from `chunk.metadata`, the rest of which is kept as metadata."""
  if chunk.embedding is None or not chunk.embedding.dense_embedding:
    raise ValueError(f"chunk {chunk.id!r} has no dense embedding")
  meta = dict(chunk.metadata or {})
  return Document(
      id=str(chunk.id), vector=np.asarray(chunk.embedding.dense_embedding, dtype=np.float32),
      text=chunk.content.text or "", session_id=str(meta.pop("session_id", "")), tenant=str(meta.pop("tenant", "")),
      kind=str(meta.pop("kind", kind)), timestamp=float(meta.pop("timestamp", 0.0)), event_id=str(chunk.id),
      metadata={**meta, "chunk_index": chunk.index})


class _ChunkUpsertFn(UpsertFn):
  stage = "chunk_upsert"

  def document(self, element):
    return chunk_to_document(element, self.config.kind)

  def dead_letter(self, reason, error, element):
    payload = json.dumps({"id": element.id, "text": element.content.text, "metadata": element.metadata},
                         default=str, ensure_ascii=False)
    return self.counters.dead_letter(reason, error, payload, str(element.id))


class WriteChunks(Stage):
  """Upserts `Chunk`s into `config.store`; emits the written chunks (dead letters with reasons)."""

  def __init__(self, config: StoreWriteConfig):
    super().__init__()
    self.config = config

  def expand_tagged(self, pcoll):
    return pcoll | "WriteChunks" >> beam.ParDo(_ChunkUpsertFn(self.config.store, self.config)).with_outputs(
        DEAD_LETTER, main=MAIN)


@dataclass(frozen=True)
class StoreWriteConfig(VectorDatabaseWriteConfig):
  """Write Beam RAG `Chunk`s to an agentflow store (e.g. `store_from_uri("vespa:https://...", 384)`).

  With `dead_letters=True` the write transform returns `(written, dead_letters)` instead of
  failing the pipeline on a chunk the store rejects.
  """
  store: VectorStore
  batch_size: int = 64
  kind: str = KIND_KNOWLEDGE
  retry: RetryPolicy = field(default_factory=RetryPolicy)
  dead_letters: bool = False

  def create_write_transform(self) -> beam.PTransform:
    transform = WriteChunks(self)
    return transform.with_dead_letters() if self.dead_letters else transform


class StoreEnrichmentHandler(EnrichmentSourceHandler[beam.Row, beam.Row]):
  """Nearest stored contexts for a `beam.Row` holding a vector in `vector_field`.

  The response row has `context_ids`, `context_texts` and `context_scores` (best first), which
  Enrichment's default join adds to the input row. `filter_fields` maps `QueryFilter` fields
  (session_id, tenant, kind) to row fields, so each row only sees its own session or tenant.
  A retryable store error is raised as a quota error, which Enrichment's repeater backs off on.
  """

  def __init__(self, store: VectorStore, k: int = 5, vector_field: str = "embedding",
               filter_fields: Optional[dict] = None, kind: Optional[str] = None):
    if k <= 0:
      raise ValueError(f"k must be positive, not {k}")
    unknown = set(filter_fields or {}) - {"session_id", "tenant", "kind"}
    if unknown:
      raise ValueError(f"filter_fields keys must be QueryFilter fields session_id/tenant/kind, not {sorted(unknown)}")
    self.store, self.k, self.vector_field = store, k, vector_field
    self.filter_fields, self.kind = dict(filter_fields or {}), kind

  def __enter__(self):
    self.store.open()
    return self

  def __exit__(self, exc_type, exc_val, exc_tb):
    self.store.close()

  def _filter(self, row: beam.Row) -> Optional[QueryFilter]:
    values = {name: getattr(row, column) for name, column in self.filter_fields.items()}
    if self.kind is not None:
      values.setdefault("kind", self.kind)
    return QueryFilter(**values) if values else None

  def __call__(self, request: beam.Row, *args, **kwargs) -> Tuple[beam.Row, beam.Row]:
    vector = np.asarray(getattr(request, self.vector_field), dtype=np.float32).reshape(1, -1)
    try:
      hits = self.store.query(vector, self.k, self._filter(request))[0]
    except StoreError as e:
      raise (UserCodeQuotaException if e.retryable else UserCodeExecutionException)(str(e)) from e
    return request, beam.Row(context_ids=[h.id for h in hits], context_texts=[h.text for h in hits],
                             context_scores=[float(h.score) for h in hits])

  def get_cache_key(self, request: beam.Row) -> str:
    vector = np.asarray(getattr(request, self.vector_field), dtype=np.float32)
    digest = hashlib.blake2b(vector.tobytes(), digest_size=16).hexdigest()
    return f"{digest}:{self.k}:{self._filter(request)}"


__all__ = ["StoreEnrichmentHandler", "StoreWriteConfig", "VectorDatabaseWriteConfig", "VectorDatabaseWriteTransform",
           "WriteChunks", "chunk_to_document"]
