"""Trading signals: minute ticks -> 30-minute sliding windows -> shape embeddings -> match known patterns.

  python examples/trading_signals/pipeline.py [--out DIR] [beam flags]

The pattern library (`patterns.jsonl`, each labelled buy/sell) is embedded into the store
first, as knowledge. Each window of a symbol's prices is then embedded by its shape
(z-normalised), written, matched against its 5 nearest patterns, and
`SimilarityRoutingPolicy` routes it to the winning signal when the match is close
enough, else to "hold".
"""
from __future__ import annotations

import argparse
import json
import os

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import SlidingWindows, TimestampedValue

from agentflow import Decide, Embed, Retrieve, RetrieveConfig, VectorUpsert, store_from_uri
from agentflow.models.series import SeriesEmbeddingHandler
from agentflow.policies.routing import SimilarityRoutingPolicy
from agentflow.types import KIND_KNOWLEDGE, AgentEvent

HERE = os.path.dirname(os.path.abspath(__file__))

WINDOW_MIN, PERIOD_MIN = 30, 5


def pattern_event(line):
  p = json.loads(line)
  return AgentEvent(event_id=f"pattern:{p['id']}", session_id="", text=f"{p['pattern']} ({p['signal']})",
                    timestamp=0.0, kind=KIND_KNOWLEDGE,
                    attributes={"route": p["signal"], "pattern": p["pattern"], "prices": p["prices"]})


def _tick(line):
  t = json.loads(line)
  return TimestampedValue((t["symbol"], t), t["timestamp"])


class _ToEvent(beam.DoFn):
  def process(self, keyed, window=beam.DoFn.WindowParam):
    symbol, ticks = keyed
    ticks = sorted(ticks, key=lambda t: t["timestamp"])
    if len(ticks) < WINDOW_MIN:
      return
    start = int(window.start.micros // 1_000_000)
    yield AgentEvent(event_id=f"{symbol}@{start}", session_id=symbol, timestamp=float(start),
                     text=f"{symbol} {WINDOW_MIN}-minute window from {start}",
                     attributes={"prices": [t["price"] for t in ticks], "window_start": start})


def prices_of(event):
  return event.attributes["prices"]


def _signal_json(d):
  return json.dumps({"symbol": d.session_id, "window": d.event_id, "signal": d.metadata.get("route"),
                     "confidence": d.confidence, "cited": list(d.cited_ids)}, sort_keys=True)


def run(argv=None):
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--out", default="trading_out")
  ap.add_argument("--store", default=None, help="store URI (default: local:OUT/store)")
  ap.add_argument("--min_similarity", type=float, default=0.98)
  args, beam_args = ap.parse_known_args(argv)
  os.makedirs(args.out, exist_ok=True)
  handler = SeriesEmbeddingHandler(points=WINDOW_MIN)
  store = store_from_uri(args.store or f"local:{args.out}/store", handler.dimension)
  options = PipelineOptions(beam_args)
  with beam.Pipeline(options=options) as p:
    _ = (p | "ReadPatterns" >> beam.io.ReadFromText(os.path.join(HERE, "patterns.jsonl"))
         | "ToPattern" >> beam.Map(pattern_event)
         | "EmbedPatterns" >> Embed(handler, input_fn=prices_of) | "UpsertPatterns" >> VectorUpsert(store))
  with beam.Pipeline(options=options) as p:
    windows = (p | "ReadTicks" >> beam.io.ReadFromText(os.path.join(HERE, "ticks.jsonl"))
               | "Stamp" >> beam.Map(_tick)
               | "Slide" >> beam.WindowInto(SlidingWindows(WINDOW_MIN * 60, PERIOD_MIN * 60))
               | "Group" >> beam.GroupByKey() | "ToEvent" >> beam.ParDo(_ToEvent()))
    decisions = (windows | Embed(handler, input_fn=prices_of) | VectorUpsert(store)
                 | Retrieve(store, RetrieveConfig(k=5, kind=KIND_KNOWLEDGE))
                 | Decide(SimilarityRoutingPolicy(min_score=args.min_similarity, default_route="hold")))
    _ = (decisions | beam.Map(_signal_json)
         | beam.io.WriteToText(os.path.join(args.out, "signals.jsonl"), shard_name_template=""))
  signals = [json.loads(l) for l in open(os.path.join(args.out, "signals.jsonl"))]
  fired = sorted(f"{s['window']}:{s['signal']}" for s in signals if s["signal"] != "hold")
  print(f"{len(signals)} windows, {len(fired)} signals: {', '.join(fired)}")
  return signals


if __name__ == "__main__":
  run()
