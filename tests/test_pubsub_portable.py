"""Pub/Sub on portable runners: the graph reads and writes the real Pub/Sub emulator and gives
the decisions DirectRunner gives, on Flink through Beam's cross-language (Java) PubsubIO, and
on Prism through agentflow's Python Pub/Sub IO (`agentflow.io.pubsub_portable`).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.example_events import event_lines, valid_event_ids
from tests.pubsub_emulator import PubSubEmulator, create_topics, emulator_jar, pull_json
from tests.services import (
  ROOT,
  agentflow_cli,
  java_available,
  killable_job_env,
  local_flink_args,
  prism_args,
  pubsub_expansion_service,
)

KNOWLEDGE = os.path.join(ROOT, "examples", "support_chatbot", "knowledge.jsonl")
PROJECT = "agentflow-test"

pytestmark = pytest.mark.skipif(emulator_jar() is None or not java_available(),
                                reason="needs java, mvn and the Pub/Sub emulator")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
  work = tmp_path_factory.mktemp("emulator")
  with PubSubEmulator(work / "emulator.log") as host:
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    try:
      yield host
    finally:
      del os.environ["PUBSUB_EMULATOR_HOST"]


@pytest.fixture(scope="module")
def services(emulator, tmp_path_factory):
  """`agentflow run` options for Flink with Java's PubsubIO."""
  with pubsub_expansion_service(str(tmp_path_factory.mktemp("xlang"))) as expansion:
    yield [*local_flink_args(), "--pubsub_expansion_service", expansion.address]


def _start(runner_args, paths, store, log):
  """The streaming job in its own process group, so a job server it starts is killed with it.
  Its temporary files go to a folder next to its log, removed by `_kill`."""
  scratch = f"{log.name}.tmp"
  job = subprocess.Popen(
      [sys.executable, "-m", "agentflow.cli", "run", "--streaming", *runner_args,
       "--input_subscription", paths["in"][1], "--output_topic", paths["out"][0],
       "--dead_letter_topic", paths["dead"][0], "--store", store, "--progress_interval", "0"],
      stdout=log, stderr=subprocess.STDOUT, env=killable_job_env(scratch), start_new_session=True)
  job.scratch = scratch
  return job


def _kill(job):
  try:
    os.killpg(job.pid, signal.SIGKILL)
  except ProcessLookupError:
    pass
  job.wait(30)
  shutil.rmtree(job.scratch, ignore_errors=True)


def _collect(sub, paths, decisions, dead, until, deadline, job, log_path):
  while not until() and time.time() < deadline:
    assert job.poll() is None, open(log_path).read()[-4000:]
    got = pull_json(sub, paths["out"][1]) + pull_json(sub, paths["dead"][1])
    for record in got:
      (decisions if "action" in record else dead).append(record)
    if not got:
      time.sleep(0.5)


def _run_job(runner_args, sub, paths, store, log_path, decisions, dead, until, timeout_s):
  """Run the job until `until()` holds (or `timeout_s` passes), collecting its output, then kill it."""
  with open(log_path, "w") as log:
    job = _start(runner_args, paths, store, log)
    try:
      _collect(sub, paths, decisions, dead, until, time.time() + timeout_s, job, log_path)
    finally:
      _kill(job)


def _topics(prefix, lines):
  """Input, decisions and dead-letter topics, each with a subscription, keyed in, out, dead;
  `lines` are published to the input."""
  pub, sub, paths = create_topics(PROJECT, [f"{prefix}-in", f"{prefix}-out", f"{prefix}-dead"])
  paths = {role: paths[f"{prefix}-{role}"] for role in ("in", "out", "dead")}
  for line in lines:
    pub.publish(paths["in"][0], line.encode("utf-8")).result(30)
  return sub, paths


def _decided(decisions):
  return {d["event_id"]: (d["action"], d["metadata"].get("knowledge_id")) for d in decisions}


