"""Decision policies for `Decide`."""
from agentflow.policies.anomaly import ALERT, OK, AnomalyThresholdPolicy
from agentflow.policies.base import DecisionPolicy
from agentflow.policies.centroid_answer import CentroidAnswerPolicy
from agentflow.policies.llm import LLMPolicy, OpenAICompatibleHandler, PromptConfig, build_prompt
from agentflow.policies.retrieval_answer import ESCALATE, REPLY, RetrievalAnswerPolicy
from agentflow.policies.routing import ROUTE, SimilarityRoutingPolicy

__all__ = ["ALERT", "AnomalyThresholdPolicy", "CentroidAnswerPolicy", "DecisionPolicy", "ESCALATE", "LLMPolicy", "OK",
           "OpenAICompatibleHandler", "PromptConfig", "REPLY", "ROUTE", "build_prompt",
           "RetrievalAnswerPolicy", "SimilarityRoutingPolicy"]
