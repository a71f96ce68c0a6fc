"""The LLM policy against a local OpenAI-compatible server: prompt, cache, timeout and error fallbacks."""
import logging

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from agentflow import AgentEvent, Decide, RetrievalAnswerPolicy
from agentflow.policies.llm import LLMPolicy, OpenAICompatibleHandler
from agentflow.types import Hit, Retrieval
from openai_stub import OpenAIStub

SECRET = "sk-test-0123456789abcdef"


def _retrieval(text="how do I reset my password?"):
  hit = Hit(id="kb1", score=0.8, text="How do I reset my password?", kind="knowledge",
            metadata={"answer": "Settings > Security > Reset."})
  return Retrieval(AgentEvent(event_id="e1", session_id="s", text=text, timestamp=1.0), [hit],
                   memory=({"role": "user", "text": "hi, I am locked out"},))


def _policy(stub, monkeypatch, **kw):
  monkeypatch.setenv("AGENTFLOW_TEST_LLM_KEY", SECRET)
  handler = OpenAICompatibleHandler(stub.url, "stub-model", api_key_env="AGENTFLOW_TEST_LLM_KEY")
  p = LLMPolicy(handler, fallback=RetrievalAnswerPolicy(threshold=0.5), **kw)
  p.setup()
  return p


def test_prompt_holds_context_and_memory_and_answer_is_used(monkeypatch):
  with OpenAIStub() as stub:
    d = _policy(stub, monkeypatch).decide(_retrieval())
    prompt = stub.requests[0]["body"]["messages"][-1]["content"]
  assert "Known answer: Settings > Security > Reset." in prompt and "locked out" in prompt
  assert "how do I reset my password?" in prompt
  assert stub.requests[0]["auth"] == f"Bearer {SECRET}"
  assert (d.action, d.response, d.cited_ids, d.policy) == (
      "reply", "ANSWER: [1] How do I reset my password?", ("kb1",), "llm")


def test_same_prompt_is_served_from_cache(monkeypatch):
  with OpenAIStub() as stub:
    p = _policy(stub, monkeypatch)
    first, second = p.decide(_retrieval()), p.decide(_retrieval())
    assert len(stub.requests) == 1
  assert first.response == second.response and second.metadata["cached"] is True


def test_timeout_and_errors_fall_back(monkeypatch):
  with OpenAIStub() as stub:
    stub.delay_s = 2.0
    d = _policy(stub, monkeypatch, timeout_s=0.3).decide(_retrieval())
    assert (d.action, d.metadata["fallback"], d.response) == ("reply", "timeout", "Settings > Security > Reset.")
    stub.delay_s, stub.status = 0.0, 500
    d = _policy(stub, monkeypatch).decide(_retrieval("something unrelated entirely"))
    assert d.metadata["fallback"] == "error:RuntimeError" and d.metadata["fallback_policy"] == "retrieval_answer"


def test_api_key_never_in_repr_or_logs(monkeypatch, caplog):
  caplog.set_level(logging.DEBUG)
  with OpenAIStub() as stub:
    stub.status = 500
    p = _policy(stub, monkeypatch)
    p.decide(_retrieval())
    assert SECRET not in repr(p) and SECRET not in repr(p.handler)
  assert SECRET not in caplog.text


def test_decide_with_llm_in_a_pipeline(monkeypatch):
  monkeypatch.setenv("AGENTFLOW_TEST_LLM_KEY", SECRET)
  with OpenAIStub() as stub:
    handler = OpenAICompatibleHandler(stub.url, "stub-model", api_key_env="AGENTFLOW_TEST_LLM_KEY")
    with TestPipeline() as p:
      out = p | beam.Create([_retrieval()]) | Decide(LLMPolicy(handler))
      assert_that(out | beam.Map(lambda d: (d.event_id, d.response)),
                  equal_to([("e1", "ANSWER: [1] How do I reset my password?")]))
