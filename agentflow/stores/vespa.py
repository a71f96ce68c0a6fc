"""Vespa as a `VectorStore`, through pyvespa's asynchronous HTTP/2 client.

Writes go to /document/v1/{namespace}/{doc_type}/docid/{Document.id} (a put replaces the
whole document, so replays never duplicate), at most `max_concurrency` in flight. Every HTTP
request is retried by the project's one `RetryPolicy` (agentflow.retry; pyvespa's own retry
layers are switched off): 429, 500, 502, 503, 504 and transport errors (timeouts, resets).
What still fails is classified per document: those statuses and 507 (the content cluster is
out of memory or disk and blocks feed) are transient, so the Upsert stage retries them and
then dead-letters them as `store_unavailable`, ready to replay; 400s are the document's own
fault (`store_rejected`). 401/403 and TLS handshake failures are configuration errors: the
call raises one `StoreError` saying what to fix, and nothing is retried.

Queries are YQL `{targetHits:k}nearestNeighbor(embedding, q)` plus filters, one /search/
request per query vector, concurrently. Hybrid queries add the customer's text as
`userInput(@agentflow_text)` with the `tokenize` grammar, so it is only ever words to match
in `text`, never query syntax (`-word`, `field:value`). A tenant-less filter matches the
`tenantless` attribute, because Vespa rejects the empty word `tenant contains ""`.

Timeouts: `timeout_s` is Vespa's server-side timeout for queries and document operations;
the client waits `client_grace_s` longer, so Vespa answers (a partial result, a 504) before
the client gives up. A result whose `coverage` is below `min_coverage` percent (Vespa's soft
timeout answers from the documents it reached in time) raises a retryable `StoreError`
instead of passing a degraded top-k on as if it were complete.

Scores: the schema's HNSW index uses the angular metric, whose distance is the angle between
the vectors and whose `closeness` is 1 / (1 + angle). Both rank profiles return
`closeness(field, embedding)` as a match feature, and `Hit.score` is the cosine similarity
recovered from it: angle = 1 / closeness - 1, similarity = cos(angle). With
prenormalized-angular the distance is 1 - q.a, so similarity = 2 - 1 / closeness.

Credentials (client key, token) are read in `open()` on the worker and never logged; the
token comes from an environment variable named by `token_env`, so it is not pickled with the
pipeline.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, quote, urlsplit

import numpy as np

from agentflow.observability import metrics
from agentflow.retry import RetryPolicy
from agentflow.stores.base import QueryFilter, StoreError, TransientReason, VectorStore
from agentflow.stores.vespa_app import DISTANCE_METRICS, TENANTLESS_FIELD, VespaSchemaConfig
from agentflow.types import Document, Hit

_LOG = logging.getLogger(__name__)
RETRYABLE_STATUS = (429, 500, 502, 503, 504)  # retried by the client, then transient
FEED_BLOCKED_STATUS = 507  # content cluster out of memory or disk: transient, not retried at once
AUTH_STATUS = (401, 403)
_TRANSIENT_QUERY_ERRORS = (0, 10, 12)  # no backends, backend communication error, timeout
TEXT_PARAMETER = "agentflow_text"  # the request property hybrid queries pass the customer's text in
_TLS_PROBE_INTERVAL_S = 5.0


@dataclass(frozen=True, repr=False)
class VespaConfig:
  """Where the Vespa container is and how to talk to it.

  `url` includes the port (or give `port`). mTLS: `cert` and `key` (PEM paths), `ca_cert` to
  trust a private CA. Token auth (Vespa Cloud): `token_env` names the environment variable
  holding the token, sent as `Authorization: Bearer`; `token` may be set instead but then
  travels with the pickled pipeline. `hybrid` adds `or userInput(...)` with `hybrid_profile`
  when texts are passed to `query`. `max_retries`, `backoff_base_s` and `backoff_max_s` are
  the `retry_policy` every request is retried with. `timeout_s` is the server-side timeout
  Vespa is given; the client waits `client_grace_s` longer. `min_coverage`: the least
  percentage of documents a query result must cover (below it the result is degraded).
  """
  url: str = "http://localhost:8080"
  port: Optional[int] = None
  namespace: str = "agentflow"
  doc_type: str = "agent_context"
  cert: Optional[str] = None
  key: Optional[str] = None
  ca_cert: Optional[str] = None
  token_env: Optional[str] = None
  token: Optional[str] = None
  max_concurrency: int = 8
  max_retries: int = 5
  backoff_base_s: float = 0.2
  backoff_max_s: float = 10.0
  timeout_s: float = 30.0
  client_grace_s: float = 5.0
  min_coverage: float = 100.0
  hybrid: bool = False
  semantic_profile: str = "semantic"
  hybrid_profile: str = "hybrid"
  distance_metric: str = "angular"
  query_tensor: str = "q"

  def __post_init__(self):
    parts = urlsplit(self.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
      raise ValueError(f"Vespa url must be http(s)://host[:port], not {_redact_url(self.url)!r}")
    if parts.username or parts.password:
      raise ValueError("credentials in the Vespa url are not supported; use token_env or cert/key")
    if self.distance_metric not in DISTANCE_METRICS:
      raise ValueError(f"distance_metric must be one of {DISTANCE_METRICS}")
    if self.key and not self.cert:
      raise ValueError("key requires cert")
    if self.max_concurrency < 1 or self.max_retries < 0:
      raise ValueError("max_concurrency must be >= 1 and max_retries >= 0")
    if self.timeout_s <= 0 or self.client_grace_s < 0 or not 0 <= self.min_coverage <= 100:
      raise ValueError("timeout_s must be > 0, client_grace_s >= 0 and min_coverage a percentage (0-100)")

  def __repr__(self):
    shown = []
    for f in dataclasses.fields(self):
      value = getattr(self, f.name)
      if f.name == "token" and value is not None:
        value = "***"
      if value != f.default or f.name in ("url", "namespace"):
        shown.append(f"{f.name}={value!r}")
    return f"VespaConfig({', '.join(shown)})"

  @property
  def retry_policy(self) -> RetryPolicy:
    """The backoff every Vespa request is retried with (`max_retries` retries after the first try)."""
    return RetryPolicy(max_attempts=self.max_retries + 1, initial_backoff_s=self.backoff_base_s,
                       max_backoff_s=self.backoff_max_s)

  @property
  def server_timeout(self) -> str:
    """`timeout_s` in Vespa's parameter syntax."""
    return f"{self.timeout_s:g}s"

  def resolve_token(self) -> Optional[str]:
    if self.token_env:
      token = os.environ.get(self.token_env)
      if not token:
        raise StoreError(f"environment variable {self.token_env} (Vespa token) is not set")
      return token
    return self.token

  def schema_config(self, dimension: int) -> VespaSchemaConfig:
    """The application package settings this store expects."""
    return VespaSchemaConfig(dimension=dimension, doc_type=self.doc_type, distance_metric=self.distance_metric,
                             semantic_profile=self.semantic_profile, hybrid_profile=self.hybrid_profile,
                             query_tensor=self.query_tensor)


