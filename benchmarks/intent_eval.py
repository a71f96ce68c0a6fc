"""Decision quality on public intent data: `agentflow run`'s defaults against the stock model's policies.

For each data set (see benchmarks/intent_data.py for where to clone them), writes a
knowledge base of `--shots` questions per in-scope intent (one answer per intent), a
seeded sample of `--limit` held-out test questions as events (out-of-scope ones included)
and their labels in examples/support_chatbot/expected.jsonl's format, then runs
`agentflow eval` (the real graph, DirectRunner) once per `--policies` entry: `default`
(`agentflow run`'s defaults: `--tune auto` tunes the model on that knowledge base, once per
data set, and the centroid policy), `centroid` (the stock model, `--tune off`) and `top1`
(the stock model and `--answer_policy top1`), and prints them and their ratios to
`centroid`. The support example runs too (one question per answer: nothing to tune).
`--choose_on_val` also runs each on a sample of the validation split (never in the KB) and
reports the test questions at the lowest threshold that escalates `--oos_target` of the
validation set's out-of-scope questions.

  python -m benchmarks.intent_eval --clinc150 oos-eval --banking77 task-specific-datasets \\
      --hwu64 NLU-Evaluation-Data [--limit 1500] [--seed 0] [--policies default,centroid,top1]

Paths may be working trees or bare git directories. Results: benchmarks/results/intent_eval.json
and intent_eval.png (reply precision vs coverage per data set, each policy's threshold marked).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import tempfile
import time

from benchmarks import intent_data
from benchmarks.common import RESULTS, save

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUPPORT = os.path.join(ROOT, "examples", "support_chatbot")
POLICIES = {"default": [], "centroid": ["--tune", "off"], "top1": ["--tune", "off", "--answer_policy", "top1"]}
COLORS = {"default": "tab:green", "centroid": "tab:blue", "top1": "tab:orange"}


def write_files(data: intent_data.IntentData, out_dir: str, limit: int, seed: int, split: str = "test"):
  """knowledge.jsonl, events.jsonl, expected.jsonl for `data`'s KB and a sample of its `split`."""
  os.makedirs(out_dir, exist_ok=True)
  first_id = {}
  with open(os.path.join(out_dir, "knowledge.jsonl"), "w") as f:
    for n, (intent, q) in enumerate(data.kb):
      kb_id = f"kb-{n:05d}"
      first_id.setdefault(intent, kb_id)
      f.write(json.dumps({"id": kb_id, "question": q, "answer": f"The {intent} answer.", "topic": intent}) + "\n")
  test = list(getattr(data, split))
  random.Random(seed).shuffle(test)
  test = test[:limit] if limit else test
  with open(os.path.join(out_dir, "events.jsonl"), "w") as ev, open(os.path.join(out_dir, "expected.jsonl"), "w") as ex:
    for n, (intent, q) in enumerate(test):
      event_id = f"q-{n:05d}"
      ev.write(json.dumps({"event_id": event_id, "session_id": event_id, "text": q,
                           "timestamp": 1_700_000_000 + n}) + "\n")
      ex.write(json.dumps({"event_id": event_id, "expect": "escalate"} if intent is None else
                          {"event_id": event_id, "expect": "reply", "kb_id": first_id[intent]}) + "\n")
  return (os.path.join(out_dir, name) for name in ("events.jsonl", "knowledge.jsonl", "expected.jsonl"))


def run_eval(events: str, knowledge: str, expected: str, policy: str, report: str, models: str) -> dict:
  from agentflow.evaluation import main_eval
  flags = POLICIES[policy] + ["--tuned_models", models]
  code = main_eval(["--input", events, "--knowledge", knowledge, "--expected", expected, "--report", report,
                    *flags], out=io.StringIO())
  if code:
    raise RuntimeError(f"agentflow eval exited with {code}")
  with open(report) as f:
    return json.load(f)


def headline(r: dict) -> dict:
  return {k: r[k] for k in ("accuracy", "reply_precision", "reply_rate", "escalation_rate", "out_of_scope_escalated",
                            "labels", "threshold", "chosen_on_val") if k in r}


def chosen_threshold(val_report: dict, oos_target: float):
  """The lowest swept threshold at which the validation run escalates `oos_target` of its out-of-scope questions."""
  for row in val_report["sweep"]:
    if row.get("out_of_scope_escalated") is not None and row["out_of_scope_escalated"] >= oos_target:
      return row["threshold"]
  return None


def at_threshold(report: dict, threshold: float) -> dict:
  """The test report's sweep row at `threshold`."""
  return next(row for row in report["sweep"] if row["threshold"] == threshold)


