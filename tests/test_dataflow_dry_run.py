"""DataflowRunner translates the same graph offline (`--dry_run --no_auth`): stages and options."""
import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from agentflow.job import build
from agentflow.options import AgentflowOptions

STAGES = ["Agent/Preprocess", "Agent/Embed/RunInference", "Agent/VectorUpsert", "Agent/Retrieve",
          "Agent/Decide", "Agent/AllDeadLetters", "WriteDecisions",
          "WriteDeadLetters"]


def test_dataflow_dry_run_translates_the_graph(tmp_path):
  options = PipelineOptions([
      "--runner", "DataflowRunner", "--dry_run=True", "--no_auth", "--project", "demo-project",
      "--region", "us-central1", "--temp_location", "gs://demo-bucket/tmp",
      "--input", "gs://demo-bucket/events/*.jsonl", "--decisions_output", "gs://demo-bucket/out/decisions.jsonl",
      "--dead_letter_output", "gs://demo-bucket/out/dead.jsonl", "--store", f"local:{tmp_path}/s",
      "--top_k", "7", "--answer_threshold", "0.5", "--progress_interval", "0"])
  p = beam.Pipeline(options=options)
  build(p, options.view_as(AgentflowOptions))
  result = p.run()
  assert result.state == "DONE"
  names = [t.unique_name for t in result.job.proto_pipeline.components.transforms.values()]
  for stage in STAGES:
    assert any(n == stage or n.startswith(stage + "/") for n in names), stage
  carried = result.job.options.view_as(AgentflowOptions)
  assert (carried.top_k, carried.answer_threshold, carried.input) == (7, 0.5, "gs://demo-bucket/events/*.jsonl")
  envs = result.job.proto_pipeline.components.environments
  image = f"beam_python{sys.version_info.major}.{sys.version_info.minor}_sdk:{beam.version.__version__}"
  assert any(image in e.payload.decode("latin-1") for e in envs.values())
