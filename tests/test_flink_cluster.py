"""The job on a Flink session cluster of two TaskManagers: the same decisions as the DirectRunner,
with the model, store and policy work of the Embed stage's vertex done on both TaskManagers.

Selected alone with `-m flink_cluster`; needs Java and Maven (runners/flink/cluster.sh).
"""
import base64
import json

import pytest

from tests.services import FlinkCluster, agentflow_cli, java_available
from tests.test_runners import EVENTS, KNOWLEDGE, _decisions, assert_same_decisions

pytestmark = pytest.mark.flink_cluster


def _run(workdir, *flags):
  agentflow_cli("run", "--input", EVENTS, "--knowledge", KNOWLEDGE, "--store", "local:store",
                "--decisions_output", "decisions.jsonl", "--dead_letter_output", "dead.jsonl",
                "--summary_output", "summary.json", "--progress_interval", "0", *flags, cwd=workdir, timeout=900)
  return _decisions(workdir / "decisions.jsonl"), json.load(open(workdir / "summary.json"))


def _embed_inputs_by_subtask(accumulators):
  """{subtask index: the `embed.in` counter of the event graph's Embed stage}, from Beam's metrics accumulator."""
  from apache_beam.coders import VarIntCoder
  out = {}
  for subtask in accumulators["subtasks"]:
    for acc in subtask["user-accumulators"]:
      if acc["name"] != "__metricscontainers":
        continue
      for m in json.loads(acc["value"])["metrics"]["attempted"]:
        labels = m.get("labels", {})
        if labels.get("NAME") == "embed.in" and "Agent-Embed" in labels.get("PTRANSFORM", ""):
          out[subtask["subtask"]] = out.get(subtask["subtask"], 0) + VarIntCoder().decode(
              base64.b64decode(m["payload"]))
  return out


def test_two_taskmanagers_share_the_agent_work_and_decide_as_direct(tmp_path):
  if not java_available():
    pytest.skip("java and mvn are needed for the Flink cluster")
  (tmp_path / "direct").mkdir()
  (tmp_path / "flink").mkdir()
  direct, _ = _run(tmp_path / "direct", "--runner", "DirectRunner")
  with FlinkCluster(tmp_path, taskmanagers=2) as cluster:
    # Relative outputs and store: the job resolves them in the submitter's directory, not the workers'.
    flink, summary = _run(tmp_path / "flink", *cluster.run_args(parallelism=2))
    embed_vertices = {}
    for job in cluster.rest("jobs/overview")["jobs"]:
      for vertex in cluster.rest(f"jobs/{job['jid']}")["vertices"]:
        counts = _embed_inputs_by_subtask(cluster.rest(f"jobs/{job['jid']}/vertices/{vertex['id']}/subtasks/accumulators"))
        if counts:
          embed_vertices[(job["jid"], vertex["id"])] = counts
    assert len(embed_vertices) == 1, embed_vertices
    (jid, vid), counts = next(iter(embed_vertices.items()))
    subtasks = {s["subtask"]: s for s in cluster.rest(f"jobs/{jid}/vertices/{vid}")["subtasks"]}
    # The cluster has the runner's jars: the jobs staged none (each TaskManager's blob cache
    # held about 240 jars, 238 MB, per pipeline when they did).
    staged = sum(f.stat().st_size for f in (tmp_path / "flink-cluster" / "tmp").glob("tm-*/*/blobStorage/job_*/*"))
    assert staged < 1_000_000, staged
  assert_same_decisions(flink, direct)
  assert sum(counts.values()) == summary["stages"]["embed"]["in"] > 0
  working = {subtasks[i]["taskmanager-id"] for i, n in counts.items() if n > 0}
  assert working == {"tm-1", "tm-2"}, (counts, {i: s["taskmanager-id"] for i, s in subtasks.items()})
  for i in counts:
    assert subtasks[i]["metrics"]["read-records"] > 0 and subtasks[i]["metrics"]["write-records"] > 0
