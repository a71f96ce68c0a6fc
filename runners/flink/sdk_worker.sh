#!/usr/bin/env bash
# The command each TaskManager runs for a Python SDK worker of a job submitted with
#   --environment_type PROCESS --environment_config '{"command": "<repo>/runners/flink/sdk_worker.sh"}'
# It runs agentflow.worker with the Python runners/flink/cluster.sh found on PATH when it started
# the cluster (AGENTFLOW_PYTHON), else the first python on PATH.
exec "${AGENTFLOW_PYTHON:-python}" -m agentflow.worker "$@"
