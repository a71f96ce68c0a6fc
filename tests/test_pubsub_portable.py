"""Pub/Sub on a portable runner: the graph on Flink reads and writes the real Pub/Sub emulator
through Beam's cross-language (Java) PubsubIO and gives the decisions DirectRunner gives.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from example_events import event_lines, valid_event_ids
from pubsub_emulator import PubSubEmulator, create_topics, emulator_jar, pull_json
from services import ROOT, agentflow_cli, cli_env, expansion_service, java_available, launcher

KNOWLEDGE = os.path.join(ROOT, "examples", "support_chatbot", "knowledge.jsonl")
PROJECT = "agentflow-test"

pytestmark = pytest.mark.skipif(emulator_jar() is None or not java_available(),
                                reason="needs java, mvn and the Pub/Sub emulator")


@pytest.fixture(scope="module")
def services(tmp_path_factory):
  work = tmp_path_factory.mktemp("xlang")
  # use_deprecated_read: Flink runs the Pub/Sub source as a native unbounded source (acks on
  # checkpoint), not through the SDF wrapper, which stalls on the portable Flink runner.
  with PubSubEmulator(work / "emulator.log") as host, \
      expansion_service(str(work), "--experiments=use_deprecated_read") as expansion:
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    try:
      yield expansion.address
    finally:
      del os.environ["PUBSUB_EMULATOR_HOST"]


def _start_flink(expansion, paths, store, log):
  """The streaming job on Flink in its own process group, so its job server is killed with it."""
  return subprocess.Popen(
      [sys.executable, "-m", "agentflow.cli", "run", "--streaming", "--runner", "FlinkRunner",
       "--flink_job_server_jar", launcher("flink"), "--flink_master", "[local]", "--environment_type", "LOOPBACK",
       "--parallelism", "1", "--pubsub_expansion_service", expansion,
       "--input_subscription", paths["events-in"][1], "--output_topic", paths["decisions-out"][0],
       "--dead_letter_topic", paths["dead-out"][0], "--store", store, "--progress_interval", "0"],
      stdout=log, stderr=subprocess.STDOUT, env=cli_env(), start_new_session=True)


def _kill(job):
  try:
    os.killpg(job.pid, signal.SIGKILL)
  except ProcessLookupError:
    pass
  job.wait(30)


def _collect(sub, paths, decisions, dead, until, deadline, job, log_path):
  while not until() and time.time() < deadline:
    assert job.poll() is None, open(log_path).read()[-4000:]
    got = pull_json(sub, paths["decisions-out"][1]) + pull_json(sub, paths["dead-out"][1])
    for record in got:
      (decisions if "action" in record else dead).append(record)
    if not got:
      time.sleep(0.5)


def test_flink_pubsub_gives_directs_decisions(services, tmp_path):
  lines = event_lines(30)
  agentflow_cli("ingest", "--knowledge", KNOWLEDGE, "--store", f"local:{tmp_path}/store",
       "--dead_letter_output", str(tmp_path / "dl"), cwd=tmp_path)
  events = tmp_path / "events.jsonl"
  events.write_text("\n".join(lines) + "\n")
  agentflow_cli("run", "--input", str(events), "--knowledge", KNOWLEDGE, "--store", f"local:{tmp_path}/direct",
       "--decisions_output", str(tmp_path / "direct.jsonl"), "--dead_letter_output", str(tmp_path / "direct-dl.jsonl"),
       "--progress_interval", "0", cwd=tmp_path)
  direct = {d["event_id"]: (d["action"], d["metadata"].get("knowledge_id"))
            for d in map(json.loads, open(tmp_path / "direct.jsonl"))}

  pub, sub, paths = create_topics(PROJECT, ["events-in", "decisions-out", "dead-out"])
  for line in lines:
    pub.publish(paths["events-in"][0], line.encode("utf-8")).result(30)
  decisions, dead = [], []
  with open(tmp_path / "job.log", "w") as log:
    job = _start_flink(services, paths, f"local:{tmp_path}/store", log)
    try:
      _collect(sub, paths, decisions, dead, lambda: len(decisions) + len(dead) >= len(lines),
               time.time() + 420, job, tmp_path / "job.log")
    finally:
      _kill(job)
  assert len(decisions) + len(dead) == len(lines), open(tmp_path / "job.log").read()[-3000:]
  flink = {d["event_id"]: (d["action"], d["metadata"].get("knowledge_id")) for d in decisions}
  assert len(flink) == len(decisions)
  assert flink == direct
  assert valid_event_ids(lines) <= flink.keys()
  assert all(len(d["trace_id"]) == 32 for d in decisions)
