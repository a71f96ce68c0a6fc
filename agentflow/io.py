"""Sources and sinks chosen from options: files for local runs, Pub/Sub or Kafka for streaming.

`ReadEvents` yields raw payloads (str for files, bytes for Pub/Sub and Kafka) for
`Preprocess`; `WriteRecords` writes `Decision`s or `DeadLetter`s as JSON, one per line
or message. Pub/Sub uses Beam's Python IO on the DirectRunner and Dataflow (on the
DirectRunner each pull takes up to 1,000 waiting messages, see `direct_pubsub`), or
with `--pubsub_expansion_service` Java's PubsubIO cross-language on any runner. Without
it, portable runners publish with agentflow's Python sink, and Prism also reads with
agentflow's Python source (see `portable_pubsub`); Flink needs Java's PubsubIO to read.
Kafka uses Beam's cross-language Kafka IO, expanded by a Java expansion service, so it
runs on portable runners and Dataflow; see runners/README.md.
"""
from __future__ import annotations

import os
from typing import Tuple

import apache_beam as beam
from apache_beam.options.pipeline_options import StandardOptions

from agentflow import direct_pubsub
from agentflow.portable_pubsub import PublishToPubSub, PullConfig, PullFromPubSub

PORTABLE_RUNNERS = ("FlinkRunner", "PrismRunner", "PortableRunner", "SparkRunner")
# Portable runners that finalize every bundle, which agentflow's Pub/Sub source acks on.
# Flink finalizes only on completed checkpoints, and a Flink job with this source and
# checkpointing on produced nothing here (tests/test_pubsub_portable.py notes it).
PYTHON_PUBSUB_SOURCE_RUNNERS = ("PrismRunner",)


def _to_json(record) -> str:
  return record.to_json()


def _to_bytes(record) -> bytes:
  return record.to_json().encode("utf-8")


class ReadEvents(beam.PTransform):
  """`--input_subscription` / `--input_topic` (Pub/Sub) or `--input` (file pattern)."""

  def __init__(self, opts):
    super().__init__()
    self.opts = opts

  def expand(self, pbegin):
    o = self.opts
    if o.input_kafka_topic:
      from apache_beam.io.kafka import ReadFromKafka
      return (pbegin | "ReadKafka" >> ReadFromKafka(
          consumer_config={"bootstrap.servers": _require(o.kafka_bootstrap, "--kafka_bootstrap"),
                           "auto.offset.reset": "earliest", "group.id": "agentflow"},
          topics=[o.input_kafka_topic], max_num_records=o.kafka_max_records or None,
          expansion_service=o.kafka_expansion_service or None)
              | "KafkaValue" >> beam.Map(lambda kv: kv[1]))
    if o.input_subscription or o.input_topic:
      if o.input_subscription and o.input_topic:
        raise ValueError("give either --input_subscription or --input_topic, not both")
      if o.pubsub_expansion_service:
        from apache_beam.io.external.gcp.pubsub import ReadFromPubSub
        return pbegin | "ReadPubSubXlang" >> ReadFromPubSub(
            topic=o.input_topic or None, subscription=o.input_subscription or None,
            id_label=o.pubsub_id_attribute or None, expansion_service=o.pubsub_expansion_service)
      runner = runner_name(pbegin.pipeline)
      if runner in PYTHON_PUBSUB_SOURCE_RUNNERS:
        return pbegin | "PullPubSub" >> PullFromPubSub(PullConfig(_portable_subscription(o)))
      if runner in PORTABLE_RUNNERS:
        raise ValueError(f"Pub/Sub on {runner} is read by Java's PubsubIO: give --pubsub_expansion_service "
                         "HOST:PORT (a Java expansion service from `runners/jars.sh expansion`). agentflow's "
                         "Python Pub/Sub source acks messages when the runner finalizes a bundle, which "
                         f"only {', '.join(PYTHON_PUBSUB_SOURCE_RUNNERS)} does for every bundle")
      direct_pubsub.install()
      return pbegin | "ReadPubSub" >> beam.io.ReadFromPubSub(
          topic=o.input_topic or None, subscription=o.input_subscription or None,
          id_label=o.pubsub_id_attribute or None)
    if not o.input:
      raise ValueError("no source: give --input (file pattern), --input_subscription or --input_topic")
    return pbegin | "ReadFiles" >> beam.io.ReadFromText(o.input, validate="://" not in o.input)


