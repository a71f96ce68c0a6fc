"""A strict in-process stand-in for a Vespa container: /document/v1/ and /search/ over HTTP/2 and HTTP/1.1.

Tests only. It takes its schema from the pyvespa `Schema` the application package is built
from, answers in Vespa's formats, rejects what Vespa rejects (undefined fields, wrong tensor
sizes, unknown document types, rank profiles and query inputs, empty words) with Vespa's
status codes and error bodies, and can inject throttling (429), outages (503), server errors
(500), a load balancer's 502, a content cluster blocked for feed (507), refused credentials
(403), slow responses, and soft timeouts that answer from part of the corpus with Vespa's
degraded `coverage`.

Where `java` and `mvn` exist, every query and document put is first put to Vespa's own
container code (tests/vespa_java.py: YQL parsing, query validation, the document JSON
reader); what Vespa rejects is answered with Vespa's own error, so the server can be no more
lenient than Vespa there. Its own checks below still run on what Vespa accepts.

Transport: pyvespa 1.2.9's `VespaAsync` uses httpr with `http2_only=True`, i.e. HTTP/2 with
prior knowledge (h2c) on http:// and ALPN h2 on https://; queries ask for
`Accept: application/cbor` and bodies over 1 KiB are gzip-encoded. Both are served here
(CBOR when preferred, as Vespa >= 8.623.5 does); plain HTTP/1.1 clients work too.

Formats read from vespa-engine/documentation@7b53ea4 and vespa-engine/vespa@1f79d33:
en/reference/api/document-v1.html and DocumentV1ApiHandler.java (paths, status codes,
{"pathId","id","fields"} and {"pathId","message"} bodies, "Rejecting execution due to
overload"); en/reference/schemas/document-json-format.html, TensorReader.java,
StructReader.java and JsonReader.java (tensor forms and the parse error texts);
en/reference/querying/default-result-format.html and en/querying/query-api.html (root,
fields.totalCount, coverage, children with id/relevance/source/fields, errors with
code/summary/message); en/reference/querying/yql.html (operators);
en/reference/schemas/schemas.html and en/reference/ranking/rank-features.html
(distance metrics, closeness = 1 / (1 + distance)).

Search is exact: nearestNeighbor returns the true top targetHits among documents passing
the query's top-level filters (Vespa's pre-filtering), where HNSW would be approximate.
`closeness(field, embedding)` is computed for every ranked document, including those only
a text term matched, as Vespa does since 8.15.51. A global phase
`reciprocal_rank_fusion(a, b)` is 1 / (60 + rank by a) + 1 / (60 + rank by b) over the
`rerank-count` best hits by the first phase (ranks start at 1).
"""
from __future__ import annotations

import collections
import gzip
import hashlib
import json
import math
import random
import re
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import numpy as np

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DOCV1 = re.compile(r"^/document/v1/([^/]+)/([^/]+)/docid/(.+)$")
INVALID_QUERY_PARAMETER = 4  # com.yahoo.search.result.ErrorMessage codes
ILLEGAL_QUERY = 3
NO_BACKENDS_IN_SERVICE = 0
INTERNAL_SERVER_ERROR = 8
EMPTY_WORD = "Could not create query from YQL: The word of a word item cannot be empty"  # WordItem, 8.700
GRAMMARS = ("all", "any", "weakAnd", "tokenize", "linguistics", "raw", "segment", "web")


class _BadRequest(Exception):
  pass


class _QueryError(Exception):
  def __init__(self, message: str, code: int = INVALID_QUERY_PARAMETER, summary: str = "Invalid query parameter"):
    super().__init__(message)
    self.code, self.summary = code, summary


# ---------------------------------------------------------------- schema


@dataclass
class _FieldSpec:
  name: str
  type: str
  attribute: bool
  index: bool
  summary: bool
  cased: bool = False
  dimension: int = 0
  metric: str = ""

  @property
  def is_tensor(self) -> bool:
    return self.type.startswith("tensor")

  @property
  def is_numeric(self) -> bool:
    return self.type in ("double", "float", "long", "int", "byte")


@dataclass
class _Profile:
  name: str
  terms: List[str]
  inputs: Dict[str, str]
  match_features: List[str]
  fused: List[str] = field(default_factory=list)  # global-phase reciprocal_rank_fusion arguments
  rerank_count: int = 100


def _feature_name(text: str) -> str:
  return re.sub(r"\s+", "", text)


class SchemaModel:
  """The parts of a pyvespa `Schema` the server enforces."""

  TENSOR = re.compile(r"^tensor<float>\(x\[(\d+)\]\)$")
  SUPPORTED_TERMS = re.compile(r"^(closeness\(field,\w+\)|bm25\(\w+\))$")

  def __init__(self, schema):
    self.doc_type = schema.name
    self.fields: Dict[str, _FieldSpec] = {}
    for f in schema.document.fields:
      indexing = list(f.indexing or [])
      spec = _FieldSpec(f.name, f.type, "attribute" in indexing, "index" in indexing, "summary" in indexing,
                        cased="cased" in (f.match or []))
      if spec.is_tensor:
        m = self.TENSOR.match(f.type)
        if not m:
          raise ValueError(f"unsupported tensor type {f.type}")
        spec.dimension = int(m.group(1))
        spec.metric = f.ann.distance_metric if f.ann is not None else "euclidean"
      self.fields[f.name] = spec
    self.fieldsets = {name: list(fs.fields) for name, fs in schema.fieldsets.items()}
    self.profiles: Dict[str, _Profile] = {
        "default": _Profile("default", [], {}, []), "unranked": _Profile("unranked", [], {}, [])}
    for name, rp in schema.rank_profiles.items():
      expr = rp.first_phase if isinstance(rp.first_phase, str) else rp.first_phase.expression
      terms = [_feature_name(t) for t in expr.split("+")]
      for t in terms:
        if not self.SUPPORTED_TERMS.match(t):
          raise ValueError(f"rank expression term {t!r} is not supported by the protocol server")
      inputs = {_feature_name(n): t for n, t in (rp.inputs or [])}
      profile = _Profile(name, terms, inputs, [_feature_name(m) for m in (rp.match_features or [])])
      if rp.global_phase is not None:
        m = re.fullmatch(r"reciprocal_rank_fusion\((.*)\)", _feature_name(rp.global_phase.expression))
        fused = re.findall(r"\w+\([^()]*\)", m.group(1)) if m else []
        if not fused or not all(self.SUPPORTED_TERMS.match(t) for t in fused):
          raise ValueError(f"global phase {rp.global_phase.expression!r} is not supported by the protocol server")
        profile.fused, profile.rerank_count = fused, int(rp.global_phase.rerank_count)
      self.profiles[name] = profile

  def tensor_type(self, name: str) -> str:
    return self.fields[name].type


# ---------------------------------------------------------------- tensors (document JSON format)


