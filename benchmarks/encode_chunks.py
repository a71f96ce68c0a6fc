"""Encode throughput by call size, encode chunk size and model backend.

  python -m benchmarks.encode_chunks [--texts 2000] [--calls 10,100,1000] [--variants torch:16,torch:64,onnx:16]

Encodes the same texts through `SentenceTransformerHandler.embed` (length-sorted chunks of
`encode_batch_size`) in calls of each size, as RunInference would hand them over: 1,000
for batch runs, tens for a streaming bundle. A variant is BACKEND:CHUNK. Prints texts/s
per (call, variant) and, per call size, the ratio of each variant to the first one: why
the handler encodes in chunks of 16, and what `backend="onnx"` gains.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from agentflow.models import SentenceTransformerHandler

from benchmarks.common import bar_plot, embed_rate, save
from benchmarks.texts import make_events, texts_of


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--texts", type=int, default=2000)
  ap.add_argument("--calls", default="10,100,1000")
  ap.add_argument("--variants", default="torch:16,torch:64,onnx:16")
  args = ap.parse_args(argv)
  calls = [int(c) for c in args.calls.split(",")]
  variants = [(backend, int(chunk)) for backend, _, chunk in (v.partition(":") for v in args.variants.split(","))]
  texts = texts_of(make_events(args.texts, seed=3))
  models = {b: SentenceTransformerHandler(backend=b).load_model() for b in dict.fromkeys(b for b, _ in variants)}
  for backend, model in models.items():
    SentenceTransformerHandler(backend=backend).embed(model, texts[:64])
  names = [f"{b}/{c}" for b, c in variants]
  rates = {name: {} for name in names}
  for call in calls:
    for name, (backend, chunk) in zip(names, variants):
      handler = SentenceTransformerHandler(backend=backend, encode_batch_size=chunk)
      rates[name][call] = embed_rate(handler, models[backend], texts, call)
      print(f"calls of {call:5d}, {backend} chunks of {chunk:3d}: {rates[name][call]:7.1f} texts/s", flush=True)
    for name in names[1:]:
      print(f"calls of {call:5d}: {name} / {names[0]} = {rates[name][call] / rates[names[0]][call]:.3f}")
  save("encode_chunks", {"texts": len(texts), "texts_per_s": {k: {str(c): round(r, 1) for c, r in v.items()}
                                                               for k, v in rates.items()}})
  bar_plot("encode_chunks", f"encode throughput, {len(texts)} texts", [f"calls of {c}" for c in calls],
           {f"{k.replace('/', ', chunks of ')}": [v[c] for c in calls] for k, v in rates.items()}, "texts/s")


if __name__ == "__main__":
  main()