def runner_name(pipeline) -> str:
  """The class name of the runner `pipeline` runs on, e.g. "PrismRunner"."""
  name = type(pipeline.runner).__name__ if pipeline.runner is not None else ""
  if not name or name == "TestPipeline":
    name = declared_runner(pipeline.options)
  return name


def declared_runner(options) -> str:
  """`--runner` as a class name: "prism", "PrismRunner" and a dotted path all give "PrismRunner"."""
  declared = options.view_as(StandardOptions).runner
  if not declared:
    return ""
  if not isinstance(declared, str):
    return type(declared).__name__
  short = declared.rsplit(".", 1)[-1].lower()
  known = {r.lower(): r for r in PORTABLE_RUNNERS}
  return known.get(short, known.get(short + "runner", declared))


def _portable_subscription(opts) -> str:
  if not opts.input_subscription:
    raise ValueError("on a portable runner, agentflow's Pub/Sub source reads a subscription: give "
                     "--input_subscription (or --pubsub_expansion_service for Java's PubsubIO, which "
                     "can read a topic)")
  if opts.pubsub_id_attribute:
    raise ValueError("--pubsub_id_attribute dedupes only on Dataflow or with Java's PubsubIO: give "
                     "--pubsub_expansion_service on a portable runner")
  return opts.input_subscription


def set_default_pubsub_root_url(opts) -> None:
  """Points Java's PubsubIO at the emulator when PUBSUB_EMULATOR_HOST is set and no endpoint was given."""
  host = os.environ.get("PUBSUB_EMULATOR_HOST")
  if not opts.pubsub_root_url:
    opts.pubsub_root_url = f"http://{host}" if opts.pubsub_expansion_service and host else None


def _require(value: str, flag: str) -> str:
  if not value:
    raise ValueError(f"{flag} is required for Kafka IO")
  return value


def _kafka_record(record):
  return record.event_id.encode("utf-8"), record.to_json().encode("utf-8")


class WriteRecords(beam.PTransform):
  """Writes records to a Kafka topic, else a Pub/Sub `topic`, else the file `path`.

  Kafka messages are keyed by event id, so a topic partitioned by key keeps each
  event's records in order.
  """

  def __init__(self, path: str, topic: str = "", kafka_topic: str = "", kafka_bootstrap: str = "",
               kafka_expansion_service: str = "", pubsub_expansion_service: str = ""):
    super().__init__()
    self.path, self.topic = path, topic
    self.kafka_topic, self.kafka_bootstrap = kafka_topic, kafka_bootstrap
    self.kafka_expansion_service = kafka_expansion_service
    self.pubsub_expansion_service = pubsub_expansion_service

  def expand(self, pcoll):
    if self.kafka_topic:
      from apache_beam.io.kafka import WriteToKafka
      return (pcoll | "KeyByEvent" >> beam.Map(_kafka_record).with_output_types(Tuple[bytes, bytes])
              | "WriteKafka" >> WriteToKafka(
                  producer_config={"bootstrap.servers": _require(self.kafka_bootstrap, "--kafka_bootstrap")},
                  topic=self.kafka_topic, expansion_service=self.kafka_expansion_service or None))
    if self.topic and self.pubsub_expansion_service:
      from apache_beam.io.external.gcp.pubsub import WriteToPubSub
      return (pcoll | "Encode" >> beam.Map(_to_bytes).with_output_types(bytes)
              | "WritePubSubXlang" >> WriteToPubSub(self.topic, expansion_service=self.pubsub_expansion_service))
    if self.topic and runner_name(pcoll.pipeline) in PORTABLE_RUNNERS:
      return (pcoll | "Encode" >> beam.Map(_to_bytes).with_output_types(bytes)
              | "PublishPubSub" >> PublishToPubSub(self.topic))
    if self.topic:
      return pcoll | "Encode" >> beam.Map(_to_bytes) | "WritePubSub" >> beam.io.WriteToPubSub(self.topic)
    return (pcoll | "ToJson" >> beam.Map(_to_json)
            | "WriteFile" >> beam.io.WriteToText(self.path, shard_name_template=""))
