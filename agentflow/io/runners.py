"""Which runner a pipeline runs on, and what that decides for IO and for state expiry."""
from __future__ import annotations

from apache_beam.options.pipeline_options import StandardOptions

PORTABLE_RUNNERS = ("FlinkRunner", "PrismRunner", "PortableRunner", "SparkRunner")
# Portable runners that finalize every bundle, which agentflow's Pub/Sub source acks on.
# Flink finalizes only on completed checkpoints, and a Flink job with this source and
# checkpointing on produced nothing here (tests/test_pubsub_portable.py notes it).
PYTHON_PUBSUB_SOURCE_RUNNERS = ("PrismRunner",)
# Runners whose timers fire at once, whatever time they are set for. Prism (Beam 2.62) hands a
# stateful stage every pending event-time timer of a key with that key's next bundle, without
# comparing its firing time to the watermark (prism/internal/engine/elementmanager.go,
# startEventTimeBundle), and moves its processing-time clock to the next timer that is set
# (ProcessingTimeNow, "test mode"): Dedupe's day-long timer fired within a bundle and a
# redelivery seconds later was decided again.
TIMERS_FIRE_AT_ONCE_RUNNERS = ("PrismRunner",)


def runner_name(pipeline) -> str:
  """The class name of the runner `pipeline` runs on, e.g. "PrismRunner"."""
  name = type(pipeline.runner).__name__ if pipeline.runner is not None else ""
  if not name or name == "TestPipeline":
    name = declared_runner(pipeline.options)
  return name


def declared_runner(options) -> str:
  """`--runner` as a class name: "prism", "PrismRunner" and a dotted path all give "PrismRunner"."""
  declared = options.view_as(StandardOptions).runner
  if not declared:
    return ""
  if not isinstance(declared, str):
    return type(declared).__name__
  short = declared.rsplit(".", 1)[-1].lower()
  known = {r.lower(): r for r in PORTABLE_RUNNERS}
  return known.get(short, known.get(short + "runner", declared))


def state_expires(pipeline) -> bool:
  """Whether stages that forget keyed state after a while (Dedupe, SessionMemory) may set the
  timer that forgets it on `pipeline`: not on TIMERS_FIRE_AT_ONCE_RUNNERS, where that timer
  would forget it at once; there the state stays for the life of the job."""
  return runner_name(pipeline) not in TIMERS_FIRE_AT_ONCE_RUNNERS
