"""The latency floor of a runner and its Pub/Sub IO: events read and written back unchanged.

  python benchmarks/pubsub_passthrough.py --streaming --input_subscription S --output_topic T [runner options]

Same sources, sinks and options as `agentflow run` (`agentflow.io.ReadEvents` and
`WriteRecords`), with no agentflow stage in between. `streaming_latency.py --job
passthrough` runs it to separate what the runner and Pub/Sub IO cost from what the graph costs.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions  # noqa: E402

from agentflow.io import ReadEvents, WriteRecords, set_default_pubsub_root_url  # noqa: E402
from agentflow.options import AgentflowOptions  # noqa: E402
from pipelines.agent_pipeline import keep_streaming_job_watched  # noqa: E402


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
  from pubsub_passthrough import Passthrough as record  # by module name, not __main__: runners pickle it
  with beam.Pipeline(options=options) as p:
    _ = (p | "Read" >> ReadEvents(opts) | "Wrap" >> beam.Map(record)
         | "Write" >> WriteRecords("", opts.output_topic, pubsub_expansion_service=opts.pubsub_expansion_service))


if __name__ == "__main__":
  main()
