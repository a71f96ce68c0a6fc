"""The embedded store: upsert by id, ANN vs exact, filters, persistence, several processes."""
import multiprocessing as mp
import os

import numpy as np
import pytest

from agentflow.stores import store_from_uri
from agentflow.stores.base import QueryFilter
from agentflow.stores.local import LocalStoreConfig, LocalVectorStore
from agentflow.types import Document

DIM = 16


def _docs(n, seed=0, prefix="d", **kw):
  rng = np.random.default_rng(seed)
  vecs = rng.normal(size=(n, DIM)).astype(np.float32)
  return [Document(id=f"{prefix}{i}", vector=vecs[i], text=f"text {i}", session_id=f"s{i % 3}",
                   kind=kw.get("kind", "event"), timestamp=float(i), metadata={"i": i})
          for i in range(n)]


def _exact_ids(docs, q, k, flt=None):
  docs = [d for d in docs if flt is None or flt.matches(d)]
  mat = np.stack([d.vector / np.linalg.norm(d.vector) for d in docs])
  sims = mat @ (q / np.linalg.norm(q))
  return [docs[i].id for i in np.argsort(-sims)[:k]]


def test_upsert_is_idempotent_and_replaces(tmp_path):
  docs = _docs(50)
  with LocalVectorStore(str(tmp_path), DIM) as s:
    assert s.upsert(docs) == [None] * 50
    s.upsert(docs)
    assert s.count() == 50
    changed = Document(id="d3", vector=docs[3].vector, text="changed", session_id="s0")
    s.upsert([changed])
    assert s.count() == 50
    assert s.get(["d3"])[0].text == "changed"
    assert s.get(["nope"]) == [None]


def test_query_matches_exact_search(tmp_path):
  docs = _docs(500, seed=1)
  q = np.random.default_rng(2).normal(size=(20, DIM)).astype(np.float32)
  with LocalVectorStore(str(tmp_path), DIM) as s:
    s.upsert(docs)
    results = s.query(q, 10)
  overlap = np.mean([len({h.id for h in hits} & set(_exact_ids(docs, qq, 10))) / 10
                     for hits, qq in zip(results, q)])
  assert overlap >= 0.95
  for hits in results:
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0001 <= x <= 1.0001 for x in scores)


def test_every_stored_vector_finds_itself_first(tmp_path):
  """A bulk upsert (one big replay into the HNSW graph) still returns each document for its
  own vector: a graph linked by parallel insertion misses some of these exact matches."""
  docs = _docs(2000, seed=5)
  with LocalVectorStore(str(tmp_path), DIM) as s:
    s.upsert(docs)
    results = s.query(np.stack([d.vector for d in docs]), 1)
  missed = [d.id for d, hits in zip(docs, results) if not hits or hits[0].id != d.id]
  assert missed == []


@pytest.mark.parametrize("exact_limit", [0, 10_000])
def test_filters_on_both_paths(tmp_path, exact_limit):
  docs = _docs(300, seed=3)
  q = np.random.default_rng(4).normal(size=(5, DIM)).astype(np.float32)
  flt = QueryFilter(session_id="s1", since=10.0, until=200.0, exclude_ids=("d13", "d16"))
  cfg = LocalStoreConfig(exact_filter_limit=exact_limit)
  with LocalVectorStore(str(tmp_path), DIM, cfg) as s:
    s.upsert(docs)
    results = s.query(q, 7, flt)
    assert s.count(flt) == sum(flt.matches(d) for d in docs)
  for hits, qq in zip(results, q):
    assert len(hits) == 7
    for h in hits:
      assert h.session_id == "s1" and 10.0 <= h.timestamp < 200.0 and h.id not in ("d13", "d16")
    assert len({h.id for h in hits} & set(_exact_ids(docs, qq, 7, flt))) >= 6


