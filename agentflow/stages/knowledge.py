"""Knowledge-base ingestion: known question/answer pairs embedded into the store.

Entries are `{"id": ..., "question": ..., "answer": ..., "topic": ...}` (one JSON object
per line). The question is embedded; the answer rides along as metadata, so a
`RetrievalAnswerPolicy` can reply with it. Each distinct answer (per tenant) is also stored
as one `kind="answer"` document whose vector is the normalised mean of its questions'
vectors, which `CentroidAnswerPolicy` retrieves: several phrasings of one answer then act
as one, steadier, point instead of competing neighbours.
"""
from __future__ import annotations

import base64
import hashlib

import apache_beam as beam
import numpy as np

from agentflow.models.base import EmbeddingModelHandler
from agentflow.stages.base import DEAD_LETTER, MAIN, Stage, StageCounters
from agentflow.stages.embed import Embed
from agentflow.stages.preprocess import InvalidEvent, decode_object, normalize_text, parse_or_dead_letter
from agentflow.stages.upsert import UpsertConfig, UpsertFn, VectorUpsert
from agentflow.stores.base import VectorStore
from agentflow.text.pii import redact
from agentflow.types import KIND_ANSWER, KIND_KNOWLEDGE, AgentEvent


def parse_knowledge(raw) -> AgentEvent:
  """One knowledge entry -> a `kind="knowledge"` event; raises `InvalidEvent`."""
  obj = decode_object(raw)
  fields = {}
  for name in ("id", "question", "answer"):
    value = obj.get(name)
    if not isinstance(value, str) or not normalize_text(value):
      raise InvalidEvent("missing_field", f"knowledge entry needs a non-empty string {name!r}")
    fields[name] = normalize_text(value)
  question, _ = redact(fields["question"])
  answer, _ = redact(fields["answer"])
  tenant = obj.get("tenant") if isinstance(obj.get("tenant"), str) else ""
  return AgentEvent(event_id=fields["id"], session_id="", text=question, timestamp=0.0,
                    attributes={"answer": answer, "topic": str(obj.get("topic", "")),
                                "knowledge_id": fields["id"]},
                    tenant=tenant, kind=KIND_KNOWLEDGE)


class _ParseKnowledgeFn(beam.DoFn):

  def setup(self):
    self.counters = StageCounters("knowledge")

  def process(self, raw):
    self.counters.inputs.inc()
    event, dead = parse_or_dead_letter(parse_knowledge, raw, self.counters)
    if dead is not None:
      yield dead
      return
    self.counters.outputs.inc()
    yield event


def answer_key(entry: AgentEvent):
  """Entries with one key share one answer document."""
  return entry.tenant, str(entry.attributes.get("answer", ""))


def answer_centroid(key, entries) -> AgentEvent:
  """The `kind="answer"` document of one answer: the normalised mean of its questions' vectors.

  Its text, topic and `knowledge_id` are those of the entry with the smallest id, so the
  document is the same whatever order the entries arrive in; `questions` counts them.
  """
  tenant, answer = key
  entries = sorted(entries, key=lambda e: e.event_id)
  mean = np.mean(np.stack([e.embedding for e in entries]), axis=0)
  norm = float(np.linalg.norm(mean))
  first = entries[0]
  # Named by its answer, so re-ingesting the answer overwrites it; base32 (letters and 2-7), so
  # the id never holds a run of digits that reads like a phone or card number.
  digest = hashlib.blake2b(answer.encode("utf-8"), digest_size=16).digest()
  return AgentEvent(event_id=base64.b32encode(digest).decode("ascii").rstrip("=").lower(), session_id="",
                    text=first.text, timestamp=0.0, tenant=tenant, kind=KIND_ANSWER,
                    attributes={**first.attributes, "questions": len(entries),
                                "knowledge_ids": [e.event_id for e in entries]},
                    embedding=(mean / norm if norm > 0 else mean).astype(np.float32), model_id=first.model_id)


class _AnswerUpsertFn(UpsertFn):
  stage = "answer_upsert"


class IngestKnowledge(Stage):
  """Knowledge JSON lines -> embedded documents in `store`; outputs the written entries.

  Also writes one answer document per distinct (tenant, answer) of this ingestion (see
  `answer_centroid`). An answer's document covers the questions ingested with it in one
  run: ingest all of an answer's questions together, or a later run replaces its centroid.
  """

  def __init__(self, handler: EmbeddingModelHandler, store: VectorStore,
               upsert: UpsertConfig = UpsertConfig()):
    super().__init__()
    self.handler, self.store, self.upsert = handler, store, upsert

  def expand_tagged(self, pcoll):
    # Spread the source's output over the workers, as AgentGraph does.
    spread = pcoll | "Redistribute" >> beam.Reshuffle()
    parsed = spread | "ParseKnowledge" >> beam.ParDo(_ParseKnowledgeFn()).with_outputs(DEAD_LETTER, main=MAIN)
    embedded, embed_dead = parsed[MAIN] | "EmbedKnowledge" >> Embed(self.handler).with_dead_letters()
    written, upsert_dead = embedded | "UpsertKnowledge" >> VectorUpsert(self.store, self.upsert).with_dead_letters()
    answers = (written | "KeyByAnswer" >> beam.Map(lambda e: (answer_key(e), e)) | "GroupByAnswer" >> beam.GroupByKey()
               | "AnswerCentroid" >> beam.MapTuple(answer_centroid)
               | "UpsertAnswers" >> beam.ParDo(_AnswerUpsertFn(self.store, self.upsert)).with_outputs(
                   DEAD_LETTER, main=MAIN))
    dead = ((parsed[DEAD_LETTER], embed_dead, upsert_dead, answers[DEAD_LETTER])
            | "KnowledgeDeadLetters" >> beam.Flatten())
    return {MAIN: written, DEAD_LETTER: dead}