def similarity_from_closeness(closeness: float, metric: str = "angular") -> float:
  """Cosine similarity from Vespa's `closeness` (1 / (1 + distance)); -1 when not matched by nearestNeighbor."""
  if not closeness or closeness <= 0 or math.isnan(closeness):
    return -1.0
  distance = 1.0 / closeness - 1.0
  sim = math.cos(distance) if metric == "angular" else 1.0 - distance
  return max(-1.0, min(1.0, sim))


def _redact_url(url: str) -> str:
  parts = urlsplit(url)
  if parts.password or parts.username:
    return parts._replace(netloc=f"***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")).geturl()
  return url


def yql_string(value: str) -> str:
  """A YQL string literal (JSON escaping; non-ASCII passes through as UTF-8)."""
  return json.dumps(str(value), ensure_ascii=False)


def _yql_number(value: float) -> str:
  value = float(value)
  if not math.isfinite(value):
    raise ValueError(f"filter bound must be finite, not {value}")
  return repr(value)


def filter_clauses(flt: Optional[QueryFilter]) -> List[str]:
  """YQL conditions for `flt`: cased string attributes use `contains`, the timestamp `>=`/`<`.

  Vespa rejects an empty word (`contains ""`), so the empty tenant is `tenantless = true`:
  a tenant-less event still sees only tenant-less documents. No document has an empty id,
  so empty excluded ids are dropped; an empty session or kind has no such flag and is refused.
  """
  if flt is None:
    return []
  out = []
  for name in ("session_id", "tenant", "kind"):
    value = getattr(flt, name)
    if value is None:
      continue
    if value:
      out.append(f"{name} contains {yql_string(value)}")
    elif name == "tenant":
      out.append(f"{TENANTLESS_FIELD} = true")
    else:
      raise ValueError(f"cannot filter Vespa documents on an empty {name}: Vespa rejects empty words; "
                       f"leave {name} unset to match any")
  if flt.since is not None:
    out.append(f"timestamp >= {_yql_number(flt.since)}")
  if flt.until is not None:
    out.append(f"timestamp < {_yql_number(flt.until)}")
  out.extend(f"!(id contains {yql_string(i)})" for i in flt.exclude_ids if i)
  return out


