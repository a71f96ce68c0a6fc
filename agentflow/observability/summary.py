"""The run summary: counts per stage, per dead-letter reason and per action, from Beam metrics."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Dict

from apache_beam.metrics.metric import MetricsFilter

from agentflow.observability.metrics import INFERENCE_NAMESPACE, NAMESPACE

STAGES = ("knowledge", "preprocess", "dedupe", "embed", "upsert", "retrieve", "decide")
DUPLICATES = "dedupe.duplicates"


@dataclass
class RunSummary:
  """What a finished run did. `accounted` is true when decisions + dead letters + duplicates = inputs.

  `duplicates` are redeliveries Dedupe dropped (same event id, same payload): counted
  here rather than dead-lettered, so the identity still accounts for every input.
  """
  inputs: int = 0
  decisions: int = 0
  dead_letters: int = 0
  duplicates: int = 0
  stages: Dict[str, Dict[str, int]] = field(default_factory=dict)
  dead_letter_reasons: Dict[str, int] = field(default_factory=dict)
  actions: Dict[str, int] = field(default_factory=dict)
  pii_redacted: Dict[str, int] = field(default_factory=dict)
  other: Dict[str, int] = field(default_factory=dict)
  latencies_ms: Dict[str, Dict[str, float]] = field(default_factory=dict)
  elapsed_s: float = 0.0

  @property
  def accounted(self) -> bool:
    return self.decisions + self.dead_letters + self.duplicates == self.inputs

  @classmethod
  def from_counters(cls, counters: Dict[str, int], first_stage: str = "preprocess",
                    last_stage: str = "decide", elapsed_s: float = 0.0) -> RunSummary:
    s = cls(elapsed_s=round(elapsed_s, 2))
    for name, value in sorted(counters.items()):
      stage, _, rest = name.partition(".")
      if stage in STAGES and rest in ("in", "out"):
        s.stages.setdefault(stage, {"in": 0, "out": 0})[rest] = value
      elif stage in STAGES and rest.startswith("dead_letter."):
        s.dead_letter_reasons[f"{stage}.{rest[len('dead_letter.'):]}"] = value
        s.dead_letters += value
      elif name == DUPLICATES:
        s.duplicates = value
      elif stage == "decision":
        s.actions[rest] = value
      elif stage == "pii":
        s.pii_redacted[rest.rpartition(".")[2]] = value
      else:
        s.other[name] = value
    s.inputs = s.stages.get(first_stage, {}).get("in", 0)
    s.decisions = s.stages.get(last_stage, {}).get("out", 0)
    return s

  @classmethod
  def from_result(cls, result, **kwargs) -> RunSummary:
    summary = cls.from_counters(counters_of(result), **kwargs)
    summary.latencies_ms = distributions_of(result)
    return summary

  def prometheus(self) -> str:
    """The summary in Prometheus text exposition format (for a node-exporter textfile or a push)."""
    out = ["# HELP agentflow_stage_elements_total Elements into and out of each stage.",
           "# TYPE agentflow_stage_elements_total counter"]
    for stage, io in sorted(self.stages.items()):
      for direction, n in sorted(io.items()):
        out.append(f'agentflow_stage_elements_total{{stage="{stage}",direction="{direction}"}} {n}')
    out += ["# HELP agentflow_dead_letters_total Dead letters by stage and reason.",
            "# TYPE agentflow_dead_letters_total counter"]
    for key, n in sorted(self.dead_letter_reasons.items()):
      stage, _, reason = key.partition(".")
      out.append(f'agentflow_dead_letters_total{{stage="{stage}",reason="{reason}"}} {n}')
    out += ["# HELP agentflow_decisions_total Decisions by action.", "# TYPE agentflow_decisions_total counter"]
    out += [f'agentflow_decisions_total{{action="{a}"}} {n}' for a, n in sorted(self.actions.items())]
    out += ["# HELP agentflow_pii_redacted_total PII spans redacted, by kind.",
            "# TYPE agentflow_pii_redacted_total counter"]
    out += [f'agentflow_pii_redacted_total{{kind="{k}"}} {n}' for k, n in sorted(self.pii_redacted.items())]
    out += ["# HELP agentflow_latency_ms Latency per store batch (upsert, retrieve), inference batch (embed) "
            "or decision.",
            "# TYPE agentflow_latency_ms summary"]
    for name, d in sorted(self.latencies_ms.items()):
      stage = name.split(".")[0]
      out.append(f'agentflow_latency_ms_sum{{stage="{stage}"}} {d["sum"]}')
      out.append(f'agentflow_latency_ms_count{{stage="{stage}"}} {d["count"]}')
    out += ["# HELP agentflow_duplicates_dropped_total Redeliveries dropped by Dedupe (same event id and payload).",
            "# TYPE agentflow_duplicates_dropped_total counter",
            f"agentflow_duplicates_dropped_total {self.duplicates}"]
    out += ["# HELP agentflow_run_accounted 1 when decisions + dead letters + duplicates dropped = inputs.",
            "# TYPE agentflow_run_accounted gauge", f"agentflow_run_accounted {int(self.accounted)}"]
    return "\n".join(out) + "\n"

  def to_json(self) -> str:
    return json.dumps({**asdict(self), "accounted": self.accounted}, indent=2, sort_keys=True)

  def _rate(self) -> str:
    return f" ({self.inputs / self.elapsed_s:.1f} events/s)" if self.elapsed_s > 0 and self.inputs else ""

  def format(self, title: str = "agentflow run summary", outputs: str = "decisions") -> str:
    dropped = f"duplicates dropped {self.duplicates}  " if self.duplicates else ""
    lines = [title, f"  inputs {self.inputs}  {outputs} {self.decisions}  dead letters "
             f"{self.dead_letters}  {dropped}accounted {'yes' if self.accounted else 'NO'}  "
             f"elapsed {self.elapsed_s:.1f}s{self._rate()}"]
    if self.stages:
      lines.append(f"  {'stage':<12}{'in':>8}{'out':>8}")
      for stage in STAGES:
        if stage in self.stages:
          lines.append(f"  {stage:<12}{self.stages[stage]['in']:>8}{self.stages[stage]['out']:>8}")
    if self.latencies_ms:
      lines.append(f"  {'latency (ms)':<22}{'count':>8}{'mean':>8}{'max':>8}")
      for name, d in sorted(self.latencies_ms.items()):
        lines.append(f"  {name:<22}{d['count']:>8}{d['mean']:>8.1f}{d['max']:>8.1f}")
    for title_, table in (("dead letters by reason", self.dead_letter_reasons),
                          ("decisions by action", self.actions), ("PII redacted", self.pii_redacted)):
      if table:
        lines.append(f"  {title_}:")
        lines.extend(f"    {k:<34}{v:>8}" for k, v in sorted(table.items()))
    return "\n".join(lines)


def counters_of(result) -> Dict[str, int]:
  """Committed (else attempted) values of agentflow's counters in a PipelineResult."""
  out: Dict[str, int] = {}
  for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
    value = c.committed if c.committed is not None else c.attempted
    out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
  return out


_LATENCIES = {(NAMESPACE, f"{s}.latency_us"): s for s in STAGES}
_LATENCIES[(INFERENCE_NAMESPACE, "inference_batch_latency_micro_secs")] = "embed"


def distributions_of(result) -> Dict[str, Dict[str, float]]:
  """Per-stage latency in ms (count, sum, mean, min, max): agentflow's own and RunInference's."""
  merged: Dict[str, Dict[str, float]] = {}
  for d in result.metrics().query()["distributions"]:
    stage = _LATENCIES.get((d.key.metric.namespace, d.key.metric.name))
    value = d.committed if d.committed is not None else d.attempted
    if stage is None or value is None or not value.count:
      continue
    m = merged.setdefault(stage, {"count": 0, "sum": 0.0, "min": value.min / 1000, "max": value.max / 1000})
    m["count"] += value.count
    m["sum"] += value.sum / 1000
    m["min"], m["max"] = min(m["min"], value.min / 1000), max(m["max"], value.max / 1000)
  for m in merged.values():
    m["mean"] = round(m["sum"] / m["count"], 3)
  return merged