def plot(results: dict, name: str) -> str:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4), squeeze=False)
  for ax, (label, res) in zip(axes[0], results.items()):
    for policy in [p for p in POLICIES if p in res]:
      r, color = res[policy], COLORS[policy]
      ax.plot([s["reply_rate"] for s in r["sweep"]], [s["reply_precision"] for s in r["sweep"]], color=color,
              label=policy)
      ax.plot([r["reply_rate"]], [r["reply_precision"]], "*", color=color, markersize=12,
              label=f"{policy} @ {r['threshold']:.2f}: acc {r['accuracy']:.3f}")
    ax.set_title(f"{label} ({next(r['labels'] for p, r in res.items() if p in POLICIES)} questions)",
                 fontsize=9)
    ax.set_xlabel("coverage (reply rate)")
    ax.set_xlim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
  axes[0][0].set_ylabel("reply precision")
  fig.tight_layout()
  path = os.path.join(RESULTS, f"{name}.png")
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  for name in intent_data.LOADERS:
    ap.add_argument(f"--{name}", default=None, help=f"clone of the {name} repository (see benchmarks/intent_data.py)")
  ap.add_argument("--shots", type=int, default=5, help="knowledge questions per intent")
  ap.add_argument("--limit", type=int, default=1500, help="held-out test questions per data set (0 = all)")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--no_support", action="store_true", help="skip the support example")
  ap.add_argument("--policies", default="default,centroid,top1", help=f"comma-separated, from {','.join(POLICIES)}")
  ap.add_argument("--choose_on_val", action="store_true",
                  help="also run on --limit validation questions and report test at the threshold chosen there")
  ap.add_argument("--oos_target", type=float, default=0.9, help="out-of-scope escalation --choose_on_val aims at")
  ap.add_argument("--name", default="intent_eval", help="results/NAME.json and NAME.png")
  args = ap.parse_args()
  policies = [p for p in args.policies.split(",") if p]
  if not policies or set(policies) - set(POLICIES):
    ap.error(f"--policies takes names from {', '.join(POLICIES)}")
  sets, vals = {}, {}
  with tempfile.TemporaryDirectory(prefix="intent-eval-") as tmp:
    for name, loader in intent_data.LOADERS.items():
      if getattr(args, name):
        data = loader(getattr(args, name), shots=args.shots, seed=args.seed)
        label = f"{name} ({len(data.intents)} intents)"
        sets[label] = tuple(write_files(data, os.path.join(tmp, name), args.limit, args.seed))
        if args.choose_on_val:
          vals[label] = tuple(write_files(data, os.path.join(tmp, name + "-val"), args.limit, args.seed, "val"))
    if not args.no_support:
      sets["support example"] = tuple(os.path.join(SUPPORT, f) for f in ("events.jsonl", "knowledge.jsonl",
                                                                             "expected.jsonl"))
    if not sets:
      ap.error("name at least one data set clone, or drop --no_support")
    results, started = {}, time.time()
    for name, (events, knowledge, expected) in sets.items():
      results[name] = {}
      print(f"{name}:")
      for p in policies:
        models = os.path.join(tmp, f"models-{len(results)}")  # tuned once per data set, fresh
        r = results[name][p] = run_eval(events, knowledge, expected, p, os.path.join(tmp, f"report-{p}.json"), models)
        line = (f"  {p:8s} at {r['threshold']:.2f}: accuracy {r['accuracy']:.3f}  reply_precision "
                f"{r['reply_precision']:.3f}  reply_rate {r['reply_rate']:.3f}  out_of_scope_escalated "
                f"{_fmt(r['out_of_scope_escalated'])}")
        if name in vals:
          v_events, _, v_expected = vals[name]
          val = run_eval(v_events, knowledge, v_expected, p, os.path.join(tmp, f"val-{p}.json"), models)
          t = chosen_threshold(val, args.oos_target)
          if t is not None:
            r["chosen_on_val"] = {"threshold": t, **at_threshold(r, t)}
            c = r["chosen_on_val"]
            line += (f"\n           at {t:.2f} (chosen on val): accuracy {c['accuracy']:.3f}  out_of_scope_escalated "
                     f"{_fmt(c['out_of_scope_escalated'])}  reply_rate {c['reply_rate']:.3f}")
        print(line, flush=True)
      if "centroid" in results[name]:
        base = results[name]["centroid"]
        for p in [p for p in policies if p != "centroid"]:
          r = results[name][p]
          ratios = {k: round(r[k] / base[k], 3) for k in ("accuracy", "reply_precision", "out_of_scope_escalated")
                    if r[k] is not None and base[k]}
          print(f"  {p} / centroid: " + "  ".join(f"{k} {v:.3f}x" for k, v in ratios.items()), flush=True)
          results[name].setdefault("ratio", {})[p] = ratios
      _save(args, results, started)  # after each data set: a slow machine still leaves the finished ones


def _fmt(x):
  return "-" if x is None else f"{x:.3f}"


def _save(args, results, started):
  out = {}
  for n, r in results.items():
    ran = [p for p in POLICIES if p in r]
    out[n] = {**{p: {**headline(r[p]), "model": r[p].get("model")} for p in ran}, "ratio": r.get("ratio"),
              "sweep": {p: r[p]["sweep"] for p in ran}, "per_topic": {p: r[p]["per_topic"] for p in ran}}
  path = save(args.name, {"args": {k: v for k, v in vars(args).items() if k not in intent_data.LOADERS and k != "name"},
                          "elapsed_s": round(time.time() - started, 1), "results": out})
  print(f"  results: {path}  plot: {plot(results, args.name)}", flush=True)


if __name__ == "__main__":
  main()
