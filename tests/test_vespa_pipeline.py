"""The whole graph with `--store vespa:...` against the in-test Vespa protocol server.

Same example, same flags as `agentflow run`, only the store URI differs from test_pipeline.py.
The first run is throttled (429 on a share of feed requests), a replay must leave the document
count unchanged, and an outage longer than the retries dead-letters events with their reason.
"""
import json
import os

import pytest

from agentflow.job import run

from tests.test_runners import assert_same_decisions
from tests.vespa_protocol_server import serve_agent_context

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "support_chatbot")
EVENTS = os.path.join(EXAMPLE, "events.jsonl")
KNOWLEDGE = os.path.join(EXAMPLE, "knowledge.jsonl")
EXPECTED = os.path.join(EXAMPLE, "expected.jsonl")
PARSE_REASONS = sorted(["invalid_json", "invalid_json", "not_an_object", "missing_field", "wrong_type", "empty_text"])


def _lines(path):
  with open(path, encoding="utf-8") as f:
    return [line for line in f.read().splitlines() if line.strip()]


def _run(out, store_uri, *extra):
  os.makedirs(out, exist_ok=True)
  argv = ["--input", EVENTS, "--store", store_uri, "--decisions_output", os.path.join(out, "decisions.jsonl"),
          "--dead_letter_output", os.path.join(out, "dead.jsonl"), "--runner", "DirectRunner",
          "--progress_interval", "0", *extra]
  summary = run(argv, out=open(os.devnull, "w"))
  decisions = [json.loads(l) for l in _lines(os.path.join(out, "decisions.jsonl"))]
  dead = [json.loads(l) for l in _lines(os.path.join(out, "dead.jsonl"))]
  return summary, decisions, dead


@pytest.fixture(scope="module")
def server():
  with serve_agent_context(dimension=384) as s:
    yield s


@pytest.fixture(scope="module")
def first_run(server, tmp_path_factory):
  server.faults.throttle(probability=0.3, endpoint="document")
  try:
    result = _run(str(tmp_path_factory.mktemp("vespa1")), f"vespa:{server.url}?backoff=0.01&backoff_max=0.05",
                  "--knowledge", KNOWLEDGE)
  finally:
    server.faults.clear()
  return result + (len(server.app.docs), server.app.stats[("document", 429)])


def test_throttled_run_accounts_for_every_event(first_run):
  summary, decisions, dead, stored, throttled = first_run
  inputs = _lines(EVENTS)
  assert throttled > 50, "the run was not actually throttled"
  assert summary.inputs == len(inputs) and summary.accounted
  redeliveries = len(inputs) - len(set(inputs))
  assert redeliveries and summary.duplicates == redeliveries, "the example redelivers some events"
  assert len(decisions) + len(dead) + redeliveries == len(inputs)
  assert sorted(d["reason"] for d in dead) == PARSE_REASONS
  entries = [json.loads(l) for l in _lines(KNOWLEDGE)]
  answers = {e["answer"] for e in entries}  # ingestion stores one answer document per distinct answer
  unique_events = {d["event_id"] for d in decisions}
  assert len(unique_events) == len(decisions)
  assert stored == len(entries) + len(answers) + len(unique_events)


def test_same_decisions_as_the_embedded_store_and_no_retrieve_dead_letters(first_run, server, tmp_path):
  """The support example's events have no tenant: every Retrieve filters on `tenantless = true`."""
  _, decisions, dead, _, _ = first_run
  assert not [d for d in dead if d["stage"] == "retrieve"], [d["error"] for d in dead if d["stage"] == "retrieve"]
  _, local, _ = _run(str(tmp_path), f"local:{tmp_path}/store", "--knowledge", KNOWLEDGE)

  def view(ds):
    return {d["event_id"]: [(d["action"], d["metadata"].get("knowledge_id"), d["confidence"])] for d in ds}
  assert_same_decisions(view(decisions), view(local))
  if server.app.java is not None:  # Vespa's own parser saw every query the graph sent, and accepted them
    assert server.app.java_verdicts[("search", "accepted")] >= len(decisions)
    assert server.app.java_verdicts[("search", "rejected")] == 0
    assert not server.app.java_rejected_from_agentflow


