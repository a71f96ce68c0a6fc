"""The latency floor of a runner and its Pub/Sub (or Kafka) IO: events read and written back unchanged.

  python -m benchmarks.pubsub_passthrough --streaming --input_subscription S --output_topic T [runner options]
  python -m benchmarks.pubsub_passthrough --streaming --kafka_bootstrap H:P --kafka_expansion_service H:P
                                          --input_kafka_topic I --output_kafka_topic O [runner options]

Same sources, sinks and options as `agentflow run` (`agentflow.io.ReadEvents` and
`WriteRecords`), with no agentflow stage in between. `streaming_latency.py --job
passthrough` runs it to separate what the runner and Pub/Sub IO cost from what the graph costs.
"""
from __future__ import annotations

import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from agentflow.io import ReadEvents, WriteRecords, set_default_pubsub_root_url
from agentflow.job import sink_from_options, source_from_options, with_runner_defaults
from agentflow.options import AgentflowOptions

from benchmarks.kafka_relay import event_key


class Passthrough:
  """A record whose JSON is the message it came from."""

  def __init__(self, data: bytes):
    self.data = data

  def to_json(self) -> str:
    return self.data.decode("utf-8")

  @property
  def event_id(self) -> str:
    """What the Kafka sink keys the message by."""
    return event_key(self.data).decode("utf-8")


def main(argv=None):
  # Always streaming, with the runner settings `agentflow run --streaming` gets.
  options = PipelineOptions(with_runner_defaults(["--streaming", *(sys.argv[1:] if argv is None else argv)]))
  opts = options.view_as(AgentflowOptions)
  set_default_pubsub_root_url(opts)
  from benchmarks.pubsub_passthrough import Passthrough as record  # by module name, not __main__: runners pickle it
  with beam.Pipeline(options=options) as p:
    _ = (p | "Read" >> ReadEvents(source_from_options(opts)) | "Wrap" >> beam.Map(record)
         | "Write" >> WriteRecords(sink_from_options(opts, "", opts.output_topic, opts.output_kafka_topic)))


if __name__ == "__main__":
  main()
