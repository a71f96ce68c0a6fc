"""Route an event to the queue (or model, or signal) its nearest labelled neighbours vote for."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from agentflow.policies.base import DecisionPolicy
from agentflow.types import Decision, Retrieval

ROUTE = "route"


@dataclass
class SimilarityRoutingPolicy(DecisionPolicy):
  """Similarity-weighted vote over the top `k` hits carrying `metadata[route_field]`.

  Only hits with similarity >= `min_score` vote; with none, the event goes to
  `default_route` with confidence 0. Confidence is the winner's share of the vote.
  """
  k: int = 5
  min_score: float = 0.5
  default_route: str = "default"
  route_field: str = "route"
  name: str = "similarity_routing"

  def decide(self, retrieval: Retrieval) -> Decision:
    voters = [h for h in sorted(retrieval.hits, key=lambda h: -h.score)
              if h.metadata.get(self.route_field) and h.score >= self.min_score][:self.k]
    if not voters:
      return self.decision(retrieval, ROUTE, 0.0, cited_ids=(), route=self.default_route, votes={})
    votes = defaultdict(float)
    for h in voters:
      votes[str(h.metadata[self.route_field])] += h.score
    route = max(votes, key=lambda r: (votes[r], r))
    cited = [h.id for h in voters if str(h.metadata[self.route_field]) == route]
    return self.decision(retrieval, ROUTE, votes[route] / sum(votes.values()), cited_ids=cited, route=route,
                         votes={r: round(v, 4) for r, v in sorted(votes.items())})
