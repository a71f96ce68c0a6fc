"""Knowledge-base ingestion: known question/answer pairs embedded into the store.

Entries are `{"id": ..., "question": ..., "answer": ..., "topic": ...}` (one JSON object
per line). The question is embedded; the answer rides along as metadata, so a
`RetrievalAnswerPolicy` can reply with it.
"""
from __future__ import annotations

import apache_beam as beam

from agentflow.models.base import EmbeddingModelHandler
from agentflow.stages.base import DEAD_LETTER, MAIN, Stage, StageCounters
from agentflow.stages.embed import Embed
from agentflow.stages.preprocess import InvalidEvent, decode_object, normalize_text, parse_or_dead_letter
from agentflow.stages.upsert import UpsertConfig, VectorUpsert
from agentflow.stores.base import VectorStore
from agentflow.text.pii import redact
from agentflow.types import KIND_KNOWLEDGE, AgentEvent


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


class IngestKnowledge(Stage):
  """Knowledge JSON lines -> embedded documents in `store`; outputs the written entries."""

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
    dead = (parsed[DEAD_LETTER], embed_dead, upsert_dead) | "KnowledgeDeadLetters" >> beam.Flatten()
    return {MAIN: written, DEAD_LETTER: dead}
