"""Decision quality against labels: `agentflow eval`.

Labels are JSON lines `{"event_id", "expect": "reply", "kb_id"}` or `{"event_id", "expect": "escalate"}`
(an event sent without an id is labelled by its exact `"text"` instead), as in
examples/support_chatbot/expected.jsonl. A reply is right when its answer is the answer of
the labelled knowledge entry (entries sharing an answer are one intent). Because both answer
policies reply exactly when the decision's `score` reaches the threshold, and record the
candidate's `knowledge_id` on escalations too, one run also gives every other threshold
(`sweep`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

REPLY = "reply"
ESCALATE = "escalate"
OUT_OF_SCOPE = "(escalate)"  # the per-topic key of labels that expect an escalation
SWEEP = tuple(round(0.01 * i, 2) for i in range(101))  # 0.00 ... 1.00


def read_jsonl(path: str) -> List[dict]:
  """Every non-blank line of `path`, parsed."""
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def text_events(path: str) -> Iterator[dict]:
  """The JSON objects with a string "text" in an events file, skipping lines that are not JSON
  (the pipeline dead-letters those)."""
  with open(path, encoding="utf-8") as f:
    for line in f:
      try:
        obj = json.loads(line)
      except ValueError:
        continue
      if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        yield obj


def _derived_ids(events_path: Optional[str]) -> Dict[str, str]:
  """text -> the event id Preprocess derives, for events sent without one."""
  if not events_path:
    return {}
  from agentflow.stages.preprocess import derive_event_id, normalize_text, parse_timestamp
  out = {}
  for obj in text_events(events_path):
    if not obj.get("event_id"):
      try:
        out[obj["text"]] = derive_event_id(normalize_text(str(obj.get("session_id", ""))),
                                           parse_timestamp(obj.get("timestamp")), obj["text"])
      except Exception:  # pylint: disable=broad-except  (an invalid event is dead-lettered, not labelled)
        continue
  return out


def _outcome(expect: str, right_answer: str, replied: bool, answer: Optional[str]) -> str:
  if expect == REPLY:
    return ("right" if answer == right_answer else "wrong_answer") if replied else "missed"
  return "false_reply" if replied else "right"


def _rates(outcomes: Sequence[str], replied: Sequence[bool]) -> dict:
  n, replies = len(outcomes), sum(replied)
  right_replies = sum(1 for o, r in zip(outcomes, replied) if r and o == "right")
  return {"reply_rate": replies / n if n else 0.0,
          "reply_precision": right_replies / replies if replies else 1.0,
          "accuracy": sum(o == "right" for o in outcomes) / n if n else 0.0}


def evaluate(decisions: Iterable[dict], expected: Iterable[dict], knowledge: Iterable[dict],
             events_path: Optional[str] = None, threshold: Optional[float] = None) -> dict:
  """The report: rates at the run's own decisions, per-topic errors and the threshold sweep."""
  knowledge = list(knowledge)
  answers = {k["id"]: str(k.get("answer", "")) for k in knowledge}
  topics = {k["id"]: str(k.get("topic", "")) or "(no topic)" for k in knowledge}
  by_id = {d["event_id"]: d for d in decisions}
  derived = _derived_ids(events_path)
  rows, missing = [], []
  for label in expected:
    event_id = label.get("event_id") or derived.get(label.get("text", ""))
    if label.get("expect") not in (REPLY, ESCALATE):
      raise ValueError(f"label {label} needs \"expect\": \"reply\" or \"escalate\"")
    if label["expect"] == REPLY and label.get("kb_id") not in answers:
      raise ValueError(f"label {label} names a kb_id that is not in the knowledge file")
    d = by_id.get(event_id)
    if d is None:
      missing.append(event_id or label.get("text"))
      continue
    meta = d.get("metadata") or {}
    candidate = answers.get(meta.get("knowledge_id", ""))
    score = meta.get("score")
    rows.append((label, d["action"] == REPLY, answers.get(label.get("kb_id")), candidate,
                 None if score is None else float(score)))

  outcomes = [_outcome(lab["expect"], right, replied, cand) for lab, replied, right, cand, _ in rows]
  replied = [r[1] for r in rows]
  report = {"labels": len(rows) + len(missing), "decided": len(rows), "missing": missing[:20],
            "missing_count": len(missing), "threshold": threshold, **_rates(outcomes, replied)}
  report["escalation_rate"] = 1.0 - report["reply_rate"] if rows else 0.0
  expect_escalate = [o for o, (lab, *_ ) in zip(outcomes, rows) if lab["expect"] == ESCALATE]
  report["out_of_scope_escalated"] = (sum(o == "right" for o in expect_escalate) / len(expect_escalate)
                                      if expect_escalate else None)
  per_topic: Dict[str, Dict[str, int]] = {}
  for o, (lab, *_ ) in zip(outcomes, rows):
    topic = topics.get(lab.get("kb_id"), "(no topic)") if lab["expect"] == REPLY else OUT_OF_SCOPE
    t = per_topic.setdefault(topic, {"labels": 0, "wrong_answer": 0, "missed": 0, "false_reply": 0})
    t["labels"] += 1
    if o != "right":
      t[o] += 1
  report["per_topic"] = dict(sorted(per_topic.items()))
  if rows and all(r[4] is not None for r in rows):
    report["sweep"] = []
    for t in SWEEP:
      swept = [s >= t and cand is not None for _, _, _, cand, s in rows]
      outs = [_outcome(lab["expect"], right, rep, cand) for (lab, _, right, cand, _), rep in zip(rows, swept)]
      row = {"threshold": t, **{k: round(v, 4) for k, v in _rates(outs, swept).items()}}
      oos = [o for o, (lab, *_ ) in zip(outs, rows) if lab["expect"] == ESCALATE]
      row["out_of_scope_escalated"] = round(sum(o == "right" for o in oos) / len(oos), 4) if oos else None
      report["sweep"].append(row)
  else:
    report["sweep"] = []  # the policy records no score: only its own decisions can be judged
  return report


