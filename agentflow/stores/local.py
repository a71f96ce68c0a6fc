"""The embedded default store: SQLite for durable rows, usearch HNSW for approximate search.

Why this pair: SQLite (WAL mode, one writer at a time via `BEGIN IMMEDIATE`) makes the
store safe for several worker processes writing and reading the same directory, and gives
upserts by primary key; usearch is a maintained single-file HNSW library that is fast on
CPU. Every write bumps a global sequence number, so each process keeps its in-memory HNSW
index current by replaying rows newer than the last one it saw (deletes are tombstones).
The index is snapshotted to disk, so a restart replays only the tail. Rows join the graph
on one thread: HNSW links built by parallel insertion are worse, and such a graph misses
even a stored vector's own exact match far more often.

A closed engine lingers for `linger_s` before it is released: runners that set up and
tear down DoFns on every bundle (Beam's streaming DirectRunner) then reuse one engine
instead of reloading and rewriting the whole index per bundle. Engines are kept, counted
and released by `agentflow.keepalive`.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from agentflow.keepalive import KeptObjects
from agentflow.stores.base import QueryFilter, StoreError, VectorStore
from agentflow.types import Document, Hit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
  id TEXT PRIMARY KEY,
  key INTEGER NOT NULL UNIQUE,
  seq INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  vector BLOB,
  text TEXT, session_id TEXT, tenant TEXT, kind TEXT, timestamp REAL, event_id TEXT,
  metadata TEXT
);
CREATE INDEX IF NOT EXISTS docs_seq ON docs(seq);
CREATE INDEX IF NOT EXISTS docs_session ON docs(session_id);
CREATE INDEX IF NOT EXISTS docs_kind ON docs(kind, tenant);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
"""
_COLUMNS = "id, text, session_id, tenant, kind, timestamp, event_id, metadata"


@dataclass(frozen=True)
class LocalStoreConfig:
  """HNSW and filtering knobs.

  `exact_filter_limit`: a filtered query whose filter matches at most this many rows is
  answered by exact search over those rows, which is both faster and exact there.
  `linger_s`: how long a process keeps a closed store's engine for the next open (0:
  release on close). `snapshot_interval_s`: the least time between index snapshots
  written on close; an engine's release always writes one.
  """
  connectivity: int = 16
  expansion_add: int = 128
  expansion_search: int = 96
  exact_filter_limit: int = 4096
  busy_timeout_s: float = 60.0
  linger_s: float = 10.0
  snapshot_interval_s: float = 30.0


def _key(doc_id: str) -> int:
  return int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "big") >> 1


