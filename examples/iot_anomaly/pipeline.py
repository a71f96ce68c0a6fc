"""IoT anomaly alerts: sensor readings -> 5-minute windows -> embeddings -> k-NN distance to normal -> alerts.

  python examples/iot_anomaly/pipeline.py [--out DIR] [beam flags]

First the baseline day's windows are embedded into the store (kind "baseline"); then each
monitored window is embedded, written, compared with the same device's 5 nearest normal
windows, and `AnomalyThresholdPolicy` alerts when it is far from all of them. Runs on
the embedded store; `--store vespa:...` and `--runner` work as for the main job.
"""
from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timezone

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import FixedWindows, TimestampedValue

from agentflow import Decide, Embed, Retrieve, RetrieveConfig, VectorUpsert, store_from_uri
from agentflow.models.series import SeriesEmbeddingHandler
from agentflow.policies.anomaly import AnomalyThresholdPolicy
from agentflow.types import AgentEvent

HERE = os.path.dirname(os.path.abspath(__file__))

WINDOW_S = 300
CHANNELS = ("temperature", "vibration")
REFERENCE = (60.0, 2.0)


def _parse(line):
  r = json.loads(line)
  return TimestampedValue((r["device"], r), r["timestamp"])


class _ToEvent(beam.DoFn):
  def __init__(self, kind):
    self.kind = kind

  def process(self, keyed, window=beam.DoFn.WindowParam):
    device, rows = keyed
    rows = sorted(rows, key=lambda r: r["timestamp"])
    start = int(window.start.micros // 1_000_000)
    when = datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    yield AgentEvent(event_id=f"{device}@{start}", session_id=device, timestamp=float(start), kind=self.kind,
                     text=f"{device} {len(rows)} readings from {when}",
                     attributes={"window": [[r[c] for r in rows] for c in CHANNELS], "window_start": start})


def sensor_windows(lines, kind):
  return (lines | f"Parse{kind}" >> beam.Map(_parse)
          | f"Window{kind}" >> beam.WindowInto(FixedWindows(WINDOW_S))
          | f"Group{kind}" >> beam.GroupByKey()
          | f"ToEvent{kind}" >> beam.ParDo(_ToEvent(kind)))


def window_of(event):
  return event.attributes["window"]


def _alert_json(decision):
  return json.dumps({"device": decision.session_id, "window": decision.event_id, "action": decision.action,
                     "confidence": decision.confidence, **dict(decision.metadata)}, sort_keys=True)


def run(argv=None):
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--out", default="iot_out")
  ap.add_argument("--store", default=None, help="store URI (default: local:OUT/store)")
  ap.add_argument("--threshold", type=float, default=0.002)
  args, beam_args = ap.parse_known_args(argv)
  os.makedirs(args.out, exist_ok=True)
  handler = SeriesEmbeddingHandler(points=30, channels=2, scale="level", reference=REFERENCE)
  store = store_from_uri(args.store or f"local:{args.out}/store", handler.dimension)
  options = PipelineOptions(beam_args)
  with beam.Pipeline(options=options) as p:
    baseline = sensor_windows(p | "ReadBaseline" >> beam.io.ReadFromText(os.path.join(HERE, "baseline.jsonl")),
                              "baseline")
    _ = (baseline | "EmbedBaseline" >> Embed(handler, input_fn=window_of)
         | "UpsertBaseline" >> VectorUpsert(store))
  with beam.Pipeline(options=options) as p:
    windows = sensor_windows(p | "ReadMonitored" >> beam.io.ReadFromText(os.path.join(HERE, "readings.jsonl")),
                             "event")
    decisions = (windows | Embed(handler, input_fn=window_of) | VectorUpsert(store)
                 | Retrieve(store, RetrieveConfig(k=5, kind="baseline", same_session=True))
                 | Decide(AnomalyThresholdPolicy(threshold=args.threshold)))
    _ = (decisions | beam.Map(_alert_json)
         | beam.io.WriteToText(os.path.join(args.out, "decisions.jsonl"), shard_name_template=""))
  alerts = [json.loads(l) for l in open(os.path.join(args.out, "decisions.jsonl"))]
  flagged = sorted(a["window"] for a in alerts if a["action"] == "alert")
  print(f"{len(alerts)} windows checked, {len(flagged)} alerts: {', '.join(flagged)}")
  return alerts


if __name__ == "__main__":
  run()
