"""VespaVectorStore against the in-test Vespa protocol server: round trips, filters, hybrid,
retries under throttling/outage/timeouts, per-document reasons, rejections, mTLS, secrets."""
import dataclasses
import datetime
import ipaddress
import logging
import math
import pickle

import numpy as np
import pytest

from agentflow.stores import store_from_uri
from agentflow.stores.base import QueryFilter, StoreError, TransientReason
from agentflow.stores.vespa import (
  VespaConfig,
  VespaVectorStore,
  config_from_uri,
  filter_clauses,
  similarity_from_closeness,
  vespa_store_from_uri,
)
from agentflow.types import Document

from tests.vespa_protocol_server import ServerTls, parse_dense_tensor, serve_agent_context

DIM = 8
FAST = dict(backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=5.0)


def _docs(n, seed=0, prefix="d"):
  rng = np.random.default_rng(seed)
  vecs = rng.normal(size=(n, DIM)).astype(np.float32)
  return [Document(id=f"{prefix}{i}", vector=vecs[i], text=f"note number {i}", session_id=f"s{i % 3}",
                   tenant="t1" if i % 2 else "t2", kind="knowledge" if i % 4 == 0 else "event",
                   timestamp=float(i), event_id=f"e{i}", metadata={"i": i, "tags": ["a", "b"]})
          for i in range(n)]


def _exact(docs, q, k, flt=None):
  docs = [d for d in docs if flt is None or flt.matches(d)]
  mat = np.stack([d.vector / np.linalg.norm(d.vector) for d in docs])
  sims = mat @ (q / np.linalg.norm(q))
  order = np.argsort(-sims)[:k]
  return [docs[i].id for i in order], [float(sims[i]) for i in order]


@pytest.fixture
def vespa_server():
  with serve_agent_context(dimension=DIM) as server:
    yield server


def _store(server, dimension=DIM, **kw):
  return VespaVectorStore(VespaConfig(url=server.url, namespace="test", **{**FAST, **kw}), dimension)


@pytest.fixture
def store(vespa_server):
  with _store(vespa_server) as s:
    yield s


def test_upsert_get_delete_round_trip(store, vespa_server):
  docs = _docs(12)
  assert store.upsert(docs) == [None] * 12
  got = store.get(["d3", "missing", "d7"])
  assert got[1] is None
  for want, have in ((docs[3], got[0]), (docs[7], got[2])):
    assert have.id == want.id and have.text == want.text and have.session_id == want.session_id
    assert (have.tenant, have.kind, have.event_id, have.timestamp) == (want.tenant, want.kind, want.event_id,
                                                                        want.timestamp)
    assert have.metadata == want.metadata
    np.testing.assert_array_equal(have.vector, want.vector)
  assert "id:test:agent_context::d3" in vespa_server.app.docs
  store.delete(["d3", "never-existed"])
  assert store.get(["d3"]) == [None]
  assert store.count() == 11
  assert set(vespa_server.app.protocols) == {"HTTP/2"}


def test_replaying_documents_creates_no_duplicates(store, vespa_server):
  docs = _docs(20)
  store.upsert(docs)
  store.upsert(docs)
  store.upsert(docs[:5])
  assert store.count() == 20
  assert len(vespa_server.app.docs) == 20


def test_query_returns_exact_neighbours_with_cosine_scores(store, vespa_server):
  docs = _docs(40)
  store.upsert(docs)
  queries = np.stack([docs[5].vector, docs[17].vector + 0.3])
  hits = store.query(queries, 5)
  for q, row in zip(queries, hits):
    ids, sims = _exact(docs, q, 5)
    assert [h.id for h in row] == ids
    np.testing.assert_allclose([h.score for h in row], sims, atol=1e-5)
  assert hits[0][0].id == "d5" and hits[0][0].score == pytest.approx(1.0, abs=1e-6)
  assert hits[0][0].metadata == {"i": 5, "tags": ["a", "b"]} and hits[0][0].text == "note number 5"
  assert vespa_server.app.formats["cbor"] >= 2, "pyvespa asks for CBOR query results"
  assert store.query(queries, 0) == [[], []]
  with pytest.raises(ValueError, match="4-d"):
    store.query(np.zeros((1, 4)), 3)