def tls_handshake_error(host: str, port: int, ca_cert: Optional[str], cert: Optional[str], key: Optional[str],
                        timeout_s: float = 5.0) -> Optional[str]:
  """What a TLS handshake with the store's settings fails with, or None when it succeeds (or cannot connect).

  pyvespa's HTTP client reports a failed handshake as a bare "error sending request", like a
  refused connection, so the store repeats the handshake with Python's ssl module to tell a
  configuration error (untrusted CA, refused client certificate) from an outage. Under TLS 1.3
  a refused client certificate arrives as an alert after the handshake, hence the short read.
  """
  try:
    ctx = ssl.create_default_context(cafile=ca_cert)
    if cert:
      ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection((host, port), timeout=timeout_s) as raw:
      with ctx.wrap_socket(raw, server_hostname=host) as tls:
        tls.settimeout(0.5)
        try:
          tls.recv(1)
        except TimeoutError:
          pass
  except ssl.SSLError as e:
    return f"{type(e).__name__}: {e}"
  except OSError:
    return None
  return None


class VespaVectorStore(VectorStore):
  """`VectorStore` on a Vespa application deployed from `vespa_app.application_package`.

  Thread-safe: calls from any thread run on one private event loop thread, which owns the
  pyvespa `VespaAsync` session. `retries` counts retried HTTP requests since `open()`.
  """

  def __init__(self, config: VespaConfig, dimension: int):
    self.config = config
    self._dimension = int(dimension)
    self.retries = 0
    self._loop: Optional[asyncio.AbstractEventLoop] = None
    self._thread: Optional[threading.Thread] = None
    self._session = None
    self._semaphore: Optional[asyncio.Semaphore] = None
    self._retry_counter = None
    self._degraded_counter = None
    self._tls_probe: Tuple[float, Optional[str]] = (-math.inf, None)

  def __getstate__(self):
    state = dict(self.__dict__)
    state.update(_loop=None, _thread=None, _session=None, _semaphore=None, _retry_counter=None,
                 _degraded_counter=None, retries=0, _tls_probe=(-math.inf, None))
    return state

  def __repr__(self):
    return f"VespaVectorStore({self.config!r}, dimension={self._dimension})"

  @property
  def dimension(self) -> int:
    return self._dimension

  # ---------------------------------------------------------------- lifecycle

  def open(self) -> None:
    if self._session is not None:
      return
    from vespa.application import Vespa
    from vespa.retries import NO_RETRY
    cfg = self.config
    token = cfg.resolve_token()
    app = Vespa(url=cfg.url, port=cfg.port, cert=cfg.cert, key=cfg.key, vespa_cloud_secret_token=token)
    client_kwargs: Dict[str, Any] = {"max_concurrency": cfg.max_concurrency}
    if cfg.ca_cert:
      client_kwargs["ca_cert_file"] = cfg.ca_cert
    # pyvespa's retry layers are off (NO_RETRY): every request goes through `_request`, so
    # attempts and backoff come from `cfg.retry_policy` alone.
    session = app.asyncio(connections=1, timeout=cfg.timeout_s + cfg.client_grace_s, docv1_retry_policy=NO_RETRY,
                          **client_kwargs)
    self._retry_counter = metrics.counter("vespa.retries")
    self._degraded_counter = metrics.counter("vespa.degraded_results")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="agentflow-vespa", daemon=True)
    thread.start()
    self._loop, self._thread = loop, thread
    try:
      self._call(session.__aenter__())
    except BaseException:
      self._stop_loop()
      raise
    self._session = session
    self._semaphore = asyncio.Semaphore(cfg.max_concurrency)

  def close(self) -> None:
    session, self._session = self._session, None
    if session is not None:
      try:
        self._call(session.__aexit__(None, None, None))
      finally:
        self._stop_loop()

  def _stop_loop(self) -> None:
    loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
    if loop is not None:
      loop.call_soon_threadsafe(loop.stop)
      thread.join(10)
      loop.close()

  def _call(self, coro):
    if self._loop is None:
      coro.close()
      raise StoreError("Vespa store is not open; call open() first")
    return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

  def _require_open(self):
    if self._session is None:
      raise StoreError("Vespa store is not open; call open() first")
    return self._session

  # ---------------------------------------------------------------- retries

  async def _request(self, send):
    """`await send()` under `config.retry_policy`: retried on transport errors (not TLS) and RETRYABLE_STATUS."""
    return await self.config.retry_policy.acall(
        send, retryable=lambda e: self._tls_failure(e) is None,
        retry_result=lambda r: r.get_status_code() in RETRYABLE_STATUS, on_retry=self._on_retry)

  def _on_retry(self, why) -> None:
    self.retries += 1
    if self._retry_counter is not None:
      self._retry_counter.inc()
    reason = type(why).__name__ if isinstance(why, BaseException) else f"HTTP {why.get_status_code()}"
    _LOG.debug("Vespa request retry %d after %s", self.retries, reason)

  def _tls_failure(self, e: BaseException) -> Optional[str]:
    """The TLS handshake error behind transport error `e`, if that is what it is (probed at most every 5 s)."""
    if isinstance(e, ssl.SSLError):
      return f"{type(e).__name__}: {e}"
    parts = urlsplit(self.config.url)
    if parts.scheme != "https":
      return None
    checked_at, verdict = self._tls_probe
    if time.monotonic() - checked_at >= _TLS_PROBE_INTERVAL_S:
      cfg = self.config
      verdict = tls_handshake_error(parts.hostname, parts.port or 443, cfg.ca_cert, cfg.cert, cfg.key)
      self._tls_probe = (time.monotonic(), verdict)
    return verdict

  def _configuration_error(self, outcome) -> Optional[StoreError]:
    """A StoreError for what no retry can fix (TLS, credentials), else None."""
    if isinstance(outcome, BaseException):
      tls = self._tls_failure(outcome)
      if tls is not None:
        return StoreError(f"TLS handshake with Vespa at {_redact_url(self.config.url)} failed ({tls}); check "
                          "ca_cert (the CA that signed Vespa's certificate) and cert/key (a client certificate "
                          "Vespa trusts)")
      return None
    status = outcome.get_status_code()
    if status in AUTH_STATUS:
      how = "token_env (a valid data-plane token)" if self.config.token_env or self.config.token else "cert/key"
      return StoreError(f"Vespa at {_redact_url(self.config.url)} refused the credentials (HTTP {status}: "
                        f"{self._message(outcome)}); check {how} and that it grants read and write")
    return None

  # ---------------------------------------------------------------- documents

  def upsert(self, docs: Sequence[Document]) -> Sequence[Optional[str]]:
    session = self._require_open()
    results: List[Optional[str]] = [None] * len(docs)
    feed: List[Tuple[int, Document, Dict[str, Any]]] = []
    for i, doc in enumerate(docs):
      vector = np.asarray(doc.vector, dtype=np.float32).reshape(-1)
      if vector.shape[0] != self._dimension:
        results[i] = (f"document {doc.id!r} has a {vector.shape[0]}-d vector; the Vespa schema holds "
                      f"{self._dimension}-d")
      elif not np.all(np.isfinite(vector)):
        results[i] = f"document {doc.id!r} has a non-finite vector value"
      else:
        feed.append((i, doc, self._fields(doc, vector)))
    if not feed:
      return results

    async def put(doc: Document, fields: Dict[str, Any]):
      return await self._request(lambda: session.feed_data_point(
          self.config.doc_type, doc.id, fields, namespace=self.config.namespace, semaphore=self._semaphore,
          timeout=self.config.server_timeout))

    outcomes = self._call(_gather([put(d, f) for _, d, f in feed]))
    for outcome in outcomes:
      error = self._configuration_error(outcome)
      if error is not None:
        raise error
    unreachable = []
    for (i, _doc, _), outcome in zip(feed, outcomes):
      if isinstance(outcome, BaseException):
        unreachable.append(outcome)
        results[i] = TransientReason(
            f"Vespa unreachable after {self.config.max_retries} retries: {_describe(outcome)}")
      elif outcome.get_status_code() in RETRYABLE_STATUS + (FEED_BLOCKED_STATUS,):
        results[i] = TransientReason(self._reason(outcome))
      elif outcome.get_status_code() != 200:
        results[i] = self._reason(outcome)
    if len(unreachable) == len(feed) == len(docs):
      raise StoreError(f"Vespa at {_redact_url(self.config.url)} unreachable: {_describe(unreachable[0])}",
                       retryable=True)
    return results

  def _fields(self, doc: Document, vector: np.ndarray) -> Dict[str, Any]:
    return {
        "id": doc.id, "event_id": doc.event_id, "text": doc.text, "session_id": doc.session_id,
        "tenant": doc.tenant, TENANTLESS_FIELD: not doc.tenant, "kind": doc.kind, "timestamp": float(doc.timestamp),
        "metadata": json.dumps(dict(doc.metadata), ensure_ascii=False, sort_keys=True, default=str),
        "embedding": {"values": vector.tolist()},
    }

  @staticmethod
  def _message(response) -> str:
    body = response.get_json() if isinstance(response.get_json(), dict) else {}
    return body.get("message") or body.get("Exception") or json.dumps(body)[:500]

  def _reason(self, response) -> str:
    status = response.get_status_code()
    message = self._message(response)
    if status in RETRYABLE_STATUS:
      return f"HTTP {status} after {self.config.max_retries} retries: {message}"
    if status == FEED_BLOCKED_STATUS:
      return (f"HTTP 507: {message} (Vespa's content cluster blocks feed: it is out of memory or disk; add "
              "capacity or remove documents, then replay the dead letters)")
    return f"HTTP {status}: {message}"

  def delete(self, ids: Sequence[str]) -> None:
    session = self._require_open()
    if not ids:
      return

    async def remove(doc_id: str):
      return await self._request(lambda: session.delete_data(
          self.config.doc_type, doc_id, namespace=self.config.namespace, semaphore=self._semaphore,
          timeout=self.config.server_timeout))

    outcomes = self._call(_gather([remove(i) for i in ids]))
    for doc_id, outcome in zip(ids, outcomes):
      self._raise_for(outcome, f"delete {doc_id!r}")

  def get(self, ids: Sequence[str]) -> List[Optional[Document]]:
    session = self._require_open()

    async def fetch(doc_id: str):
      return await self._request(lambda: session.get_data(
          self.config.doc_type, doc_id, namespace=self.config.namespace, semaphore=self._semaphore,
          timeout=self.config.server_timeout))

    outcomes = self._call(_gather([fetch(i) for i in ids]))
    docs: List[Optional[Document]] = []
    for doc_id, outcome in zip(ids, outcomes):
      if not isinstance(outcome, BaseException) and outcome.get_status_code() == 404:
        docs.append(None)
        continue
      self._raise_for(outcome, f"get {doc_id!r}")
      docs.append(_document(doc_id, outcome.get_json().get("fields", {})))
    return docs

  def _raise_for(self, outcome, what: str) -> None:
    error = self._configuration_error(outcome)
    if error is not None:
      raise error
    if isinstance(outcome, BaseException):
      raise StoreError(f"Vespa {what} failed: {_describe(outcome)}", retryable=True) from outcome
    if outcome.get_status_code() != 200:
      raise StoreError(f"Vespa {what} failed: {self._reason(outcome)}",
                       retryable=outcome.get_status_code() in RETRYABLE_STATUS)

  # ---------------------------------------------------------------- queries

  def query(self, vectors: np.ndarray, k: int, flt: Optional[QueryFilter] = None,
            texts: Optional[Sequence[str]] = None) -> List[List[Hit]]:
    """Top-k per row; with `config.hybrid` and `texts`, row i also matches the words of `texts[i]` in `text`."""
    q = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    if q.shape[1] != self._dimension:
      raise ValueError(f"query has {q.shape[1]}-d vectors; the Vespa schema holds {self._dimension}-d")
    if texts is not None and len(texts) != q.shape[0]:
      raise ValueError(f"{len(texts)} texts for {q.shape[0]} query vectors")
    self._require_open()
    if k <= 0 or q.shape[0] == 0:
      return [[] for _ in range(q.shape[0])]
    bodies = [self.query_body(row, k, flt, texts[i] if texts is not None else None) for i, row in enumerate(q)]
    return [self._hits(r) for r in self._search_all(bodies)]

  def query_body(self, vector: np.ndarray, k: int, flt: Optional[QueryFilter] = None,
                 text: Optional[str] = None) -> Dict[str, Any]:
    """The /search/ request body for one query vector.

    Hybrid: the text goes in its own request property, read by `userInput` with the
    `tokenize` grammar (words to match in `text`, combined by weakAnd; no query syntax).
    """
    cfg = self.config
    nn = f"{{targetHits:{int(k)}}}nearestNeighbor(embedding, {cfg.query_tensor})"
    hybrid = cfg.hybrid and bool(text and text.strip())
    match = f"({nn} or ({{defaultIndex:\"text\", grammar:\"tokenize\"}}userInput(@{TEXT_PARAMETER})))" if hybrid else nn
    where = " and ".join([match] + filter_clauses(flt))
    body = {
        "yql": f"select * from sources {cfg.doc_type} where {where}",
        "hits": int(k),
        "ranking.profile": cfg.hybrid_profile if hybrid else cfg.semantic_profile,
        f"input.query({cfg.query_tensor})": np.asarray(vector, dtype=np.float32).tolist(),
        "timeout": cfg.server_timeout,
    }
    if hybrid:
      body[TEXT_PARAMETER] = text
    return body

  def count(self, flt: Optional[QueryFilter] = None) -> int:
    self._require_open()
    clauses = filter_clauses(flt)
    if not any(not c.startswith("!") for c in clauses):
      clauses.insert(0, "true")
    yql = f"select * from sources {self.config.doc_type} where {' and '.join(clauses)} limit 0"
    result = self._search_all([{"yql": yql, "timeout": self.config.server_timeout}])[0]
    return int(result.get("root", {}).get("fields", {}).get("totalCount", 0))

  def _search_all(self, bodies: List[Dict[str, Any]]) -> List[dict]:
    from vespa.retries import NO_RETRY
    session = self._require_open()

    async def search(body):
      async with self._semaphore:
        return await self._request(lambda: session.query(body=body, retry_policy=NO_RETRY))

    outcomes = self._call(_gather([search(b) for b in bodies]))
    results = []
    for outcome in outcomes:
      error = self._configuration_error(outcome)
      if error is not None:
        raise error
      if isinstance(outcome, BaseException):
        raise StoreError(f"Vespa query failed: {_describe(outcome)}", retryable=True) from outcome
      body = outcome.get_json() if isinstance(outcome.get_json(), dict) else {}
      errors = body.get("root", {}).get("errors") or []
      status = outcome.get_status_code()
      if status != 200 or errors:
        codes = [e.get("code") for e in errors]
        detail = "; ".join(f"{e.get('summary', '')}: {e.get('message', '')}" for e in errors) or body.get(
            "message", "")
        raise StoreError(f"Vespa query failed with HTTP {status}: {detail}",
                         retryable=status in RETRYABLE_STATUS or any(c in _TRANSIENT_QUERY_ERRORS for c in codes))
      self._check_coverage(body)
      results.append(body)
    return results

  def _check_coverage(self, result: dict) -> None:
    """Raise a retryable StoreError for a result covering less than `min_coverage` percent of the documents."""
    coverage = result.get("root", {}).get("coverage")
    if not isinstance(coverage, dict):
      return
    percent = float(coverage.get("coverage", 100))
    if percent >= self.config.min_coverage and coverage.get("full", True):
      return
    if self._degraded_counter is not None:
      self._degraded_counter.inc()
    if percent >= self.config.min_coverage:
      return
    degraded = sorted(k for k, v in (coverage.get("degraded") or {}).items() if v)
    raise StoreError(f"Vespa answered from {percent:g}% of the documents ({', '.join(degraded) or 'degraded'}; "
                     f"min_coverage is {self.config.min_coverage:g}%): a soft timeout or an unhealthy content "
                     "node; retrying, or raise timeout_s", retryable=True)

  def _hits(self, result: dict) -> List[Hit]:
    hits = []
    for child in result.get("root", {}).get("children", []) or []:
      fields = child.get("fields", {})
      features = {k.replace(" ", ""): v for k, v in (fields.get("matchfeatures") or {}).items()}
      closeness = features.get("closeness(field,embedding)", child.get("relevance"))
      try:
        closeness = float(closeness)
      except (TypeError, ValueError):
        closeness = 0.0
      hits.append(Hit(
          id=fields.get("id") or _local_id(child.get("id", "")),
          score=similarity_from_closeness(closeness, self.config.distance_metric),
          text=fields.get("text", ""), session_id=fields.get("session_id", ""), kind=fields.get("kind", ""),
          timestamp=float(fields.get("timestamp", 0.0)), metadata=_metadata(fields.get("metadata"))))
    return hits


