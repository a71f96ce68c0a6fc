"""Embedded store: recall@10 against exact search and single-query latency at 10k and 100k vectors.

  python -m benchmarks.store_recall [--sizes 10000 100000] [--queries 500]

Vectors are 384-d and clustered like sentence embeddings (a mixture of 2,000 Gaussian
clusters, unit-normalised); `--data random` uses i.i.d. Gaussians, HNSW's worst case.
Goals: recall@10 >= 0.95 and p99 < 5 ms at 100k.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from agentflow.stores.local import LocalVectorStore
from agentflow.types import Document

from benchmarks.common import bar_plot, percentiles, save


def vectors(n, dim, kind, rng):
  if kind == "random":
    v = rng.normal(size=(n, dim))
  else:
    centers = rng.normal(size=(2000, dim))
    v = centers[rng.integers(0, 2000, n)] + 0.35 * rng.normal(size=(n, dim))
  return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def run_size(n, dim, queries, k, kind, seed=0):
  rng = np.random.default_rng(seed)
  both = vectors(n + queries, dim, kind, rng)
  data, q = both[:n], both[n:]
  with tempfile.TemporaryDirectory() as d:
    store = LocalVectorStore(d, dim)
    store.open()
    t0 = time.perf_counter()
    for i in range(0, n, 2000):
      store.upsert([Document(id=f"d{j}", vector=data[j]) for j in range(i, min(n, i + 2000))])
    store.query(q[:1], k)
    load_s = time.perf_counter() - t0
    lat, found = [], []
    for row in q:
      t = time.perf_counter()
      hits = store.query(row[None, :], k)[0]
      lat.append((time.perf_counter() - t) * 1000)
      found.append({int(h.id[1:]) for h in hits})
    store.close()
  exact = np.argsort(-(q @ data.T), axis=1)[:, :k]
  recall = float(np.mean([len(f & set(e.tolist())) / k for f, e in zip(found, exact)]))
  return {"n": n, "recall_at_10": round(recall, 4), **percentiles(lat), "load_s": round(load_s, 2),
          "inserts_per_s": round(n / load_s)}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
  ap.add_argument("--queries", type=int, default=500)
  ap.add_argument("--dim", type=int, default=384)
  ap.add_argument("--data", choices=["clustered", "random"], default="clustered")
  args = ap.parse_args(argv)
  rows = [run_size(n, args.dim, args.queries, 10, args.data) for n in args.sizes]
  print(f"{'vectors':>9} {'recall@10':>10} {'p50 ms':>8} {'p99 ms':>8} {'load s':>8} {'inserts/s':>10}")
  for r in rows:
    print(f"{r['n']:>9} {r['recall_at_10']:>10.4f} {r['p50']:>8.3f} {r['p99']:>8.3f} {r['load_s']:>8.1f} "
          f"{r['inserts_per_s']:>10}")
  last = rows[-1]
  print(f"ratio recall/goal(0.95) = {last['recall_at_10'] / 0.95:.3f}; "
        f"ratio goal(5 ms)/p99 = {5.0 / last['p99']:.2f} at {last['n']} vectors")
  save("store_recall", {"data": args.data, "dim": args.dim, "rows": rows})
  labels = [f"{r['n']:,}" for r in rows]
  bar_plot("store_recall_latency", "Embedded store query latency (single query)", labels,
           {"p50 ms": [r["p50"] for r in rows], "p99 ms": [r["p99"] for r in rows]}, "ms",
           hline=(5.0, "goal p99 < 5 ms"))
  bar_plot("store_recall", "Embedded store recall@10 vs exact", labels,
           {"recall@10": [r["recall_at_10"] for r in rows]}, "recall", hline=(0.95, "goal 0.95"))


if __name__ == "__main__":
  main()
