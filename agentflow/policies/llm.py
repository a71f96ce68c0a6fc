"""LLM decisions: any Beam ModelHandler that maps a prompt to text, with caching, a timeout and a fallback.

The prompt holds the retrieved contexts (and their known answers), the session's earlier
turns and the event, within a character budget. A timeout, an error or an empty answer
falls back to a non-LLM policy and the decision records why, so an LLM outage degrades
answers instead of losing events. `OpenAICompatibleHandler` talks to any
`/v1/chat/completions` endpoint (OpenAI, vLLM, Ollama, llama.cpp, TGI, ...).
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from agentflow.observability import metrics
from agentflow.policies.base import DecisionPolicy
from agentflow.policies.retrieval_answer import REPLY, RetrievalAnswerPolicy
from agentflow.types import Decision, Retrieval, is_knowledge

_LOG = logging.getLogger(__name__)

TIMEOUT = "timeout"
EMPTY = "empty"
ERROR = "error"


class OpenAICompatibleHandler(ModelHandler[str, PredictionResult, Any]):
  """Prompt -> completion text through an OpenAI-compatible chat endpoint.

  Posts `{base_url}/v1/chat/completions` (a `base_url` already ending in `/v1` is
  accepted too). The API key is read from the environment variable `api_key_env` when
  the model is loaded on the worker, so it is never stored on the (pickled) handler,
  in its repr or in logs. `inference_args` may override the sampling parameters.
  """

  SAMPLING_ARGS = frozenset({"temperature", "max_tokens", "top_p", "stop", "seed"})

  def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 30.0,
               temperature: float = 0.0, max_tokens: int = 256, system: str = "You are a support agent."):
    super().__init__()
    base_url = base_url.rstrip("/")
    self.base_url = base_url[:-len("/v1")] if base_url.endswith("/v1") else base_url
    self.model, self.api_key_env, self.timeout_s = model, api_key_env, timeout_s
    self.temperature, self.max_tokens, self.system = temperature, max_tokens, system

  def __repr__(self):
    return (f"OpenAICompatibleHandler(base_url={self.base_url!r}, model={self.model!r}, "
            f"api_key_env={self.api_key_env!r}, timeout_s={self.timeout_s!r})")

  @property
  def url(self) -> str:
    return f"{self.base_url}/v1/chat/completions"

  def load_model(self):
    """A `requests.Session` carrying the bearer token (when the variable is set)."""
    import requests
    session = requests.Session()
    key = os.environ.get(self.api_key_env, "")
    if key:
      session.headers["Authorization"] = f"Bearer {key}"
    return session

  def validate_inference_args(self, inference_args: Optional[Dict[str, Any]]):
    unknown = set(inference_args or ()) - self.SAMPLING_ARGS
    if unknown:
      raise ValueError(f"unsupported inference_args {sorted(unknown)}; allowed: {sorted(self.SAMPLING_ARGS)}")

  def run_inference(self, batch: Sequence[str], model, inference_args: Optional[Dict[str, Any]] = None
                    ) -> Iterable[PredictionResult]:
    self.validate_inference_args(inference_args)
    params = {"temperature": self.temperature, "max_tokens": self.max_tokens, **(inference_args or {})}
    out = []
    for prompt in batch:
      resp = model.post(self.url, timeout=self.timeout_s, json={
          "model": self.model, **params,
          "messages": [{"role": "system", "content": self.system}, {"role": "user", "content": prompt}]})
      if resp.status_code != 200:
        raise RuntimeError(f"LLM endpoint answered HTTP {resp.status_code}")
      body = resp.json()
      text = body["choices"][0]["message"].get("content") or ""
      out.append(PredictionResult(prompt, text, body.get("model") or self.model))
    return out


@dataclass(frozen=True)
class PromptConfig:
  """How the prompt is assembled: at most `max_chars` characters, `max_contexts` hits and `max_turns` turns.

  The event text and `instruction` always go in (the text cut if it alone is too long);
  then the best hits in similarity order while they fit, then the most recent turns
  while they fit. Contexts come before memory because they are what grounds the answer.
  """
  max_chars: int = 4000
  max_contexts: int = 5
  max_turns: int = 10
  answer_field: str = "answer"
  instruction: str = "Answer briefly, using the context."

  def __post_init__(self):
    if self.max_chars < len(self.instruction) + 64:
      raise ValueError(f"max_chars={self.max_chars} leaves no room beside the instruction")


@dataclass(frozen=True)
class Prompt:
  """A built prompt, the ids of the hits it contains and the best of their similarities."""
  text: str
  cited_ids: Tuple[str, ...] = ()
  grounding: float = 0.0


_NO_CONTEXT = "Context: none\n"


def _flat(value: Any) -> str:
  return " ".join(str(value).split())


def build_prompt(retrieval: Retrieval, config: PromptConfig = PromptConfig()) -> Prompt:
  """Contexts (known answers from ingested knowledge only), earlier turns (oldest first), then the question.

  The prompt is at most `config.max_chars` long.
  """
  tail = f"\n{config.instruction}"
  question = f"Customer: {_flat(retrieval.event.text)}"[:config.max_chars - len(_NO_CONTEXT) - len(tail)] + tail
  budget = config.max_chars - len(_NO_CONTEXT) - len(question)

  contexts, used = [], []
  for h in sorted(retrieval.hits, key=lambda h: -h.score)[:config.max_contexts]:
    answer = h.metadata.get(config.answer_field) if is_knowledge(h) else None
    entry = f"[{len(used) + 1}] {_flat(h.text)}\n" + (f"    Known answer: {_flat(answer)}\n" if answer else "")
    if len(entry) <= budget:
      contexts.append(entry)
      used.append(h)
      budget -= len(entry)

  turns, header = [], "Conversation so far:\n"
  for t in reversed(list(retrieval.memory)[-config.max_turns:] if config.max_turns else []):
    entry = f"- {_flat(t.get('role') or 'user')}: {_flat(t.get('text') or t.get('content') or '')}\n"
    if len(entry) + (0 if turns else len(header)) > budget:
      break
    budget -= len(entry) + (0 if turns else len(header))
    turns.append(entry)

  text = ("Context:\n" + "".join(contexts) if contexts else _NO_CONTEXT)
  text += (header + "".join(reversed(turns)) if turns else "") + question
  return Prompt(text, tuple(h.id for h in used), max((h.score for h in used), default=0.0))


@dataclass
class LLMPolicy(DecisionPolicy):
  """Replies (action "reply") with `handler`'s completion of the prompt built from the retrieval.

  `handler` is any Beam `ModelHandler` taking a prompt string and returning
  `PredictionResult`s whose `.inference` is text; it is loaded in `setup()` on the worker.
  Each call runs in a thread and is abandoned after `timeout_s` (keep the handler's own
  HTTP timeout near it, so abandoned threads end too). Completions are cached in a
  bounded LRU keyed by the prompt's SHA-256, so replays and repeated questions cost no
  call. On timeout, error or empty text the `fallback` policy decides, and the decision
  carries `metadata["fallback"]` = "timeout" | "empty" | "error:<ExceptionType>".
  Confidence is the best similarity among the contexts in the prompt: an LLM answer is
  only as trustworthy as its grounding. Cited ids are those contexts.
  """
  handler: ModelHandler
  fallback: DecisionPolicy = field(default_factory=RetrievalAnswerPolicy)
  prompt_config: PromptConfig = field(default_factory=PromptConfig)
  timeout_s: float = 10.0
  cache_size: int = 1024
  max_workers: int = 4
  name: str = "llm"
  uses_memory: bool = True

  def __post_init__(self):
    if self.timeout_s <= 0 or self.cache_size < 0 or self.max_workers < 1:
      raise ValueError("need timeout_s > 0, cache_size >= 0 and max_workers >= 1")

  def setup(self) -> None:
    self._model = self.handler.load_model()
    self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.max_workers,
                                                       thread_name_prefix="agentflow-llm")
    self._cache: OrderedDict[str, Tuple[str, str]] = OrderedDict()
    self._lock = threading.Lock()
    self._calls = metrics.counter("llm.calls")
    self._cache_hits = metrics.counter("llm.cache_hits")
    self._fallbacks = {r: metrics.counter(f"llm.fallback.{r}") for r in (TIMEOUT, EMPTY, ERROR)}
    self.fallback.setup()

  def teardown(self) -> None:
    pool = self.__dict__.pop("_pool", None)
    if pool is not None:
      pool.shutdown(wait=False, cancel_futures=True)
    self.fallback.teardown()

  def __getstate__(self):
    return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

  def _cached(self, key: str) -> Optional[Tuple[str, str]]:
    with self._lock:
      if key in self._cache:
        self._cache.move_to_end(key)
        return self._cache[key]
    return None

  def _remember(self, key: str, value: Tuple[str, str]) -> None:
    with self._lock:
      self._cache[key] = value
      while len(self._cache) > self.cache_size:
        self._cache.popitem(last=False)

  def _complete(self, prompt: str) -> Tuple[str, str, str]:
    """(text, model id, "") on success, ("", "", fallback reason) otherwise."""
    self._calls.inc()
    future = self._pool.submit(self.handler.run_inference, [prompt], self._model)
    try:
      result = list(future.result(timeout=self.timeout_s))[0]
    except concurrent.futures.TimeoutError:
      future.cancel()
      _LOG.info("LLM call exceeded %.1fs; using the fallback policy", self.timeout_s)
      return "", "", TIMEOUT
    except Exception as e:  # pylint: disable=broad-except
      _LOG.warning("LLM call failed (%s); using the fallback policy", type(e).__name__)
      return "", "", f"{ERROR}:{type(e).__name__}"
    text = str(result.inference or "").strip()
    return (text, str(result.model_id or ""), "") if text else ("", "", EMPTY)

  def _fall_back(self, retrieval: Retrieval, reason: str) -> Decision:
    self._fallbacks[reason.split(":")[0]].inc()
    d = self.fallback.decide(retrieval)
    return self.decision(retrieval, d.action, d.confidence, d.response, d.cited_ids,
                         **{**dict(d.metadata), "fallback": reason, "fallback_policy": d.policy})

  def decide(self, retrieval: Retrieval) -> Decision:
    if "_pool" not in self.__dict__:
      raise RuntimeError("LLMPolicy.setup() must run before decide()")
    prompt = build_prompt(retrieval, self.prompt_config)
    key = hashlib.sha256(prompt.text.encode("utf-8")).hexdigest()
    hit = self._cached(key)
    if hit is not None:
      self._cache_hits.inc()
      text, llm_model = hit
    else:
      text, llm_model, reason = self._complete(prompt.text)
      if reason:
        return self._fall_back(retrieval, reason)
      self._remember(key, (text, llm_model))
    return self.decision(retrieval, REPLY, prompt.grounding, text, prompt.cited_ids, cached=hit is not None,
                         llm_model=llm_model, prompt_digest=key[:16])