def test_decisions_through_vespa_answer_known_questions(first_run, server):
  _, decisions, _, _, _ = first_run
  by_id = {d["event_id"]: d for d in decisions}
  expected = [e for e in map(json.loads, _lines(EXPECTED)) if e.get("event_id") in by_id]
  assert len(expected) > 250
  right = sum(by_id[e["event_id"]]["action"] == e["expect"] for e in expected)
  replies = [e for e in expected if e["expect"] == "reply"]
  known = sum(by_id[e["event_id"]]["metadata"].get("knowledge_id") == e["kb_id"] for e in replies)
  assert right / len(expected) >= 0.85 and known / len(replies) >= 0.8
  stored_ids = {vespa_id.split("::", 1)[1] for vespa_id in server.app.docs}
  for d in decisions:
    assert d["cited_ids"] and set(d["cited_ids"]) <= stored_ids


def test_replay_creates_no_duplicate_documents(first_run, server, tmp_path):
  _, decisions, _, stored, _ = first_run
  before = {doc_id: fields for doc_id, fields in server.app.docs.items()}
  summary, again, dead, = _run(str(tmp_path), f"vespa:{server.url}")
  assert summary.accounted and len(again) == len(decisions)
  assert len(server.app.docs) == stored
  assert set(server.app.docs) == set(before)
  assert {d["event_id"] for d in again} == {d["event_id"] for d in decisions}


def test_hybrid_store_uri_makes_the_graph_query_hybrid(first_run, server, tmp_path):
  before = server.app.profiles["hybrid"]
  summary, decisions, _ = _run(str(tmp_path), f"vespa:{server.url}?hybrid=true")
  assert summary.accounted and len(decisions) == len(first_run[1])
  assert server.app.profiles["hybrid"] - before == len(decisions)


def test_outage_dead_letters_with_reason_and_replay_after_recovery_completes(first_run, tmp_path):
  inputs = _lines(EVENTS)
  with serve_agent_context(dimension=384) as fresh:
    uri = f"vespa:{fresh.url}?retries=1&backoff=0.01&backoff_max=0.02"
    fresh.faults.outage(600, endpoint="document")
    summary, decisions, dead = _run(str(tmp_path / "outage"), uri)
    fresh.faults.clear()
    assert summary.accounted and len(decisions) + len(dead) + summary.duplicates == len(inputs)
    store_dead = [d for d in dead if d["reason"] not in PARSE_REASONS]
    assert len(store_dead) == len(inputs) - len(PARSE_REASONS) - summary.duplicates and not decisions
    for d in store_dead:
      assert d["stage"] == "upsert" and d["reason"] == "store_unavailable"
      assert "HTTP 503" in d["error"] and "injected outage" in d["error"]
    expected_ids = {d["event_id"] for d in first_run[1]}
    assert {json.loads(d["payload"])["event_id"] for d in store_dead} == expected_ids
    assert not fresh.app.docs

    replay = tmp_path / "replay.jsonl"
    replay.write_text("".join(d["payload"] + "\n" for d in store_dead))
    argv = ["--input", str(replay), "--store", uri, "--decisions_output", str(tmp_path / "replayed.jsonl"),
            "--dead_letter_output", str(tmp_path / "replay_dead.jsonl"), "--runner", "DirectRunner",
            "--progress_interval", "0"]
    again = run(argv, out=open(os.devnull, "w"))
    replayed = [json.loads(l) for l in _lines(tmp_path / "replayed.jsonl")]
    assert again.accounted and again.dead_letters == 0
    assert {d["event_id"] for d in replayed} == expected_ids
    assert len(fresh.app.docs) == len(expected_ids)


def test_live_suite_passes_against_the_protocol_server():
  """The opt-in live suite is real code: point VESPA_URL at the protocol server in a child process."""
  import subprocess
  import sys
  server = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "vespa_protocol_server.py"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
  try:
    url = server.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:")
    env = {**os.environ, "VESPA_URL": url}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:warnings",
                             os.path.join(ROOT, "tests", "test_vespa_live.py")], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
  finally:
    server.terminate()
    server.wait(10)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert "3 passed" in result.stdout and "skipped" not in result.stdout
