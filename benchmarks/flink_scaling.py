"""Events per second of the event job on a Flink session cluster with 1 and with 2 TaskManagers.

The same input (`--events` distinct events from the example texts) is decided twice, each on a
fresh cluster from runners/flink/cluster.sh: one TaskManager at parallelism 1, then two at
parallelism 2 (one slot each). The rate is events over the Flink job's own run time (REST API:
start to end, SDK worker start-up included, job submission not); the ratio is 2 TMs / 1 TM.
The knowledge base is ingested into each run's store first, outside the timed job.

    python -m benchmarks.flink_scaling [--events 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from benchmarks.common import save
from benchmarks.texts import make_events
from tests.services import ROOT, FlinkCluster, cli_env

KNOWLEDGE = os.path.join(ROOT, "examples", "support_chatbot", "knowledge.jsonl")


def _agentflow(*args, cwd):
  proc = subprocess.run([sys.executable, "-m", "agentflow.cli", *args], capture_output=True, text=True,
                        cwd=cwd, env=cli_env(), timeout=3600)
  if proc.returncode != 0:
    raise RuntimeError(proc.stderr[-3000:])


def run_on(taskmanagers: int, events_path: str, workdir: str) -> dict:
  """Decide the events on a fresh cluster of `taskmanagers`; the event job's rate and per-TM records."""
  os.makedirs(workdir)
  with FlinkCluster(workdir, taskmanagers=taskmanagers) as cluster:
    flags = cluster.run_args(parallelism=taskmanagers)
    _agentflow("ingest", "--knowledge", KNOWLEDGE, "--store", "local:store", *flags, cwd=workdir)
    before = {j["jid"] for j in cluster.rest("jobs/overview")["jobs"]}
    _agentflow("run", "--input", events_path, "--store", "local:store", "--decisions_output", "decisions.jsonl",
               "--dead_letter_output", "dead.jsonl", "--summary_output", "summary.json",
               "--progress_interval", "0", *flags, cwd=workdir)
    (job,) = [j for j in cluster.rest("jobs/overview")["jobs"] if j["jid"] not in before]
    summary = json.load(open(os.path.join(workdir, "summary.json")))
  seconds = (job["end-time"] - job["start-time"]) / 1000
  return {"taskmanagers": taskmanagers, "events": summary["inputs"], "decisions": summary["decisions"],
          "job_s": round(seconds, 1), "events_per_s": round(summary["inputs"] / seconds, 2)}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--events", type=int, default=1000)
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory(prefix="flink-scaling-") as tmp:
    events_path = os.path.join(tmp, "events.jsonl")
    with open(events_path, "w") as f:
      f.write("\n".join(make_events(args.events)) + "\n")
    rows = [run_on(n, events_path, os.path.join(tmp, f"tm{n}")) for n in (1, 2)]
  for r in rows:
    print(f"{r['taskmanagers']} TaskManager(s), parallelism {r['taskmanagers']}: {r['events']} events "
          f"({r['decisions']} decisions) in {r['job_s']} s = {r['events_per_s']} events/s")
  ratio = rows[1]["events_per_s"] / rows[0]["events_per_s"]
  print(f"2 TaskManagers / 1 TaskManager: {ratio:.2f}x events/s on {os.cpu_count()} CPUs")
  print("results:", save("flink_scaling", {"rows": rows, "ratio": round(ratio, 3)}))


if __name__ == "__main__":
  main()
