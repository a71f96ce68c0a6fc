"""A local OpenAI-compatible chat endpoint for tests: deterministic answers, delays, failures, a request log.

`POST /v1/chat/completions` answers "ANSWER: " + the first context line of the user
message (the line after "Context:", without its "[1] " marker), in the documented
response shape. `delay_s` makes it slow (to test timeouts), `fail_status` makes it
fail (e.g. 500), `reply` overrides the answer (e.g. "" for an empty completion), and
`requests` records every call with its headers and JSON body.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional

CHAT_PATH = "/v1/chat/completions"


@dataclass
class RecordedRequest:
  """One request the stub received."""
  path: str
  headers: Dict[str, str]
  body: Dict[str, Any] = field(default_factory=dict)

  @property
  def authorization(self) -> Optional[str]:
    return self.headers.get("authorization")

  @property
  def prompt(self) -> str:
    return next((m["content"] for m in reversed(self.body.get("messages", [])) if m.get("role") == "user"), "")


def answer_for(prompt: str) -> str:
  """The stub's deterministic completion of `prompt`."""
  lines = prompt.splitlines()
  context = next((lines[i + 1] for i, line in enumerate(lines[:-1]) if line.startswith("Context:")), "")
  return "ANSWER: " + (re.sub(r"^\[\d+\]\s*", "", context) if context.startswith("[") else "no context")


class OpenAIStubServer:
  """A `ThreadingHTTPServer` on 127.0.0.1 (a free port) in a daemon thread; use as a context manager."""

  def __init__(self, delay_s: float = 0.0, fail_status: Optional[int] = None, reply: Optional[str] = None):
    self.delay_s, self.fail_status, self.reply = delay_s, fail_status, reply
    self.requests: List[RecordedRequest] = []
    self._stopping = threading.Event()
    self._lock = threading.Lock()
    self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
    self._server.daemon_threads = True
    self._thread: Optional[threading.Thread] = None

  @property
  def url(self) -> str:
    host, port = self._server.server_address[:2]
    return f"http://{host}:{port}"

  @property
  def completions(self) -> List[RecordedRequest]:
    with self._lock:
      return [r for r in self.requests if r.path == CHAT_PATH]

  def start(self) -> OpenAIStubServer:
    self._thread = threading.Thread(target=self._server.serve_forever, name="openai-stub", daemon=True)
    self._thread.start()
    return self

  def stop(self) -> None:
    self._stopping.set()
    self._server.shutdown()
    self._server.server_close()

  def __enter__(self) -> OpenAIStubServer:
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()

  def _respond(self, handler: BaseHTTPRequestHandler) -> None:
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    try:
      body = json.loads(raw or b"{}")
    except ValueError:
      body = {"_raw": raw.decode("utf-8", "replace")}
    record = RecordedRequest(handler.path, {k.lower(): v for k, v in handler.headers.items()}, body)
    with self._lock:
      self.requests.append(record)
    if self.delay_s:
      self._stopping.wait(self.delay_s)
    if handler.path != CHAT_PATH:
      return self._send(handler, 404, {"error": {"message": "not found", "type": "invalid_request_error"}})
    if self.fail_status:
      return self._send(handler, self.fail_status, {"error": {"message": "injected failure", "type": "server_error"}})
    prompt = record.prompt
    content = answer_for(prompt) if self.reply is None else self.reply
    prompt_tokens, completion_tokens = len(prompt.split()), len(content.split())
    self._send(handler, 200, {
        "id": f"chatcmpl-stub-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "stub"), "system_fingerprint": "stub",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens}})

  @staticmethod
  def _send(handler: BaseHTTPRequestHandler, status: int, payload: Dict[str, Any]) -> None:
    data = json.dumps(payload).encode("utf-8")
    try:
      handler.send_response(status)
      handler.send_header("Content-Type", "application/json")
      handler.send_header("Content-Length", str(len(data)))
      handler.end_headers()
      handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
      pass

  def _handler_class(self):
    stub = self

    class Handler(BaseHTTPRequestHandler):
      protocol_version = "HTTP/1.1"

      def log_message(self, *args):
        pass

      def do_POST(self):
        stub._respond(self)

    return Handler
