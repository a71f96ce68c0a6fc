"""Embedding model handlers for `Embed`, chosen by a `--model` spec."""
from __future__ import annotations

from agentflow.models.base import EmbeddingModelHandler, model_from_spec
from agentflow.models.cache import CachingEmbeddingHandler, LRUCache, RedisCache, cache_from_spec
from agentflow.models.sentence_transformers import SentenceTransformerHandler

__all__ = ["CachingEmbeddingHandler", "EmbeddingModelHandler", "LRUCache", "RedisCache", "SentenceTransformerHandler",
           "cache_from_spec", "model_from_spec"]
