"""Decision policies for `Decide`."""
from agentflow.policies.base import DecisionPolicy
from agentflow.policies.retrieval_answer import ESCALATE, REPLY, RetrievalAnswerPolicy

__all__ = ["DecisionPolicy", "ESCALATE", "REPLY", "RetrievalAnswerPolicy"]
