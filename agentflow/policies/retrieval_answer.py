"""Reply with the best-matching known answer, or escalate to a human."""
from __future__ import annotations

from dataclasses import dataclass

from agentflow.policies.base import DecisionPolicy
from agentflow.types import Decision, Retrieval, is_knowledge

REPLY = "reply"
ESCALATE = "escalate"


@dataclass
class RetrievalAnswerPolicy(DecisionPolicy):
  """Replies with hit `metadata[answer_field]` when the best hit's similarity >= `threshold`.

  Confidence of a reply is the similarity of the cited hit; confidence of an escalation
  is how far the best hit fell short of a match (1 - similarity). Only ingested knowledge
  (`is_knowledge`) can be answered from: an event whose attributes hold an answer never is.
  Decisions carry `score` (the best similarity) and that hit's `knowledge_id`, escalations
  too, so `agentflow eval` can sweep the threshold.
  """
  threshold: float = 0.45
  answer_field: str = "answer"
  max_cited: int = 3
  name: str = "retrieval_answer"

  def __post_init__(self):
    if not -1.0 <= self.threshold <= 1.0:
      raise ValueError(f"threshold must be a cosine similarity in [-1, 1], got {self.threshold}")

  def decide(self, retrieval: Retrieval) -> Decision:
    answerable = [h for h in retrieval.hits if is_knowledge(h) and h.metadata.get(self.answer_field)]
    best = max(answerable, key=lambda h: h.score, default=None)
    cited = [h.id for h in sorted(retrieval.hits, key=lambda h: -h.score)[:self.max_cited]]
    if best is not None and best.score >= self.threshold:
      return self.decision(retrieval, REPLY, best.score, str(best.metadata[self.answer_field]),
                           [best.id], matched_question=best.text, topic=best.metadata.get("topic", ""),
                           knowledge_id=best.metadata.get("knowledge_id", ""), score=round(best.score, 4))
    best_score = best.score if best is not None else 0.0
    return self.decision(retrieval, ESCALATE, 1.0 - max(0.0, best_score), "", cited,
                         best_score=round(best_score, 4), score=round(best_score, 4),
                         knowledge_id=best.metadata.get("knowledge_id", "") if best is not None else "")