def parse_dense_tensor(value: Any, dimension: int) -> np.ndarray:
  """A dense tensor<float>(x[d]) value in any of the documented JSON forms, or ValueError."""
  if isinstance(value, str):
    return _hex_values(value, dimension)
  if isinstance(value, dict):
    keys = set(value) - {"type"}
    if keys == {"values"}:
      inner = value["values"]
      if isinstance(inner, str):
        if not inner:
          raise ValueError("The 'values' string does not contain any values")
        return _hex_values(inner, dimension)
      return _values(inner, dimension)
    if keys == {"cells"}:
      return _cells(value["cells"], dimension)
    if keys == {"blocks"}:
      raise ValueError("The 'blocks' field can only be used with mixed tensors with bound dimensions. "
                       "Use 'cells' or 'values' instead")
    raise ValueError(f"Unexpected tensor object keys {sorted(value)}; expected 'values' or 'cells'")
  if isinstance(value, list):
    if value and all(isinstance(c, dict) for c in value):
      return _cells(value, dimension)
    return _values(value, dimension)
  raise ValueError(f"Expected a tensor value but got {type(value).__name__}")


def _number(v: Any) -> float:
  if isinstance(v, bool) or not isinstance(v, (int, float, str)):
    raise ValueError(f"Expected a number but got '{v}'")
  try:
    return float(v)
  except ValueError:
    raise ValueError(f"Expected a number but got '{v}'") from None


def _values(values: Any, dimension: int) -> np.ndarray:
  if not isinstance(values, list):
    raise ValueError(f"Expected 'values' to contain an array, but got {type(values).__name__}")
  out = [_number(v) for v in _flat(values)]
  if not out:
    raise ValueError("The 'values' array does not contain any values")
  if len(out) != dimension:
    raise ValueError(f"Expected {dimension} values, but got {len(out)}")
  return np.asarray(out, dtype=np.float32)


def _flat(values: list):
  for v in values:
    if isinstance(v, list):
      yield from _flat(v)
    else:
      yield v


def _hex_values(text: str, dimension: int) -> np.ndarray:
  if len(text) != 8 * dimension or not re.fullmatch(r"[0-9A-Fa-f]*", text):
    raise ValueError(f"Bad hex string input for tensor with type tensor<float>(x[{dimension}])")
  return np.frombuffer(bytes.fromhex(text), dtype=">f4").astype(np.float32)


def _cells(cells: Any, dimension: int) -> np.ndarray:
  if not isinstance(cells, list):
    raise ValueError(f"Expected 'cells' to contain an array or an object, but got {type(cells).__name__}")
  out = np.zeros(dimension, dtype=np.float32)
  seen = set()
  for cell in cells:
    if not isinstance(cell, dict) or "address" not in cell:
      raise ValueError("Expected an object in a tensor 'cells' array to contain an 'address' field")
    if "value" not in cell:
      raise ValueError("Expected an object in a tensor 'cells' array to contain a 'value' field")
    address = cell["address"]
    if not isinstance(address, dict) or set(address) != {"x"}:
      raise ValueError(f"{address} is not a valid address for tensor<float>(x[{dimension}])")
    try:
      i = int(address["x"])
    except (TypeError, ValueError):
      raise ValueError(f"'{address['x']}' is not a valid index in dimension x") from None
    if not 0 <= i < dimension:
      raise ValueError(f"[{i}] are not within bounds of tensor<float>(x[{dimension}])")
    out[i] = _number(cell["value"])
    seen.add(i)
  if len(seen) != dimension:
    raise ValueError(f"Missing values in dimension x: expected {dimension}, got {len(seen)}")
  return out


# ---------------------------------------------------------------- CBOR (RFC 8949), the subset JSON needs


def cbor_dumps(obj: Any) -> bytes:
  out = bytearray()
  _cbor(obj, out)
  return bytes(out)


def _cbor_head(major: int, n: int, out: bytearray) -> None:
  if n < 24:
    out.append(major << 5 | n)
  elif n < 1 << 8:
    out += bytes([major << 5 | 24, n])
  elif n < 1 << 16:
    out.append(major << 5 | 25)
    out += struct.pack(">H", n)
  elif n < 1 << 32:
    out.append(major << 5 | 26)
    out += struct.pack(">I", n)
  else:
    out.append(major << 5 | 27)
    out += struct.pack(">Q", n)


def _cbor(obj: Any, out: bytearray) -> None:
  if obj is None:
    out.append(0xF6)
  elif obj is True:
    out.append(0xF5)
  elif obj is False:
    out.append(0xF4)
  elif isinstance(obj, int):
    _cbor_head(0, obj, out) if obj >= 0 else _cbor_head(1, -1 - obj, out)
  elif isinstance(obj, float):
    out.append(0xFB)
    out += struct.pack(">d", obj)
  elif isinstance(obj, str):
    data = obj.encode("utf-8")
    _cbor_head(3, len(data), out)
    out += data
  elif isinstance(obj, (list, tuple)):
    _cbor_head(4, len(obj), out)
    for item in obj:
      _cbor(item, out)
  elif isinstance(obj, dict):
    _cbor_head(5, len(obj), out)
    for k, v in obj.items():
      _cbor(str(k), out)
      _cbor(v, out)
  else:
    raise TypeError(f"cannot CBOR-encode {type(obj).__name__}")


# ---------------------------------------------------------------- YQL (the subset agentflow emits)


_TOKEN = re.compile(r"""\s*(?:
    (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op><=|>=|!=|=|<|>|!|\(|\)|\{|\}|,|:|\*|;|@)
  | (?P<word>[A-Za-z_][\w.]*)
)""", re.VERBOSE)


def _tokens(text: str) -> List[Tuple[str, Any]]:
  out, pos = [], 0
  text = text.rstrip()
  while pos < len(text):
    m = _TOKEN.match(text, pos)
    if not m or m.end() == pos:
      raise _QueryError(f"Could not create query from YQL: Lexical error at column {pos + 1} near "
                        f"'{text[pos:pos + 10]}'", ILLEGAL_QUERY, "Illegal query")
    pos = m.end()
    kind = m.lastgroup
    value = m.group(kind)
    if kind == "str":
      value = json.loads('"' + value[1:-1].replace('\\\'', "'") + '"') if value[0] == "'" else json.loads(value)
    elif kind == "num":
      value = float(value) if any(c in value for c in ".eE") else int(value)
    out.append((kind, value))
  return out


@dataclass
class Node:
  op: str
  args: list = field(default_factory=list)