class _Engine:
  """One per (process, directory): the SQLite connection and the process's HNSW index."""

  def __init__(self, path: str, dimension: int, config: LocalStoreConfig):
    from usearch.index import Index
    self.path, self.dimension, self.config = path, dimension, config
    self.lock = threading.RLock()
    self.pid = os.getpid()
    self.snapshot_at = float("-inf")
    os.makedirs(path, exist_ok=True)
    self.db = sqlite3.connect(os.path.join(path, "store.sqlite"), timeout=config.busy_timeout_s,
                              check_same_thread=False, isolation_level=None)
    self.inode = os.stat(os.path.join(path, "store.sqlite")).st_ino
    self.db.execute("PRAGMA journal_mode=WAL")
    self.db.execute("PRAGMA synchronous=NORMAL")
    self._write(lambda: self.db.executescript(_SCHEMA) and None, begin=False)
    self._check_dimension()
    self.index = Index(ndim=dimension, metric="cos", dtype="f32", connectivity=config.connectivity,
                       expansion_add=config.expansion_add, expansion_search=config.expansion_search)
    self.seq = 0
    self.snapshot_seq = self._load_snapshot()
    self.sync()

  def _write(self, fn, begin: bool = True):
    with self.lock:
      try:
        if begin:
          self.db.execute("BEGIN IMMEDIATE")
        out = fn()
        if begin:
          self.db.execute("COMMIT")
        return out
      except sqlite3.OperationalError as e:
        if begin and self.db.in_transaction:
          self.db.execute("ROLLBACK")
        raise StoreError(f"local store write failed: {e}", retryable="locked" in str(e)) from e
      except BaseException:
        if begin and self.db.in_transaction:
          self.db.execute("ROLLBACK")
        raise

  def _check_dimension(self) -> None:
    def check():
      row = self.db.execute("SELECT v FROM meta WHERE k='dimension'").fetchone()
      if row is None:
        self.db.execute("INSERT INTO meta VALUES ('dimension', ?)", (str(self.dimension),))
        return self.dimension
      return int(row[0])
    stored = self._write(check)
    if stored != self.dimension:
      raise ValueError(f"store at {self.path} holds {stored}-d vectors; cannot open it for "
                       f"{self.dimension}-d embeddings (choose another --store path or model)")

  def usable(self) -> bool:
    """Opened by this process and still on the database file it opened (asked of an idle
    engine: a directory deleted and created again gets a new engine)."""
    if self.pid != os.getpid():
      return False
    try:
      return os.stat(os.path.join(self.path, "store.sqlite")).st_ino == self.inode
    except OSError:
      return False

  def release(self) -> None:
    """Snapshot the index and close the database; only close it when the directory is gone or
    was replaced (e.g. a temporary store). One inherited from a parent process is left alone."""
    if self.usable():
      self.shutdown()
    elif self.pid == os.getpid():
      self.db.close()

  def snapshot(self) -> None:
    """Catch up with every process's writes, then save the index if it is newer than the saved one."""
    self.sync()
    self.save_snapshot()

  def shutdown(self) -> None:
    self.snapshot()
    self.db.close()

  def _snapshot_files(self) -> Tuple[str, str]:
    return os.path.join(self.path, "index.usearch"), os.path.join(self.path, "index.json")

  def _load_snapshot(self) -> int:
    idx_file, meta_file = self._snapshot_files()
    try:
      with open(meta_file) as f:
        meta = json.load(f)
      if meta.get("dimension") != self.dimension:
        return 0
      self.index.load(idx_file)
      self.seq = int(meta["seq"])
      return self.seq
    except (OSError, ValueError, KeyError, RuntimeError):
      self.index.reset()
      self.seq = 0
      return 0

  def save_snapshot(self) -> None:
    """Atomically replace the on-disk index if ours is newer; other processes' snapshots win ties."""
    idx_file, meta_file = self._snapshot_files()
    with self.lock, open(os.path.join(self.path, "index.lock"), "w") as lock:
      self.snapshot_at = time.monotonic()
      if self.seq <= self.snapshot_seq:
        return
      fcntl.flock(lock, fcntl.LOCK_EX)
      try:
        with open(meta_file) as f:
          if int(json.load(f).get("seq", 0)) >= self.seq:
            return
      except (OSError, ValueError):
        pass
      tmp = f"{idx_file}.{os.getpid()}.tmp"
      self.index.save(tmp)
      os.replace(tmp, idx_file)
      with open(f"{meta_file}.tmp", "w") as f:
        json.dump({"seq": self.seq, "dimension": self.dimension}, f)
      os.replace(f"{meta_file}.tmp", meta_file)
      self.snapshot_seq = self.seq

  def sync(self) -> None:
    """Apply rows written (by any process) since this index last looked."""
    with self.lock:
      rows = self.db.execute("SELECT seq, key, deleted, vector FROM docs WHERE seq > ? ORDER BY seq",
                             (self.seq,)).fetchall()
      if not rows:
        return
      latest: Dict[int, Optional[bytes]] = {}
      for _, key, deleted, vec in rows:
        latest[key] = None if deleted else vec
      stale = [k for k in latest if self.index.contains(k)]
      if stale:
        self.index.remove(np.array(stale, dtype=np.uint64))
      live = [(k, v) for k, v in latest.items() if v is not None]
      if live:
        keys = np.array([k for k, _ in live], dtype=np.uint64)
        vecs = np.frombuffer(b"".join(v for _, v in live), dtype=np.float32).reshape(len(live), -1)
        self.index.add(keys, vecs, threads=1)
      self.seq = rows[-1][0]

  def upsert(self, docs: Sequence[Document]) -> None:
    for d in docs:
      v = np.asarray(d.vector, dtype=np.float32).reshape(-1)
      if v.shape[0] != self.dimension:
        raise ValueError(f"document {d.id!r} has a {v.shape[0]}-d vector; store holds "
                         f"{self.dimension}-d")
    rows = [(d.id, _key(d.id), np.asarray(d.vector, dtype=np.float32).reshape(-1).tobytes(),
             d.text, d.session_id, d.tenant, d.kind, float(d.timestamp), d.event_id,
             json.dumps(dict(d.metadata), ensure_ascii=False, default=str)) for d in docs]

    def write():
      base = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM docs").fetchone()[0]
      self.db.executemany(
          "INSERT INTO docs (seq, deleted, id, key, vector, text, session_id, tenant, kind, "
          "timestamp, event_id, metadata) VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT(id) DO UPDATE SET seq=excluded.seq, deleted=0, vector=excluded.vector, "
          "text=excluded.text, session_id=excluded.session_id, tenant=excluded.tenant, "
          "kind=excluded.kind, timestamp=excluded.timestamp, event_id=excluded.event_id, "
          "metadata=excluded.metadata",
          [(base + i + 1, *r) for i, r in enumerate(rows)])
    self._write(write)

  def delete(self, ids: Sequence[str]) -> None:
    def write():
      base = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM docs").fetchone()[0]
      self.db.executemany("UPDATE docs SET deleted=1, vector=NULL, seq=? WHERE id=? AND deleted=0",
                          [(base + i + 1, doc_id) for i, doc_id in enumerate(ids)])
    self._write(write)

  def rows_by_key(self, keys: Iterable[int]) -> Dict[int, tuple]:
    keys = list(keys)
    out: Dict[int, tuple] = {}
    for i in range(0, len(keys), 500):
      chunk = keys[i:i + 500]
      q = f"SELECT key, {_COLUMNS} FROM docs WHERE deleted=0 AND key IN ({','.join('?' * len(chunk))})"
      for row in self.db.execute(q, chunk):
        out[row[0]] = row[1:]
    return out


