"""The latency floor of a runner and its Pub/Sub IO: events read and written back unchanged.

  python -m benchmarks.pubsub_passthrough --streaming --input_subscription S --output_topic T [runner options]

Same sources, sinks and options as `agentflow run` (`agentflow.io.ReadEvents` and
`WriteRecords`), with no agentflow stage in between. `streaming_latency.py --job
passthrough` runs it to separate what the runner and Pub/Sub IO cost from what the graph costs.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from agentflow.io import PubSubSink, ReadEvents, WriteRecords, set_default_pubsub_root_url
from agentflow.job import keep_streaming_job_watched, source_from_options
from agentflow.options import AgentflowOptions


class Passthrough:
  """A record whose JSON is the message it came from."""

  def __init__(self, data: bytes):
    self.data = data

  def to_json(self) -> str:
    return self.data.decode("utf-8")


def main(argv=None):
  options = PipelineOptions(argv)
  options.view_as(StandardOptions).streaming = True
  keep_streaming_job_watched(options)
  opts = options.view_as(AgentflowOptions)
  set_default_pubsub_root_url(opts)
  from benchmarks.pubsub_passthrough import Passthrough as record  # by module name, not __main__: runners pickle it
  with beam.Pipeline(options=options) as p:
    _ = (p | "Read" >> ReadEvents(source_from_options(opts)) | "Wrap" >> beam.Map(record)
         | "Write" >> WriteRecords(PubSubSink(opts.output_topic)))


if __name__ == "__main__":
  main()
