"""`agentflow eval`: the report's rates, per-topic errors and threshold sweep, and the command end to end."""
import json

import pytest

from agentflow import cli
from agentflow.evaluation import evaluate, threshold_for

KNOWLEDGE = [{"id": "kb-1", "question": "q1", "answer": "A", "topic": "account"},
             {"id": "kb-2", "question": "q2", "answer": "A", "topic": "account"},  # same intent as kb-1
             {"id": "kb-3", "question": "q3", "answer": "B", "topic": "billing"}]


def _d(event_id, action, kid, score):
  return {"event_id": event_id, "action": action, "metadata": {"knowledge_id": kid, "score": score}}


DECISIONS = [_d("e1", "reply", "kb-2", 0.8),      # right: kb-2 has kb-1's answer
             _d("e2", "reply", "kb-3", 0.6),      # wrong answer
             _d("e3", "escalate", "kb-3", 0.3),   # right escalation
             _d("e4", "reply", "kb-1", 0.5),      # replied to an out-of-scope question
             _d("e5", "escalate", "kb-3", 0.4)]   # missed: the right answer, below the threshold
EXPECTED = [{"event_id": "e1", "expect": "reply", "kb_id": "kb-1"},
            {"event_id": "e2", "expect": "reply", "kb_id": "kb-1"},
            {"event_id": "e3", "expect": "escalate"},
            {"event_id": "e4", "expect": "escalate"},
            {"event_id": "e5", "expect": "reply", "kb_id": "kb-3"}]


def test_rates_at_the_runs_threshold_and_per_topic_errors():
  r = evaluate(DECISIONS, EXPECTED, KNOWLEDGE, threshold=0.45)
  assert (r["labels"], r["decided"], r["missing_count"]) == (5, 5, 0)
  assert r["reply_rate"] == pytest.approx(3 / 5) and r["escalation_rate"] == pytest.approx(2 / 5)
  assert r["reply_precision"] == pytest.approx(1 / 3) and r["accuracy"] == pytest.approx(2 / 5)
  assert r["out_of_scope_escalated"] == pytest.approx(1 / 2)
  assert r["per_topic"] == {
      "(escalate)": {"labels": 2, "wrong_answer": 0, "missed": 0, "false_reply": 1},
      "account": {"labels": 2, "wrong_answer": 1, "missed": 0, "false_reply": 0},
      "billing": {"labels": 1, "wrong_answer": 0, "missed": 1, "false_reply": 0}}


def test_the_sweep_replays_each_threshold_from_the_scores():
  r = evaluate(DECISIONS, EXPECTED, KNOWLEDGE, threshold=0.45)
  by_t = {row["threshold"]: row for row in r["sweep"]}
  assert by_t[0.45] == {"threshold": 0.45, "reply_rate": 0.6, "reply_precision": pytest.approx(0.3333, abs=1e-4),
                        "accuracy": 0.4, "out_of_scope_escalated": 0.5}
  assert by_t[0.7] == {"threshold": 0.7, "reply_rate": 0.2, "reply_precision": 1.0, "accuracy": 0.6,
                       "out_of_scope_escalated": 1.0}
  assert by_t[0.3] == {"threshold": 0.3, "reply_rate": 1.0, "reply_precision": 0.4, "accuracy": 0.4,
                       "out_of_scope_escalated": 0.0}
  assert threshold_for(r, 0.9)["threshold"] == 0.61
  assert threshold_for(r, 1.01) is None


def test_labels_keyed_by_text_find_the_derived_event_id(tmp_path):
  from agentflow.stages.preprocess import derive_event_id, parse_timestamp
  events = tmp_path / "events.jsonl"
  events.write_text(json.dumps({"session_id": "s", "text": "hello there", "timestamp": 5}) + "\n{broken\n")
  derived = derive_event_id("s", parse_timestamp(5), "hello there")
  r = evaluate([_d(derived, "escalate", "kb-1", 0.1)], [{"text": "hello there", "expect": "escalate"}],
               KNOWLEDGE, events_path=str(events))
  assert (r["decided"], r["accuracy"]) == (1, 1.0)


def test_bad_labels_say_what_is_wrong():
  with pytest.raises(ValueError, match="kb_id"):
    evaluate(DECISIONS, [{"event_id": "e1", "expect": "reply", "kb_id": "kb-404"}], KNOWLEDGE)
  with pytest.raises(ValueError, match="expect"):
    evaluate(DECISIONS, [{"event_id": "e1", "expect": "maybe"}], KNOWLEDGE)


INTENTS = {"password": ("Settings > Security > Reset password.",
                        ["How do I reset my password?", "I forgot my password", "change my login password"]),
           "export": ("Open the note, then File > Export > PDF.",
                      ["How do I export my notes as PDF?", "save a note as a pdf file", "download my notes as PDF"])}
QUESTIONS = [("password", "i can't remember my password, how do i make a new one"),
             ("export", "how can I get a PDF copy of my notes"),
             (None, "what's the weather going to be like in Paris tomorrow?"),
             (None, "recommend me a good pizza place nearby")]


def _write(path, rows):
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  return str(path)


@pytest.mark.parametrize("policy", ["centroid", "top1"])
def test_agentflow_eval_runs_the_graph_and_writes_report_and_plot(tmp_path, capsys, handler, policy):
  kb = [{"id": f"kb-{i}-{n}", "question": q, "answer": a, "topic": i}
        for i, (a, qs) in INTENTS.items() for n, q in enumerate(qs)]
  events = [{"event_id": f"e{n}", "session_id": f"s{n}", "text": q, "timestamp": 1772442900 + n}
            for n, (_, q) in enumerate(QUESTIONS)]
  expected = [{"event_id": f"e{n}", "expect": "escalate"} if i is None else
              {"event_id": f"e{n}", "expect": "reply", "kb_id": f"kb-{i}-1"} for n, (i, _) in enumerate(QUESTIONS)]
  report, png = tmp_path / "report.json", tmp_path / "plot.png"
  code = cli.main(["eval", "--input", _write(tmp_path / "events.jsonl", events),
                   "--knowledge", _write(tmp_path / "kb.jsonl", kb),
                   "--expected", _write(tmp_path / "expected.jsonl", expected), "--report", str(report),
                   "--plot", str(png), "--target_precision", "0.9", "--answer_policy", policy,
                   "--tune", "off"])  # the stock model and its threshold; tests/test_tuning.py runs --tune auto
  assert code == 0
  r = json.loads(report.read_text())
  assert (r["labels"], r["decided"], r["answer_policy"], r["threshold"]) == (4, 4, policy, 0.45)
  assert (r["accuracy"], r["reply_precision"], r["reply_rate"], r["out_of_scope_escalated"]) == (1.0, 1.0, 0.5, 1.0)
  at = next(row for row in r["sweep"] if row["threshold"] == 0.45)
  assert (at["accuracy"], at["reply_rate"]) == (r["accuracy"], r["reply_rate"])
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  out = capsys.readouterr().out
  assert "accuracy 1.000" in out and "target precision 0.9: threshold" in out
