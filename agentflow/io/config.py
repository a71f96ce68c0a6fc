"""Where events come from and where records go: one small frozen config per connector.

`ReadEvents` and `WriteRecords` take one of these, not the job's whole options object;
`agentflow.job` builds them from the flags.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union


@dataclass(frozen=True)
class FileSource:
  """JSON-lines events from a file pattern (local path or any Beam filesystem URL)."""
  pattern: str

  def __post_init__(self):
    if not self.pattern:
      raise ValueError("no source: give --input (file pattern), --input_subscription or --input_topic")


@dataclass(frozen=True)
class PubSubSource:
  """A Pub/Sub `subscription` (projects/P/subscriptions/S) or `topic` (a temporary subscription is
  made; not on Prism). `id_attribute` dedupes on Dataflow and with Java's PubsubIO only.
  `expansion_service` (host:port) reads through Java's PubsubIO cross-language, as Flink needs."""
  subscription: str = ""
  topic: str = ""
  id_attribute: str = ""
  expansion_service: str = ""

  def __post_init__(self):
    if bool(self.subscription) == bool(self.topic):
      raise ValueError("give either --input_subscription or --input_topic, not both"
                       if self.subscription else "a Pub/Sub source needs --input_subscription or --input_topic")


@dataclass(frozen=True)
class KafkaSource:
  """A Kafka `topic` on `bootstrap` servers, read cross-language through `expansion_service`
  (host:port; Beam's default when empty). `max_records` > 0 makes the read bounded."""
  bootstrap: str
  topic: str
  max_records: int = 0
  expansion_service: str = ""

  def __post_init__(self):
    _require_kafka(self.bootstrap)
    if self.max_records < 0:
      raise ValueError(f"--kafka_max_records must be >= 0, got {self.max_records}")


@dataclass(frozen=True)
class FileSink:
  """One JSON-lines file at `path`, written when the pipeline finishes (bounded runs)."""
  path: str

  def __post_init__(self):
    if not self.path:
      raise ValueError("a file sink needs a path (--decisions_output / --dead_letter_output)")


@dataclass(frozen=True)
class PubSubSink:
  """A Pub/Sub `topic` (projects/P/topics/T), published by agentflow's Python sink on every runner
  but Dataflow (`agentflow.io.pubsub`)."""
  topic: str


@dataclass(frozen=True)
class KafkaSink:
  """A Kafka `topic`; messages are keyed by event id, so a topic partitioned by key keeps each
  event's records in order."""
  bootstrap: str
  topic: str
  expansion_service: str = ""

  def __post_init__(self):
    _require_kafka(self.bootstrap)


Source = Union[FileSource, PubSubSource, KafkaSource]
Sink = Union[FileSink, PubSubSink, KafkaSink]


def _require_kafka(bootstrap: Optional[str]) -> None:
  if not bootstrap:
    raise ValueError("--kafka_bootstrap is required for Kafka IO")
