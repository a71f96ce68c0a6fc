"""The same graph on Direct, Prism and Flink gives the same decisions; Kafka in and out on Flink.

Prism is built from the Go module proxy and Flink's job server resolved from Maven
Central by the runner profiles under runners/ (first use takes a minute or two).
"""
import json
import os

import pytest

from tests.example_events import valid_event_ids
from tests.services import (
  ROOT,
  agentflow_cli,
  expansion_service,
  java_available,
  kafka_broker,
  local_flink_args,
  prism_args,
)

KNOWLEDGE = os.path.join(ROOT, "examples", "support_chatbot", "knowledge.jsonl")
EVENTS = os.path.join(ROOT, "examples", "support_chatbot", "events.jsonl")
N_EVENTS = 40


def _prism_args():
  try:
    return prism_args()
  except RuntimeError as e:
    pytest.skip(f"prism could not be built: {e}")


RUNNERS = {
    "direct": lambda: ["--runner", "DirectRunner"],
    "prism": _prism_args,
    "flink": local_flink_args,
}


def _run(args, workdir, env=None):
  return agentflow_cli("run", *args, cwd=workdir, env=env)


@pytest.fixture(scope="module")
def events_file(tmp_path_factory):
  path = tmp_path_factory.mktemp("events") / "events.jsonl"
  with open(EVENTS) as f:
    path.write_text("".join(f.readlines()[:N_EVENTS]))
  return path


def _decisions(path):
  out = {}
  for line in open(path):
    d = json.loads(line)
    out.setdefault(d["event_id"], []).append((d["action"], d["metadata"].get("knowledge_id"), d["confidence"]))
  return {k: sorted(v) for k, v in out.items()}


def assert_same_decisions(other, direct):
  """The same events, actions and answers; confidences equal to float noise (a vector's last bits
  depend on which texts share its encode batch, and runners batch differently)."""
  assert other.keys() == direct.keys()
  for event_id, decisions in direct.items():
    assert [(a, k) for a, k, _ in other[event_id]] == [(a, k) for a, k, _ in decisions], event_id
    for (_, _, c1), (_, _, c2) in zip(other[event_id], decisions):
      assert abs(c1 - c2) < 1e-3, (event_id, c1, c2)


@pytest.fixture(scope="module")
def results(events_file, tmp_path_factory):
  if not java_available():
    pytest.skip("java and mvn are needed for the portable runners")
  got = {}
  for name, flags in RUNNERS.items():
    d = tmp_path_factory.mktemp(name)
    _run(["--input", str(events_file), "--knowledge", KNOWLEDGE, "--store", f"local:{d}/store",
          "--decisions_output", str(d / "decisions.jsonl"), "--dead_letter_output", str(d / "dead.jsonl"),
          "--progress_interval", "0", *flags()], d)
    dead = sorted(json.loads(l)["reason"] for l in open(d / "dead.jsonl")) if (d / "dead.jsonl").exists() else []
    got[name] = (_decisions(d / "decisions.jsonl"), dead)
  return got


@pytest.mark.parametrize("runner", ["prism", "flink"])
def test_same_decisions_as_direct(results, runner):
  direct, direct_dead = results["direct"]
  other, other_dead = results[runner]
  assert len(direct) >= N_EVENTS - 5
  assert_same_decisions(other, direct)
  assert other_dead == direct_dead


def test_kafka_in_and_out_on_flink(tmp_path, events_file):
  if not java_available():
    pytest.skip("java and mvn are needed for Kafka and Flink")
  from kafka import KafkaConsumer, KafkaProducer
  lines = [l for l in open(events_file).read().splitlines() if l.strip()]
  with kafka_broker(str(tmp_path)) as broker, expansion_service(str(tmp_path)) as expansion:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for line in lines:
      producer.send("events-in", line.encode("utf-8"))
    producer.flush()
    _run(["--input_kafka_topic", "events-in", "--output_kafka_topic", "decisions-out",
          "--dead_letter_kafka_topic", "dead-out", "--kafka_bootstrap", broker.bootstrap,
          "--kafka_expansion_service", expansion.address, "--kafka_max_records", str(len(lines)),
          "--knowledge", KNOWLEDGE, "--store", f"local:{tmp_path}/store", "--progress_interval", "0",
          *RUNNERS["flink"]()], tmp_path)

    def consume(topic):
      c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                        consumer_timeout_ms=15000)
      return [(m.key.decode(), json.loads(m.value)) for m in c]

    decisions, dead = consume("decisions-out"), consume("dead-out")
  redeliveries = len(lines) - len(set(lines))  # dropped by Dedupe, neither decided nor dead-lettered
  assert len(decisions) + len(dead) + redeliveries == len(lines)
  assert all(key == d["event_id"] for key, d in decisions)
  assert valid_event_ids(lines) <= {d["event_id"] for _, d in decisions}
  assert {d["action"] for _, d in decisions} <= {"reply", "escalate"}


def test_each_pipeline_of_a_run_uses_the_requested_runner(tmp_path, monkeypatch):
  """The knowledge and event pipelines of one `run` both go to the runner asked for.

  Portable runners clear the runner option of the options they run with; reusing them
  sent the event pipeline to DirectRunner.
  """
  import apache_beam as beam

  from agentflow import job
  seen = []
  original = beam.Pipeline.run

  def spy(self, *args, **kwargs):
    seen.append(type(self.runner).__name__)
    return original(self, *args, **kwargs)

  monkeypatch.setattr(beam.Pipeline, "run", spy)
  events = tmp_path / "e.jsonl"
  events.write_text(open(EVENTS).readline())
  job.run(["--input", str(events), "--knowledge", KNOWLEDGE, "--store", f"local:{tmp_path}/s",
                      "--decisions_output", str(tmp_path / "d"), "--dead_letter_output", str(tmp_path / "dl"),
                      "--progress_interval", "0", *RUNNERS["prism"]()], out=open(os.devnull, "w"))
  assert seen == ["PrismRunner", "PrismRunner"]
