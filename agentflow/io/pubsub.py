"""Pub/Sub on every runner: the IO each runner can run is picked when the pipeline is built.

- DirectRunner and Dataflow: Beam's Python `ReadFromPubSub` (on the DirectRunner each pull
  takes up to 1,000 waiting messages, see `pubsub_direct`); Dataflow also Beam's `WriteToPubSub`.
- Prism: agentflow's Python source (`pubsub_portable`), which needs no Java.
- Flink (any runner, with an expansion service): Java's PubsubIO cross-language for reading.
- Every runner but Dataflow: agentflow's Python sink (`PublishToPubSub`), Flink included: Java's
  PubsubIO sink holds each message up to 2 s for a batch (`PubsubUnboundedSink`'s
  `DEFAULT_MAX_LATENCY`, which the cross-language transform does not expose).
"""
from __future__ import annotations

import os

import apache_beam as beam

from agentflow.io import pubsub_direct
from agentflow.io.config import PubSubSink, PubSubSource
from agentflow.io.pubsub_portable import PublishToPubSub, PullConfig, PullFromPubSub
from agentflow.io.runners import PORTABLE_RUNNERS, PYTHON_PUBSUB_SOURCE_RUNNERS, runner_name


class ReadPubSub(beam.PTransform):
  """Message payloads (bytes) from `source`, through the IO the pipeline's runner can run."""

  def __init__(self, source: PubSubSource):
    super().__init__()
    self.source = source

  def expand(self, pbegin):
    s = self.source
    if s.expansion_service:
      from apache_beam.io.external.gcp.pubsub import ReadFromPubSub
      return pbegin | "ReadPubSubXlang" >> ReadFromPubSub(
          topic=s.topic or None, subscription=s.subscription or None, id_label=s.id_attribute or None,
          expansion_service=s.expansion_service)
    runner = runner_name(pbegin.pipeline)
    if runner in PYTHON_PUBSUB_SOURCE_RUNNERS:
      return pbegin | "PullPubSub" >> PullFromPubSub(PullConfig(_portable_subscription(s)))
    if runner in PORTABLE_RUNNERS:
      raise ValueError(f"Pub/Sub on {runner} is read by Java's PubsubIO: give --pubsub_expansion_service "
                       "HOST:PORT (a Java expansion service from `runners/jars.sh expansion`). agentflow's "
                       "Python Pub/Sub source acks messages when the runner finalizes a bundle, which "
                       f"only {', '.join(PYTHON_PUBSUB_SOURCE_RUNNERS)} does for every bundle")
    pubsub_direct.install()
    return pbegin | "ReadPubSub" >> beam.io.ReadFromPubSub(
        topic=s.topic or None, subscription=s.subscription or None, id_label=s.id_attribute or None)


def _portable_subscription(source: PubSubSource) -> str:
  if not source.subscription:
    raise ValueError("on a portable runner, agentflow's Pub/Sub source reads a subscription: give "
                     "--input_subscription (or --pubsub_expansion_service for Java's PubsubIO, which "
                     "can read a topic)")
  if source.id_attribute:
    raise ValueError("--pubsub_id_attribute dedupes only on Dataflow or with Java's PubsubIO: give "
                     "--pubsub_expansion_service on a portable runner")
  return source.subscription


def _to_bytes(record) -> bytes:
  return record.to_json().encode("utf-8")


class WritePubSub(beam.PTransform):
  """Each record's JSON as one message on `sink.topic`."""

  def __init__(self, sink: PubSubSink):
    super().__init__()
    self.sink = sink

  def expand(self, pcoll):
    s = self.sink
    encoded = pcoll | "Encode" >> beam.Map(_to_bytes).with_output_types(bytes)
    if "Dataflow" in runner_name(pcoll.pipeline):
      return encoded | "WritePubSub" >> beam.io.WriteToPubSub(s.topic)
    # Everywhere else agentflow's own sink: the DirectRunner's WriteToPubSub builds a new
    # PublisherClient for every bundle and then waits on its batching thread.
    return encoded | "PublishPubSub" >> PublishToPubSub(s.topic)


def set_default_pubsub_root_url(opts) -> None:
  """Points Java's PubsubIO at the emulator when PUBSUB_EMULATOR_HOST is set and no endpoint was given."""
  host = os.environ.get("PUBSUB_EMULATOR_HOST")
  if not opts.pubsub_root_url:
    opts.pubsub_root_url = f"http://{host}" if opts.pubsub_expansion_service and host else None
