"""The embedding cache: only misses reach the model, per-worker LRU and shared Redis."""
import shutil
import socket
import subprocess
import time

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from agentflow import AgentEvent, Embed
from agentflow.models.base import EmbeddingModelHandler
from agentflow.models.cache import CachingEmbeddingHandler, LRUCache, RedisCache, cache_from_spec

from tests.services import free_port


class CountingHandler(EmbeddingModelHandler):
  """Deterministic 4-d 'embeddings' that record every text the model saw."""
  dimension = 4
  model_id = "counting"
  seen = []

  def load_model(self):
    return None

  def embed(self, model, texts):
    type(self).seen.extend(texts)
    return np.stack([np.array([len(t), sum(map(ord, t)) % 97, 1, 0], np.float32) for t in texts])


def test_only_misses_reach_the_model():
  CountingHandler.seen = []
  h = CachingEmbeddingHandler(CountingHandler(), LRUCache(100))
  first = h.embed(None, ["a", "bb", "a", "ccc"])
  second = h.embed(None, ["bb", "ccc", "dddd"])
  assert CountingHandler.seen == ["a", "bb", "ccc", "dddd"]
  np.testing.assert_array_equal(first[0], first[2])
  np.testing.assert_array_equal(first[1], second[0])
  np.testing.assert_array_equal(h.embed(None, ["dddd"])[0], CountingHandler().embed(None, ["dddd"])[0])


def test_lru_is_bounded_and_evicts_least_recently_used():
  c = LRUCache(2)
  c.put_many({"a": np.ones(1), "b": np.ones(1)})
  c.get_many(["a"])
  c.put_many({"c": np.ones(1)})
  assert set(c.get_many(["a", "b", "c"])) == {"a", "c"} and len(c) == 2


def test_cache_keys_include_the_model():
  class Other(CountingHandler):
    model_id = "other"
  cache = LRUCache(10)
  CountingHandler.seen = []
  CachingEmbeddingHandler(CountingHandler(), cache).embed(None, ["x"])
  CachingEmbeddingHandler(Other(), cache).embed(None, ["x"])
  assert CountingHandler.seen == ["x", "x"]


def test_cached_pipeline_matches_uncached(handler):
  texts = ["reset my password", "export to pdf", "reset my password", "export to pdf", "hello"]
  events = [AgentEvent(event_id=f"e{i}", session_id="s", text=t, timestamp=float(i)) for i, t in enumerate(texts)]
  plain = handler.embed(handler.load_model(), texts)
  with TestPipeline() as p:
    out = (p | beam.Create(events) | Embed(CachingEmbeddingHandler(handler))
           | beam.Map(lambda e: (e.event_id, bool(np.allclose(e.embedding, plain[int(e.event_id[1:])], atol=1e-5)))))
    assert_that(out, equal_to([(f"e{i}", True) for i in range(5)]))


def test_cache_spec():
  assert isinstance(cache_from_spec("lru"), LRUCache)
  assert isinstance(cache_from_spec("redis://127.0.0.1:6379/0"), RedisCache)
  with pytest.raises(ValueError, match="unknown cache"):
    cache_from_spec("memcached://x")


@pytest.fixture
def redis_url(tmp_path):
  server = shutil.which("redis-server")
  if server is None:
    pytest.skip("redis-server is not installed (Debian package redis-server; .ci/run installs it)")
  port = free_port()
  proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
  deadline = time.time() + 10
  while time.time() < deadline:
    try:
      socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
      break
    except OSError:
      time.sleep(0.05)
  yield f"redis://127.0.0.1:{port}/0"
  proc.terminate()
  proc.wait(10)


def test_redis_cache_is_shared_between_workers(redis_url):
  CountingHandler.seen = []
  worker_a = CachingEmbeddingHandler(CountingHandler(), cache_from_spec(redis_url))
  worker_b = CachingEmbeddingHandler(CountingHandler(), cache_from_spec(redis_url))
  a = worker_a.embed(None, ["shared text", "only a"])
  b = worker_b.embed(None, ["shared text", "only b"])
  assert CountingHandler.seen == ["shared text", "only a", "only b"]
  np.testing.assert_array_equal(a[0], b[0])
  import pickle
  restored = pickle.loads(pickle.dumps(worker_a))
  assert restored.embed(None, ["only b"]).shape == (1, 4)
  assert CountingHandler.seen == ["shared text", "only a", "only b"]