@pytest.mark.parametrize("flt", [
    QueryFilter(session_id="s1"),
    QueryFilter(tenant="t2", kind="event"),
    QueryFilter(since=10.0, until=30.0),
    QueryFilter(session_id="s0", exclude_ids=("d0", "d3", "d6")),
    QueryFilter(exclude_ids=("d1",)),
])
def test_filters_match_query_filter_semantics(store, flt):
  docs = _docs(40)
  store.upsert(docs)
  q = docs[9].vector
  ids, _ = _exact(docs, q, 6, flt)
  assert [h.id for h in store.query(q[None, :], 6, flt)[0]] == ids
  assert store.count(flt) == sum(1 for d in docs if flt.matches(d))


def test_filter_values_are_escaped_and_matched_exactly(store):
  tricky = ['say "hi"', "back\\slash", "ünïcödé ✓", "S1"]
  docs = [Document(id=f"x{i}", vector=np.ones(DIM, np.float32) * (i + 1), session_id=s)
          for i, s in enumerate(tricky)] + [Document(id="lower", vector=np.ones(DIM, np.float32), session_id="s1")]
  store.upsert(docs)
  for s in tricky:
    assert store.count(QueryFilter(session_id=s)) == 1
  assert [h.session_id for h in store.query(np.ones((1, DIM)), 5, QueryFilter(session_id="S1"))[0]] == ["S1"]
  assert filter_clauses(QueryFilter(session_id='a"b')) == ['session_id contains "a\\"b"']


def test_hybrid_query_fuses_text_and_vector_ranks(vespa_server):
  docs = _docs(30)
  far = [Document(id=f"far{i}", vector=-np.ones(DIM, np.float32) + 0.01 * i, text="kubernetes autoscaling runbook")
         for i in range(5)]
  with _store(vespa_server, hybrid=True) as store:
    store.upsert(docs + far)
    q = docs[2].vector[None, :]
    semantic = store.query(q, 3)[0]
    assert not any(h.id.startswith("far") for h in semantic)
    hybrid = store.query(q, 3, texts=["autoscaling runbook"])[0]
    ids = [h.id for h in hybrid]
    # Rank fusion: five strong text matches no longer push every semantic neighbour out of the top 3.
    assert "d2" in ids and any(i.startswith("far") for i in ids), ids
    # Text-only matches get their true closeness (Vespa computes it for every ranked document),
    # so their score is the same cosine the embedded store would give.
    far_hit = next(h for h in hybrid if h.id.startswith("far"))
    want = _exact([d for d in far if d.id == far_hit.id], q[0], 1)[1][0]
    assert far_hit.score == pytest.approx(want, abs=1e-5) and far_hit.score < 0
    body = store.query_body(q[0], 3, QueryFilter(tenant="t1"), "-autoscaling kind:event")
  assert body["ranking.profile"] == "hybrid" and body["agentflow_text"] == "-autoscaling kind:event"
  assert "query" not in body, "customer text never goes to userQuery()'s query syntax"
  assert body["yql"] == ("select * from sources agent_context where ({targetHits:3}nearestNeighbor(embedding, q)"
                         " or ({defaultIndex:\"text\", grammar:\"tokenize\"}userInput(@agentflow_text)))"
                         " and tenant contains \"t1\"")


def test_hybrid_text_is_words_not_query_syntax(vespa_server):
  """`-word` and `field:value` in customer text are words to match, not a negation and a field search."""
  near = np.ones(DIM, np.float32)
  docs = [Document(id="kb", vector=near, text="autoscaling guide", kind="knowledge"),
          Document(id="filler", vector=near + np.eye(DIM, dtype=np.float32)[0], text="unrelated words", kind="knowledge"),
          Document(id="ev", vector=-near, text="event about autoscaling", kind="knowledge")]
  with _store(vespa_server, hybrid=True) as store:
    store.upsert(docs)
    assert [h.id for h in store.query(near[None, :], 2)[0]] == ["kb", "filler"]
    # As query syntax, "-autoscaling" would exclude both text matches and "kind:event" would match none.
    hits = store.query(near[None, :], 2, texts=["-autoscaling kind:event"])[0]
    assert [h.id for h in hits] == ["kb", "ev"]
  assert not vespa_server.app.java_rejected_from_agentflow


