"""Similarity routing and anomaly-threshold policies on hand-built hits."""
import pytest

from agentflow import AgentEvent, AnomalyThresholdPolicy, SimilarityRoutingPolicy
from agentflow.types import Hit, Retrieval


def _r(*hits):
  return Retrieval(AgentEvent(event_id="e", session_id="s", text="t", timestamp=1.0), list(hits))


def _h(i, score, route=None):
  return Hit(id=f"h{i}", score=score, metadata={"route": route} if route else {})


def test_routing_weighted_vote_and_fallback():
  p = SimilarityRoutingPolicy(k=5, min_score=0.5, default_route="triage")
  d = p.decide(_r(_h(1, 0.9, "billing"), _h(2, 0.6, "tech"), _h(3, 0.55, "tech"), _h(4, 0.4, "legal")))
  assert d.metadata["route"] == "tech" and d.cited_ids == ("h2", "h3")
  assert d.confidence == pytest.approx(1.15 / 2.05, abs=1e-3)
  d = p.decide(_r(_h(1, 0.95, "billing"), _h(2, 0.6, "tech")))
  assert d.metadata["route"] == "billing"
  d = p.decide(_r(_h(1, 0.3, "billing"), _h(2, 0.9)))
  assert (d.metadata["route"], d.confidence, d.cited_ids) == ("triage", 0.0, ())


def test_anomaly_alerts_outliers_only_and_handles_cold_start():
  p = AnomalyThresholdPolicy(threshold=0.1, k=3, min_neighbours=2)
  normal = p.decide(_r(_h(1, 0.98), _h(2, 0.97), _h(3, 0.95), _h(4, 0.1)))
  assert normal.action == "ok" and normal.metadata["anomaly_score"] == pytest.approx(1 - 2.9 / 3, abs=1e-6)
  odd = p.decide(_r(_h(1, 0.7), _h(2, 0.6), _h(3, 0.5)))
  assert odd.action == "alert" and odd.metadata["anomaly_score"] == pytest.approx(0.4)
  assert odd.confidence == 1.0
  cold = p.decide(_r(_h(1, 0.1)))
  assert (cold.action, cold.confidence, cold.metadata["reason"]) == ("ok", 0.0, "cold_start")
  with pytest.raises(ValueError):
    AnomalyThresholdPolicy(threshold=0)