class YqlParser:
  """select <fields|*> from [sources] <names|*> where <expr> [limit N] [;]"""

  def __init__(self, text: str):
    self.toks = _tokens(text)
    self.i = 0

  def peek(self, k: int = 0):
    j = self.i + k
    return self.toks[j] if j < len(self.toks) else ("eof", None)

  def take(self, kind=None, value=None):
    tok = self.peek()
    if (kind and tok[0] != kind) or (value is not None and (not isinstance(tok[1], str) or tok[1].lower() != value)):
      want = value or kind
      raise _QueryError(f"Could not create query from YQL: Expected {want} but got '{tok[1]}'",
                        ILLEGAL_QUERY, "Illegal query")
    self.i += 1
    return tok[1]

  def at(self, value: str) -> bool:
    tok = self.peek()
    return tok[0] in ("word", "op") and isinstance(tok[1], str) and tok[1].lower() == value

  def parse(self):
    self.take("word", "select")
    selected = []
    if self.at("*"):
      self.take("op")
      selected = ["*"]
    else:
      selected.append(self.take("word"))
      while self.at(","):
        self.take("op")
        selected.append(self.take("word"))
    self.take("word", "from")
    if self.at("sources"):
      self.take("word")
    sources = []
    if self.at("*"):
      self.take("op")
      sources = ["*"]
    else:
      sources.append(self.take("word"))
      while self.at(","):
        self.take("op")
        sources.append(self.take("word"))
    self.take("word", "where")
    where = self.expr()
    limit = None
    if self.at("limit"):
      self.take("word")
      limit = self.take("num")
    if self.at(";"):
      self.take("op")
    if self.peek()[0] != "eof":
      raise _QueryError(f"Could not create query from YQL: Unexpected '{self.peek()[1]}'", ILLEGAL_QUERY,
                        "Illegal query")
    return selected, sources, where, limit

  def expr(self) -> Node:
    node = self.conj()
    parts = [node]
    while self.at("or"):
      self.take("word")
      parts.append(self.conj())
    return parts[0] if len(parts) == 1 else Node("or", parts)

  def conj(self) -> Node:
    parts = [self.unary()]
    while self.at("and"):
      self.take("word")
      parts.append(self.unary())
    return parts[0] if len(parts) == 1 else Node("and", parts)

  def unary(self) -> Node:
    if self.at("!"):
      self.take("op")
      return Node("not", [self.unary()])
    if self.at("("):
      self.take("op")
      node = self.expr()
      self.take("op", ")")
      return node
    annotations = {}
    if self.at("{"):
      annotations = self.annotations()
    word = self.take("word")
    low = word.lower()
    if low in ("true", "false") and not self.at("=") and not self.at("contains"):
      return Node(low)
    if low == "nearestneighbor":
      self.take("op", "(")
      fname = self.take("word")
      self.take("op", ",")
      qname = self.take("word")
      self.take("op", ")")
      if "targetHits" not in annotations:
        raise _QueryError("NEAREST_NEIGHBOR: targetHits is required", ILLEGAL_QUERY, "Illegal query")
      unknown = set(annotations) - {"targetHits", "approximate", "label", "hnsw.exploreAdditionalHits",
                                    "distanceThreshold"}
      if unknown:
        raise _QueryError(f"Unknown annotation(s) {sorted(unknown)}", ILLEGAL_QUERY, "Illegal query")
      return Node("nn", [fname, qname, annotations])
    if low == "userquery":
      self.take("op", "(")
      self.take("op", ")")
      return Node("userquery")
    if low == "userinput":
      self.take("op", "(")
      self.take("op", "@")
      param = self.take("word")
      self.take("op", ")")
      unknown = set(annotations) - {"defaultIndex", "grammar", "targetHits", "language"}
      if unknown:
        raise _QueryError(f"Unknown annotation(s) {sorted(unknown)} on userInput", ILLEGAL_QUERY, "Illegal query")
      return Node("userinput", [param, annotations])
    if annotations:
      raise _QueryError(f"Annotations are not supported before '{word}'", ILLEGAL_QUERY, "Illegal query")
    tok = self.peek()
    if tok[0] == "word" and tok[1].lower() == "contains":
      self.take("word")
      value = self.take("str")
      if value == "":
        raise _QueryError(EMPTY_WORD)
      return Node("contains", [word, value])
    if tok[0] == "op" and tok[1] in ("=", "<", ">", "<=", ">="):
      self.take("op")
      nxt = self.peek()
      if tok[1] == "=" and nxt[0] == "word" and str(nxt[1]).lower() in ("true", "false"):
        self.take("word")
        return Node("=", [word, str(nxt[1]).lower() == "true"])
      value = self.take("num")
      return Node(tok[1], [word, value])
    raise _QueryError(f"Could not create query from YQL: Unexpected '{tok[1]}' after '{word}'",
                      ILLEGAL_QUERY, "Illegal query")

  def annotations(self) -> dict:
    self.take("op", "{")
    out = {}
    while not self.at("}"):
      key = self.peek()
      self.i += 1
      if key[0] not in ("word", "str"):
        raise _QueryError(f"Bad annotation key '{key[1]}'", ILLEGAL_QUERY, "Illegal query")
      self.take("op", ":")
      out[key[1]] = self.take()
      if self.at(","):
        self.take("op")
    self.take("op", "}")
    return out


# ---------------------------------------------------------------- faults and stats


@dataclass
class _Fault:
  status: int
  remaining: Optional[int] = None
  probability: float = 1.0
  until: Optional[float] = None
  endpoint: Optional[str] = None
  delay_s: float = 0.0
  coverage: Optional[float] = None  # soft timeout: percent of the corpus searched

  def live(self) -> bool:
    return ((self.remaining is None or self.remaining > 0)
            and (self.until is None or time.monotonic() < self.until))


class Faults:
  """Injected failures, applied in the order added; each matching request consumes one."""

  def __init__(self):
    self._lock = threading.Lock()
    self._faults: List[_Fault] = []
    self._random = random.Random(0)  # a test's probabilistic faults fall the same way each run

  def throttle(self, n: Optional[int] = None, probability: float = 1.0, endpoint: Optional[str] = None,
               status: int = 429) -> None:
    """Answer the next `n` requests (or all, while cleared) to `endpoint` ("document"/"search") with 429."""
    with self._lock:
      self._faults.append(_Fault(status, n, probability, None, endpoint))

  def outage(self, seconds: float, endpoint: Optional[str] = None, status: int = 503) -> None:
    """Answer every request to `endpoint` with 503 for `seconds` from now."""
    with self._lock:
      self._faults.append(_Fault(status, None, 1.0, time.monotonic() + seconds, endpoint))

  def delay(self, seconds: float, n: Optional[int] = None, endpoint: Optional[str] = None) -> None:
    """Hold the next `n` responses for `seconds` (to make clients time out)."""
    with self._lock:
      self._faults.append(_Fault(0, n, 1.0, None, endpoint, seconds))

  def soft_timeout(self, coverage: float, n: Optional[int] = None) -> None:
    """Answer the next `n` queries from `coverage` percent of the documents, as Vespa does after a soft
    timeout: HTTP 200, no error, `coverage.full` false and `degraded.timeout` true."""
    with self._lock:
      self._faults.append(_Fault(200, n, 1.0, None, "search", coverage=coverage))

  def clear(self) -> None:
    with self._lock:
      self._faults.clear()

  def pick(self, endpoint: str) -> Optional[_Fault]:
    with self._lock:
      self._faults = [f for f in self._faults if f.live()]
      for f in self._faults:
        if f.endpoint not in (None, endpoint) or self._random.random() >= f.probability:
          continue
        if f.remaining is not None:
          f.remaining -= 1
        return f
    return None