def threshold_for(report: dict, precision: float) -> Optional[dict]:
  """The lowest swept threshold whose reply precision reaches `precision` (and that replies at all)."""
  for row in report["sweep"]:
    if row["reply_rate"] > 0 and row["reply_precision"] >= precision:
      return row
  return None


def plot(report: dict, path: str, title: str = "") -> str:
  """Reply precision against coverage (reply rate) over the sweep, the run's threshold marked."""
  try:
    import matplotlib
  except ImportError as e:
    raise RuntimeError("--plot needs matplotlib (pip install matplotlib)") from e
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  sweep = report["sweep"]
  if not sweep:
    raise ValueError("this run's decisions carry no score, so there is no sweep to plot")
  fig, ax = plt.subplots(figsize=(6, 4.5))
  ax.plot([r["reply_rate"] for r in sweep], [r["reply_precision"] for r in sweep], marker=".", label="sweep")
  for r in sweep[20:90:10]:
    ax.annotate(f"{r['threshold']:.2f}", (r["reply_rate"], r["reply_precision"]), fontsize=7,
                textcoords="offset points", xytext=(4, 4))
  if report.get("threshold") is not None:
    ax.plot([report["reply_rate"]], [report["reply_precision"]], "r*", markersize=14,
            label=f"threshold {report['threshold']:.2f}: accuracy {report['accuracy']:.3f}")
  ax.set_xlabel("coverage (reply rate)")
  ax.set_ylabel("reply precision")
  ax.set_xlim(0, 1.02)
  ax.set_title(title or "reply precision vs coverage")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="lower left")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def summary_lines(report: dict) -> List[str]:
  """The headline rates of a report, as printed by `agentflow eval`."""
  oos = report.get("out_of_scope_escalated")
  return [f"labels {report['labels']}  decided {report['decided']}  threshold {report['threshold']}",
          f"accuracy {report['accuracy']:.3f}  reply_precision {report['reply_precision']:.3f}  "
          f"reply_rate {report['reply_rate']:.3f}  escalation_rate {report['escalation_rate']:.3f}"
          + (f"  out_of_scope_escalated {oos:.3f}" if oos is not None else "")]


