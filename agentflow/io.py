"""Sources and sinks chosen from options: files for local runs, Pub/Sub for streaming.

`ReadEvents` yields raw payloads (str for files, bytes for Pub/Sub) for `Preprocess`;
`WriteRecords` writes `Decision`s or `DeadLetter`s as JSON, one per line or message.
On DirectRunner and Dataflow the Python Pub/Sub IO is used; on portable runners
(Flink, Prism) Beam substitutes its cross-language Pub/Sub IO where it supports it.
"""
from __future__ import annotations

import apache_beam as beam


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
    if o.input_subscription or o.input_topic:
      if o.input_subscription and o.input_topic:
        raise ValueError("give either --input_subscription or --input_topic, not both")
      return pbegin | "ReadPubSub" >> beam.io.ReadFromPubSub(
          topic=o.input_topic or None, subscription=o.input_subscription or None,
          id_label=o.pubsub_id_attribute or None)
    if not o.input:
      raise ValueError("no source: give --input (file pattern), --input_subscription or --input_topic")
    return pbegin | "ReadFiles" >> beam.io.ReadFromText(o.input, validate="://" not in o.input)


class WriteRecords(beam.PTransform):
  """Writes records to `topic` (Pub/Sub) when given, else to the file `path`."""

  def __init__(self, path: str, topic: str = ""):
    super().__init__()
    self.path, self.topic = path, topic

  def expand(self, pcoll):
    if self.topic:
      return pcoll | "Encode" >> beam.Map(_to_bytes) | "WritePubSub" >> beam.io.WriteToPubSub(self.topic)
    return (pcoll | "ToJson" >> beam.Map(_to_json)
            | "WriteFile" >> beam.io.WriteToText(self.path, shard_name_template=""))