def test_tenantless_filter_sees_only_tenantless_documents(store, vespa_server):
  vec = np.ones(DIM, np.float32)
  docs = [Document(id="none1", vector=vec, tenant=""), Document(id="none2", vector=vec * 2, tenant=""),
          Document(id="acme", vector=vec, tenant="acme"), Document(id="space", vector=vec, tenant=" ")]
  store.upsert(docs)
  assert filter_clauses(QueryFilter(tenant="")) == ["tenantless = true"]
  assert sorted(h.id for h in store.query(vec[None, :], 10, QueryFilter(tenant=""))[0]) == ["none1", "none2"]
  assert [h.id for h in store.query(vec[None, :], 10, QueryFilter(tenant="acme"))[0]] == ["acme"]
  assert store.count(QueryFilter(tenant="")) == 2 and store.count(QueryFilter(tenant="acme")) == 1
  assert [d.tenant for d in store.get(["none1", "acme"])] == ["", "acme"]
  assert filter_clauses(QueryFilter(exclude_ids=("", "x"))) == ['!(id contains "x")']
  with pytest.raises(ValueError, match="empty session_id"):
    filter_clauses(QueryFilter(session_id=""))
  assert not vespa_server.app.java_rejected_from_agentflow


def test_empty_word_is_rejected_with_vespas_error(vespa_server):
  import httpx
  yql = 'select * from sources agent_context where tenant contains ""'
  with httpx.Client() as http:
    r = http.post(f"{vespa_server.url}/search/", json={"yql": yql})
  assert r.status_code == 400
  error = r.json()["root"]["errors"][0]
  assert error["code"] == 4 and error["summary"] == "Invalid query parameter"
  assert error["message"] == "Could not create query from YQL: The word of a word item cannot be empty"


def test_throttling_loses_nothing_and_counts_retries(vespa_server):
  docs = _docs(60)
  vespa_server.faults.throttle(n=40, endpoint="document")
  vespa_server.faults.throttle(probability=0.3, endpoint="document")
  with _store(vespa_server, max_retries=20) as store:
    assert store.upsert(docs) == [None] * 60
    vespa_server.faults.clear()
    assert store.count() == 60
    throttled = vespa_server.app.stats[("document", 429)]
    assert throttled >= 40 and store.retries == throttled


def test_short_outage_loses_nothing(vespa_server):
  docs = _docs(30)
  with _store(vespa_server, max_retries=30, backoff_base_s=0.02, backoff_max_s=0.1) as store:
    vespa_server.faults.outage(0.4, endpoint="document")
    assert store.upsert(docs) == [None] * 30
    assert store.count() == 30
    assert vespa_server.app.stats[("document", 503)] > 0 and store.retries > 0
  assert {d.id for d in docs} == {k.split("::")[1] for k in vespa_server.app.docs}


def test_search_outage_is_retried(store, vespa_server):
  store.upsert(_docs(5))
  vespa_server.faults.throttle(n=3, endpoint="search", status=503)
  assert store.count() == 5
  assert vespa_server.app.stats[("search", 503)] == 3


def test_timeouts_are_retried(vespa_server):
  vespa_server.faults.delay(0.5, n=1, endpoint="document")
  with _store(vespa_server, timeout_s=0.3, client_grace_s=0.05, max_retries=5) as store:
    assert store.upsert(_docs(1)) == [None]
    assert store.retries >= 1
  assert len(vespa_server.app.docs) == 1


def test_vespa_gets_the_timeout_and_the_client_waits_longer(store, vespa_server):
  body = store.query_body(np.ones(DIM), 3)
  assert body["timeout"] == "5s" and store.config.timeout_s + store.config.client_grace_s > 5
  seen = []
  handle = vespa_server.app._document
  vespa_server.app._document = lambda req, b: (seen.append(req.params.get("timeout")), handle(req, b))[1]
  store.upsert(_docs(1))
  assert seen == ["5s"], "feeds carry the server-side timeout (Vespa's default would be 180 s)"


def test_soft_timeout_with_partial_coverage_is_noticed(store, vespa_server):
  store.upsert(_docs(40))
  vespa_server.faults.soft_timeout(coverage=50, n=1)
  with pytest.raises(StoreError, match=r"Vespa answered from 50% of the documents \(timeout") as e:
    store.query(np.ones((1, DIM)), 3)
  assert e.value.retryable
  assert len(store.query(np.ones((1, DIM)), 3)[0]) == 3, "the next, complete, answer is used"
  vespa_server.faults.soft_timeout(coverage=50, n=1)
  with VespaVectorStore(dataclasses.replace(store.config, min_coverage=40.0), DIM) as lenient:
    assert len(lenient.query(np.ones((1, DIM)), 3)[0]) <= 3, "above min_coverage: the partial answer is used"
    assert vespa_server.app.stats[("search", 200)] >= 3


