"""The decision policy extension point."""
from __future__ import annotations

import abc
import hashlib

from agentflow.types import Decision, Retrieval, payload_of


class DecisionPolicy(abc.ABC):
  """Turns an event, its retrieved contexts and its session memory into a `Decision`.

  Policies are pickled to workers; open clients or load resources in `setup()`. A policy
  that reads `retrieval.memory` sets `uses_memory = True`, and `AgentGraph` then adds
  session memory (a keyed, stateful stage) in front of it; others skip that cost.
  """

  name: str = "policy"
  uses_memory: bool = False

  def setup(self) -> None:  # noqa: B027 (optional hook)
    """Called once per worker before the first `decide`."""

  def teardown(self) -> None:  # noqa: B027 (optional hook)
    """Called when the worker discards the policy."""

  @abc.abstractmethod
  def decide(self, retrieval: Retrieval) -> Decision:
    """Decide for one event. Raising dead-letters the event with reason `policy_error`."""

  def decision(self, retrieval: Retrieval, action: str, confidence: float, response: str = "",
               cited_ids=(), **metadata) -> Decision:
    """Build a `Decision` carrying the event's identifiers."""
    e = retrieval.event
    return Decision(event_id=e.event_id, session_id=e.session_id, action=action,
                    confidence=round(float(min(1.0, max(0.0, confidence))), 4), policy=self.name,
                    response=response, cited_ids=tuple(cited_ids), tenant=e.tenant,
                    language=e.language, model_id=e.model_id, trace_id=e.trace_id,
                    request_digest=hashlib.sha256(payload_of(e).encode("utf-8")).hexdigest(),
                    metadata=metadata)
