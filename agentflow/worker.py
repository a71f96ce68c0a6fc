"""The Python SDK worker a Flink TaskManager starts for `--environment_type PROCESS`.

Beam's PROCESS environment runs a command per SDK worker with `--id` and
`--provision_endpoint` (what Beam's Go `boot` program reads in its containers); this is that
command for a host with agentflow installed: it asks the provision service for the pipeline
options and the control, logging and status endpoints, then runs Beam's own `sdk_worker_main`.
Each worker is its TaskManager's child, so TaskManagers on one host cannot stop each
other's workers (which a shared EXTERNAL worker pool does: both number theirs "1-1").
Staged artifacts are not installed: the host's environment must hold agentflow and its
dependencies at the submitter's versions (runners/README.md).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional


def worker_environment(info, worker_id: str, semi_persist_dir: str) -> dict:
  """The environment variables Beam's `sdk_worker_main` reads, from a `ProvisionInfo`."""
  from google.protobuf import json_format, text_format
  env = {
      "WORKER_ID": worker_id,
      "PIPELINE_OPTIONS": json_format.MessageToJson(info.pipeline_options),
      "CONTROL_API_SERVICE_DESCRIPTOR": text_format.MessageToString(info.control_endpoint),
      "RUNNER_CAPABILITIES": " ".join(info.runner_capabilities),
  }
  if info.logging_endpoint.url:
    env["LOGGING_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(info.logging_endpoint)
  if info.status_endpoint.url:
    env["STATUS_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(info.status_endpoint)
  if semi_persist_dir:
    env["SEMI_PERSISTENT_DIRECTORY"] = semi_persist_dir
  return env


def provision_info(endpoint: str, worker_id: str, timeout_s: float = 60.0):
  """The job's `ProvisionInfo` from the runner's provision service."""
  import grpc
  from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc
  with grpc.insecure_channel(endpoint) as channel:
    stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
    return stub.GetProvisionInfo(beam_provision_api_pb2.GetProvisionInfoRequest(),
                                 metadata=[("worker_id", worker_id)], timeout=timeout_s).info


def main(argv: Optional[List[str]] = None) -> None:
  """`python -m agentflow.worker --id=ID --provision_endpoint=HOST:PORT [--semi_persist_dir=DIR]`."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--id", required=True)
  parser.add_argument("--provision_endpoint", required=True)
  parser.add_argument("--semi_persist_dir", default="")
  args, _ = parser.parse_known_args(argv)
  info = provision_info(args.provision_endpoint, args.id)
  if not info.control_endpoint.url:
    sys.exit(f"the provision service at {args.provision_endpoint} named no control endpoint; "
             "this runner is older than this worker supports")
  os.environ.update(worker_environment(info, args.id, args.semi_persist_dir))
  from apache_beam.runners.worker import sdk_worker_main
  sdk_worker_main.main(sys.argv)


if __name__ == "__main__":
  main()
