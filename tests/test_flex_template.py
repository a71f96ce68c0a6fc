"""The Flex Template: metadata matches the pipeline's options, gcloud builds its spec, and the
entry point runs locally with exactly the template's parameters."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from agentflow.options import AgentflowOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "templates", "agent_pipeline")
METADATA = json.load(open(os.path.join(TEMPLATE, "metadata.json")))


def _actions():
  parser = argparse.ArgumentParser(add_help=False)
  AgentflowOptions._add_argparse_args(parser)
  return {a.dest: a for a in parser._actions}


def test_metadata_matches_options_exactly():
  names = [p["name"] for p in METADATA["parameters"]]
  assert len(names) == len(set(names))
  assert set(names) == set(_actions())


def test_every_parameter_is_described_and_its_regexes_accept_the_default():
  actions = _actions()
  for p in METADATA["parameters"]:
    assert p["label"] and p["helpText"] == actions[p["name"]].help and p["isOptional"] is True
    for rx in p.get("regexes", []):
      compiled = re.compile(rx)
      default = actions[p["name"]].default
      if default not in (None, ""):
        assert compiled.fullmatch(str(default)), (p["name"], default)


def test_dockerfile_points_at_the_entry_point_and_setup():
  text = open(os.path.join(TEMPLATE, "Dockerfile")).read()
  assert "python311-template-launcher-base" in text
  assert re.search(r'FLEX_TEMPLATE_PYTHON_PY_FILE="\$\{WORKDIR\}/pipelines/agent_pipeline.py"', text)
  assert re.search(r'FLEX_TEMPLATE_PYTHON_SETUP_FILE="\$\{WORKDIR\}/setup.py"', text)
  assert os.path.exists(os.path.join(ROOT, "pipelines", "agent_pipeline.py"))


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud is not installed")
def test_gcloud_builds_the_spec_offline():
  out = subprocess.run(["gcloud", "dataflow", "flex-template", "build", "gs://demo-bucket/templates/agent.json",
                        "--image", "gcr.io/demo-project/agentflow-agent:test", "--sdk-language", "PYTHON",
                        "--metadata-file", os.path.join(TEMPLATE, "metadata.json"), "--print-only"],
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  spec = json.loads(out.stdout.lstrip("|-\n"))
  assert spec["image"] == "gcr.io/demo-project/agentflow-agent:test"
  assert spec["sdkInfo"]["language"] == "PYTHON"
  assert [p["name"] for p in spec["metadata"]["parameters"]] == [p["name"] for p in METADATA["parameters"]]


def test_entry_point_runs_locally_with_the_template_parameters(tmp_path):
  events = tmp_path / "events.jsonl"
  events.write_text("\n".join(json.dumps({"event_id": f"t{i}", "session_id": "s", "text": t,
                                          "timestamp": 1772442900 + i})
                              for i, t in enumerate(["how do I reset my password", "cancel my plan", "{bad"])) + "\nnot json\n")
  kb = tmp_path / "kb.jsonl"
  kb.write_text(json.dumps({"id": "kb-1", "question": "How do I reset my password?", "answer": "Settings.",
                            "topic": "account"}) + "\n")
  values = {"input": str(events), "knowledge": str(kb), "decisions_output": str(tmp_path / "d.jsonl"),
            "dead_letter_output": str(tmp_path / "dl.jsonl"), "store": f"local:{tmp_path}/store",
            "summary_output": str(tmp_path / "summary.json"), "metrics_output": str(tmp_path / "m.prom"),
            "audit_output": str(tmp_path / "audit"), "progress_interval": "0"}
  actions = _actions()
  args = []
  for p in METADATA["parameters"]:
    default = actions[p["name"]].default
    args.append(f"--{p['name']}={values.get(p['name'], '' if default is None else default)}")
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "pipelines", "agent_pipeline.py"), "--runner",
                         "DirectRunner", *args], capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, HF_HUB_OFFLINE="1"), cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  decisions = open(tmp_path / "d.jsonl").read().splitlines()
  dead = open(tmp_path / "dl.jsonl").read().splitlines()
  assert len(decisions) == 3 and len(dead) == 1
  assert json.load(open(tmp_path / "summary.json"))["accounted"] is True
