"""An embedding cache in front of any `EmbeddingModelHandler`: repeated texts are not re-embedded.

The cache sits inside the model handler, so RunInference batching, model sharing and
model updates work unchanged; only cache misses reach the model. Keys include the
model id, so a model update never serves vectors of the previous model.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np

from agentflow.models.base import EmbeddingModelHandler
from agentflow.observability import metrics


class LRUCache:
  """A bounded, thread-safe, per-process LRU of key -> vector."""

  def __init__(self, max_entries: int):
    self.max_entries = max(1, int(max_entries))
    self._data: OrderedDict[str, np.ndarray] = OrderedDict()
    self._lock = threading.Lock()

  def get_many(self, keys: Sequence[str]) -> Dict[str, np.ndarray]:
    out = {}
    with self._lock:
      for k in keys:
        v = self._data.get(k)
        if v is not None:
          self._data.move_to_end(k)
          out[k] = v
    return out

  def put_many(self, items: Dict[str, np.ndarray]) -> None:
    with self._lock:
      for k, v in items.items():
        self._data[k] = v
        self._data.move_to_end(k)
      while len(self._data) > self.max_entries:
        self._data.popitem(last=False)

  def __len__(self):
    return len(self._data)


class RedisCache:
  """Vectors in Redis (`redis://host:port/db`), shared by all workers; entries expire after `ttl_s`."""

  def __init__(self, url: str, ttl_s: int = 7 * 24 * 3600, prefix: str = "agentflow:emb:"):
    self.url, self.ttl_s, self.prefix = url, ttl_s, prefix
    self._client = None

  def __getstate__(self):
    return {**self.__dict__, "_client": None}

  @property
  def client(self):
    if self._client is None:
      import redis
      self._client = redis.Redis.from_url(self.url, socket_timeout=5)
    return self._client

  def get_many(self, keys: Sequence[str]) -> Dict[str, np.ndarray]:
    if not keys:
      return {}
    values = self.client.mget([self.prefix + k for k in keys])
    return {k: np.frombuffer(v, dtype=np.float32) for k, v in zip(keys, values) if v is not None}

  def put_many(self, items: Dict[str, np.ndarray]) -> None:
    if not items:
      return
    pipe = self.client.pipeline(transaction=False)
    for k, v in items.items():
      pipe.set(self.prefix + k, np.asarray(v, dtype=np.float32).tobytes(), ex=self.ttl_s)
    pipe.execute()


def cache_from_spec(spec: str, max_entries: int = 100_000):
  """`lru` (default) or `redis://...`."""
  if not spec or spec == "lru":
    return LRUCache(max_entries)
  if spec.startswith(("redis://", "rediss://", "unix://")):
    return RedisCache(spec)
  raise ValueError(f"unknown cache {spec!r}; expected 'lru' or 'redis://HOST:PORT[/DB]'")


class CachingEmbeddingHandler(EmbeddingModelHandler):
  """Wraps `handler`; embeds only texts not already in `cache` (an `LRUCache` or `RedisCache`)."""

  def __init__(self, handler: EmbeddingModelHandler, cache=None):
    super().__init__()
    self.handler = handler
    self.cache = cache if cache is not None else LRUCache(100_000)

  @property
  def dimension(self) -> int:
    return self.handler.dimension

  @property
  def model_id(self) -> str:
    return self.handler.model_id

  def load_model(self):
    return self.handler.load_model()

  def update_model_path(self, model_path: Optional[str] = None):
    return self.handler.update_model_path(model_path)

  def batch_elements_kwargs(self):
    return self.handler.batch_elements_kwargs()

  def share_model_across_processes(self) -> bool:
    return self.handler.share_model_across_processes()

  def model_copies(self) -> int:
    return self.handler.model_copies()

  def get_metrics_namespace(self) -> str:
    return self.handler.get_metrics_namespace()

  def _key(self, text: str) -> str:
    return hashlib.blake2b(f"{self.model_id}\x1f{text}".encode("utf-8", "surrogatepass"),
                           digest_size=16).hexdigest()

  def embed(self, model, texts: Sequence[str]) -> np.ndarray:
    keys = [self._key(t) for t in texts]
    found = self.cache.get_many(list(dict.fromkeys(keys)))
    missing: List[int] = []
    first: Dict[str, int] = {}
    for i, k in enumerate(keys):
      if k not in found and k not in first:
        first[k] = len(missing)
        missing.append(i)
    metrics.counter("embed.cache_hit").inc(len(texts) - len(missing))
    metrics.counter("embed.cache_miss").inc(len(missing))
    if missing:
      fresh = self.handler.embed(model, [texts[i] for i in missing])
      new = {keys[i]: fresh[j] for j, i in enumerate(missing)}
      self.cache.put_many(new)
      found.update(new)
    return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)