# ---------------------------------------------------------------- the application


FAULT_MESSAGES = {
    429: "Rejecting execution due to overload: 1 requests already enqueued",
    500: "Internal server error: injected failure",
    503: "Service unavailable: injected outage",
    507: ("[UNKNOWN(251013) @ localhost]: ReturnCode(NO_SPACE, External feed is blocked due to resource "
          "exhaustion: memory on node 0 [localhost] is 92.1% full (the configured limit is 80.0%))"),
    403: "Access denied: injected",
}


@dataclass
class Request:
  method: str
  target: str
  headers: Dict[str, str]
  body: bytes
  protocol: str

  @property
  def path(self) -> str:
    return urlsplit(self.target).path

  @property
  def raw_path(self) -> str:
    return self.target.split("?", 1)[0]

  @property
  def params(self) -> Dict[str, str]:
    return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))


@dataclass
class Response:
  status: int
  body: bytes = b""
  content_type: str = "application/json; charset=UTF-8"


def _json(status: int, obj: Any) -> Response:
  return Response(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"))


class VespaApplication:
  """Documents in memory plus the two HTTP APIs, independent of the transport."""

  def __init__(self, schema, cluster: str = "agentflow_content", token: Optional[str] = None):
    self.schema = SchemaModel(schema)
    self.cluster = cluster
    self.token = token
    self.docs: Dict[str, Tuple[str, Dict[str, Any]]] = {}
    self.lock = threading.Lock()
    self.faults = Faults()
    self.stats: collections.Counter = collections.Counter()
    self.protocols: collections.Counter = collections.Counter()
    self.formats: collections.Counter = collections.Counter()
    self.profiles: collections.Counter = collections.Counter()
    self.java = None
    self.java_package = ""
    self.java_verdicts: collections.Counter = collections.Counter()  # (endpoint, "accepted"/"rejected")
    self.java_rejected_from_agentflow: List[str] = []
    try:
      from tests.vespa_java import shared_checker
    except ImportError:  # run as a script (python tests/vespa_protocol_server.py): tests/ is on sys.path
      from vespa_java import shared_checker
    checker = shared_checker()
    if checker is not None:
      self.java, self.java_package = checker, checker.package_for(schema)

  def _java_verdict(self, req: Request, endpoint: str, verdict: Dict[str, Any], body: Any) -> Dict[str, Any]:
    ok = verdict.get("ok")
    self.java_verdicts[(endpoint, "accepted" if ok else "rejected")] += 1
    if not ok and _from_agentflow(req):
      self.java_rejected_from_agentflow.append(f"{endpoint}: {verdict.get('message')} <- {json.dumps(body)[:300]}")
    return verdict

  def handle(self, req: Request) -> Response:
    endpoint = "document" if req.path.startswith("/document/v1/") else "search" if req.path.startswith(
        "/search/") else "other"
    self.protocols[req.protocol] += 1
    resp = self._handle(req, endpoint)
    self.stats[resp.status] += 1
    self.stats[(endpoint, resp.status)] += 1
    return resp

  def _handle(self, req: Request, endpoint: str) -> Response:
    if self.token is not None and req.headers.get("authorization") != f"Bearer {self.token}":
      return _json(401, {"message": "Unauthorized: missing or invalid token"})
    fault = self.faults.pick(endpoint)
    coverage = None
    if fault is not None:
      if fault.delay_s:
        time.sleep(fault.delay_s)
      elif fault.coverage is not None:
        coverage = fault.coverage
      else:
        return self._fault_response(req, endpoint, fault.status)
    try:
      body = gzip.decompress(req.body) if req.headers.get("content-encoding") == "gzip" else req.body
    except OSError as e:
      return _json(400, {"pathId": req.raw_path, "message": f"Could not decompress request: {e}"})
    if endpoint == "document":
      return self._document(req, body)
    if endpoint == "search":
      return self._search(req, body, coverage)
    return _json(404, {"pathId": req.raw_path, "message": f"Nothing at '{req.raw_path}'"})

  def _fault_response(self, req: Request, endpoint: str, status: int) -> Response:
    if status == 502:  # a load balancer in front of Vespa: its own page, not Vespa's JSON
      return Response(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
    message = FAULT_MESSAGES.get(status, "Service unavailable: injected outage")
    if endpoint == "search":
      code, summary = ((INTERNAL_SERVER_ERROR, "Internal server error") if status == 500
                       else (NO_BACKENDS_IN_SERVICE, "No backends in service. Try later"))
      return _json(status, {"root": {"id": "toplevel", "relevance": 1.0, "fields": {"totalCount": 0}, "errors": [
          {"code": code, "summary": summary, "message": message}]}})
    return _json(status, {"pathId": req.raw_path, "message": message})

  # ---------------------------------------------------------------- /document/v1/

  def _document(self, req: Request, body: bytes) -> Response:
    m = DOCV1.match(req.raw_path)
    if not m:
      return _json(404, {"pathId": req.raw_path, "message": (
          f"Nothing at '{req.raw_path}'. Available paths are:\n/document/v1/\n"
          "/document/v1/{namespace}/{documentType}/docid/\n/document/v1/{namespace}/{documentType}/docid/{*}")})
    namespace, doc_type, local = unquote(m.group(1)), unquote(m.group(2)), unquote(m.group(3))
    doc_id = f"id:{namespace}:{doc_type}::{local}"
    base = {"pathId": req.raw_path, "id": doc_id}
    if doc_type != self.schema.doc_type:
      return _json(400, {"pathId": req.raw_path, "message": f"Document type {doc_type} does not exist"})
    if req.method == "GET":
      with self.lock:
        stored = self.docs.get(doc_id)
      if stored is None:
        return _json(404, base)
      return _json(200, {**base, "fields": self._render_document(stored[1])})
    if req.method == "DELETE":
      with self.lock:
        self.docs.pop(doc_id, None)
      return _json(200, base)
    if req.method in ("POST", "PUT"):
      try:
        op = json.loads(body.decode("utf-8"))
      except (UnicodeDecodeError, ValueError) as e:
        return _json(400, {"pathId": req.raw_path, "message": f"Could not parse JSON: {e}"})
      if not isinstance(op, dict) or not isinstance(op.get("fields"), dict):
        kind = "Update of document" if req.method == "PUT" else "PUT"
        return _json(400, {"pathId": req.raw_path, "message": f"{kind} {doc_id} is missing a 'fields' map"})
      if req.method == "POST" and self.java is not None:
        verdict = self._java_verdict(req, "document", self.java.check_feed(
            self.java_package, doc_id, op, "agentflow" if _from_agentflow(req) else ""), op)
        if not verdict["ok"]:
          return _json(400, {"pathId": req.raw_path, "message": verdict["message"]})
      try:
        if req.method == "POST":
          fields = self._parse_fields(doc_id, op["fields"])
          with self.lock:
            self.docs[doc_id] = (namespace, fields)
        else:
          self._update(doc_id, namespace, op["fields"], req.params.get("create") == "true")
      except _BadRequest as e:
        return _json(400, {"pathId": req.raw_path, "message": str(e)})
      return _json(200, base)
    return _json(405, {"pathId": req.raw_path, "message": (
        f"'{req.method}' not allowed at '{req.raw_path}'. Allowed methods are: DELETE, GET, POST, PUT")})

  def _parse_fields(self, doc_id: str, raw: Dict[str, Any]) -> Dict[str, Any]:
    out = {}
    for name, value in raw.items():
      spec = self.schema.fields.get(name)
      if spec is None:
        raise _BadRequest(f"Field '{name}' is not defined in document type '{self.schema.doc_type}'")
      if value is None:
        continue
      try:
        out[name] = self._parse_value(spec, value)
      except ValueError as e:
        raise _BadRequest(f"In document '{doc_id}': Could not parse field '{name}' of type {spec.type}: {e}") from e
    return out

  @staticmethod
  def _parse_value(spec: _FieldSpec, value: Any) -> Any:
    if spec.is_tensor:
      return parse_dense_tensor(value, spec.dimension)
    if spec.type == "string":
      if not isinstance(value, str):
        raise ValueError(f"Expected a string but got {json.dumps(value)}")
      return value
    if spec.type == "bool":
      if not isinstance(value, bool):
        raise ValueError(f"Expected a boolean but got {json.dumps(value)}")
      return value
    if spec.type in ("double", "float"):
      return _number(value)
    if spec.type in ("long", "int", "byte"):
      if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Expected an integer but got {json.dumps(value)}")
      return value
    raise ValueError(f"unsupported field type {spec.type}")

  def _update(self, doc_id: str, namespace: str, raw: Dict[str, Any], create: bool) -> None:
    assigned = {}
    for name, op in raw.items():
      if not isinstance(op, dict) or set(op) != {"assign"}:
        raise _BadRequest(f"Field '{name}': only 'assign' updates are supported by this test server")
      assigned[name] = op["assign"]
    fields = self._parse_fields(doc_id, assigned)
    with self.lock:
      stored = self.docs.get(doc_id)
      if stored is None and not create:
        return
      merged = dict(stored[1]) if stored else {}
      merged.update(fields)
      self.docs[doc_id] = (namespace, merged)

  def _render_document(self, fields: Dict[str, Any]) -> Dict[str, Any]:
    out = {}
    for name, value in fields.items():
      spec = self.schema.fields[name]
      out[name] = {"type": spec.type, "values": [float(v) for v in value]} if spec.is_tensor else value
    return out

  # ---------------------------------------------------------------- /search/

  def _search(self, req: Request, body: bytes, coverage: Optional[float] = None) -> Response:
    params = dict(req.params)
    if req.method == "POST":
      try:
        posted = json.loads(body.decode("utf-8")) if body else {}
      except (UnicodeDecodeError, ValueError) as e:
        return self._query_error(400, _QueryError(f"Could not parse JSON request body: {e}"))
      if not isinstance(posted, dict):
        return self._query_error(400, _QueryError("Expected a JSON object as request body"))
      params.update(_flatten(posted))
    elif req.method != "GET":
      return _json(405, {"message": f"Method '{req.method}' not supported"})
    if self.java is not None:
      request = {**req.params, **(posted if req.method == "POST" else {})}
      verdict = self._java_verdict(req, "search", self.java.check_query(
          self.java_package, request, "agentflow" if _from_agentflow(req) else ""), request)
      if not verdict["ok"]:
        return self._query_error(400, _QueryError(verdict["message"], verdict["code"], verdict["summary"]))
    try:
      result = self._run_query(params, coverage)
    except _QueryError as e:
      return self._query_error(400, e)
    fmt = params.get("presentation.format") or params.get("format")
    if fmt == "cbor" or (fmt is None and _prefers_cbor(req.headers.get("accept", ""))):
      self.formats["cbor"] += 1
      return Response(200, cbor_dumps(result), "application/cbor")
    self.formats["json"] += 1
    return _json(200, result)

  def _query_error(self, status: int, e: _QueryError) -> Response:
    return _json(status, {"root": {"id": "toplevel", "relevance": 1.0, "fields": {"totalCount": 0}, "errors": [
        {"code": e.code, "summary": e.summary, "source": self.cluster, "message": str(e)}]}})

  def _run_query(self, params: Dict[str, Any], coverage: Optional[float] = None) -> dict:
    yql = params.get("yql")
    if not yql:
      raise _QueryError("Null query", 1, "Null query")
    selected, sources, where, limit = YqlParser(str(yql)).parse()
    if sources != ["*"] and self.schema.doc_type not in sources:
      raise _QueryError(f"Could not resolve source ref(s) {sources}. Valid source refs are {self.cluster}, "
                        f"{self.schema.doc_type}")
    for name in selected:
      if name != "*" and name not in self.schema.fields:
        raise _QueryError(f"Field '{name}' in the select clause is not a summary field of "
                          f"{self.schema.doc_type}")
    hits = int(params.get("hits", 10)) if limit is None else int(limit)
    offset = int(params.get("offset", 0))
    profile_name = params.get("ranking.profile") or params.get("ranking") or "default"
    profile = self.schema.profiles.get(profile_name)
    if profile is None:
      raise _QueryError(f"Could not set 'ranking.profile' to '{profile_name}': '{profile_name}' is not a "
                        f"valid rank profile. Valid rank profiles: {', '.join(sorted(self.schema.profiles))}")
    inputs = self._query_inputs(params, profile)
    self._check(where, inputs, profile)
    self.profiles[profile_name] += 1
    text_inputs = list(_nodes(where, "userinput"))
    for node in text_inputs:
      if node.args[0] not in params:
        raise _QueryError(f"Could not create query from YQL: No query parameter '{node.args[0]}' for userInput")
    user_terms = _terms(str(params.get(text_inputs[0].args[0] if text_inputs else "query", "")))
    with self.lock:
      docs = dict(self.docs)
    if coverage is not None:  # a soft timeout: only part of the corpus was searched in time
      docs = {d: v for d, v in docs.items() if int(hashlib.sha1(d.encode()).hexdigest(), 16) % 100 < coverage}
    matched = self._match(where, docs, inputs, user_terms)
    ranked = sorted(((self._rank(profile, docs[d][1], c, user_terms, docs), d, c) for d, c in matched.items()),
                    key=lambda t: (-t[0], t[1]))
    if profile.fused:
      ranked = self._fuse(profile, ranked, docs, user_terms)
    children = []
    for relevance, doc_id, closeness in ranked[offset:offset + hits]:
      fields = {"sddocname": self.schema.doc_type, "documentid": doc_id}
      for name, value in docs[doc_id][1].items():
        spec = self.schema.fields[name]
        if spec.summary and (selected == ["*"] or name in selected):
          fields[name] = value
      if profile.match_features:
        fields["matchfeatures"] = {
            f: self._feature(f, docs[doc_id][1], closeness, user_terms, docs) for f in profile.match_features}
      children.append({"id": doc_id, "relevance": relevance, "source": self.cluster, "fields": fields})
    root = {"id": "toplevel", "relevance": 1.0, "fields": {"totalCount": len(matched)},
            "coverage": {"coverage": 100, "documents": len(docs), "full": True, "nodes": 1, "results": 1,
                         "resultsFull": 1}}
    if coverage is not None:
      root["coverage"] = {"coverage": int(coverage), "documents": len(docs), "degraded": {
          "match-phase": False, "timeout": True, "adaptive-timeout": False, "non-ideal-state": False},
          "full": False, "nodes": 1, "results": 1, "resultsFull": 0}
    if children:
      root["children"] = children
    return {"root": root}

  def _query_inputs(self, params: Dict[str, Any], profile: _Profile) -> Dict[str, np.ndarray]:
    out = {}
    for key, value in params.items():
      m = re.fullmatch(r"(?:input|ranking\.features|rankfeature)\.(query\(\w+\))", key)
      if not m:
        continue
      name = m.group(1)
      declared = profile.inputs.get(name)
      if declared is None:
        raise _QueryError(f"Could not set 'ranking.features.{name}': rank profile '{profile.name}' does not "
                          f"declare the input '{name}'")
      dim = int(SchemaModel.TENSOR.match(declared).group(1))
      try:
        parsed = json.loads(value) if isinstance(value, str) else value
        out[name] = parse_dense_tensor(parsed, dim)
      except ValueError as e:
        raise _QueryError(f"Could not set 'ranking.features.{name}' to '{str(value)[:60]}': {e}") from None
    return out

  def _check(self, node: Node, inputs: Dict[str, np.ndarray], profile: _Profile) -> None:
    if node.op in ("and", "or", "not"):
      for child in node.args:
        self._check(child, inputs, profile)
    elif node.op == "nn":
      fname, qname, ann = node.args
      spec = self.schema.fields.get(fname)
      if spec is None or not spec.is_tensor or not spec.attribute:
        raise _QueryError(f"NEAREST_NEIGHBOR: field '{fname}' is not a tensor attribute", ILLEGAL_QUERY,
                          "Illegal query")
      if f"query({qname})" not in inputs:
        raise _QueryError(f"NEAREST_NEIGHBOR: query tensor 'query({qname})' is not given (set "
                          f"input.query({qname}) and declare it in rank profile '{profile.name}')")
      if not isinstance(ann["targetHits"], int) or ann["targetHits"] < 1:
        raise _QueryError("NEAREST_NEIGHBOR: targetHits must be a positive integer", ILLEGAL_QUERY,
                          "Illegal query")
    elif node.op == "userinput":
      index = node.args[1].get("defaultIndex", "default")
      if index not in self.schema.fieldsets and index not in self.schema.fields:
        raise _QueryError(f"Could not create query from YQL: '{index}' is not a field or fieldset", ILLEGAL_QUERY,
                          "Illegal query")
      if node.args[1].get("grammar", "weakAnd") not in GRAMMARS:
        raise _QueryError(f"Could not create query from YQL: unknown grammar '{node.args[1]['grammar']}'")
    elif node.op in ("contains", "=", "<", ">", "<=", ">="):
      fname = node.args[0]
      spec = self.schema.fields.get(fname)
      fs = self.schema.fieldsets.get(fname)
      if spec is None and fs is None:
        raise _QueryError(f"Field '{fname}' does not exist in {self.schema.doc_type}", ILLEGAL_QUERY,
                          "Illegal query")
      if spec is not None and not (spec.attribute or spec.index):
        raise _QueryError(f"Field '{fname}' is not searchable (neither attribute nor index)")
      if node.op == "contains" and spec is not None and spec.is_numeric:
        raise _QueryError(f"Field '{fname}' is numeric: use =, <, >, <=, >= or range()")
      is_bool = spec is not None and spec.type == "bool"
      if is_bool != isinstance(node.args[1], bool) and node.op != "contains":
        raise _QueryError(f"Field '{fname}' is {spec.type if spec else 'a fieldset'}: compare it with "
                          f"{'true/false' if is_bool else 'a number'}")
      if node.op != "contains" and (spec is None or not (spec.is_numeric or is_bool)):
        raise _QueryError(f"Field '{fname}' is not numeric: use contains")

  def _fuse(self, profile: _Profile, ranked, docs, user_terms):
    """The global phase: reciprocal rank fusion of `profile.fused` over the rerank window."""
    window, rest = ranked[:profile.rerank_count], ranked[profile.rerank_count:]
    fused = {d: 0.0 for _, d, _ in window}
    for feature in profile.fused:
      values = sorted(((self._feature(feature, docs[d][1], c, user_terms, docs), d) for _, d, c in window),
                      key=lambda t: (-t[0], t[1]))
      for rank, (_, d) in enumerate(values, start=1):
        fused[d] += 1.0 / (60 + rank)
    head = sorted(((fused[d], d, c) for _, d, c in window), key=lambda t: (-t[0], t[1]))
    floor = min((r for r, _, _ in head), default=0.0)
    return head + [(min(floor, r) - 1.0, d, c) for r, d, c in rest]

  def _match(self, where: Node, docs, inputs, user_terms) -> Dict[str, float]:
    """Matched doc ids -> closeness of their vectors to the (first) nearestNeighbor's query tensor.

    Vespa computes `closeness(field, ...)` for every ranked document, so a document only a text
    term matched has its true closeness too (0 when the query has no nearestNeighbor).
    """
    conjuncts = where.args if where.op == "and" else [where]
    plain = [c for c in conjuncts if not _has(c, ("nn", "userquery", "userinput"))]
    candidates = [d for d in docs if all(self._eval(c, docs[d][1], {}, user_terms) for c in plain)]
    nn_sets: Dict[int, Dict[str, float]] = {}
    for node in _nodes(where, "nn"):
      fname, qname, ann = node.args
      spec = self.schema.fields[fname]
      q = inputs[f"query({qname})"]
      scored = []
      for d in candidates:
        vec = docs[d][1].get(fname)
        if vec is not None:
          scored.append((_distance(spec.metric, q, vec), d))
      scored.sort()
      nn_sets[id(node)] = {d: 1.0 / (1.0 + dist) for dist, d in scored[:ann["targetHits"]]}
    first = next(_nodes(where, "nn"), None)
    closeness = {}
    for d in candidates:
      if self._eval(where, docs[d][1], nn_sets, user_terms, doc_id=d):
        vec = docs[d][1].get(first.args[0]) if first is not None else None
        if vec is None:
          closeness[d] = 0.0
        else:
          spec = self.schema.fields[first.args[0]]
          closeness[d] = 1.0 / (1.0 + _distance(spec.metric, inputs[f"query({first.args[1]})"], vec))
    return closeness

  def _eval(self, node: Node, fields, nn_sets, user_terms, doc_id: str = "") -> bool:
    op = node.op
    if op == "and":
      return all(self._eval(c, fields, nn_sets, user_terms, doc_id) for c in node.args)
    if op == "or":
      return any(self._eval(c, fields, nn_sets, user_terms, doc_id) for c in node.args)
    if op == "not":
      return not self._eval(node.args[0], fields, nn_sets, user_terms, doc_id)
    if op in ("true", "false"):
      return op == "true"
    if op == "nn":
      return doc_id in nn_sets.get(id(node), {})
    if op == "userquery":
      text = " ".join(str(fields.get(f, "")) for f in self.schema.fieldsets.get("default", []))
      return bool(set(user_terms) & set(_terms(text)))
    if op == "userinput":  # tokenize grammar: the words, weakAnd (approximated here as any of them)
      index = node.args[1].get("defaultIndex", "default")
      names = self.schema.fieldsets.get(index, [index])
      return bool(set(user_terms) & set(_terms(" ".join(str(fields.get(f, "")) for f in names))))
    fname, value = node.args
    if fname in self.schema.fieldsets:
      text = " ".join(str(fields.get(f, "")) for f in self.schema.fieldsets[fname])
      return op == "contains" and bool(set(_terms(str(value))) & set(_terms(text)))
    spec = self.schema.fields[fname]
    have = fields.get(fname)
    if have is None:
      return False
    if op == "contains":
      if spec.index and not spec.attribute:
        return set(_terms(str(value))) <= set(_terms(have))
      return have == value if spec.cased else have.lower() == str(value).lower()
    return {"=": have == value, "<": have < value, ">": have > value, "<=": have <= value,
            ">=": have >= value}[op]

  def _rank(self, profile: _Profile, fields, closeness, user_terms, docs) -> float:
    return float(sum(self._feature(t, fields, closeness, user_terms, docs) for t in profile.terms))

  def _feature(self, name: str, fields, closeness, user_terms, docs) -> float:
    if name.startswith("closeness("):
      return float(closeness)
    m = re.fullmatch(r"bm25\((\w+)\)", name)
    if m:
      return _bm25(user_terms, str(fields.get(m.group(1), "")), [str(f.get(m.group(1), "")) for _, f in
                                                                  docs.values()])
    raise ValueError(name)


def _flatten(obj: dict, prefix: str = "") -> Dict[str, Any]:
  """Vespa's POST query bodies are the GET parameters nested on '.'; tensor inputs stay JSON values."""
  out = {}
  for key, value in obj.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict) and not name.startswith(("input.", "ranking.features.")):
      out.update(_flatten(value, name + "."))
    else:
      out[name] = value
  return out


def _prefers_cbor(accept: str) -> bool:
  best = {}
  for part in accept.split(","):
    media, _, rest = part.strip().partition(";")
    q = 1.0
    for p in rest.split(";"):
      k, _, v = p.strip().partition("=")
      if k == "q":
        q = float(v or 1)
    best[media.strip()] = q
  return best.get("application/cbor", -1) > best.get("application/json", 0 if best else 1)


def _from_agentflow(req: Request) -> bool:
  """Sent by agentflow's store (pyvespa's client), not by a test's own raw HTTP client."""
  return req.headers.get("user-agent", "").startswith("pyvespa/")


def _has(node: Node, ops) -> bool:
  return node.op in ops or any(_has(c, ops) for c in node.args if isinstance(c, Node))


def _nodes(node: Node, op: str):
  if node.op == op:
    yield node
  for c in node.args:
    if isinstance(c, Node):
      yield from _nodes(c, op)


def _terms(text: str) -> List[str]:
  return re.findall(r"\w+", text.lower())


def _distance(metric: str, q: np.ndarray, v: np.ndarray) -> float:
  q64, v64 = q.astype(np.float64), v.astype(np.float64)
  if metric == "angular":
    denom = np.linalg.norm(q64) * np.linalg.norm(v64)
    cos = float(q64 @ v64 / denom) if denom > 0 else 0.0
    return math.acos(max(-1.0, min(1.0, cos)))
  if metric == "prenormalized-angular":
    return 1.0 - float(q64 @ v64) / float(q64 @ q64)
  if metric == "euclidean":
    return float(np.linalg.norm(q64 - v64))
  raise ValueError(f"unsupported distance metric {metric}")


def _bm25(query_terms: List[str], text: str, corpus: List[str], k1: float = 1.2, b: float = 0.75) -> float:
  if not query_terms:
    return 0.0
  doc = _terms(text)
  docs = [set(_terms(t)) for t in corpus]
  avg = max(1e-9, sum(len(_terms(t)) for t in corpus) / max(1, len(corpus)))
  score = 0.0
  for term in set(query_terms):
    tf = doc.count(term)
    if not tf:
      continue
    n = sum(1 for d in docs if term in d)
    idf = math.log(1 + (len(docs) - n + 0.5) / (n + 0.5))
    score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / avg))
  return score