def _prepare(lines, tmp_path):
  """Ingest the knowledge base into tmp_path/store, and return DirectRunner's decisions for `lines`."""
  agentflow_cli("ingest", "--knowledge", KNOWLEDGE, "--store", f"local:{tmp_path}/store",
                "--dead_letter_output", str(tmp_path / "dl"), cwd=tmp_path)
  events = tmp_path / "events.jsonl"
  events.write_text("\n".join(lines) + "\n")
  agentflow_cli("run", "--input", str(events), "--knowledge", KNOWLEDGE, "--store", f"local:{tmp_path}/direct",
                "--decisions_output", str(tmp_path / "direct.jsonl"), "--dead_letter_output",
                str(tmp_path / "direct-dl.jsonl"), "--progress_interval", "0", cwd=tmp_path)
  return _decided(map(json.loads, open(tmp_path / "direct.jsonl")))


def test_checkpointed_flink_pubsub_gives_directs_decisions_and_acks_what_it_read(services, tmp_path):
  """With checkpointing, Java's PubsubIO acks a message once a checkpoint holding it completes:
  some checkpoints after the last decision the job is killed, and after the ack deadline
  nothing comes back. (Without checkpointing every message would: the running reader only
  extends their deadlines, which is what the restart test below relies on.)"""
  lines = event_lines(30)
  direct = _prepare(lines, tmp_path)
  sub, paths = _topics("events", lines)
  decisions, dead = [], []
  log_path = tmp_path / "job.log"
  with open(log_path, "w") as log:
    job = _start([*services, "--checkpointing_interval", "1000"], paths, f"local:{tmp_path}/store", log)
    try:
      _collect(sub, paths, decisions, dead, lambda: len(decisions) + len(dead) >= len(lines),
               time.time() + 420, job, log_path)
      assert len(decisions) + len(dead) == len(lines), open(log_path).read()[-3000:]
      time.sleep(15)  # some completed checkpoints (1 s apart, slower on a loaded machine) ack the last reads
      assert job.poll() is None
    finally:
      _kill(job)
  time.sleep(sub.get_subscription(subscription=paths["in"][1]).ack_deadline_seconds + 2)
  assert pull_json(sub, paths["in"][1]) == []
  flink = _decided(decisions)
  assert len(flink) == len(decisions)
  assert flink == direct
  assert valid_event_ids(lines) <= flink.keys()
  assert all(len(d["trace_id"]) == 32 for d in decisions)


def test_killed_and_restarted_flink_subscriber_gives_one_document_and_decision_per_event(services, tmp_path):
  """Job 1 is killed as soon as its first decisions arrive; job 2 starts fresh on the same
  subscription. Without checkpoints PubsubIO acks nothing, so job 1's messages are delivered
  again: decisions arrive at least once, the store keeps one document per event, and the
  decisions deduplicated by event id are DirectRunner's."""
  from agentflow import QueryFilter
  from agentflow.stores.local import LocalVectorStore
  from agentflow.types import document_id

  lines = event_lines(40)
  direct = _prepare(lines, tmp_path)
  store = tmp_path / "store"
  sub, paths = _topics("restart", lines)
  decisions, dead = [], []
  _run_job(services, sub, paths, f"local:{store}", tmp_path / "job1.log", decisions, dead, lambda: decisions, 420)
  before_restart = {d["event_id"] for d in decisions}

  after = []
  _run_job(services, sub, paths, f"local:{store}", tmp_path / "job2.log", after, dead,
             lambda: direct.keys() <= {d["event_id"] for d in decisions + after}
             and before_restart & {d["event_id"] for d in after}, 480)
  redelivered = before_restart & {d["event_id"] for d in after}
  assert redelivered, "no event decided before the kill was delivered again after the restart"
  flink = _decided(decisions + after)
  assert flink == direct, open(tmp_path / "job2.log").read()[-3000:]
  print(f"restart: {len(decisions)} decisions before the kill, {len(after)} after, {len(redelivered)} redelivered;"
        f" {len(flink)} events decided once after dedupe")
  assert {r["reason"] for r in dead} <= {r["reason"] for r in map(json.loads, open(tmp_path / "direct-dl.jsonl"))}
  with LocalVectorStore(str(store), 384) as s:
    assert s.count(QueryFilter(kind="event")) == len(direct)
    docs = s.get([document_id(e) for e in sorted(direct)])
  assert all(d is not None for d in docs)