async def _gather(coros):
  return await asyncio.gather(*coros, return_exceptions=True)


def _describe(e: BaseException) -> str:
  return f"{type(e).__name__}: {e}"[:500]


def _local_id(vespa_id: str) -> str:
  return vespa_id.split("::", 1)[1] if "::" in vespa_id else vespa_id


def _metadata(raw: Any) -> Dict[str, Any]:
  if isinstance(raw, dict):
    return raw
  try:
    out = json.loads(raw or "{}")
  except ValueError:
    return {"_raw": raw}
  return out if isinstance(out, dict) else {"_value": out}


def _tensor_values(value: Any) -> List[float]:
  if isinstance(value, dict):
    if "values" in value:
      return value["values"]
    if "cells" in value:
      cells = value["cells"]
      ordered = sorted(cells, key=lambda c: int(c["address"]["x"])) if isinstance(cells, list) else [
          {"value": v} for _, v in sorted(cells.items(), key=lambda kv: int(kv[0]))]
      return [c["value"] for c in ordered]
  return list(value or [])


def _document(doc_id: str, fields: Dict[str, Any]) -> Document:
  return Document(
      id=fields.get("id", doc_id), vector=np.asarray(_tensor_values(fields.get("embedding")), dtype=np.float32),
      text=fields.get("text", ""), session_id=fields.get("session_id", ""), tenant=fields.get("tenant", ""),
      kind=fields.get("kind", ""), timestamp=float(fields.get("timestamp", 0.0)),
      event_id=fields.get("event_id", ""), metadata=_metadata(fields.get("metadata")))