# ---------------------------------------------------------------- transport


@dataclass(frozen=True)
class ServerTls:
  """PEM files for the server, and the CA that client certificates must chain to (mTLS) if set."""
  cert: str
  key: str
  client_ca: Optional[str] = None


class VespaProtocolServer:
  """The application behind a loopback listener; `url` is what a client points at.

  Use as a context manager, or `start()`/`stop()`. `app.faults`, `app.stats` (Counter of
  status and (endpoint, status)), `app.protocols` (Counter of "HTTP/2"/"HTTP/1.1") and
  `app.formats` (Counter of "cbor"/"json" query responses), `app.profiles` (Counter of rank
  profiles queried) and `app.docs` are there for
  assertions; `tls_failures` counts refused TLS handshakes.
  """

  def __init__(self, schema, tls: Optional[ServerTls] = None, token: Optional[str] = None,
               host: str = "127.0.0.1"):
    self.app = VespaApplication(schema, token=token)
    self.tls = tls
    self.host = host
    self.tls_failures = 0
    self._sock: Optional[socket.socket] = None
    self._threads: List[threading.Thread] = []
    self._conns: List[socket.socket] = []
    self._stopping = threading.Event()
    self._ssl = self._ssl_context() if tls else None

  @property
  def port(self) -> int:
    return self._sock.getsockname()[1]

  @property
  def url(self) -> str:
    scheme = "https" if self.tls else "http"
    host = "localhost" if self.tls else self.host
    return f"{scheme}://{host}:{self.port}"

  @property
  def faults(self) -> Faults:
    return self.app.faults

  def _ssl_context(self) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(self.tls.cert, self.tls.key)
    if self.tls.client_ca:
      ctx.verify_mode = ssl.CERT_REQUIRED
      ctx.load_verify_locations(self.tls.client_ca)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx

  def start(self, port: int = 0) -> VespaProtocolServer:
    self._sock = socket.create_server((self.host, port))
    self._sock.settimeout(0.2)
    t = threading.Thread(target=self._accept_loop, name="vespa-proto-accept", daemon=True)
    t.start()
    self._threads.append(t)
    return self

  def stop(self) -> None:
    self._stopping.set()
    for t in self._threads[:1]:
      t.join(5)
    for conn in list(self._conns):
      try:
        conn.shutdown(socket.SHUT_RDWR)
      except OSError:
        pass
      conn.close()
    for t in self._threads[1:]:
      t.join(5)
    self._sock.close()

  def __enter__(self):
    return self.start()

  def __exit__(self, *exc):
    self.stop()

  def _accept_loop(self) -> None:
    while not self._stopping.is_set():
      try:
        conn, _ = self._sock.accept()
      except TimeoutError:
        continue
      except OSError:
        return
      conn.settimeout(None)
      self._conns.append(conn)
      t = threading.Thread(target=self._serve, args=(conn,), name="vespa-proto-conn", daemon=True)
      t.start()
      self._threads.append(t)

  def _serve(self, conn: socket.socket) -> None:
    try:
      if self._ssl is not None:
        try:
          conn = self._ssl.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
          self.tls_failures += 1
          return
        self._conns.append(conn)
        h2 = conn.selected_alpn_protocol() == "h2"
        first = b""
      else:
        first = _read_preface(conn)
        h2 = first == H2_PREFACE
      if h2:
        _H2Connection(conn, self.app, first).run()
      else:
        _serve_http11(conn, self.app, first)
    except (OSError, ssl.SSLError):
      pass
    finally:
      try:
        conn.close()
      except OSError:
        pass


