"""Throughput of the whole five-stage graph vs raw `SentenceTransformer.encode`, and vs Beam's MLTransform.

  python -m benchmarks.embed_throughput [--events 10000] [--batch 16] [--backend torch|onnx]

All three run in this one process on the same texts: raw `encode` (the physical limit on
this CPU, run before and after the pipelines and averaged), agentflow's graph
(Preprocess -> Embed -> VectorUpsert -> Retrieve -> Decide on the embedded store,
DirectRunner, model loading and pipeline start-up included), and Beam's own
`MLTransform` + `SentenceTransformerEmbeddings` (embedding only, its default batching).
`--batch` is the encode batch of raw `encode` and of agentflow's handler. Goals: graph
>= 0.95x raw; graph >= 1.3x MLTransform. `--backend onnx` runs the model on ONNX Runtime in
the graph and in the raw run; MLTransform stays on PyTorch.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import apache_beam as beam

from agentflow import AgentGraph, IngestKnowledge, LocalVectorStore, RetrievalAnswerPolicy
from agentflow.models import SentenceTransformerHandler
from agentflow.models.loaded import release_all
from agentflow.models.sentence_transformers import default_model_path

from benchmarks.common import bar_plot, save
from benchmarks.texts import make_events, texts_of

KNOWLEDGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                         "support_chatbot", "knowledge.jsonl")


def raw_encode(texts, batch, backend="torch"):
  """The model alone on all texts in one call: `SentenceTransformer.encode` (or its ONNX twin)."""
  handler = SentenceTransformerHandler(encode_batch_size=batch, backend=backend)
  model = handler.load_model()
  handler.embed(model, texts[:batch])
  t0 = time.perf_counter()
  handler.embed(model, texts)
  return len(texts) / (time.perf_counter() - t0)


def graph(events, batch, workdir, min_batch=None, max_batch=1024, backend="torch"):
  handler = SentenceTransformerHandler(encode_batch_size=batch, min_batch_size=min_batch, max_batch_size=max_batch,
                                       backend=backend)
  release_all()
  store = LocalVectorStore(os.path.join(workdir, "store"), handler.dimension)
  with beam.Pipeline() as p:
    _ = p | beam.io.ReadFromText(KNOWLEDGE) | IngestKnowledge(handler, store)
  t0 = time.perf_counter()
  with beam.Pipeline() as p:
    decisions, dead = (p | beam.Create(events, reshuffle=False)
                       | AgentGraph(handler, store, RetrievalAnswerPolicy()).with_dead_letters())
    _ = ((decisions, dead) | beam.Flatten() | beam.combiners.Count.Globally()
         | beam.Map(lambda n: json.dump(n, open(os.path.join(workdir, "count"), "w"))))
  elapsed = time.perf_counter() - t0
  assert json.load(open(os.path.join(workdir, "count"))) == len(events)
  return len(events) / elapsed


def mltransform(texts, batch, workdir):
  from apache_beam.ml.transforms.base import MLTransform
  from apache_beam.ml.transforms.embeddings.huggingface import SentenceTransformerEmbeddings
  t0 = time.perf_counter()
  with beam.Pipeline() as p:
    _ = (p | beam.Create([{"text": t} for t in texts], reshuffle=False)
         | MLTransform(write_artifact_location=os.path.join(workdir, "mlt")).with_transform(
             SentenceTransformerEmbeddings(model_name=default_model_path(), columns=["text"]))
         | beam.combiners.Count.Globally()
         | beam.Map(lambda n: json.dump(n, open(os.path.join(workdir, "mlt_count"), "w"))))
  elapsed = time.perf_counter() - t0
  assert json.load(open(os.path.join(workdir, "mlt_count"))) == len(texts)
  return len(texts) / elapsed


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--events", type=int, default=10_000)
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--min_batch", type=int, default=None,
                  help="RunInference min batch (default: --max_batch, the handler default)")
  ap.add_argument("--max_batch", type=int, default=1024, help="RunInference max batch (handler default)")
  ap.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                  help="the model backend of the graph and the raw run")
  args = ap.parse_args(argv)
  events = make_events(args.events)
  texts = texts_of(events)
  with tempfile.TemporaryDirectory() as d:
    raw1 = raw_encode(texts, args.batch, args.backend)
    ours = graph(events, args.batch, d, args.min_batch, args.max_batch, args.backend)
    theirs = mltransform(texts, args.batch, d)
    raw2 = raw_encode(texts, args.batch, args.backend)
  raw = (raw1 + raw2) / 2
  print(f"events {args.events}, batch {args.batch}, {os.cpu_count()} CPUs")
  print(f"raw encode ({args.backend:5s})          : {raw:8.1f} texts/s  (runs: {raw1:.1f}, {raw2:.1f})")
  print(f"agentflow five-stage graph     : {ours:8.1f} events/s  ({args.backend} backend)")
  print(f"Beam MLTransform embeddings    : {theirs:8.1f} texts/s")
  print(f"ratio graph/raw         = {ours / raw:.3f}  (goal >= 0.95)")
  print(f"ratio graph/MLTransform = {ours / theirs:.3f}  (goal >= 1.3)")
  name = "embed_throughput" if args.backend == "torch" else f"embed_throughput_{args.backend}"
  save(name, {"events": args.events, "batch": args.batch, "backend": args.backend, "raw_per_s": raw,
                            "raw_runs": [raw1, raw2], "graph_per_s": ours, "mltransform_per_s": theirs,
                            "ratio_graph_raw": ours / raw, "ratio_graph_mltransform": ours / theirs})
  bar_plot(name, f"Throughput, {args.events} events, {os.cpu_count()} CPUs",
           ["raw encode", f"agentflow graph ({args.backend})", "MLTransform"], {"per second": [raw, ours, theirs]},
           "events (texts) per second")


if __name__ == "__main__":
  main()