def test_delete_and_reupsert(tmp_path):
  docs = _docs(20)
  with LocalVectorStore(str(tmp_path), DIM) as s:
    s.upsert(docs)
    s.delete(["d0", "d1", "missing"])
    assert s.count() == 18
    hits = s.query(np.stack([docs[0].vector]), 20)[0]
    assert "d0" not in {h.id for h in hits} and len(hits) == 18
    s.upsert([docs[0]])
    assert s.query(np.stack([docs[0].vector]), 1)[0][0].id == "d0"


def test_persists_across_reopen_and_snapshot_catches_up(tmp_path):
  docs = _docs(100)
  with LocalVectorStore(str(tmp_path), DIM) as s:
    s.upsert(docs[:60])
  assert os.path.exists(tmp_path / "index.usearch")
  with LocalVectorStore(str(tmp_path), DIM) as s:
    s.upsert(docs[60:])
  with LocalVectorStore(str(tmp_path), DIM) as s:
    assert s.count() == 100
    assert s.query(np.stack([docs[99].vector]), 1)[0][0].id == "d99"
    assert s.query(np.stack([docs[5].vector]), 1)[0][0].id == "d5"


def test_dimension_mismatch_is_a_clear_error(tmp_path):
  with LocalVectorStore(str(tmp_path), DIM) as s:
    s.upsert(_docs(2))
    with pytest.raises(ValueError, match="dimension|-d"):
      s.query(np.zeros((1, DIM + 1), np.float32), 1)
    with pytest.raises(ValueError, match="17-d vector"):
      s.upsert([Document(id="x", vector=np.zeros(DIM + 1, np.float32))])
  with pytest.raises(ValueError, match="holds 16-d vectors"):
    LocalVectorStore(str(tmp_path), 384).open()


def test_uri_builds_local_store(tmp_path):
  s = store_from_uri(f"local:{tmp_path}/x", DIM)
  assert isinstance(s, LocalVectorStore) and s.path == f"{tmp_path}/x"
  assert isinstance(store_from_uri(str(tmp_path / "y"), DIM), LocalVectorStore)


def _writer(path, worker, n, queue):
  docs = _docs(n, seed=worker, prefix=f"w{worker}-")
  with LocalVectorStore(path, DIM) as s:
    for i in range(0, n, 10):
      s.upsert(docs[i:i + 10])
      # Visibility across processes, not recall (test_every_stored_vector_finds_itself_first):
      # the graph's insertion order differs from run to run here.
      hits = s.query(np.stack([docs[i].vector]), 3)[0]
      if docs[i].id not in {h.id for h in hits}:
        queue.put(f"worker {worker} could not read back {docs[i].id}")
  queue.put("ok")


def test_several_processes_write_and_read(tmp_path):
  ctx = mp.get_context("spawn")
  queue = ctx.Queue()
  procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 200, queue)) for w in range(4)]
  for p in procs:
    p.start()
  for p in procs:
    p.join(120)
  messages = [queue.get(timeout=5) for _ in range(4)]
  assert messages == ["ok"] * 4
  assert all(p.exitcode == 0 for p in procs)
  with LocalVectorStore(str(tmp_path), DIM) as s:
    assert s.count() == 800
    for w in range(4):
      d = _docs(200, seed=w, prefix=f"w{w}-")[123]
      assert d.id in {h.id for h in s.query(np.stack([d.vector]), 3)[0]}


def test_unknown_store_scheme_is_a_clear_error():
  with pytest.raises(ValueError, match="scheme 'nosuch' is not available"):
    store_from_uri("nosuch:somewhere", DIM)


def _snapshot_seq(path):
  import json
  with open(os.path.join(path, "index.json")) as f:
    return json.load(f)["seq"]


def _write_more(path, queue):
  with LocalVectorStore(path, DIM) as s:
    s.upsert(_docs(3, seed=9, prefix="other-"))
    s.delete(["d0"])
  queue.put("ok")