def eval_parser() -> argparse.ArgumentParser:
  """The flags `agentflow eval` adds to `agentflow run`'s."""
  p = argparse.ArgumentParser(
      prog="agentflow eval", usage="agentflow eval --input EVENTS --knowledge KB --expected EXPECTED "
      "--report REPORT.json [--plot PNG] [--target_precision P] [agentflow run flags] [Beam flags]",
      description="Runs the agent graph (a fresh temporary store and DirectRunner unless --store / --runner "
                  "say otherwise), then judges its decisions against EXPECTED.")
  p.add_argument("--expected", required=True, help="Labels, one JSON object per line (see examples/support_chatbot).")
  p.add_argument("--report", required=True, help="Where the JSON report is written.")
  p.add_argument("--plot", default=None, help="Also draw reply precision vs coverage here (PNG; needs matplotlib).")
  p.add_argument("--target_precision", type=float, default=None,
                 help="Print the lowest threshold whose reply precision reaches this (0-1).")
  return p


def main_eval(argv: List[str], out=None) -> int:
  """`agentflow eval`; returns the exit code."""
  out = out or sys.stdout
  args, rest = eval_parser().parse_known_args(argv)
  from apache_beam.options.pipeline_options import PipelineOptions

  from agentflow.job import run
  from agentflow.options import AgentflowOptions, answer_threshold
  opts = PipelineOptions(rest).view_as(AgentflowOptions)
  if not opts.input or not opts.knowledge:
    print("agentflow eval: --input EVENTS and --knowledge KB are required", file=sys.stderr)
    return 2
  if args.target_precision is not None and not 0.0 < args.target_precision <= 1.0:
    print(f"agentflow eval: --target_precision must be in (0, 1], got {args.target_precision}", file=sys.stderr)
    return 2
  given = set(PipelineOptions(rest).get_all_options(drop_default=True))
  with tempfile.TemporaryDirectory(prefix="agentflow-eval-") as tmp:
    extra = []
    if "store" not in given:
      extra += ["--store", f"local:{os.path.join(tmp, 'store')}"]
    if "decisions_output" not in given:
      extra += ["--decisions_output", os.path.join(tmp, "decisions.jsonl")]
    if "dead_letter_output" not in given:
      extra += ["--dead_letter_output", os.path.join(tmp, "dead_letters.jsonl")]
    if "runner" not in given:
      extra += ["--runner", "DirectRunner"]
    if "progress_interval" not in given:
      extra += ["--progress_interval", "0"]
    from agentflow.job import with_tuned_model
    argv_run = with_tuned_model(rest + extra, log=lambda m: print(m, file=out))
    run(argv_run + ["--tune", "off"], out=out)  # the model is resolved above: run need not look again
    opts = PipelineOptions(argv_run).view_as(AgentflowOptions)  # with the tuned model and its threshold
    decisions = read_jsonl(opts.decisions_output)
  report = evaluate(decisions, read_jsonl(args.expected), read_jsonl(opts.knowledge), opts.input,
                    threshold=answer_threshold(opts))
  report["model"] = opts.model
  report["answer_policy"] = opts.answer_policy
  with open(args.report, "w") as f:
    json.dump(report, f, indent=2, sort_keys=True)
  for line in summary_lines(report):
    print(line, file=out)
  if args.target_precision is not None:
    row = threshold_for(report, args.target_precision)
    print(f"target precision {args.target_precision}: " + (
        f"threshold {row['threshold']:.2f} (reply_rate {row['reply_rate']:.3f}, accuracy {row['accuracy']:.3f})"
        if row else "no swept threshold reaches it"), file=out)
  if args.plot:
    plot(report, args.plot, title=f"{os.path.basename(args.expected)} ({opts.answer_policy})")
  return 0
