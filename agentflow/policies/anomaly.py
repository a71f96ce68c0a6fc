"""Alert when an event is far from everything normal it is compared with."""
from __future__ import annotations

from dataclasses import dataclass

from agentflow.policies.base import DecisionPolicy
from agentflow.types import Decision, Retrieval

ALERT = "alert"
OK = "ok"
COLD_START = "cold_start"


@dataclass
class AnomalyThresholdPolicy(DecisionPolicy):
  """Anomaly score = 1 - mean similarity to the `k` nearest hits; "alert" when >= `threshold`.

  The mean over several neighbours is steadier than the distance to the k-th one, which
  a few earlier outliers could make look normal or abnormal alone. With fewer than
  `min_neighbours` hits there is no notion of normal yet (cold start): the decision is
  "ok" with confidence 0 and reason `cold_start`, so nothing alerts on an empty store.
  Confidence is how far the score sits from the threshold, relative to the threshold:
  0 on the boundary, 1 for a score of 0 ("ok") or of twice the threshold ("alert").
  """
  threshold: float = 0.05
  k: int = 5
  min_neighbours: int = 3
  name: str = "anomaly_threshold"

  def __post_init__(self):
    if not 0.0 < self.threshold <= 2.0:
      raise ValueError(f"threshold must be in (0, 2] (a cosine distance), got {self.threshold}")
    if not 1 <= self.min_neighbours <= self.k:
      raise ValueError(f"need 1 <= min_neighbours <= k, got min_neighbours={self.min_neighbours}, k={self.k}")

  def decide(self, retrieval: Retrieval) -> Decision:
    nearest = sorted(retrieval.hits, key=lambda h: -h.score)[:self.k]
    if len(nearest) < self.min_neighbours:
      return self.decision(retrieval, OK, 0.0, reason=COLD_START, neighbours=len(nearest))
    score = 1.0 - sum(h.score for h in nearest) / len(nearest)
    action = ALERT if score >= self.threshold else OK
    return self.decision(retrieval, action, abs(score - self.threshold) / self.threshold,
                         cited_ids=[h.id for h in nearest], anomaly_score=round(score, 6),
                         neighbours=len(nearest))