def test_reopening_within_linger_reuses_the_engine_and_sees_other_processes_writes(tmp_path):
  """Per-bundle open/close (the streaming DirectRunner) reuses one engine and does not
  rewrite the index snapshot each time; rows another process wrote are seen on reopen."""
  config = LocalStoreConfig(linger_s=60, snapshot_interval_s=3600)
  path = str(tmp_path)
  docs = _docs(20)
  with LocalVectorStore(path, DIM, config) as s:
    s.upsert(docs[:10])
    engine = s.engine
  first_snapshot = _snapshot_seq(path)
  for d in docs[10:]:
    with LocalVectorStore(path, DIM, config) as s:
      assert s.engine is engine
      s.upsert([d])
  assert _snapshot_seq(path) == first_snapshot

  ctx = mp.get_context("spawn")
  queue = ctx.Queue()
  proc = ctx.Process(target=_write_more, args=(path, queue))
  proc.start()
  proc.join(120)
  assert queue.get(timeout=5) == "ok" and proc.exitcode == 0
  with LocalVectorStore(path, DIM, config) as s:
    assert s.engine is engine
    assert s.count() == 22
    other = _docs(3, seed=9, prefix="other-")[1]
    assert s.query(np.stack([other.vector]), 1)[0][0].id == other.id
    assert "d0" not in {h.id for h in s.query(np.stack([docs[0].vector]), 5)[0]}
    latest = engine.seq
  from agentflow.stores.local import release_idle_engines
  release_idle_engines()
  assert _snapshot_seq(path) == latest > first_snapshot
  with LocalVectorStore(path, DIM, config) as s:
    assert s.engine is not engine and s.count() == 22


def test_a_recreated_directory_gets_a_fresh_engine(tmp_path):
  import shutil
  path = str(tmp_path / "store")
  config = LocalStoreConfig(linger_s=60)
  with LocalVectorStore(path, DIM, config) as s:
    s.upsert(_docs(5))
  shutil.rmtree(path)
  with LocalVectorStore(path, DIM, config) as s:
    assert s.count() == 0
    assert s.query(np.stack([_docs(1)[0].vector]), 3) == [[]]


def test_a_deleted_directory_is_released_without_a_snapshot(tmp_path, monkeypatch):
  """A lingering engine whose directory was deleted (a temporary store) is dropped quietly,
  both by its linger timer and at exit: nothing is written and nothing is raised."""
  import shutil
  import threading
  import time

  from agentflow.stores import local
  errors = []
  monkeypatch.setattr(threading, "excepthook", errors.append)
  # The timer's linger outlasts the rmtree below even on a loaded machine.
  for by_timer, linger_s in ((False, 60), (True, 1.0)):
    path = str(tmp_path / ("timer" if by_timer else "at-exit"))
    with LocalVectorStore(path, DIM, LocalStoreConfig(linger_s=linger_s, snapshot_interval_s=3600)) as s:
      s.upsert(_docs(5))
      engine = s.engine
    shutil.rmtree(path)
    if by_timer:
      deadline = time.time() + 10
      while engine in local._ENGINES.values() and time.time() < deadline:
        time.sleep(0.05)
    else:
      local.release_idle_engines()
    assert engine not in local._ENGINES.values()
    assert not os.path.exists(path)
  assert errors == []


def _forked_writer(path, queue):
  with LocalVectorStore(path, DIM, LocalStoreConfig(linger_s=60)) as s:
    queue.put(s.engine.pid == os.getpid())
    s.upsert(_docs(2, seed=5, prefix="child-"))


def test_a_forked_process_opens_its_own_engine(tmp_path):
  """A lingering engine inherited through fork is not used: its SQLite connection is the parent's."""
  path = str(tmp_path)
  config = LocalStoreConfig(linger_s=60)
  with LocalVectorStore(path, DIM, config) as s:
    s.upsert(_docs(3))
  ctx = mp.get_context("fork")
  queue = ctx.Queue()
  proc = ctx.Process(target=_forked_writer, args=(path, queue))
  proc.start()
  proc.join(60)
  assert queue.get(timeout=5) is True and proc.exitcode == 0
  with LocalVectorStore(path, DIM, config) as s:
    assert s.count() == 5
