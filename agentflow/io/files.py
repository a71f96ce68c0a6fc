"""JSON-lines files: the source and sink for local and batch runs."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.coders import BytesCoder

from agentflow.io.config import FileSink, FileSource


class ReadFiles(beam.PTransform):
  """One element per line of the files `source.pattern` matches, as bytes.

  Lines are not decoded here: Beam's text source raises on the first byte that is not
  UTF-8 and fails the whole run, while Preprocess dead-letters that one line
  (`invalid_utf8`) and decides the rest.
  """

  def __init__(self, source: FileSource):
    super().__init__()
    self.source = source

  def expand(self, pbegin):
    pattern = self.source.pattern
    return pbegin | "ReadFiles" >> beam.io.ReadFromText(pattern, coder=BytesCoder(),
                                                        validate="://" not in pattern)


class WriteFile(beam.PTransform):
  """Each record's JSON on its own line of one file, `sink.path`."""

  def __init__(self, sink: FileSink):
    super().__init__()
    self.sink = sink

  def expand(self, pcoll):
    return (pcoll | "ToJson" >> beam.Map(lambda record: record.to_json())
            | "WriteFile" >> beam.io.WriteToText(self.sink.path, shard_name_template=""))