_URI_PARAMS = {
    "namespace": ("namespace", str), "doc_type": ("doc_type", str), "cert": ("cert", str), "key": ("key", str),
    "ca_cert": ("ca_cert", str), "token_env": ("token_env", str), "concurrency": ("max_concurrency", int),
    "retries": ("max_retries", int), "backoff": ("backoff_base_s", float), "backoff_max": ("backoff_max_s", float),
    "timeout": ("timeout_s", float), "client_grace": ("client_grace_s", float),
    "min_coverage": ("min_coverage", float), "hybrid": ("hybrid", lambda v: v.lower() in ("1", "true", "yes")),
    "semantic_profile": ("semantic_profile", str), "hybrid_profile": ("hybrid_profile", str),
    "metric": ("distance_metric", str),
}


def config_from_uri(rest: str) -> VespaConfig:
  """`http(s)://host:port?namespace=..&cert=..&key=..&ca_cert=..&token_env=..&concurrency=..` -> VespaConfig."""
  parts = urlsplit(rest)
  kwargs: Dict[str, Any] = {"url": parts._replace(query="", fragment="").geturl().rstrip("/")}
  for name, value in parse_qsl(parts.query, keep_blank_values=True):
    if name == "token":
      raise ValueError("a Vespa token must not be put in the store URI; set token_env=ENV_VAR_NAME instead")
    if name not in _URI_PARAMS:
      raise ValueError(f"unknown Vespa store URI parameter {name!r}; known: {', '.join(sorted(_URI_PARAMS))}")
    field_name, convert = _URI_PARAMS[name]
    try:
      kwargs[field_name] = convert(value)
    except ValueError:
      raise ValueError(f"bad value for Vespa store URI parameter {name!r}: {quote(value)!r}") from None
  return VespaConfig(**kwargs)


def vespa_store_from_uri(rest: str, dimension: int) -> VespaVectorStore:
  """The `vespa:` scheme of `store_from_uri`: `vespa:http://localhost:8080?namespace=x&concurrency=8`."""
  return VespaVectorStore(config_from_uri(rest), dimension)