def _where(flt: Optional[QueryFilter]) -> Tuple[str, list]:
  clauses, args = ["deleted=0"], []
  if flt is not None:
    for col in ("session_id", "tenant", "kind"):
      val = getattr(flt, col)
      if val is not None:
        clauses.append(f"{col}=?")
        args.append(val)
    if flt.since is not None:
      clauses.append("timestamp>=?")
      args.append(flt.since)
    if flt.until is not None:
      clauses.append("timestamp<?")
      args.append(flt.until)
  return " AND ".join(clauses), args


def _hit(row: tuple, score: float) -> Hit:
  doc_id, text, session_id, _tenant, kind, ts, _event_id, meta = row
  return Hit(id=doc_id, score=float(score), text=text or "", session_id=session_id or "",
             kind=kind or "", timestamp=ts or 0.0, metadata=json.loads(meta or "{}"))


def _document(row: tuple, vector: bytes) -> Document:
  doc_id, text, session_id, tenant, kind, ts, event_id, meta = row
  return Document(id=doc_id, vector=np.frombuffer(vector, dtype=np.float32).copy(), text=text,
                  session_id=session_id, tenant=tenant, kind=kind, timestamp=ts,
                  event_id=event_id, metadata=json.loads(meta or "{}"))


# One engine per (path, dimension) and process, counted by open/close; released at exit too.
_ENGINES = KeptObjects(close=_Engine.release, usable=_Engine.usable)


def release_idle_engines() -> None:
  """Release every engine no store in this process has open (also run at exit)."""
  _ENGINES.release_idle()


