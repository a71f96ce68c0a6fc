"""agentflow: streaming autonomous-agent workflows on Apache Beam.

Preprocess -> Embed (RunInference) -> VectorUpsert -> Retrieve -> Decide, each a
PTransform usable alone, composed by `AgentGraph`.
"""
from agentflow.decide import Decide
from agentflow.embed import Embed
from agentflow.graph import AgentGraph, GraphConfig
from agentflow.knowledge import IngestKnowledge, parse_knowledge
from agentflow.models import (CachingEmbeddingHandler, EmbeddingModelHandler, SentenceTransformerHandler,
                              model_from_spec)
from agentflow.options import AgentflowOptions
from agentflow.policies import (AnomalyThresholdPolicy, DecisionPolicy, RetrievalAnswerPolicy,
                                SimilarityRoutingPolicy)
from agentflow.portable_pubsub import PublishToPubSub, PullConfig, PullFromPubSub
from agentflow.preprocess import InvalidEvent, Preprocess, PreprocessConfig, parse_event
from agentflow.retrieve import Retrieve, RetrieveConfig
from agentflow.stage import DeadLetterError, RetryPolicy
from agentflow.stores import QueryFilter, StoreError, TransientReason, VectorStore, store_from_uri
from agentflow.stores.local import LocalStoreConfig, LocalVectorStore
from agentflow.stores.vespa import VespaConfig, VespaVectorStore
from agentflow.stores.vespa_app import VespaSchemaConfig, application_package
from agentflow.summary import RunSummary
from agentflow.types import AgentEvent, DeadLetter, Decision, Document, Hit, Retrieval, document_id
from agentflow.upsert import UpsertConfig, VectorUpsert

__version__ = "0.1.0"

_LAZY = {"StoreEnrichmentHandler": "agentflow.beam_adapters", "StoreWriteConfig": "agentflow.beam_adapters"}


def __getattr__(name):
  """Beam's Enrichment imports the GCP clients (seconds); load the adapters only when asked for."""
  if name in _LAZY:
    import importlib
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module 'agentflow' has no attribute {name!r}")

__all__ = [
    "AgentEvent", "AgentGraph", "AnomalyThresholdPolicy", "CachingEmbeddingHandler", "SimilarityRoutingPolicy", "AgentflowOptions", "DeadLetter", "DeadLetterError", "Decide",
    "Decision", "DecisionPolicy", "Document", "Embed", "EmbeddingModelHandler", "GraphConfig", "Hit",
    "IngestKnowledge", "InvalidEvent", "LocalStoreConfig", "LocalVectorStore", "Preprocess",
    "PreprocessConfig", "PublishToPubSub", "PullConfig", "PullFromPubSub", "QueryFilter", "Retrieval", "RetrievalAnswerPolicy", "Retrieve",
    "RetrieveConfig", "RetryPolicy", "RunSummary", "SentenceTransformerHandler", "StoreEnrichmentHandler",
    "StoreError", "StoreWriteConfig", "TransientReason", "VespaConfig", "VespaSchemaConfig", "VespaVectorStore",
    "application_package",
    "UpsertConfig", "VectorStore", "VectorUpsert", "document_id", "model_from_spec", "parse_event",
    "parse_knowledge", "store_from_uri",
]