def _read_preface(conn: socket.socket) -> bytes:
  buf = b""
  while len(buf) < len(H2_PREFACE) and H2_PREFACE.startswith(buf):
    chunk = conn.recv(len(H2_PREFACE) - len(buf))
    if not chunk:
      break
    buf += chunk
  return buf


class _H2Connection:
  """One HTTP/2 connection, served on its own thread (an SSL socket must not be read and written
  from two threads): requests are answered in arrival order, response bodies are sent as the
  peer's flow-control windows allow."""

  def __init__(self, sock, app: VespaApplication, first: bytes):
    self.sock, self.app = sock, app
    self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    self.streams: Dict[int, Tuple[Dict[str, str], bytearray]] = {}
    self.pending: Dict[int, memoryview] = {}
    self.first = first

  def run(self) -> None:
    self.conn.initiate_connection()
    self._flush()
    data = self.first
    while True:
      if not data:
        data = self.sock.recv(65536)
        if not data:
          return
      try:
        events = self.conn.receive_data(data)
      except h2.exceptions.ProtocolError:
        self._flush()
        return
      data = b""
      for ev in events:
        self._on_event(ev)
      self._pump()
      self._flush()

  def _on_event(self, ev) -> None:
    if isinstance(ev, h2.events.RequestReceived):
      self.streams[ev.stream_id] = ({k.lower(): v for k, v in ev.headers}, bytearray())
    elif isinstance(ev, h2.events.DataReceived):
      self.streams[ev.stream_id][1].extend(ev.data)
      self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
    elif isinstance(ev, h2.events.StreamEnded):
      headers, body = self.streams.pop(ev.stream_id)
      resp = self.app.handle(Request(headers[":method"], headers[":path"], headers, bytes(body), "HTTP/2"))
      try:
        self.conn.send_headers(ev.stream_id, [(":status", str(resp.status)), ("content-type", resp.content_type),
                                              ("content-length", str(len(resp.body)))],
                               end_stream=not resp.body)
      except h2.exceptions.ProtocolError:  # the client reset the stream meanwhile (e.g. it timed out)
        return
      if resp.body:
        self.pending[ev.stream_id] = memoryview(resp.body)
    elif isinstance(ev, h2.events.StreamReset):
      self.streams.pop(ev.stream_id, None)
      self.pending.pop(ev.stream_id, None)

  def _pump(self) -> None:
    for stream_id, body in list(self.pending.items()):
      try:
        while body:
          n = min(len(body), self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
          if n <= 0:
            break
          self.conn.send_data(stream_id, bytes(body[:n]), end_stream=n == len(body))
          body = body[n:]
      except h2.exceptions.ProtocolError:
        body = memoryview(b"")
      if body:
        self.pending[stream_id] = body
      else:
        del self.pending[stream_id]

  def _flush(self) -> None:
    out = self.conn.data_to_send()
    if out:
      self.sock.sendall(out)


def _serve_http11(sock, app: VespaApplication, first: bytes) -> None:
  buf = bytearray(first)

  def fill() -> bool:
    chunk = sock.recv(65536)
    buf.extend(chunk)
    return bool(chunk)

  while True:
    while b"\r\n\r\n" not in buf:
      if not fill():
        return
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
      k, _, v = line.partition(":")
      headers[k.strip().lower()] = v.strip()
    buf[:] = rest
    length = int(headers.get("content-length", 0))
    while len(buf) < length:
      if not fill():
        return
    body, buf[:] = bytes(buf[:length]), buf[length:]
    resp = app.handle(Request(method, target, headers, body, version))
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
              405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
              503: "Service Unavailable", 504: "Gateway Timeout", 507: "Insufficient Storage"}.get(resp.status, "Status")
    sock.sendall(f"HTTP/1.1 {resp.status} {reason}\r\nContent-Type: {resp.content_type}\r\n"
                 f"Content-Length: {len(resp.body)}\r\n\r\n".encode("latin-1") + resp.body)
    if headers.get("connection", "").lower() == "close":
      return