class LocalVectorStore(VectorStore):
  """Embedded, on-disk vector store; `path` is a directory shared by all workers on the machine.

  Instances in one process share one engine (connection + index), so the Upsert and
  Retrieve stages of a worker do not each hold a copy of the index.
  """

  def __init__(self, path: str, dimension: int, config: LocalStoreConfig = LocalStoreConfig()):
    self.path = os.path.abspath(path)
    self._dimension = int(dimension)
    self.config = config
    self._engine: Optional[_Engine] = None

  def __getstate__(self):
    return {**self.__dict__, "_engine": None}

  def __repr__(self):
    return f"LocalVectorStore({self.path!r}, dimension={self._dimension})"

  @property
  def dimension(self) -> int:
    return self._dimension

  @property
  def engine(self) -> _Engine:
    if self._engine is None:
      raise StoreError("store is not open; call open() first")
    return self._engine

  def open(self) -> None:
    if self._engine is not None:
      return
    self._engine = _ENGINES.acquire((self.path, self._dimension),
                                    lambda: _Engine(self.path, self._dimension, self.config))

  def close(self) -> None:
    engine, self._engine = self._engine, None
    if engine is None:
      return
    lingering = _ENGINES.release((self.path, self._dimension), engine, self.config.linger_s)
    if lingering and time.monotonic() - engine.snapshot_at >= self.config.snapshot_interval_s:
      engine.snapshot()

  def upsert(self, docs: Sequence[Document]) -> Sequence[Optional[str]]:
    if docs:
      self.engine.upsert(docs)
    return [None] * len(docs)

  def delete(self, ids: Sequence[str]) -> None:
    if ids:
      self.engine.delete(ids)

  def get(self, ids: Sequence[str]) -> List[Optional[Document]]:
    e = self.engine
    with e.lock:
      found = {}
      for i in range(0, len(ids), 500):
        chunk = list(ids[i:i + 500])
        q = f"SELECT {_COLUMNS}, vector FROM docs WHERE deleted=0 AND id IN ({','.join('?' * len(chunk))})"
        for row in e.db.execute(q, chunk):
          found[row[0]] = _document(row[:-1], row[-1])
    return [found.get(i) for i in ids]

  def count(self, flt: Optional[QueryFilter] = None) -> int:
    where, args = _where(flt)
    e = self.engine
    with e.lock:
      n = e.db.execute(f"SELECT COUNT(*) FROM docs WHERE {where}", args).fetchone()[0]
    if flt is not None and flt.exclude_ids:
      keep = dataclasses.replace(flt, exclude_ids=())
      n -= sum(1 for d in self.get(list(flt.exclude_ids)) if d is not None and keep.matches(d))
    return n

  def query(self, vectors: np.ndarray, k: int, flt: Optional[QueryFilter] = None,
            texts: Optional[Sequence[str]] = None) -> List[List[Hit]]:
    q = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    if q.shape[1] != self._dimension:
      raise ValueError(f"query has {q.shape[1]}-d vectors; store holds {self._dimension}-d")
    if k <= 0 or q.shape[0] == 0:
      return [[] for _ in range(q.shape[0])]
    e = self.engine
    with e.lock:
      e.sync()
      has_meta_filter = flt is not None and any(
          v is not None for v in (flt.session_id, flt.tenant, flt.kind, flt.since, flt.until))
      if has_meta_filter:
        where, args = _where(flt)
        n = e.db.execute(f"SELECT COUNT(*) FROM docs WHERE {where}", args).fetchone()[0]
        if n <= self.config.exact_filter_limit:
          return self._exact(q, k, flt, where, args)
      return self._ann(q, k, flt)

  def _exact(self, q: np.ndarray, k: int, flt: QueryFilter, where: str, args: list) -> List[List[Hit]]:
    rows = self.engine.db.execute(f"SELECT {_COLUMNS}, vector FROM docs WHERE {where}", args).fetchall()
    rows = [r for r in rows if r[0] not in flt.exclude_ids]
    if not rows:
      return [[] for _ in range(q.shape[0])]
    mat = np.frombuffer(b"".join(r[-1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    mat = mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
    qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    sims = qn @ mat.T
    out = []
    for row_sims in sims:
      top = np.argsort(-row_sims)[:k]
      out.append([_hit(rows[i][:-1], row_sims[i]) for i in top])
    return out

  def _ann(self, q: np.ndarray, k: int, flt: Optional[QueryFilter]) -> List[List[Hit]]:
    e = self.engine
    total = len(e.index)
    if total == 0:
      return [[] for _ in range(q.shape[0])]
    want = min(total, k + (len(flt.exclude_ids) if flt else 0))
    results: List[Optional[List[Hit]]] = [None] * q.shape[0]
    pending = list(range(q.shape[0]))
    while pending:
      fetch = min(total, max(want, k))
      found_keys, found_dists, counts = _search(e.index, q[pending], fetch)
      keys = {int(key) for i in range(len(pending)) for key in found_keys[i][:counts[i]]}
      rows = e.rows_by_key(keys)
      retry = []
      for i, qi in enumerate(pending):
        hits = []
        for key, dist in zip(found_keys[i][:counts[i]], found_dists[i][:counts[i]]):
          row = rows.get(int(key))
          if row is None or (flt is not None and not _row_matches(row, flt)):
            continue
          hits.append(_hit(row, 1.0 - float(dist)))
          if len(hits) == k:
            break
        if len(hits) < k and fetch < total:
          retry.append(qi)
        else:
          results[qi] = hits
      pending, want = retry, fetch * 4
    return results  # type: ignore[return-value]



def _search(index, q: np.ndarray, k: int):
  """usearch search normalised to 2-D keys/distances and per-row counts (it unwraps single queries)."""
  m = index.search(q, k)
  if q.shape[0] == 1 and not hasattr(m, "counts"):
    return np.atleast_2d(m.keys), np.atleast_2d(m.distances), np.array([len(m.keys)])
  return m.keys, m.distances, m.counts


def _row_matches(row: tuple, flt: QueryFilter) -> bool:
  doc_id, _text, session_id, tenant, kind, ts, _event_id, _meta = row
  return flt.accepts(doc_id, session_id, tenant, kind, ts)
