"""Kafka through Beam's cross-language Kafka IO (a Java expansion service; see runners/README.md)."""
from __future__ import annotations

from typing import Tuple

import apache_beam as beam

from agentflow.io.config import KafkaSink, KafkaSource


class ReadKafka(beam.PTransform):
  """The value of each record on `source.topic`, as bytes."""

  def __init__(self, source: KafkaSource):
    super().__init__()
    self.source = source

  def expand(self, pbegin):
    from apache_beam.io.kafka import ReadFromKafka
    s = self.source
    return (pbegin | "ReadKafka" >> ReadFromKafka(
        consumer_config={"bootstrap.servers": s.bootstrap, "auto.offset.reset": "earliest",
                         "group.id": "agentflow"},
        topics=[s.topic], max_num_records=s.max_records or None, expansion_service=s.expansion_service or None)
            | "KafkaValue" >> beam.Map(lambda kv: kv[1]))


def _kafka_record(record):
  return record.event_id.encode("utf-8"), record.to_json().encode("utf-8")


class WriteKafka(beam.PTransform):
  """Each record's JSON to `sink.topic`, keyed by its event id."""

  def __init__(self, sink: KafkaSink):
    super().__init__()
    self.sink = sink

  def expand(self, pcoll):
    from apache_beam.io.kafka import WriteToKafka
    s = self.sink
    return (pcoll | "KeyByEvent" >> beam.Map(_kafka_record).with_output_types(Tuple[bytes, bytes])
            | "WriteKafka" >> WriteToKafka(producer_config={"bootstrap.servers": s.bootstrap}, topic=s.topic,
                                           expansion_service=s.expansion_service or None))
