"""The records that flow between agentflow's stages.

Every stage takes and returns these plain dataclasses so that each PTransform can be
used alone: Preprocess emits `AgentEvent`, Embed fills `AgentEvent.embedding`,
VectorUpsert writes a `Document`, Retrieve pairs the event with `Hit`s, and Decide
emits a `Decision`. Anything a stage cannot handle becomes a `DeadLetter`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

KIND_EVENT = "event"
KIND_KNOWLEDGE = "knowledge"
KIND_ANSWER = "answer"  # one document per distinct known answer: the centroid of its questions


def trace_id_for(key: str) -> str:
  """A W3C trace id (32 hex digits) derived from `key`, so a replayed event keeps its trace."""
  return hashlib.blake2b(key.encode("utf-8", "backslashreplace"), digest_size=16).hexdigest()


_NAMESPACE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_KNOWLEDGE_ID = re.compile(rf"({KIND_KNOWLEDGE}|{KIND_ANSWER})-[0-9a-f]{{32}}")


def _digest(key: str) -> str:
  return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def document_id(source_id: str, tenant: str = "", namespace: str = KIND_EVENT) -> str:
  """Deterministic store id of `source_id` in `namespace` (a document kind): replays overwrite, not duplicate.

  Event ids are 32 hex digits, as before namespaces existed, so replays into an existing
  store stay idempotent. Any other namespace gets `<namespace>-` and a hash that includes
  the namespace: no event id, whatever it says, can name a knowledge document.
  """
  if namespace == KIND_EVENT:
    return _digest(f"{tenant}\x1f{source_id}")
  if not _NAMESPACE.fullmatch(namespace):
    raise ValueError(f"document namespace {namespace!r} must be lower-case letters, digits and '_' "
                     "(at most 32, starting with a letter); it is the document's kind")
  return f"{namespace}-" + _digest(f"{namespace}\x1f{tenant}\x1f{source_id}")


def is_knowledge(hit) -> bool:
  """True only for a document written by knowledge ingestion: kind knowledge (a question) or answer (the
  centroid of an answer's questions), and an id in that kind's namespace.

  Policies take known answers from these alone, so an event's attributes cannot forge one,
  whatever kind the retrieval asks for.
  """
  match = _KNOWLEDGE_ID.fullmatch(hit.id)
  return bool(match) and hit.kind == match.group(1)


@dataclass
class AgentEvent:
  """One validated, normalised and PII-redacted input event.

  `redactions` counts the PII spans replaced, per kind; `normalization` what else was
  changed (invisible characters removed, ids pseudonymised) and is stored with the
  document's metadata under "normalization".
  """
  event_id: str
  session_id: str
  text: str
  timestamp: float
  attributes: Mapping[str, Any] = field(default_factory=dict)
  tenant: str = ""
  language: str = "und"
  kind: str = KIND_EVENT
  redactions: Mapping[str, int] = field(default_factory=dict)
  normalization: Mapping[str, int] = field(default_factory=dict)
  embedding: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
  model_id: str = ""
  trace_id: str = ""
  payload_digest: str = field(default="", compare=False)

  @property
  def doc_id(self) -> str:
    return document_id(self.event_id, self.tenant, self.kind)

  def with_embedding(self, vector: np.ndarray, model_id: str) -> AgentEvent:
    return dataclasses.replace(self, embedding=np.asarray(vector, dtype=np.float32), model_id=model_id)

  def to_document(self) -> Document:
    if self.embedding is None:
      raise ValueError(f"event {self.event_id!r} has no embedding")
    meta = dict(self.attributes)
    if self.normalization:
      meta["normalization"] = dict(self.normalization)
    return Document(
        id=self.doc_id, vector=self.embedding, text=self.text, session_id=self.session_id,
        tenant=self.tenant, kind=self.kind, timestamp=self.timestamp, event_id=self.event_id,
        metadata=meta)


@dataclass
class Document:
  """What a `VectorStore` holds: a vector plus the fields filters and policies need."""
  id: str
  vector: np.ndarray = field(repr=False, compare=False)
  text: str = ""
  session_id: str = ""
  tenant: str = ""
  kind: str = KIND_EVENT
  timestamp: float = 0.0
  event_id: str = ""
  metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
  """One retrieved neighbour; `score` is cosine similarity in [-1, 1], higher is closer."""
  id: str
  score: float
  text: str = ""
  session_id: str = ""
  kind: str = KIND_EVENT
  timestamp: float = 0.0
  metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class Retrieval:
  """An event together with its nearest contexts, the input of Decide."""
  event: AgentEvent
  hits: Sequence[Hit] = ()
  memory: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class Decision:
  """The agent's output for one event."""
  event_id: str
  session_id: str
  action: str
  confidence: float
  policy: str
  response: str = ""
  cited_ids: Sequence[str] = ()
  tenant: str = ""
  language: str = "und"
  model_id: str = ""
  trace_id: str = ""
  request_digest: str = ""
  metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)

  def to_json(self) -> str:
    d = dataclasses.asdict(self)
    d["cited_ids"] = list(self.cited_ids)
    return json.dumps(d, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class DeadLetter:
  """A record a stage could not handle, with why, and the original payload to replay it."""
  stage: str
  reason: str
  error: str
  payload: str
  event_id: str = ""
  trace_id: str = ""

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), ensure_ascii=False, sort_keys=True)


def payload_of(event: AgentEvent) -> str:
  """A JSON payload for an already-parsed event (its redacted form), used in later stages' dead letters."""
  return json.dumps({
      "event_id": event.event_id, "session_id": event.session_id, "text": event.text,
      "timestamp": event.timestamp, "attributes": dict(event.attributes),
      **({"tenant": event.tenant} if event.tenant else {}),
  }, ensure_ascii=False, sort_keys=True, default=str)