@pytest.mark.parametrize("status", [500, 502])
def test_server_errors_are_retried_and_transient(vespa_server, status):
  docs = _docs(4)
  vespa_server.faults.throttle(n=4, endpoint="document", status=status)
  with _store(vespa_server, max_retries=3) as store:
    assert store.upsert(docs) == [None] * 4
    assert store.retries == 4
    vespa_server.faults.throttle(endpoint="document", status=status)
    reasons = store.upsert(docs)
    assert all(isinstance(r, TransientReason) and r.startswith(f"HTTP {status} after 3 retries") for r in reasons)
    if status == 502:
      assert "Bad Gateway" in reasons[0], "a load balancer's HTML page is passed on as the message"


def test_cluster_out_of_space_is_transient_with_what_to_do(vespa_server):
  vespa_server.faults.throttle(endpoint="document", status=507)
  with _store(vespa_server, max_retries=3) as store:
    reasons = store.upsert(_docs(2))
    assert store.retries == 0, "a full cluster does not empty in seconds: not retried at once"
  assert all(isinstance(r, TransientReason) and r.startswith("HTTP 507") for r in reasons)
  assert "resource exhaustion" in reasons[0] and "add capacity" in reasons[0]


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_fail_the_store_with_one_message(vespa_server, status):
  vespa_server.faults.throttle(status=status)
  with _store(vespa_server) as store:
    with pytest.raises(StoreError, match=f"refused the credentials \\(HTTP {status}.*check cert/key") as e:
      store.upsert(_docs(5))
    assert not e.value.retryable and store.retries == 0
    with pytest.raises(StoreError, match="refused the credentials") as e:
      store.query(np.ones((1, DIM)), 2)
    assert not e.value.retryable


def test_exhausted_retries_return_per_document_reasons(vespa_server):
  docs = _docs(6)
  with _store(vespa_server, max_retries=2) as store:
    assert store.upsert(docs[:2]) == [None, None]
    vespa_server.faults.throttle(endpoint="document")
    reasons = store.upsert(docs)
    assert all(r and r.startswith("HTTP 429 after 2 retries") and "overload" in r for r in reasons)
    assert all(isinstance(r, TransientReason) for r in reasons)
    assert store.retries == 2 * 6
    vespa_server.faults.clear()
    assert store.count() == 2


def test_unreachable_store_raises_retryable_store_error(vespa_server):
  url = vespa_server.url
  vespa_server.stop()
  with VespaVectorStore(VespaConfig(url=url, max_retries=1, **{**FAST, "timeout_s": 1.0}), DIM) as store:
    with pytest.raises(StoreError) as e:
      store.upsert(_docs(3))
    assert e.value.retryable and "unreachable" in str(e.value)
    with pytest.raises(StoreError):
      store.count()


def test_wrong_dimension_is_rejected_by_vespa_with_reasons(vespa_server):
  with _store(vespa_server, dimension=DIM + 4) as store:
    docs = [Document(id="big", vector=np.ones(DIM + 4, np.float32)), Document(id="ok", vector=np.ones(3))]
    reasons = store.upsert(docs)
    # Vespa's own JSON reader (when java is here) or the server's stricter message.
    assert reasons[0] in ("HTTP 400: Index 8 out of bounds for length 8",
                          "HTTP 400: In document 'id:test:agent_context::big': Could not parse field "
                          "'embedding' of type tensor<float>(x[8]): Expected 8 values, but got 12")
    assert "3-d vector" in reasons[1], "checked locally before sending"
    with pytest.raises(StoreError, match="Expected 8 values, but got 12|Could not parse .* as a tensor") as e:
      store.query(np.ones((1, DIM + 4)), 3)
    assert not e.value.retryable
  assert vespa_server.app.stats[("document", 400)] == 1


def test_unknown_document_type_and_rank_profile_are_rejected(vespa_server):
  with _store(vespa_server, doc_type="nope") as store:
    assert store.upsert(_docs(1)) == ["HTTP 400: Document type nope does not exist"]
  with _store(vespa_server, semantic_profile="missing") as store:
    with pytest.raises(StoreError, match="'missing' is not a valid rank profile|No profile named 'missing'"):
      store.query(np.ones((1, DIM)), 2)


