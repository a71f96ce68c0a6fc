"""The `agentflow` command's own surface: help lists every flag the job reads."""
import argparse
import subprocess
import sys

from agentflow.options import AgentflowOptions


def _flags():
  parser = argparse.ArgumentParser()
  AgentflowOptions._add_argparse_args(parser)
  return [s for a in parser._actions for s in a.option_strings if s.startswith("--")]


def test_run_help_lists_every_agentflow_flag_with_its_default():
  out = subprocess.run([sys.executable, "-m", "agentflow.cli", "run", "--help"], capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == 0, out.stderr
  assert out.stdout.startswith("usage: agentflow run")
  missing = [f for f in _flags() if f not in out.stdout]
  assert not missing
  assert "(default: local:.agentflow/store)" in " ".join(out.stdout.split())


def test_unknown_command_is_a_usage_error():
  out = subprocess.run([sys.executable, "-m", "agentflow.cli", "frobnicate"], capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == 2
  assert "invalid choice" in out.stderr
