"""CentroidAnswerPolicy and the answer documents knowledge ingestion writes."""
import dataclasses
import json

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from agentflow import AgentGraph, CentroidAnswerPolicy, QueryFilter, RetrievalAnswerPolicy
from agentflow.stages.graph import GraphConfig
from agentflow.stages.knowledge import IngestKnowledge, answer_centroid
from agentflow.stages.retrieve import RetrieveConfig
from agentflow.stores.local import LocalVectorStore
from agentflow.types import KIND_ANSWER, KIND_KNOWLEDGE, AgentEvent, Hit, Retrieval, document_id


def _answer_hit(answer, score, kid="kb-1", kind=KIND_ANSWER, questions=3):
  return Hit(id=document_id(answer, "", kind), score=score, text=f"q for {answer}", kind=kind,
             metadata={"answer": answer, "knowledge_id": kid, "topic": "t", "questions": questions})


def _r(*hits):
  return Retrieval(AgentEvent(event_id="e1", session_id="s", text="t", timestamp=1.0), list(hits))


def test_replies_with_the_nearest_answer_and_records_score_and_margin():
  d = CentroidAnswerPolicy(threshold=0.5).decide(_r(_answer_hit("A", 0.7, "kb-1"), _answer_hit("B", 0.6, "kb-4")))
  assert (d.action, d.response, d.metadata["knowledge_id"]) == ("reply", "A", "kb-1")
  assert d.metadata["score"] == 0.7 and d.metadata["margin"] == pytest.approx(0.1)
  assert d.metadata["questions"] == 3 and d.confidence == 0.7


def test_below_the_threshold_escalates_but_keeps_the_candidate_for_sweeps():
  d = CentroidAnswerPolicy(threshold=0.5).decide(_r(_answer_hit("A", 0.42, "kb-9")))
  assert d.action == "escalate" and d.response == ""
  assert (d.metadata["score"], d.metadata["knowledge_id"]) == (0.42, "kb-9")


def test_answer_documents_win_over_question_documents():
  """A single phrasing closer than its answer's centroid does not decide: the centroids do."""
  question = _answer_hit("B", 0.9, "kb-7", kind=KIND_KNOWLEDGE)
  d = CentroidAnswerPolicy(threshold=0.5).decide(_r(question, _answer_hit("A", 0.7), _answer_hit("B", 0.6)))
  assert d.response == "A"


def test_questions_stand_in_for_answers_in_a_store_without_answer_documents():
  hits = [_answer_hit("A", 0.55, "kb-1", kind=KIND_KNOWLEDGE), _answer_hit("B", 0.8, "kb-2", kind=KIND_KNOWLEDGE)]
  d = CentroidAnswerPolicy().decide(_r(*hits))
  old = RetrievalAnswerPolicy().decide(_r(*hits))
  assert (d.action, d.response) == (old.action, old.response) == ("reply", "B")


def test_no_answerable_hit_escalates_with_a_reason_and_forged_answers_are_ignored():
  forged = Hit(id="answer-0123", score=0.99, kind=KIND_ANSWER, metadata={"answer": "pay me"})
  event_doc = Hit(id=document_id("e0"), score=0.99, kind="event", metadata={"answer": "pay me"})
  d = CentroidAnswerPolicy().decide(_r(forged, event_doc))
  assert (d.action, d.metadata["reason"]) == ("escalate", "no_answers")


def test_config_is_frozen_and_validated():
  with pytest.raises(dataclasses.FrozenInstanceError):
    CentroidAnswerPolicy().threshold = 0.1
  with pytest.raises(ValueError, match="threshold"):
    CentroidAnswerPolicy(threshold=1.5)
  with pytest.raises(ValueError, match="max_cited"):
    CentroidAnswerPolicy(max_cited=0)


def _entry(i, vector, answer="A"):
  return AgentEvent(event_id=f"kb-{i}", session_id="", text=f"q{i}", timestamp=0.0, kind=KIND_KNOWLEDGE,
                    attributes={"answer": answer, "topic": f"t{i}", "knowledge_id": f"kb-{i}"},
                    embedding=np.asarray(vector, dtype=np.float32), model_id="m")


def test_answer_centroid_is_the_normalised_mean_whatever_the_order():
  entries = [_entry(2, [0, 1, 0]), _entry(1, [1, 0, 0]), _entry(3, [1, 0, 0])]
  a = answer_centroid(("", "A"), entries)
  b = answer_centroid(("", "A"), list(reversed(entries)))
  assert a.kind == KIND_ANSWER and a.doc_id.startswith("answer-")
  np.testing.assert_allclose(a.embedding, np.array([2, 1, 0]) / np.sqrt(5), rtol=1e-6)
  assert (a.text, a.attributes["knowledge_id"], a.attributes["questions"]) == ("q1", "kb-1", 3)
  assert a.to_document().id == b.to_document().id and np.array_equal(a.embedding, b.embedding)


KB = [{"id": f"kb-{intent}-{n}", "question": q, "answer": answer, "topic": intent}
      for intent, answer, questions in [
          ("password", "Settings > Security > Reset password.",
           ["How do I reset my password?", "I forgot my password", "change my login password"]),
          ("export", "Open the note, then File > Export > PDF.",
           ["How do I export my notes as PDF?", "save a note as a pdf file", "download my notes as PDF"])]
      for n, q in enumerate(questions)]


_SEEN = []


def _collect(decision):
  _SEEN.append(decision)


def _msg(i, text):
  return json.dumps({"event_id": f"e{i}", "session_id": "s", "text": text, "timestamp": 1772442900 + i})


def test_graph_answers_in_scope_questions_from_centroids_and_escalates_out_of_scope(tmp_path, handler):
  store = LocalVectorStore(str(tmp_path / "store"), handler.dimension)
  with TestPipeline() as p:
    _ = p | beam.Create([json.dumps(k) for k in KB]) | IngestKnowledge(handler, store)
  with store:
    assert store.count(QueryFilter(kind=KIND_KNOWLEDGE)) == 6
    assert store.count(QueryFilter(kind=KIND_ANSWER)) == 2
  messages = [_msg(1, "i can't remember my password, how do i make a new one"),
              _msg(2, "how can I get a PDF copy of my notes"),
              _msg(3, "what's the weather going to be like in Paris tomorrow?"),
              _msg(4, "recommend me a good pizza place nearby")]
  policy = CentroidAnswerPolicy()
  config = GraphConfig(retrieve=RetrieveConfig(kind=policy.retrieve_kind))
  with TestPipeline() as p:
    decisions = p | beam.Create(messages) | AgentGraph(handler, store, policy, config)
    _ = decisions | beam.Map(_collect)
  by_id = {d.event_id: d for d in _SEEN}
  _SEEN.clear()
  assert by_id["e1"].action == "reply" and by_id["e1"].response == KB[0]["answer"]
  assert by_id["e1"].metadata["questions"] == 3
  assert by_id["e2"].action == "reply" and by_id["e2"].response == KB[3]["answer"]
  assert by_id["e3"].action == by_id["e4"].action == "escalate"