def test_server_enforces_vespa_document_and_query_formats(vespa_server):
  import httpx
  base = f"{vespa_server.url}/document/v1/ns/agent_context/docid"
  vec = [0.5] * DIM
  with httpx.Client() as http:
    for i, tensor in enumerate([vec, {"values": vec}, {"cells": [{"address": {"x": str(j)}, "value": v}
                                                                   for j, v in enumerate(vec)]},
                                {"values": np.asarray(vec, ">f4").tobytes().hex()}]):
      r = http.post(f"{base}/f{i}", json={"fields": {"id": f"f{i}", "embedding": tensor}})
      assert r.status_code == 200 and r.json() == {"pathId": f"/document/v1/ns/agent_context/docid/f{i}",
                                                   "id": f"id:ns:agent_context::f{i}"}
    bad = {"fields": {"id": "b", "embedding": vec, "colour": "red"}}
    r = http.post(f"{base}/b", json=bad)
    assert r.status_code == 400 and r.json()["message"] == (
        "Field 'colour' is not defined in document type 'agent_context'")
    for tensor in ([1, 2], {"values": "zz"}, {"cells": [{"address": {"x": "9"}, "value": 1}]}, "x", [["1"]],
                   {"values": [True] * DIM}, {"blocks": []}):
      r = http.post(f"{base}/b", json={"fields": {"embedding": tensor}})
      assert r.status_code == 400 and "Could not parse field 'embedding'" in r.json()["message"]
    assert http.post(f"{base}/b", json={"put": "x"}).status_code == 400
    r = http.get(f"{base}/f0")
    assert r.json()["fields"]["embedding"] == {"type": f"tensor<float>(x[{DIM}])", "values": vec}
    assert http.get(f"{base}/none").status_code == 404
    assert http.post(f"{vespa_server.url}/document/v1/ns/other/docid/x", json={"fields": {}}).status_code == 400
    search = f"{vespa_server.url}/search/"
    ok = http.post(search, json={"yql": "select * from sources * where true", "hits": 1})
    assert ok.status_code == 200 and ok.json()["root"]["fields"]["totalCount"] == 4
    assert len(ok.json()["root"]["children"]) == 1
    for yql in ("select * from sources agent_context where colour contains \"x\"",
                "select * from sources agent_context where nearestNeighbor(embedding, q)",
                "select * from sources agent_context where timestamp contains \"1\"",
                "select * from sources agent_context where session_id >= 3",
                "select * from sources agent_context where"):
      r = http.post(search, json={"yql": yql, "ranking.profile": "semantic", "input.query(q)": vec})
      assert r.status_code == 400 and r.json()["root"]["errors"][0]["code"] in (3, 4), yql
  assert vespa_server.app.protocols["HTTP/1.1"] > 0


def test_tensor_forms_match_the_documented_ones():
  assert parse_dense_tensor([1, 2], 2).tolist() == [1.0, 2.0]
  assert parse_dense_tensor({"type": "tensor<float>(x[2])", "values": [1, 2]}, 2).tolist() == [1.0, 2.0]
  assert parse_dense_tensor({"cells": [{"address": {"x": "1"}, "value": 2}, {"address": {"x": "0"},
                                                                               "value": 1}]}, 2).tolist() == [1, 2]
  assert parse_dense_tensor("3F80000040000000", 2).tolist() == [1.0, 2.0]
  assert parse_dense_tensor([[1], [2]], 2).tolist() == [1.0, 2.0], "Vespa skips nested arrays in 'values'"
  with pytest.raises(ValueError, match="Expected 2 values, but got 3"):
    parse_dense_tensor([1, 2, 3], 2)


def test_similarity_from_closeness_inverts_vespa_closeness():
  for sim in (1.0, 0.7, 0.0, -0.5):
    angle = math.acos(sim)
    assert similarity_from_closeness(1.0 / (1.0 + angle)) == pytest.approx(sim)
    assert similarity_from_closeness(1.0 / (1.0 + (1.0 - sim)), "prenormalized-angular") == pytest.approx(sim)
  assert similarity_from_closeness(0.0) == -1.0


# ---------------------------------------------------------------- TLS and secrets