def test_python_pubsub_io_on_prism_gives_directs_decisions_acks_what_it_read_and_keeps_running(
    emulator, tmp_path):
  """No expansion service: the job pulls and publishes in Python. Every event ends as a
  decision or a dead letter, the decisions are DirectRunner's, the input messages were
  acknowledged (bundle finalization), so none comes back after the ack deadline, the
  job still answers after the 60 s that Beam's PortableRunner would otherwise give it, and
  it drops redeliveries of current events that come seconds after their decisions.

  Not on Flink: it finalizes bundles only on completed checkpoints, so without
  checkpointing nothing was acked (every message came back after the deadline), and with
  `--checkpointing_interval 1000` the job put out nothing in 420 s (agentflow's source,
  before Flink jobs got 50 ms bundles; not tried since)."""
  from google.cloud import pubsub_v1

  lines = event_lines(30) + ["{not json", json.dumps({"event_id": "blank", "text": " "})]
  direct = _prepare(lines, tmp_path)
  sub, paths = _topics("python-io", lines)
  decisions, dead = [], []
  log_path = tmp_path / "job.log"
  with open(log_path, "w") as log:
    job = _start(prism_args(), paths, f"local:{tmp_path}/store", log)
    started = time.time()
    try:
      _collect(sub, paths, decisions, dead, lambda: len(decisions) + len(dead) >= len(lines),
               started + 420, job, log_path)
      assert len(decisions) + len(dead) == len(lines), open(log_path).read()[-3000:]
      assert _decided(decisions) == direct
      assert len(_decided(decisions)) == len(decisions)
      direct_dead = [json.loads(line) for line in open(tmp_path / "direct-dl.jsonl")]
      assert len(dead) == len(direct_dead) == 2
      assert sorted((d["stage"], d["reason"]) for d in dead) == \
          sorted((d["stage"], d["reason"]) for d in direct_dead)
      ack_deadline_s = sub.get_subscription(subscription=paths["in"][1]).ack_deadline_seconds
      time.sleep(ack_deadline_s + 2)
      assert pull_json(sub, paths["in"][1]) == []

      time.sleep(max(0.0, started + 75 - time.time()))
      late = json.dumps({**json.loads(lines[0]), "event_id": "late-1"})
      publisher = pubsub_v1.PublisherClient()
      publisher.publish(paths["in"][0], late.encode("utf-8")).result(30)
      _collect(sub, paths, decisions, dead, lambda: "late-1" in _decided(decisions), time.time() + 120, job,
               log_path)
      assert _decided(decisions)["late-1"] == direct[json.loads(lines[0])["event_id"]]

      # Redeliveries of events stamped now, seconds after their decisions, are dropped: Prism
      # fires timers at once, and Dedupe's expiry timer once let them be decided again.
      fresh = [json.dumps({**json.loads(lines[i]), "event_id": f"fresh-{i}", "timestamp": time.time()})
               for i in range(3)]
      for line in fresh:
        publisher.publish(paths["in"][0], line.encode("utf-8")).result(30)
      _collect(sub, paths, decisions, dead, lambda: all(f"fresh-{i}" in _decided(decisions) for i in range(3)),
               time.time() + 120, job, log_path)
      time.sleep(3)
      sentinel = json.dumps({**json.loads(lines[0]), "event_id": "after-redeliveries", "timestamp": time.time()})
      for line in [*fresh, sentinel]:
        publisher.publish(paths["in"][0], line.encode("utf-8")).result(30)
      _collect(sub, paths, decisions, dead, lambda: "after-redeliveries" in _decided(decisions), time.time() + 120,
               job, log_path)
      time.sleep(5)
      _collect(sub, paths, decisions, dead, lambda: False, time.time() + 1, job, log_path)
      assert sorted(d["event_id"] for d in decisions if d["event_id"].startswith("fresh-")) == \
          ["fresh-0", "fresh-1", "fresh-2"]
    finally:
      _kill(job)
