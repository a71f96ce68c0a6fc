"""The `agentflow` command.

  agentflow run --input EVENTS [--knowledge KB] [--store URI] [beam flags...]   (run --help: every flag)
  agentflow ingest --knowledge KB [--store URI]
  agentflow eval --input EVENTS --knowledge KB --expected LABELS --report REPORT.json [--plot PNG]
                 [--target_precision P] [run flags...]
  agentflow tune --knowledge KB --out DIR [--epochs N]     (then run/eval with --model sentence-transformers:DIR)
  agentflow vespa package --out DIR
  agentflow audit verify DIR
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from typing import List, Optional

# Warnings that third-party libraries print on import or first use and that say nothing about
# the user's run (support-date notices of Google's clients, deprecations inside Beam's deps).
# Filtered in the command only: library users keep Python's defaults.
KNOWN_NOISE = (
    (FutureWarning, r"google(\..*)?$"),
    (DeprecationWarning, r"(google|apache_beam|pkg_resources|proto)(\..*)?$"),
)


def quiet_known_noise() -> None:
  """Ignore KNOWN_NOISE in this process; subprocesses it starts (Beam workers) ignore every
  FutureWarning, since PYTHONWARNINGS cannot name a module prefix."""
  for category, module in KNOWN_NOISE:
    warnings.filterwarnings("ignore", category=category, module=module)
  os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")


def _print_flags(command: str) -> int:
  """`agentflow run|ingest --help`: agentflow's own flags, from AgentflowOptions itself."""
  from agentflow.options import AgentflowOptions
  parser = argparse.ArgumentParser(
      prog=f"agentflow {command}", usage=f"agentflow {command} [agentflow flags] [Beam flags]",
      formatter_class=argparse.ArgumentDefaultsHelpFormatter,
      description="agentflow's flags are below. Beam's own flags (--runner, --streaming, "
                  "--direct_num_workers, runner-specific ones) pass through to Beam unchanged.")
  AgentflowOptions._add_argparse_args(parser)
  parser.print_help()
  return 0


def _wants_help(argv: List[str]) -> bool:
  return "-h" in argv or "--help" in argv


def _run(argv: List[str]) -> int:
  if _wants_help(argv):
    return _print_flags("run")
  from agentflow.job import run
  summary = run(argv)
  return 0 if summary is None or summary.accounted else 3


def _ingest(argv: List[str]) -> int:
  if _wants_help(argv):
    return _print_flags("ingest")
  from apache_beam.options.pipeline_options import PipelineOptions

  from agentflow.job import ingest_knowledge, with_tuned_model
  from agentflow.options import AgentflowOptions
  options = PipelineOptions(with_tuned_model(argv))
  if not options.view_as(AgentflowOptions).knowledge:
    print("agentflow ingest: --knowledge FILE is required", file=sys.stderr)
    return 2
  summary = ingest_knowledge(options)
  print(summary.format("knowledge ingestion", outputs="stored"))
  return 0 if summary.accounted else 3


def _vespa(argv: List[str]) -> int:
  try:
    from agentflow.stores.vespa_app import main_vespa_package
  except ImportError as e:
    print(f"agentflow vespa: unavailable ({e})", file=sys.stderr)
    return 2
  if not argv or argv[0] != "package":
    print("usage: agentflow vespa package --out DIR [--dimension N]", file=sys.stderr)
    return 2
  return main_vespa_package(argv[1:])


def _eval(argv: List[str]) -> int:
  if _wants_help(argv):
    from agentflow.evaluation import eval_parser
    eval_parser().print_help()
    return _print_flags("eval")
  from agentflow.evaluation import main_eval
  return main_eval(argv)


def _tune(argv: List[str]) -> int:
  from agentflow.models.tuning import main_tune
  return main_tune(argv)


def _audit(argv: List[str]) -> int:
  from agentflow.observability.audit import main_audit
  return main_audit(argv)


COMMANDS = {"run": _run, "ingest": _ingest, "eval": _eval, "tune": _tune, "vespa": _vespa, "audit": _audit}


def main(argv: Optional[List[str]] = None) -> int:
  """The `agentflow` console script; returns the process exit code."""
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = argparse.ArgumentParser(prog="agentflow", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("command", choices=sorted(COMMANDS))
  if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
    parser.print_help() if not argv or argv[0] in ("-h", "--help") else parser.parse_args(argv[:1])
    return 0 if argv and argv[0] in ("-h", "--help") else 2
  os.environ.setdefault("HF_HUB_OFFLINE", "1")
  quiet_known_noise()
  logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
  return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
  sys.exit(main())