def _tls_files(tmp_path):
  from cryptography import x509
  from cryptography.hazmat.primitives import hashes, serialization
  from cryptography.hazmat.primitives.asymmetric import ec
  from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

  now = datetime.datetime.now(datetime.timezone.utc)

  def cert(name, key, issuer_name, issuer_key, ca=False, san=None, usage=None):
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
         .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
      b = b.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
    if san:
      b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if usage:
      b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())

  def write(name, obj):
    path = tmp_path / name
    if isinstance(obj, x509.Certificate):
      path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    else:
      path.write_bytes(obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    return str(path)

  ca_key = ec.generate_private_key(ec.SECP256R1())
  ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agentflow test CA")])
  ca = cert("agentflow test CA", ca_key, ca_name, ca_key, ca=True)
  server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
  server = cert("localhost", server_key, ca_name, ca_key,
                san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                usage=ExtendedKeyUsageOID.SERVER_AUTH)
  client = cert("agentflow client", client_key, ca_name, ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
  return {"ca": write("ca.pem", ca), "server_cert": write("server.pem", server),
          "server_key": write("server.key", server_key), "client_cert": write("client.pem", client),
          "client_key": write("client.key", client_key)}


def test_mtls_round_trip_and_client_without_certificate_is_refused(tmp_path):
  f = _tls_files(tmp_path)
  tls = ServerTls(f["server_cert"], f["server_key"], client_ca=f["ca"])
  with serve_agent_context(dimension=DIM, tls=tls) as server:
    assert server.url.startswith("https://localhost:")
    uri = f"{server.url}?namespace=tls&cert={f['client_cert']}&key={f['client_key']}&ca_cert={f['ca']}&backoff=0.01"
    with vespa_store_from_uri(uri, DIM) as store:
      assert store.upsert(_docs(4)) == [None] * 4
      assert store.count() == 4
      assert [h.id for h in store.query(_docs(4)[2].vector[None, :], 1)[0]] == ["d2"]
    assert set(server.app.protocols) == {"HTTP/2"}, "ALPN negotiated h2"
    refused_before = server.tls_failures
    # TLS failures are configuration errors: one clear, non-retryable StoreError, no retries.
    with VespaVectorStore(VespaConfig(url=server.url, ca_cert=f["ca"], max_retries=3, **FAST), DIM) as anon:
      with pytest.raises(StoreError, match=r"TLS handshake .* failed \(SSL.*certificate required.*check ca_cert") as e:
        anon.upsert(_docs(2))
      assert not e.value.retryable and anon.retries == 0
    with VespaVectorStore(VespaConfig(url=server.url, cert=f["client_cert"], key=f["client_key"], max_retries=3,
                                      **FAST), DIM) as untrusting:
      with pytest.raises(StoreError, match=r"TLS handshake .* failed \(SSLCertVerificationError.*") as e:
        untrusting.count()
      assert not e.value.retryable and untrusting.retries == 0
    assert server.tls_failures > refused_before
    assert len(server.app.docs) == 4


def test_token_auth_and_secrets_never_logged_or_repred(vespa_server, monkeypatch, caplog):
  secret = "vespa-token-SECRET-0123456789"
  vespa_server.stop()
  with serve_agent_context(dimension=DIM, token=secret) as server:
    monkeypatch.setenv("AGENTFLOW_TEST_VESPA_TOKEN", secret)
    caplog.set_level(logging.DEBUG)
    server.faults.throttle(n=3, endpoint="document")
    store = store_from_uri(f"vespa:{server.url}?token_env=AGENTFLOW_TEST_VESPA_TOKEN&backoff=0.01", DIM)
    with store:
      assert store.upsert(_docs(3)) == [None] * 3
      assert store.count() == 3
      assert store.retries == 3
      text = repr(store) + str(store) + repr(store.config) + repr(pickle.loads(pickle.dumps(store)))
    assert "AGENTFLOW_TEST_VESPA_TOKEN" in text and secret not in text
    literal = VespaConfig(url=server.url, token=secret)
    assert secret not in repr(literal) and "token='***'" in repr(literal)
    assert secret not in pickle.dumps(store).decode("latin-1")
    monkeypatch.setenv("AGENTFLOW_TEST_VESPA_TOKEN", "wrong")
    with VespaVectorStore(VespaConfig(url=server.url, token_env="AGENTFLOW_TEST_VESPA_TOKEN", **FAST), DIM) as bad:
      with pytest.raises(StoreError, match=r"refused the credentials \(HTTP 401.*check token_env") as e:
        bad.upsert(_docs(1))
      assert not e.value.retryable and "wrong" not in str(e.value)
    assert server.app.stats[401] == 1
    monkeypatch.delenv("AGENTFLOW_TEST_VESPA_TOKEN")
    with pytest.raises(StoreError, match="AGENTFLOW_TEST_VESPA_TOKEN"):
      VespaVectorStore(VespaConfig(url=server.url, token_env="AGENTFLOW_TEST_VESPA_TOKEN"), DIM).open()
  # The stand-in server's HTTP/2 header decoder (python hpack) logs what it receives; it plays Vespa, not us.
  ours = [r for r in caplog.records if not r.name.startswith("hpack")]
  assert any("retry" in r.getMessage() for r in ours)
  assert any(r.name.startswith("hpack") for r in caplog.records)
  logged = "\n".join(r.getMessage() + str(r.args) for r in ours)
  assert secret not in logged


# ---------------------------------------------------------------- URIs and pickling


def test_uri_parameters_map_to_config():
  cfg = config_from_uri("https://vespa.example:4443/?namespace=prod&cert=/c.pem&key=/k.pem&ca_cert=/ca.pem"
                        "&token_env=VESPA_TOKEN&concurrency=16&retries=7&backoff=0.5&backoff_max=20&timeout=9"
                        "&hybrid=true&metric=prenormalized-angular&doc_type=ctx&semantic_profile=sem"
                        "&hybrid_profile=hyb")
  assert cfg == VespaConfig(url="https://vespa.example:4443", namespace="prod", cert="/c.pem", key="/k.pem",
                            ca_cert="/ca.pem", token_env="VESPA_TOKEN", max_concurrency=16, max_retries=7,
                            backoff_base_s=0.5, backoff_max_s=20.0, timeout_s=9.0, hybrid=True,
                            distance_metric="prenormalized-angular", doc_type="ctx", semantic_profile="sem",
                            hybrid_profile="hyb")
  store = store_from_uri("vespa:http://localhost:8080", 384)
  assert isinstance(store, VespaVectorStore) and store.dimension == 384
  assert store.config.url == "http://localhost:8080" and store.config.namespace == "agentflow"
  with pytest.raises(ValueError, match="token_env"):
    config_from_uri("http://h:8080?token=abc")
  with pytest.raises(ValueError, match="unknown Vespa store URI parameter 'colour'"):
    config_from_uri("http://h:8080?colour=red")
  with pytest.raises(ValueError, match="credentials"):
    VespaConfig(url="http://user:pw@h:8080")
  with pytest.raises(ValueError):
    config_from_uri("ftp://h")


def test_open_store_pickles_without_its_client(store, vespa_server):
  store.upsert(_docs(2))
  clone = pickle.loads(pickle.dumps(store))
  with pytest.raises(StoreError, match="not open"):
    clone.count()
  with clone:
    assert clone.count() == 2
  store.close()
  store.close()


def test_cli_writes_the_application_package(tmp_path):
  import os
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run([sys.executable, "-m", "agentflow.cli", "vespa", "package", "--out", str(tmp_path / "app"),
                         "--dimension", "768", "--distance-metric", "prenormalized-angular"],
                        capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=root))
  assert proc.returncode == 0, proc.stderr[-2000:]
  sd = (tmp_path / "app" / "schemas" / "agent_context.sd").read_text()
  assert "tensor<float>(x[768])" in sd and "distance-metric: prenormalized-angular" in sd
  assert "nearestNeighbor" not in sd and "rank-profile semantic" in sd and "rank-profile hybrid" in sd
  services = (tmp_path / "app" / "services.xml").read_text()
  assert "<document type=\"agent_context\" mode=\"index\"/>" in services
  assert "<min-redundancy>1</min-redundancy>" in services and "<redundancy>" not in services
  bad = subprocess.run([sys.executable, "-m", "agentflow.cli", "vespa", "package", "--out", str(tmp_path / "x"),
                        "--dimension", "0"], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=root))
  assert bad.returncode == 2 and "dimension must be positive" in bad.stderr


def test_retries_come_from_the_one_retry_policy():
  from agentflow.retry import RetryPolicy
  cfg = VespaConfig(max_retries=7, backoff_base_s=0.5, backoff_max_s=20.0)
  assert cfg.retry_policy == RetryPolicy(max_attempts=8, initial_backoff_s=0.5, max_backoff_s=20.0)
  assert cfg.retry_policy.cap(1) == 0.5 and cfg.retry_policy.cap(10) == 20.0
  import agentflow.stores.vespa as module
  assert "tenacity" not in open(module.__file__).read(), "no second backoff implementation"
