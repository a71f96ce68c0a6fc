"""Sources and sinks: files for local runs, Pub/Sub and Kafka for streaming.

`ReadEvents(source)` yields raw payloads (str for files, bytes for Pub/Sub and Kafka) for
`Preprocess`; `WriteRecords(sink)` writes `Decision`s or `DeadLetter`s as JSON, one per
line or message. Each connector takes its own small config (`agentflow.io.config`); which
Pub/Sub IO runs depends on the runner (`agentflow.io.pubsub`). Kafka uses Beam's
cross-language Kafka IO, so it runs on portable runners and Dataflow (runners/README.md).
"""
from __future__ import annotations

import apache_beam as beam

from agentflow.io.config import FileSink, FileSource, KafkaSink, KafkaSource, PubSubSink, PubSubSource, Sink, Source
from agentflow.io.files import ReadFiles, WriteFile
from agentflow.io.kafka import ReadKafka, WriteKafka
from agentflow.io.pubsub import ReadPubSub, WritePubSub, set_default_pubsub_root_url
from agentflow.io.pubsub_portable import PublishToPubSub, PullConfig, PullFromPubSub
from agentflow.io.runners import PORTABLE_RUNNERS, declared_runner, runner_name

_READERS = {FileSource: ReadFiles, PubSubSource: ReadPubSub, KafkaSource: ReadKafka}
_WRITERS = {FileSink: WriteFile, PubSubSink: WritePubSub, KafkaSink: WriteKafka}


class ReadEvents(beam.PTransform):
  """Raw event payloads from a `FileSource`, `PubSubSource` or `KafkaSource`."""

  def __init__(self, source: Source):
    super().__init__()
    if type(source) not in _READERS:
      raise TypeError(f"ReadEvents takes a FileSource, PubSubSource or KafkaSource, not {type(source).__name__}")
    self.source = source

  def expand(self, pbegin):
    # Expanded in place, not applied as a child, so step names stay "Read/ReadPubSub",
    # "Read/PullPubSub", ...: Dataflow matches steps by name when a streaming job is updated.
    return _READERS[type(self.source)](self.source).expand(pbegin)


class WriteRecords(beam.PTransform):
  """Records (anything with `to_json()`) to a `FileSink`, `PubSubSink` or `KafkaSink`."""

  def __init__(self, sink: Sink):
    super().__init__()
    if type(sink) not in _WRITERS:
      raise TypeError(f"WriteRecords takes a FileSink, PubSubSink or KafkaSink, not {type(sink).__name__}")
    self.sink = sink

  def expand(self, pcoll):
    return _WRITERS[type(self.sink)](self.sink).expand(pcoll)  # in place: step names as before


__all__ = [
    "FileSink", "FileSource", "KafkaSink", "KafkaSource", "PORTABLE_RUNNERS", "PubSubSink", "PubSubSource",
    "PublishToPubSub", "PullConfig", "PullFromPubSub", "ReadEvents", "ReadFiles", "ReadKafka", "ReadPubSub",
    "Sink", "Source", "WriteFile", "WriteKafka", "WritePubSub", "WriteRecords", "declared_runner",
    "runner_name", "set_default_pubsub_root_url",
]
