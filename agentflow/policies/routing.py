"""Route an event to the queue (or model, or signal) its nearest labelled neighbours vote for."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from agentflow.policies.base import DecisionPolicy
from agentflow.types import Decision, Retrieval

ROUTE = "route"
NO_MATCH = "no_match"


@dataclass
class SimilarityRoutingPolicy(DecisionPolicy):
  """Similarity-weighted vote among the `k` nearest hits that carry `metadata[route_field]`.

  Only labelled hits with similarity >= `min_score` vote, each with its similarity as
  weight, so one close neighbour can outvote several loose ones. Confidence is the
  winner's share of the total weight; a tie goes to the route of the nearest voter.
  With no voter the event goes to `default_route` with confidence 0 and reason
  `no_match`. Unlabelled hits (e.g. earlier events) neither vote nor use up `k`.
  """
  k: int = 5
  min_score: float = 0.5
  default_route: str = "default"
  route_field: str = "route"
  name: str = "similarity_routing"

  def __post_init__(self):
    if self.k < 1:
      raise ValueError(f"k must be >= 1, got {self.k}")
    if not 0.0 < self.min_score <= 1.0:
      raise ValueError(f"min_score must be a positive cosine similarity in (0, 1], got {self.min_score}")

  def decide(self, retrieval: Retrieval) -> Decision:
    voters = [h for h in sorted(retrieval.hits, key=lambda h: -h.score)
              if h.metadata.get(self.route_field) and h.score >= self.min_score][:self.k]
    if not voters:
      return self.decision(retrieval, ROUTE, 0.0, route=self.default_route, reason=NO_MATCH, votes={})
    votes, nearest = defaultdict(float), {}
    for rank, h in enumerate(voters):
      route = str(h.metadata[self.route_field])
      votes[route] += h.score
      nearest.setdefault(route, rank)
    route = max(votes, key=lambda r: (votes[r], -nearest[r]))
    cited = [h.id for h in voters if str(h.metadata[self.route_field]) == route]
    return self.decision(retrieval, ROUTE, votes[route] / sum(votes.values()), cited_ids=cited, route=route,
                         votes={r: round(v, 4) for r, v in sorted(votes.items())})
