"""Alert when an event is far from everything normal it is compared with."""
from __future__ import annotations

from dataclasses import dataclass

from agentflow.policies.base import DecisionPolicy
from agentflow.types import Decision, Retrieval

ALERT = "alert"
OK = "ok"


@dataclass
class AnomalyThresholdPolicy(DecisionPolicy):
  """Anomaly score = 1 - mean similarity to the `k` nearest hits; alert when >= `threshold`.

  The mean over several neighbours is steadier than the single nearest one, which a
  lone earlier outlier could match. With fewer than `min_neighbours` hits there is no
  notion of normal yet: the decision is "ok" with confidence 0 and reason `cold_start`.
  Confidence of an alert grows with how far past the threshold the score is.
  """
  threshold: float = 0.05
  k: int = 5
  min_neighbours: int = 3
  name: str = "anomaly_threshold"

  def __post_init__(self):
    if not 0.0 < self.threshold <= 2.0:
      raise ValueError(f"threshold must be in (0, 2] (a cosine distance), got {self.threshold}")

  def decide(self, retrieval: Retrieval) -> Decision:
    nearest = sorted(retrieval.hits, key=lambda h: -h.score)[:self.k]
    if len(nearest) < self.min_neighbours:
      return self.decision(retrieval, OK, 0.0, reason="cold_start", neighbours=len(nearest))
    score = 1.0 - sum(h.score for h in nearest) / len(nearest)
    cited = [h.id for h in nearest]
    if score >= self.threshold:
      return self.decision(retrieval, ALERT, min(1.0, 0.5 + 0.5 * (score - self.threshold) / self.threshold),
                           cited_ids=cited, anomaly_score=round(score, 6))
    return self.decision(retrieval, OK, 1.0 - score / self.threshold, cited_ids=cited,
                         anomaly_score=round(score, 6))
