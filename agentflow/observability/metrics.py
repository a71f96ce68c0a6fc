"""agentflow's Beam metrics: one namespace, names `<component>.<what>` (e.g. `embed.in`).

Every counter and distribution the library reports goes through here, so the run
summary, Prometheus and OTLP exports find them all under `NAMESPACE`. RunInference
reports its own metrics under the model handler's namespace, `INFERENCE_NAMESPACE`.
"""
from __future__ import annotations

from apache_beam.metrics import Metrics

NAMESPACE = "agentflow"
INFERENCE_NAMESPACE = f"{NAMESPACE}.embed"


def counter(name: str):
  """The Beam counter `name` in agentflow's namespace."""
  return Metrics.counter(NAMESPACE, name)


def distribution(name: str):
  """The Beam distribution `name` in agentflow's namespace."""
  return Metrics.distribution(NAMESPACE, name)
