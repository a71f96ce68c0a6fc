"""The agent graph's stages: Preprocess -> Dedupe -> Embed -> VectorUpsert -> Retrieve -> Decide.

Each is a PTransform usable alone; `AgentGraph` wires them with their dead letters.
`base` holds what every stage shares (dead-letter output, metrics, retries).
"""
from agentflow.stages.base import DeadLetterError, RetryPolicy, Stage
from agentflow.stages.decide import Decide
from agentflow.stages.dedupe import Dedupe, DedupeConfig
from agentflow.stages.embed import Embed
from agentflow.stages.graph import AgentGraph, GraphConfig
from agentflow.stages.knowledge import IngestKnowledge, parse_knowledge
from agentflow.stages.preprocess import InvalidEvent, Preprocess, PreprocessConfig, parse_event
from agentflow.stages.retrieve import Retrieve, RetrieveConfig
from agentflow.stages.upsert import UpsertConfig, VectorUpsert

__all__ = [
    "AgentGraph", "DeadLetterError", "Decide", "Dedupe", "DedupeConfig", "Embed", "GraphConfig", "IngestKnowledge",
    "InvalidEvent",
    "Preprocess", "PreprocessConfig", "Retrieve", "RetrieveConfig", "RetryPolicy", "Stage", "UpsertConfig",
    "VectorUpsert", "parse_event", "parse_knowledge",
]
