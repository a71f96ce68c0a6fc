"""Decision quality on public intent data: the default answer policy vs the old top-1 policy.

For each data set (see benchmarks/intent_data.py for where to clone them), writes a
knowledge base of `--shots` questions per in-scope intent (one answer per intent), a
seeded sample of `--limit` held-out test questions as events (out-of-scope ones included)
and their labels in examples/support_chatbot/expected.jsonl's format, then runs
`agentflow eval` (the real graph, DirectRunner) once with the default policy and once with
`--answer_policy top1`, and prints both and their ratios. The support example runs too.

  python -m benchmarks.intent_eval --clinc150 oos-eval --banking77 task-specific-datasets \\
      --hwu64 NLU-Evaluation-Data [--limit 1500] [--seed 0]

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
POLICIES = ("centroid", "top1")


def write_files(data: intent_data.IntentData, out_dir: str, limit: int, seed: int):
  """knowledge.jsonl, events.jsonl, expected.jsonl for `data`'s KB and a sample of its test split."""
  os.makedirs(out_dir, exist_ok=True)
  first_id = {}
  with open(os.path.join(out_dir, "knowledge.jsonl"), "w") as f:
    for n, (intent, q) in enumerate(data.kb):
      kb_id = f"kb-{n:05d}"
      first_id.setdefault(intent, kb_id)
      f.write(json.dumps({"id": kb_id, "question": q, "answer": f"The {intent} answer.", "topic": intent}) + "\n")
  test = list(data.test)
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


def run_eval(events: str, knowledge: str, expected: str, policy: str, report: str) -> dict:
  from agentflow.evaluation import main_eval
  code = main_eval(["--input", events, "--knowledge", knowledge, "--expected", expected, "--report", report,
                    "--answer_policy", policy], out=io.StringIO())
  if code:
    raise RuntimeError(f"agentflow eval exited with {code}")
  with open(report) as f:
    return json.load(f)


def headline(r: dict) -> dict:
  return {k: r[k] for k in ("accuracy", "reply_precision", "reply_rate", "escalation_rate", "out_of_scope_escalated",
                            "labels", "threshold")}


def plot(results: dict, name: str) -> str:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4), squeeze=False)
  for ax, (label, res) in zip(axes[0], results.items()):
    for policy, color in zip(POLICIES, ("tab:blue", "tab:orange")):
      r = res[policy]
      ax.plot([s["reply_rate"] for s in r["sweep"]], [s["reply_precision"] for s in r["sweep"]], color=color,
              label=policy)
      ax.plot([r["reply_rate"]], [r["reply_precision"]], "*", color=color, markersize=12,
              label=f"{policy} @ {r['threshold']:.2f}: acc {r['accuracy']:.3f}")
    ax.set_title(f"{label} ({res['centroid']['labels']} questions)", fontsize=9)
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
  ap.add_argument("--name", default="intent_eval", help="results/NAME.json and NAME.png")
  args = ap.parse_args()
  sets = {}
  with tempfile.TemporaryDirectory(prefix="intent-eval-") as tmp:
    for name, loader in intent_data.LOADERS.items():
      if getattr(args, name):
        data = loader(getattr(args, name), shots=args.shots, seed=args.seed)
        sets[f"{name} ({len(data.intents)} intents)"] = write_files(data, os.path.join(tmp, name), args.limit,
                                                                    args.seed)
    if not args.no_support:
      sets["support example"] = tuple(os.path.join(SUPPORT, f) for f in ("events.jsonl", "knowledge.jsonl",
                                                                             "expected.jsonl"))
    if not sets:
      ap.error("name at least one data set clone, or drop --no_support")
    results, started = {}, time.time()
    for name, (events, knowledge, expected) in sets.items():
      results[name] = {p: run_eval(events, knowledge, expected, p, os.path.join(tmp, f"report-{p}.json"))
                       for p in POLICIES}
      new, old = results[name]["centroid"], results[name]["top1"]
      print(f"{name}: {new['labels']} labelled questions")
      for p in POLICIES:
        r = results[name][p]
        oos = r["out_of_scope_escalated"]
        print(f"  {p:8s} accuracy {r['accuracy']:.3f}  reply_precision {r['reply_precision']:.3f}  reply_rate "
              f"{r['reply_rate']:.3f}  out_of_scope_escalated {'-' if oos is None else f'{oos:.3f}'}")
      ratios = {k: round(new[k] / old[k], 3) for k in ("accuracy", "reply_precision", "out_of_scope_escalated")
                if new[k] is not None and old[k]}
      print("  centroid / top1: " + "  ".join(f"{k} {v:.3f}x" for k, v in ratios.items()), flush=True)
      results[name]["ratio"] = ratios
      _save(args, results, started)  # after each data set: a slow machine still leaves the finished ones


def _save(args, results, started):
  path = save(args.name, {"args": {k: v for k, v in vars(args).items() if k not in intent_data.LOADERS and k != "name"},
                              "elapsed_s": round(time.time() - started, 1),
                              "results": {n: {"centroid": headline(r["centroid"]), "top1": headline(r["top1"]),
                                              "ratio": r["ratio"],
                                              "sweep": {p: r[p]["sweep"] for p in POLICIES},
                                              "per_topic_centroid": r["centroid"]["per_topic"]}
                                          for n, r in results.items()}})
  print(f"  results: {path}  plot: {plot(results, args.name)}", flush=True)


if __name__ == "__main__":
  main()
