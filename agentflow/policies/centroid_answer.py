"""Reply with the known answer whose questions, taken together, are nearest; else escalate."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from agentflow.policies.base import DecisionPolicy
from agentflow.policies.retrieval_answer import ESCALATE, REPLY
from agentflow.types import KIND_ANSWER, Decision, Retrieval, is_knowledge

NO_ANSWERS = "no_answers"
_LOG = logging.getLogger(__name__)
_warned = []  # once per process: a stream would repeat it for every event


def _warn_no_answers() -> None:
  if not _warned:
    _warned.append(True)
    _LOG.warning("no known answer among the retrieved hits; if the store was ingested before answer documents "
                 "existed, run `agentflow ingest --knowledge FILE` again, or use --answer_policy top1")


@dataclass(frozen=True)
class CentroidAnswerPolicy(DecisionPolicy):
  """Replies with the nearest answer's text when its similarity is >= `threshold`.

  Knowledge ingestion stores each distinct answer as one document: the normalised mean of
  its questions' vectors (`agentflow.stages.knowledge.answer_centroid`). The graph retrieves
  those (`retrieve_kind`), so an answer is scored by how close the event is to all of its
  phrasings at once, not to whichever single phrasing happens to be nearest: a question
  that falls between two near-synonymous intents no longer flips on one neighbour, and an
  out-of-scope question close to one odd phrasing scores lower. With one question per
  answer the centroid is that question, and decisions equal `RetrievalAnswerPolicy`'s.

  Decisions carry `score` (the best answer's similarity, which the threshold applies to),
  `knowledge_id` of that answer (also on escalations, so `agentflow eval` can sweep the
  threshold) and `margin` to the runner-up answer. Question documents (kind knowledge)
  count as answers of their own when no answer document is among the hits, so a store
  ingested before answer documents existed still works as top-1 matching.
  """
  threshold: float = 0.45
  answer_field: str = "answer"
  max_cited: int = 3
  name: str = "centroid_answer"
  retrieve_kind = KIND_ANSWER

  def __post_init__(self):
    if not -1.0 <= self.threshold <= 1.0:
      raise ValueError(f"threshold must be a cosine similarity in [-1, 1], got {self.threshold}")
    if self.max_cited < 1:
      raise ValueError(f"max_cited must be >= 1, got {self.max_cited}")

  def decide(self, retrieval: Retrieval) -> Decision:
    answerable = [h for h in retrieval.hits if is_knowledge(h) and h.metadata.get(self.answer_field)]
    centroids = [h for h in answerable if h.kind == KIND_ANSWER]
    ranked = sorted(centroids or answerable, key=lambda h: -h.score)
    best_by_answer = {}
    for h in ranked:
      best_by_answer.setdefault(str(h.metadata[self.answer_field]), h)
    answers = list(best_by_answer.values())
    cited = [h.id for h in sorted(retrieval.hits, key=lambda h: -h.score)[:self.max_cited]]
    if not answers:
      _warn_no_answers()
      return self.decision(retrieval, ESCALATE, 1.0, "", cited, score=0.0, reason=NO_ANSWERS)
    best = answers[0]
    margin = best.score - answers[1].score if len(answers) > 1 else best.score
    about = dict(score=round(best.score, 4), margin=round(margin, 4),
                 knowledge_id=best.metadata.get("knowledge_id", ""), topic=best.metadata.get("topic", ""))
    if best.score >= self.threshold:
      return self.decision(retrieval, REPLY, best.score, str(best.metadata[self.answer_field]), [best.id],
                           matched_question=best.text, questions=best.metadata.get("questions", 1), **about)
    return self.decision(retrieval, ESCALATE, 1.0 - max(0.0, best.score), "", cited, best_score=about["score"],
                         **about)
