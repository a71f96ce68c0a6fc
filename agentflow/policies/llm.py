"""LLM decisions: any Beam ModelHandler that maps a prompt to text, with caching, a timeout and a fallback.

The prompt holds the retrieved contexts (and their known answers), the session's earlier
turns and the event. A timeout, an error or an empty answer falls back to a non-LLM
policy, and the decision records why, so an LLM outage degrades answers instead of
losing events. `OpenAICompatibleHandler` talks to any `/v1/chat/completions` endpoint.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Optional

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from agentflow.policies.base import DecisionPolicy
from agentflow.policies.retrieval_answer import RetrievalAnswerPolicy
from agentflow.types import Decision, Retrieval

_LOG = logging.getLogger(__name__)


class OpenAICompatibleHandler(ModelHandler[str, PredictionResult, Any]):
  """Prompt -> completion text through an OpenAI-compatible chat endpoint.

  The API key is read from the environment variable `api_key_env` when the model is
  loaded on the worker; it is never stored on the (pickled) handler or printed.
  """

  def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 30.0,
               temperature: float = 0.0, max_tokens: int = 256, system: str = "You are a support agent."):
    super().__init__()
    self.base_url, self.model, self.api_key_env = base_url.rstrip("/"), model, api_key_env
    self.timeout_s, self.temperature, self.max_tokens, self.system = timeout_s, temperature, max_tokens, system

  def __repr__(self):
    return f"OpenAICompatibleHandler(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

  def load_model(self):
    import requests
    session = requests.Session()
    key = os.environ.get(self.api_key_env, "")
    if key:
      session.headers["Authorization"] = f"Bearer {key}"
    return session

  def run_inference(self, batch, model, inference_args=None):
    out = []
    for prompt in batch:
      resp = model.post(f"{self.base_url}/v1/chat/completions", timeout=self.timeout_s, json={
          "model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens,
          "messages": [{"role": "system", "content": self.system}, {"role": "user", "content": prompt}]})
      if resp.status_code != 200:
        raise RuntimeError(f"LLM endpoint answered HTTP {resp.status_code}")
      text = resp.json()["choices"][0]["message"]["content"]
      out.append(PredictionResult(prompt, text, self.model))
    return out


def build_prompt(retrieval: Retrieval, max_chars: int = 4000, max_contexts: int = 5) -> str:
  """Contexts (with known answers), earlier turns, then the question; trimmed to `max_chars`."""
  parts = ["Context:"]
  for i, h in enumerate(sorted(retrieval.hits, key=lambda h: -h.score)[:max_contexts], 1):
    answer = h.metadata.get("answer")
    parts.append(f"[{i}] {h.text}" + (f"\n    Known answer: {answer}" if answer else ""))
  if retrieval.memory:
    parts.append("Conversation so far:")
    parts.extend(f"- {t.get('role', 'user')}: {t.get('text', '')}" for t in retrieval.memory)
  question = f"Customer: {retrieval.event.text}\nAnswer briefly, using the context."
  head = "\n".join(parts)
  return head[:max(0, max_chars - len(question) - 1)] + "\n" + question


@dataclass
class LLMPolicy(DecisionPolicy):
  """Replies with `handler`'s completion; falls back to `fallback` on timeout, error or empty text."""
  handler: ModelHandler
  fallback: DecisionPolicy = field(default_factory=RetrievalAnswerPolicy)
  timeout_s: float = 10.0
  cache_size: int = 1024
  max_prompt_chars: int = 4000
  name: str = "llm"
  uses_memory: bool = True

  def setup(self) -> None:
    self._model = self.handler.load_model()
    self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
    self._cache: "OrderedDict[str, str]" = OrderedDict()
    self._lock = threading.Lock()
    self.fallback.setup()

  def teardown(self) -> None:
    self._pool.shutdown(wait=False, cancel_futures=True)
    self.fallback.teardown()

  def __getstate__(self):
    return {k: v for k, v in self.__dict__.items() if k not in ("_model", "_pool", "_cache", "_lock")}

  def _cached(self, key: str) -> Optional[str]:
    with self._lock:
      if key in self._cache:
        self._cache.move_to_end(key)
        return self._cache[key]
    return None

  def _remember(self, key: str, text: str) -> None:
    with self._lock:
      self._cache[key] = text
      while len(self._cache) > self.cache_size:
        self._cache.popitem(last=False)

  def _fall_back(self, retrieval: Retrieval, reason: str) -> Decision:
    d = self.fallback.decide(retrieval)
    return self.decision(retrieval, d.action, d.confidence, d.response, d.cited_ids,
                         **{**dict(d.metadata), "fallback": reason, "fallback_policy": d.policy})

  def decide(self, retrieval: Retrieval) -> Decision:
    prompt = build_prompt(retrieval, self.max_prompt_chars)
    key = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
    cited = [h.id for h in sorted(retrieval.hits, key=lambda h: -h.score)[:5]]
    text = self._cached(key)
    cached = text is not None
    if text is None:
      future = self._pool.submit(self.handler.run_inference, [prompt], self._model)
      try:
        text = str(list(future.result(timeout=self.timeout_s))[0].inference or "").strip()
      except concurrent.futures.TimeoutError:
        future.cancel()
        return self._fall_back(retrieval, "timeout")
      except Exception as e:  # pylint: disable=broad-except
        _LOG.warning("LLM call failed (%s); using the fallback policy", type(e).__name__)
        return self._fall_back(retrieval, f"error:{type(e).__name__}")
      if not text:
        return self._fall_back(retrieval, "empty")
      self._remember(key, text)
    return self.decision(retrieval, "reply", 0.5, text, cited, cached=cached, prompt_digest=key[:16])
