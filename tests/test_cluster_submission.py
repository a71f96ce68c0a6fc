"""What a job needs to run on a cluster's own workers: absolute paths, and an SDK worker set up
from the runner's provision service (agentflow.worker, the PROCESS environment's command)."""
import os

from apache_beam.options.pipeline_options import PipelineOptions

from agentflow.job import make_paths_absolute
from agentflow.options import AgentflowOptions
from agentflow.stores import absolute_store_uri


def test_local_paths_become_absolute_and_remote_ones_stay(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  opts = PipelineOptions(["--input", "in/*.jsonl", "--knowledge", "gs://b/kb.jsonl", "--decisions_output",
                          "out/d.jsonl", "--dead_letter_output", "dead.jsonl", "--store", "local:.agentflow/store",
                          "--pii_key_file", "key"]).view_as(AgentflowOptions)
  make_paths_absolute(opts)
  assert opts.input == f"{tmp_path}/in/*.jsonl"
  assert opts.knowledge == "gs://b/kb.jsonl"
  assert (opts.decisions_output, opts.dead_letter_output) == (f"{tmp_path}/out/d.jsonl", f"{tmp_path}/dead.jsonl")
  assert opts.store == f"local:{tmp_path}/.agentflow/store"
  assert opts.pii_key_file == f"{tmp_path}/key"
  assert not opts.audit_output  # unset stays unset


def test_store_uris_resolve_like_store_from_uri(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert absolute_store_uri("store") == f"local:{tmp_path}/store"  # a bare path is local
  assert absolute_store_uri("local:/abs/s") == "local:/abs/s"
  assert absolute_store_uri("vespa:http://localhost:8080") == "vespa:http://localhost:8080"


def test_worker_environment_is_what_beams_sdk_worker_main_reads():
  from apache_beam.portability.api import beam_provision_api_pb2, endpoints_pb2
  from apache_beam.runners.worker import sdk_worker_main
  from google.protobuf import struct_pb2

  from agentflow.worker import worker_environment
  options = struct_pb2.Struct()
  options.update({"beam:option:job_name:v1": "agent-job", "beam:option:experiments:v1": ["beam_fn_api"]})
  info = beam_provision_api_pb2.ProvisionInfo(
      pipeline_options=options, control_endpoint=endpoints_pb2.ApiServiceDescriptor(url="localhost:40001"),
      runner_capabilities=["beam:protocol:control_response_elements_embedding:v1"])
  env = worker_environment(info, "1-1", "/tmp/semi")
  assert env["WORKER_ID"] == "1-1" and env["SEMI_PERSISTENT_DIRECTORY"] == "/tmp/semi"
  assert "LOGGING_API_SERVICE_DESCRIPTOR" not in env  # none given: the worker logs locally
  parsed = sdk_worker_main._parse_pipeline_options(env["PIPELINE_OPTIONS"]).get_all_options()
  assert parsed["job_name"] == "agent-job" and parsed["experiments"] == ["beam_fn_api"]
  control = endpoints_pb2.ApiServiceDescriptor()
  from google.protobuf import text_format
  text_format.Merge(env["CONTROL_API_SERVICE_DESCRIPTOR"], control)
  assert control.url == "localhost:40001"
  assert os.environ.get("WORKER_ID") is None  # building the environment changes nothing here
