"""agentflow: streaming autonomous-agent workflows on Apache Beam.

Preprocess -> Dedupe -> Embed (RunInference) -> VectorUpsert -> Retrieve -> Decide, each a
PTransform usable alone, composed by `AgentGraph`.

The names below are imported on first use, so `import agentflow` (and the `agentflow`
command, which filters third-party warnings before Beam is imported) stays cheap.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "PublishToPubSub": "agentflow.io.pubsub_portable",
    "PullConfig": "agentflow.io.pubsub_portable",
    "PullFromPubSub": "agentflow.io.pubsub_portable",
    "CachingEmbeddingHandler": "agentflow.models",
    "EmbeddingModelHandler": "agentflow.models",
    "SentenceTransformerHandler": "agentflow.models",
    "model_from_spec": "agentflow.models",
    "RunSummary": "agentflow.observability.summary",
    "AgentflowOptions": "agentflow.options",
    "AnomalyThresholdPolicy": "agentflow.policies",
    "CentroidAnswerPolicy": "agentflow.policies",
    "DecisionPolicy": "agentflow.policies",
    "RetrievalAnswerPolicy": "agentflow.policies",
    "SimilarityRoutingPolicy": "agentflow.policies",
    "DeadLetterError": "agentflow.stages.base",
    "RetryPolicy": "agentflow.retry",
    "StoreEnrichmentHandler": "agentflow.stages.beam_adapters",
    "StoreWriteConfig": "agentflow.stages.beam_adapters",
    "Decide": "agentflow.stages.decide",
    "Dedupe": "agentflow.stages.dedupe",
    "DedupeConfig": "agentflow.stages.dedupe",
    "Embed": "agentflow.stages.embed",
    "AgentGraph": "agentflow.stages.graph",
    "GraphConfig": "agentflow.stages.graph",
    "IngestKnowledge": "agentflow.stages.knowledge",
    "parse_knowledge": "agentflow.stages.knowledge",
    "InvalidEvent": "agentflow.stages.preprocess",
    "Preprocess": "agentflow.stages.preprocess",
    "PreprocessConfig": "agentflow.stages.preprocess",
    "parse_event": "agentflow.stages.preprocess",
    "Retrieve": "agentflow.stages.retrieve",
    "RetrieveConfig": "agentflow.stages.retrieve",
    "UpsertConfig": "agentflow.stages.upsert",
    "VectorUpsert": "agentflow.stages.upsert",
    "QueryFilter": "agentflow.stores",
    "StoreError": "agentflow.stores",
    "TransientReason": "agentflow.stores",
    "VectorStore": "agentflow.stores",
    "store_from_uri": "agentflow.stores",
    "LocalStoreConfig": "agentflow.stores.local",
    "LocalVectorStore": "agentflow.stores.local",
    "VespaConfig": "agentflow.stores.vespa",
    "VespaVectorStore": "agentflow.stores.vespa",
    "VespaSchemaConfig": "agentflow.stores.vespa_app",
    "application_package": "agentflow.stores.vespa_app",
    "AgentEvent": "agentflow.types",
    "DeadLetter": "agentflow.types",
    "Decision": "agentflow.types",
    "Document": "agentflow.types",
    "Hit": "agentflow.types",
    "Retrieval": "agentflow.types",
    "document_id": "agentflow.types",
}

if TYPE_CHECKING:
  from agentflow.io.pubsub_portable import PublishToPubSub, PullConfig, PullFromPubSub
  from agentflow.models import (
    CachingEmbeddingHandler,
    EmbeddingModelHandler,
    SentenceTransformerHandler,
    model_from_spec,
  )
  from agentflow.observability.summary import RunSummary
  from agentflow.options import AgentflowOptions
  from agentflow.policies import (
    AnomalyThresholdPolicy,
    CentroidAnswerPolicy,
    DecisionPolicy,
    RetrievalAnswerPolicy,
    SimilarityRoutingPolicy,
  )
  from agentflow.retry import RetryPolicy
  from agentflow.stages.base import DeadLetterError
  from agentflow.stages.beam_adapters import StoreEnrichmentHandler, StoreWriteConfig
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


def __getattr__(name):
  """Imports an exported name's module on first use."""
  module = _EXPORTS.get(name)
  if module is None:
    raise AttributeError(f"module 'agentflow' has no attribute {name!r}")
  value = getattr(importlib.import_module(module), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS))


__all__ = sorted(_EXPORTS)
