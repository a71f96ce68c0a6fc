"""The `VectorStore` extension point and the query filter every store understands."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from agentflow.types import Document, Hit


class StoreError(Exception):
  """A store operation failed. `retryable` tells callers whether backing off may help."""

  def __init__(self, message: str, retryable: bool = False):
    super().__init__(message)
    self.retryable = retryable


class TransientReason(str):
  """A per-document upsert reason that backing off may cure (throttled, briefly unavailable).

  Stores return it instead of a plain string so the Upsert stage retries just those
  documents with its `RetryPolicy` before dead-lettering them.
  """


@dataclass(frozen=True)
class QueryFilter:
  """Restricts a nearest-neighbour query; unset fields do not filter.

  `since`/`until` bound `Document.timestamp` (epoch seconds, inclusive/exclusive).
  """
  session_id: Optional[str] = None
  tenant: Optional[str] = None
  kind: Optional[str] = None
  since: Optional[float] = None
  until: Optional[float] = None
  exclude_ids: Sequence[str] = ()

  def accepts(self, doc_id: str, session_id: str, tenant: str, kind: str, timestamp: float) -> bool:
    return ((self.session_id is None or session_id == self.session_id)
            and (self.tenant is None or tenant == self.tenant)
            and (self.kind is None or kind == self.kind)
            and (self.since is None or timestamp >= self.since)
            and (self.until is None or timestamp < self.until)
            and doc_id not in self.exclude_ids)

  def matches(self, doc: Document) -> bool:
    return self.accepts(doc.id, doc.session_id, doc.tenant, doc.kind, doc.timestamp)


class VectorStore(abc.ABC):
  """A vector store as Beam workers use it.

  Instances are picklable descriptions: `open()` is called on the worker (in
  `DoFn.setup`) to create clients, `close()` in `teardown`. Upserts are keyed by
  `Document.id`, so writing the same document twice leaves one copy.
  """

  @property
  @abc.abstractmethod
  def dimension(self) -> int:
    """Vector dimension the store's schema holds."""

  @abc.abstractmethod
  def open(self) -> None:
    """Create clients / load indexes. Idempotent."""

  @abc.abstractmethod
  def close(self) -> None:
    """Flush and release resources. Idempotent."""

  @abc.abstractmethod
  def upsert(self, docs: Sequence[Document]) -> Sequence[Optional[str]]:
    """Insert or replace `docs`.

    Returns one entry per document: None when written, else an error reason for that
    document alone (a `TransientReason` when retrying may help). Raises `StoreError` when
    the whole batch failed.
    """

  @abc.abstractmethod
  def delete(self, ids: Sequence[str]) -> None:
    """Remove documents by id; unknown ids are ignored."""

  @abc.abstractmethod
  def query(self, vectors: np.ndarray, k: int, flt: Optional[QueryFilter] = None,
            texts: Optional[Sequence[str]] = None) -> list[list[Hit]]:
    """Top-`k` hits per row of `vectors` (shape [n, dimension]), best first.

    `texts` (one per row) lets a store with text search rank hybrid; others ignore it.
    """

  @abc.abstractmethod
  def get(self, ids: Sequence[str]) -> list[Optional[Document]]:
    """Fetch documents by id (None for unknown ids)."""

  @abc.abstractmethod
  def count(self, flt: Optional[QueryFilter] = None) -> int:
    """Number of stored documents matching `flt`."""

  def check_dimension(self, dim: int) -> None:
    if dim != self.dimension:
      raise ValueError(
          f"embedding dimension {dim} does not match the store's schema dimension "
          f"{self.dimension}; use a model with {self.dimension}-d output or a store created "
          f"for {dim}-d vectors")

  def __enter__(self):
    self.open()
    return self

  def __exit__(self, *exc):
    self.close()
