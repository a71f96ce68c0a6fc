"""Beam's own RAG write interface and Enrichment transform over agentflow stores (local and Vespa)."""
import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.rag.types import Chunk, Content, Embedding
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.enrichment import Enrichment

from agentflow.stages.base import DeadLetterError, RetryPolicy
from agentflow.stages.beam_adapters import (
  StoreEnrichmentHandler,
  StoreWriteConfig,
  VectorDatabaseWriteConfig,
  VectorDatabaseWriteTransform,
  chunk_to_document,
)
from agentflow.stores import store_from_uri
from agentflow.stores.local import LocalVectorStore

from tests.vespa_protocol_server import serve_agent_context

DIM = 8


def _vectors(n, seed=3):
  return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def _chunks(n, tenant_of=lambda i: "t1" if i % 2 else "t2"):
  return [Chunk(content=Content(text=f"passage {i}"), id=f"c{i}", index=i,
                metadata={"tenant": tenant_of(i), "source": "manual.pdf"},
                embedding=Embedding(dense_embedding=v.tolist())) for i, v in enumerate(_vectors(n))]


@pytest.fixture
def vespa():
  with serve_agent_context(dimension=DIM) as server:
    yield server


def _stores(tmp_path, vespa):
  return {"local": LocalVectorStore(str(tmp_path / "store"), DIM),
          "vespa": store_from_uri(f"vespa:{vespa.url}?backoff=0.01", DIM)}


def test_chunk_to_document_keeps_filters_and_metadata():
  chunk = _chunks(1)[0]
  doc = chunk_to_document(chunk)
  assert (doc.id, doc.tenant, doc.kind, doc.text) == ("c0", "t2", "knowledge", "passage 0")
  assert doc.metadata == {"source": "manual.pdf", "chunk_index": 0}
  np.testing.assert_allclose(doc.vector, chunk.embedding.dense_embedding)
  with pytest.raises(ValueError, match="no dense embedding"):
    chunk_to_document(Chunk(content=Content(text="x"), id="bare"))


@pytest.mark.parametrize("which", ["local", "vespa"])
def test_vector_database_write_transform_upserts_chunks_by_id(which, tmp_path, vespa):
  store = _stores(tmp_path, vespa)[which]
  config = StoreWriteConfig(store, batch_size=4)
  assert isinstance(config, VectorDatabaseWriteConfig)
  chunks = _chunks(10)
  for _ in range(2):  # a replay overwrites, it does not duplicate
    with TestPipeline() as p:
      written = p | beam.Create(chunks) | VectorDatabaseWriteTransform(config)
      assert_that(written | beam.Map(lambda c: c.id), equal_to([c.id for c in chunks]))
  with store:
    assert store.count() == 10
    doc = store.get(["c3"])[0]
    assert doc.text == "passage 3" and doc.tenant == "t1" and doc.metadata["source"] == "manual.pdf"


def test_write_dead_letters_bad_chunks_or_fails_without_them(tmp_path, vespa):
  store = store_from_uri(f"vespa:{vespa.url}?backoff=0.01", DIM)
  chunks = _chunks(4) + [Chunk(content=Content(text="no vector"), id="bare"),
                         Chunk(content=Content(text="short"), id="short", embedding=Embedding(dense_embedding=[1.0]))]
  with TestPipeline() as p:
    written, dead = (p | beam.Create(chunks)
                     | VectorDatabaseWriteTransform(StoreWriteConfig(store, dead_letters=True)))
    assert_that(written | beam.Map(lambda c: c.id), equal_to(["c0", "c1", "c2", "c3"]), label="written")
    assert_that(dead | beam.Map(lambda d: (d.event_id, d.reason)),
                equal_to([("bare", "invalid_document"), ("short", "store_rejected")]), label="dead")
  with pytest.raises(Exception, match="no dense embedding"):
    with TestPipeline() as p:
      _ = p | beam.Create(chunks[-2:-1]) | VectorDatabaseWriteTransform(StoreWriteConfig(store))
  assert issubclass(DeadLetterError, RuntimeError)


def test_throttled_vespa_write_retries_and_loses_nothing(vespa):
  vespa.faults.throttle(probability=0.5, endpoint="document")
  store = store_from_uri(f"vespa:{vespa.url}?backoff=0.01&backoff_max=0.02&retries=1", DIM)
  fast = RetryPolicy(max_attempts=20, initial_backoff_s=0.001, max_backoff_s=0.01)
  with TestPipeline() as p:
    written, dead = (p | beam.Create(_chunks(30))
                     | VectorDatabaseWriteTransform(StoreWriteConfig(store, retry=fast, dead_letters=True)))
    assert_that(written | beam.combiners.Count.Globally(), equal_to([30]), label="written")
    assert_that(dead, equal_to([]), label="dead")
  assert vespa.app.stats[("document", 429)] > 10
  assert len(vespa.app.docs) == 30


@pytest.mark.parametrize("which", ["local", "vespa"])
def test_enrichment_adds_nearest_contexts_per_tenant(which, tmp_path, vespa):
  store = _stores(tmp_path, vespa)[which]
  chunks = _chunks(12)
  with store:
    store.upsert([chunk_to_document(c) for c in chunks])
  queries = [beam.Row(request_id=f"q{i}", tenant="t1", embedding=chunks[i].embedding.dense_embedding)
             for i in (1, 3, 4)]
  handler = StoreEnrichmentHandler(store, k=3, filter_fields={"tenant": "tenant"})

  def expected(row):
    vecs = np.stack([c.embedding.dense_embedding for c in chunks if c.metadata["tenant"] == "t1"])
    ids = [c.id for c in chunks if c.metadata["tenant"] == "t1"]
    q = np.asarray(row.embedding)
    sims = vecs @ q / np.linalg.norm(vecs, axis=1) / np.linalg.norm(q)
    return row.request_id, [ids[j] for j in np.argsort(-sims)[:3]]

  with TestPipeline() as p:
    enriched = p | beam.Create(queries) | Enrichment(handler)
    assert_that(enriched | beam.Map(lambda r: (r.request_id, list(r.context_ids))),
                equal_to([expected(q) for q in queries]), label="ids")
    assert_that(enriched | beam.Map(lambda r: (len(r.context_texts), r.context_scores[0] > 0.99)),
                equal_to([(3, False), (3, True), (3, True)]), label="scores")


def test_enrichment_handler_maps_store_errors_for_the_repeater(vespa):
  from apache_beam.io.requestresponse import UserCodeExecutionException, UserCodeQuotaException
  store = store_from_uri(f"vespa:{vespa.url}?backoff=0.01&backoff_max=0.02&retries=0", DIM)
  handler = StoreEnrichmentHandler(store, k=2)
  row = beam.Row(embedding=_vectors(1)[0].tolist())
  with handler:
    vespa.faults.outage(60, endpoint="search")
    with pytest.raises(UserCodeQuotaException):
      handler(row)
    vespa.faults.clear()
    assert handler(row)[1].context_ids == []
    assert handler.get_cache_key(row) == handler.get_cache_key(beam.Row(embedding=list(row.embedding)))
  unknown_profile = store_from_uri(f"vespa:{vespa.url}?semantic_profile=nope", DIM)
  with StoreEnrichmentHandler(unknown_profile, k=2) as bad:
    with pytest.raises(UserCodeExecutionException, match="nope") as e:
      bad(row)
    assert not isinstance(e.value, UserCodeQuotaException)
  with pytest.raises(ValueError, match="filter_fields"):
    StoreEnrichmentHandler(store, filter_fields={"colour": "c"})