def serve_agent_context(dimension: int = 8, distance_metric: str = "angular", tls: Optional[ServerTls] = None,
                        token: Optional[str] = None) -> VespaProtocolServer:
  """A started server for the schema `agentflow.stores.vespa_app` generates; stop it (or use `with`)."""
  from agentflow.stores.vespa_app import VespaSchemaConfig, agent_context_schema
  schema = agent_context_schema(VespaSchemaConfig(dimension=dimension, distance_metric=distance_metric))
  return VespaProtocolServer(schema, tls=tls, token=token).start()


def main(argv=None) -> None:
  """`python tests/vespa_protocol_server.py --port 8080 --dimension 384`: serve until interrupted."""
  import argparse
  parser = argparse.ArgumentParser(description=main.__doc__)
  parser.add_argument("--port", type=int, default=0)
  parser.add_argument("--dimension", type=int, default=384)
  parser.add_argument("--distance-metric", default="angular")
  args = parser.parse_args(argv)
  from agentflow.stores.vespa_app import VespaSchemaConfig, agent_context_schema
  schema = agent_context_schema(VespaSchemaConfig(dimension=args.dimension, distance_metric=args.distance_metric))
  server = VespaProtocolServer(schema).start(args.port)
  print(server.url, flush=True)
  try:
    threading.Event().wait()
  except KeyboardInterrupt:
    server.stop()


if __name__ == "__main__":
  main()
