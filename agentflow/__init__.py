"""agentflow: streaming autonomous-agent workflows on Apache Beam.

Preprocess -> Dedupe -> Embed (RunInference) -> VectorUpsert -> Retrieve -> Decide, each a
PTransform usable alone, composed by `AgentGraph`.
"""
from agentflow.io.pubsub_portable import PublishToPubSub, PullConfig, PullFromPubSub
from agentflow.models import CachingEmbeddingHandler, EmbeddingModelHandler, SentenceTransformerHandler, model_from_spec
from agentflow.observability.summary import RunSummary
from agentflow.options import AgentflowOptions
from agentflow.policies import AnomalyThresholdPolicy, DecisionPolicy, RetrievalAnswerPolicy, SimilarityRoutingPolicy
from agentflow.stages.base import DeadLetterError, RetryPolicy
from agentflow.stages.decide import Decide
from agentflow.stages.dedupe import Dedupe, DedupeConfig
from agentflow.stages.embed import Embed
from agentflow.stages.graph import AgentGraph, GraphConfig
from agentflow.stages.knowledge import IngestKnowledge, parse_knowledge
from agentflow.stages.preprocess import InvalidEvent, Preprocess, PreprocessConfig, parse_event
from agentflow.stages.retrieve import Retrieve, RetrieveConfig
from agentflow.stages.upsert import UpsertConfig, VectorUpsert
from agentflow.stores import QueryFilter, StoreError, TransientReason, VectorStore, store_from_uri
from agentflow.stores.local import LocalStoreConfig, LocalVectorStore
from agentflow.stores.vespa import VespaConfig, VespaVectorStore
from agentflow.stores.vespa_app import VespaSchemaConfig, application_package
from agentflow.types import AgentEvent, DeadLetter, Decision, Document, Hit, Retrieval, document_id

__version__ = "0.1.0"

_LAZY = {"StoreEnrichmentHandler": "agentflow.stages.beam_adapters",
         "StoreWriteConfig": "agentflow.stages.beam_adapters"}


def __getattr__(name):
  """Beam's Enrichment imports the GCP clients (seconds); load the adapters only when asked for."""
  if name in _LAZY:
    import importlib
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module 'agentflow' has no attribute {name!r}")

__all__ = [
    "AgentEvent", "AgentGraph", "AgentflowOptions", "AnomalyThresholdPolicy", "CachingEmbeddingHandler",
    "DeadLetter", "DeadLetterError", "Decide", "Decision", "DecisionPolicy", "Dedupe", "DedupeConfig", "Document",
    "Embed",
    "EmbeddingModelHandler", "GraphConfig", "Hit", "IngestKnowledge", "InvalidEvent", "LocalStoreConfig",
    "LocalVectorStore", "Preprocess", "PreprocessConfig", "PublishToPubSub", "PullConfig", "PullFromPubSub",
    "QueryFilter", "Retrieval", "RetrievalAnswerPolicy", "Retrieve", "RetrieveConfig", "RetryPolicy", "RunSummary",
    "SentenceTransformerHandler", "SimilarityRoutingPolicy", "StoreEnrichmentHandler", "StoreError",
    "StoreWriteConfig", "TransientReason", "UpsertConfig", "VectorStore", "VectorUpsert", "VespaConfig",
    "VespaSchemaConfig", "VespaVectorStore", "application_package", "document_id", "model_from_spec",
    "parse_event", "parse_knowledge", "store_from_uri",
]
