"""Streaming end to end on the real Pub/Sub emulator: events in, decisions and dead letters out."""
import json
import os
import subprocess
import sys
import time

import pytest

from tests.pubsub_emulator import PubSubEmulator, create_topics, emulator_jar, pull_until
from tests.services import agentflow_cli, cli_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KNOWLEDGE = os.path.join(ROOT, "examples", "support_chatbot", "knowledge.jsonl")
PROJECT = "agentflow-test"

pytestmark = pytest.mark.skipif(emulator_jar() is None, reason="Pub/Sub emulator jar or java not installed")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
  with PubSubEmulator(tmp_path_factory.mktemp("pubsub") / "emulator.log") as host:
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    try:
      yield host
    finally:
      del os.environ["PUBSUB_EMULATOR_HOST"]


def test_streaming_pubsub_decisions(emulator, tmp_path):
  pub, sub, paths = create_topics(PROJECT, ["events-in", "decisions-out", "dead-out"])
  store = f"local:{tmp_path}/store"
  env = cli_env()
  agentflow_cli("ingest", "--knowledge", KNOWLEDGE, "--store", store, "--dead_letter_output", str(tmp_path / "dl"),
                cwd=tmp_path, timeout=300)
  job = subprocess.Popen(
      [sys.executable, "-m", "agentflow.cli", "run", "--streaming", "--runner", "DirectRunner",
       "--input_subscription", paths["events-in"][1], "--output_topic", paths["decisions-out"][0],
       "--dead_letter_topic", paths["dead-out"][0], "--store", store, "--progress_interval", "1"],
      stdout=subprocess.PIPE, stderr=open(tmp_path / "job.log", "w"), env=env)
  try:
    events = [{"event_id": "p1", "session_id": "s1", "text": "How can I reset my password?",
               "timestamp": "2026-03-02T09:00:00Z"},
              {"event_id": "p2", "session_id": "s1", "text": "my email is jane@example.com, I want a refund for a bug",
               "timestamp": "2026-03-02T09:01:00Z"},
              {"event_id": "p3", "session_id": "s2", "text": "how do I cancel my subscription",
               "timestamp": "2026-03-02T09:02:00Z"}]
    for e in events:
      pub.publish(paths["events-in"][0], json.dumps(e).encode()).result(30)
    pub.publish(paths["events-in"][0], b"\xff not json").result(30)
    deadline = time.time() + 240
    decisions = pull_until(sub, paths["decisions-out"][1], 3, deadline)
    dead = pull_until(sub, paths["dead-out"][1], 1, deadline)
  finally:
    job.terminate()
    job.wait(30)
  log = open(tmp_path / "job.log").read()
  assert sorted(d["event_id"] for d in decisions) == ["p1", "p2", "p3"], log[-3000:]
  assert [(d["stage"], d["reason"]) for d in dead] == [("preprocess", "invalid_utf8")]
  by_id = {d["event_id"]: d for d in decisions}
  assert by_id["p1"]["action"] == "reply" and by_id["p3"]["action"] == "reply"
  assert all(len(d["trace_id"]) == 32 for d in decisions)
  assert "jane@example.com" not in json.dumps(decisions)


_BUNDLE_JOB = '''
import json, sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from agentflow.io import ReadEvents
from agentflow.job import source_from_options
from agentflow.options import AgentflowOptions


class RecordBundles(beam.DoFn):
  def setup(self):
    with open(sys.argv[1] + ".setups", "a") as f:
      f.write("setup\\n")

  def start_bundle(self):
    self.numbers = []

  def process(self, data):
    self.numbers.append(json.loads(data)["n"])

  def finish_bundle(self):
    if self.numbers:
      with open(sys.argv[1], "a") as f:
        f.write(json.dumps(self.numbers) + "\\n")


options = PipelineOptions(sys.argv[2:])
options.view_as(StandardOptions).streaming = True
with beam.Pipeline(options=options) as p:
  _ = p | ReadEvents(source_from_options(options.view_as(AgentflowOptions))) | beam.ParDo(RecordBundles())
'''


def _bundles(path):
  return [json.loads(line) for line in open(path)] if os.path.exists(path) else []


def test_direct_runner_pulls_a_backlog_in_bundles_larger_than_beams_ten_and_sets_dofns_up_once(
    emulator, tmp_path):
  pub, _, paths = create_topics(PROJECT, ["backlog-in"])
  for future in [pub.publish(paths["backlog-in"][0], json.dumps({"n": n}).encode()) for n in range(300)]:
    future.result(30)
  script, out = tmp_path / "job.py", tmp_path / "bundles.jsonl"
  script.write_text(_BUNDLE_JOB)
  job = subprocess.Popen([sys.executable, str(script), str(out), "--runner", "DirectRunner",
                          "--input_subscription", paths["backlog-in"][1]],
                         env=cli_env(), stderr=open(tmp_path / "job.log", "w"))
  try:
    deadline = time.time() + 120
    while sum(map(len, _bundles(out))) < 300 and time.time() < deadline and job.poll() is None:
      time.sleep(0.5)
    backlog = _bundles(out)
    for n in (300, 301, 302):
      pub.publish(paths["backlog-in"][0], json.dumps({"n": n}).encode()).result(30)
    while sum(map(len, _bundles(out))) < 303 and time.time() < deadline and job.poll() is None:
      time.sleep(0.5)
    everything = _bundles(out)
  finally:
    job.terminate()
    job.wait(30)
  log = open(tmp_path / "job.log").read()[-3000:]
  assert sorted(n for b in backlog for n in b) == list(range(300)), log
  assert max(map(len, backlog)) > 10, [len(b) for b in backlog]
  assert sorted(n for b in everything[len(backlog):] for n in b) == [300, 301, 302], log
  # Beam's own DirectRunner sets a DoFn up (and tears it down) for every bundle.
  assert len(everything) > 1 and open(f"{out}.setups").read() == "setup\n", log
