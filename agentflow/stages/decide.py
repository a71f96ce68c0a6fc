"""Decide: `Retrieval` -> `Decision` through a `DecisionPolicy`."""
from __future__ import annotations

import time

import apache_beam as beam

from agentflow.observability import metrics
from agentflow.policies.base import DecisionPolicy
from agentflow.stages.base import DEAD_LETTER, MAIN, Stage, StageCounters


class _DecideFn(beam.DoFn):

  def __init__(self, policy: DecisionPolicy):
    self.policy = policy

  def setup(self):
    self.counters = StageCounters("decide")
    self.actions = {}
    self.policy.setup()

  def teardown(self):
    self.policy.teardown()

  def process(self, retrieval):
    self.counters.inputs.inc()
    start = time.perf_counter()
    try:
      decision = self.policy.decide(retrieval)
    except Exception as e:  # pylint: disable=broad-except
      yield self.counters.event_dead_letter("policy_error", f"{type(e).__name__}: {e}", retrieval.event)
      return
    self.counters.latency_us.update(int((time.perf_counter() - start) * 1e6))
    counter = self.actions.get(decision.action)
    if counter is None:
      counter = self.actions[decision.action] = metrics.counter(f"decision.{decision.action}")
    counter.inc()
    self.counters.outputs.inc()
    yield decision


class Decide(Stage):
  """Applies `policy` to each `Retrieval`; policy exceptions become dead letters."""

  def __init__(self, policy: DecisionPolicy):
    super().__init__()
    self.policy = policy

  def expand_tagged(self, pcoll):
    return pcoll | "Decide" >> beam.ParDo(_DecideFn(self.policy)).with_outputs(DEAD_LETTER, main=MAIN)
