"""The run summary: counts per stage, per dead-letter reason and per action, from Beam metrics."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Dict

from apache_beam.metrics.metric import MetricsFilter

from agentflow.stage import NAMESPACE

STAGES = ("knowledge", "preprocess", "embed", "upsert", "retrieve", "decide")


@dataclass
class RunSummary:
  """What a finished run did. `accounted` is true when decisions + dead letters = inputs."""
  inputs: int = 0
  decisions: int = 0
  dead_letters: int = 0
  stages: Dict[str, Dict[str, int]] = field(default_factory=dict)
  dead_letter_reasons: Dict[str, int] = field(default_factory=dict)
  actions: Dict[str, int] = field(default_factory=dict)
  pii_redacted: Dict[str, int] = field(default_factory=dict)
  other: Dict[str, int] = field(default_factory=dict)
  elapsed_s: float = 0.0

  @property
  def accounted(self) -> bool:
    return self.decisions + self.dead_letters == self.inputs

  @classmethod
  def from_counters(cls, counters: Dict[str, int], first_stage: str = "preprocess",
                    last_stage: str = "decide", elapsed_s: float = 0.0) -> "RunSummary":
    s = cls(elapsed_s=round(elapsed_s, 2))
    for name, value in sorted(counters.items()):
      stage, _, rest = name.partition(".")
      if stage in STAGES and rest in ("in", "out"):
        s.stages.setdefault(stage, {"in": 0, "out": 0})[rest] = value
      elif stage in STAGES and rest.startswith("dead_letter."):
        s.dead_letter_reasons[f"{stage}.{rest[len('dead_letter.'):]}"] = value
        s.dead_letters += value
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
  def from_result(cls, result, **kwargs) -> "RunSummary":
    return cls.from_counters(counters_of(result), **kwargs)

  def to_json(self) -> str:
    return json.dumps({**asdict(self), "accounted": self.accounted}, indent=2, sort_keys=True)

  def format(self, title: str = "agentflow run summary", outputs: str = "decisions") -> str:
    lines = [title, f"  inputs {self.inputs}  {outputs} {self.decisions}  dead letters "
             f"{self.dead_letters}  accounted {'yes' if self.accounted else 'NO'}  "
             f"elapsed {self.elapsed_s:.1f}s"]
    if self.stages:
      lines.append(f"  {'stage':<12}{'in':>8}{'out':>8}")
      for stage in STAGES:
        if stage in self.stages:
          lines.append(f"  {stage:<12}{self.stages[stage]['in']:>8}{self.stages[stage]['out']:>8}")
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
