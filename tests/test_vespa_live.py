"""Opt-in: the Vespa store and the whole graph against a real Vespa, when VESPA_URL is set.

Deploy the package first (`agentflow vespa package --out app && vespa deploy app`, see
docs/vespa.md). Optional: VESPA_CERT/VESPA_KEY (mTLS PEM paths), VESPA_CA_CERT, and
VESPA_TOKEN_ENV naming the variable that holds a Vespa Cloud token. Documents written here
carry a fresh tenant and are deleted again; the pipeline test writes the support example.
"""
import json
import os
import uuid

import numpy as np
import pytest

from agentflow.stores import QueryFilter, store_from_uri
from agentflow.types import Document

VESPA_URL = os.environ.get("VESPA_URL")
pytestmark = pytest.mark.skipif(not VESPA_URL, reason="set VESPA_URL to run the live Vespa suite")
DIM = 384
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "support_chatbot")


def store_uri() -> str:
  params = {"cert": os.environ.get("VESPA_CERT"), "key": os.environ.get("VESPA_KEY"),
            "ca_cert": os.environ.get("VESPA_CA_CERT"), "token_env": os.environ.get("VESPA_TOKEN_ENV")}
  query = "&".join(f"{k}={v}" for k, v in params.items() if v)
  return f"vespa:{VESPA_URL.rstrip('/')}" + (f"?{query}" if query else "")


@pytest.fixture
def tenant_docs():
  tenant = f"live-{uuid.uuid4().hex[:12]}"
  vecs = np.random.default_rng(7).normal(size=(20, DIM)).astype(np.float32)
  docs = [Document(id=f"{tenant}-{i}", vector=v, text=f"live check passage {i} about invoices" if i % 2 else
                   f"live check passage {i} about passwords", session_id=f"s{i % 4}", tenant=tenant,
                   kind="knowledge", timestamp=1000.0 + i, event_id=f"{tenant}-{i}") for i, v in enumerate(vecs)]
  store = store_from_uri(store_uri(), DIM)
  with store:
    yield store, tenant, docs
    store.delete([d.id for d in docs])
    assert store.count(QueryFilter(tenant=tenant)) == 0


def test_live_round_trip_filters_and_replay(tenant_docs):
  store, tenant, docs = tenant_docs
  for _ in range(2):
    assert list(store.upsert(docs)) == [None] * len(docs)
  assert store.count(QueryFilter(tenant=tenant)) == len(docs)
  got = store.get([docs[3].id, f"{tenant}-missing"])
  assert got[1] is None and got[0].text == docs[3].text and got[0].session_id == "s3"
  np.testing.assert_allclose(got[0].vector, docs[3].vector, rtol=1e-6)
  hits = store.query(docs[5].vector[None, :], 3, QueryFilter(tenant=tenant))[0]
  assert hits[0].id == docs[5].id and hits[0].score > 0.999
  session = store.query(docs[5].vector[None, :], 10, QueryFilter(tenant=tenant, session_id="s1"))[0]
  assert session and {h.session_id for h in session} == {"s1"}
  window = store.query(docs[5].vector[None, :], 20, QueryFilter(tenant=tenant, since=1005.0, until=1010.0))[0]
  assert sorted(h.id for h in window) == sorted(d.id for d in docs[5:10])


def test_live_hybrid_query_adds_text_matches(tenant_docs):
  store, tenant, docs = tenant_docs
  store.upsert(docs)
  hybrid = store_from_uri(store_uri() + ("&" if "?" in store_uri() else "?") + "hybrid=true", DIM)
  with hybrid:
    hits = hybrid.query(docs[0].vector[None, :], 5, QueryFilter(tenant=tenant), texts=["invoices"])[0]
  ids = [h.id for h in hits]
  assert docs[0].id in ids, "the exact vector match stays in the hybrid result"
  assert sum("invoices" in h.text for h in hits) >= 4, "BM25 on the text pulls in the passages naming it"


def test_live_whole_graph(tmp_path):
  from agentflow.job import run
  out = tmp_path
  summary = run(["--input", os.path.join(EXAMPLE, "events.jsonl"), "--knowledge", os.path.join(EXAMPLE, "knowledge.jsonl"),
                 "--store", store_uri(), "--decisions_output", str(out / "decisions.jsonl"),
                 "--dead_letter_output", str(out / "dead.jsonl"), "--runner", "DirectRunner",
                 "--progress_interval", "0"], out=open(os.devnull, "w"))
  assert summary.accounted
  decisions = [json.loads(l) for l in open(out / "decisions.jsonl") if l.strip()]
  expected = {e["event_id"]: e for e in map(json.loads, open(os.path.join(EXAMPLE, "expected.jsonl")))
              if "event_id" in e}
  scored = [d for d in decisions if d["event_id"] in expected]
  right = sum(d["action"] == expected[d["event_id"]]["expect"] for d in scored)
  assert len(scored) > 250 and right / len(scored) >= 0.85
