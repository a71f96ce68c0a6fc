"""Embedding throughput on a GPU: raw `encode` vs the Embed stage (RunInference) on the device.

  python -m benchmarks.gpu_throughput [--events 20000]

Needs a CUDA device (exits with a message otherwise). Prints texts/s for raw
`SentenceTransformer.encode` on the GPU and for `Embed(SentenceTransformerHandler(device="cuda"))`
on DirectRunner over the same texts, and their ratio.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import apache_beam as beam

from agentflow import AgentEvent, Embed
from agentflow.models import SentenceTransformerHandler

from benchmarks.common import bar_plot, save
from benchmarks.texts import make_events, texts_of


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--events", type=int, default=20_000)
  ap.add_argument("--batch", type=int, default=256)
  args = ap.parse_args(argv)
  import torch
  if not torch.cuda.is_available():
    sys.exit("no CUDA device: this benchmark runs only where a GPU is available")
  texts = texts_of(make_events(args.events))
  handler = SentenceTransformerHandler(device="cuda", encode_batch_size=args.batch, min_batch_size=1024,
                                       max_batch_size=4096)
  model = handler.load_model()
  model.encode(texts[:args.batch], batch_size=args.batch)
  t0 = time.perf_counter()
  model.encode(texts, batch_size=args.batch, normalize_embeddings=True)
  torch.cuda.synchronize()
  raw = len(texts) / (time.perf_counter() - t0)
  events = [AgentEvent(event_id=f"g{i}", session_id="s", text=t, timestamp=float(i)) for i, t in enumerate(texts)]
  t0 = time.perf_counter()
  with beam.Pipeline() as p:
    _ = p | beam.Create(events, reshuffle=False) | Embed(handler) | beam.combiners.Count.Globally()
  stage = len(texts) / (time.perf_counter() - t0)
  print(f"{torch.cuda.get_device_name(0)}: raw encode {raw:.0f} texts/s, Embed stage {stage:.0f} texts/s, "
        f"ratio {stage / raw:.3f}")
  save("gpu_throughput", {"device": torch.cuda.get_device_name(0), "raw_per_s": raw, "embed_per_s": stage,
                          "ratio": stage / raw, "events": len(texts)})
  bar_plot("gpu_throughput", f"GPU embedding throughput ({torch.cuda.get_device_name(0)})",
           ["raw encode", "Embed stage"], {"texts/s": [raw, stage]}, "texts per second")


if __name__ == "__main__":
  main()
