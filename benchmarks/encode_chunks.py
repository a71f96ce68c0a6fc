"""Encode throughput by call size and encode chunk size: why the handler encodes in chunks of 16.

  python benchmarks/encode_chunks.py [--texts 2000] [--calls 10,100,1000] [--chunks 16,64]

Encodes the same texts through `SentenceTransformerHandler.embed` (length-sorted chunks of
`encode_batch_size`) in calls of each size, as RunInference would hand them over: 1,000
for batch runs, tens for a streaming bundle. Prints texts/s per (call, chunk) and, per
call size, the ratio of each chunk size to the first one.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agentflow.models import SentenceTransformerHandler  # noqa: E402
from common import bar_plot, embed_rate, save  # noqa: E402
from texts import make_events, texts_of  # noqa: E402


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--texts", type=int, default=2000)
  ap.add_argument("--calls", default="10,100,1000")
  ap.add_argument("--chunks", default="16,64")
  args = ap.parse_args(argv)
  calls = [int(c) for c in args.calls.split(",")]
  chunks = [int(c) for c in args.chunks.split(",")]
  texts = texts_of(make_events(args.texts, seed=3))
  model = SentenceTransformerHandler().load_model()
  model.encode(texts[:64])
  rates = {c: {} for c in chunks}
  for call in calls:
    for chunk in chunks:
      rates[chunk][call] = embed_rate(SentenceTransformerHandler(encode_batch_size=chunk), model, texts, call)
      print(f"calls of {call:5d}, chunks of {chunk:3d}: {rates[chunk][call]:7.1f} texts/s", flush=True)
    for chunk in chunks[1:]:
      print(f"calls of {call:5d}: chunks of {chunk} / chunks of {chunks[0]} = "
            f"{rates[chunk][call] / rates[chunks[0]][call]:.3f}")
  save("encode_chunks", {"texts": len(texts), "texts_per_s": {str(k): {str(c): round(r, 1) for c, r in v.items()}
                                                               for k, v in rates.items()}})
  bar_plot("encode_chunks", f"encode throughput, {len(texts)} texts", [f"calls of {c}" for c in calls],
           {f"chunks of {k}": [v[c] for c in calls] for k, v in rates.items()}, "texts/s")


if __name__ == "__main__":
  main()
