"""A local OpenAI-compatible chat endpoint for tests: deterministic answers, delays, failures, a request log."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OpenAIStub:
  """Answers "ANSWER: <first context line>"; `delay_s` and `status` inject slowness and errors."""

  def __init__(self):
    self.requests, self.delay_s, self.status = [], 0.0, 200
    stub = self

    class Handler(BaseHTTPRequestHandler):
      def log_message(self, *args):
        pass

      def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        stub.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if stub.delay_s:
          threading.Event().wait(stub.delay_s)
        if self.path != "/v1/chat/completions" or stub.status != 200:
          self.send_response(stub.status if stub.status != 200 else 404)
          self.end_headers()
          self.wfile.write(b'{"error": {"message": "injected failure"}}')
          return
        prompt = body["messages"][-1]["content"]
        context = next((l for l in prompt.splitlines() if l.startswith("[1]")), "no context")
        out = {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": f"ANSWER: {context}"}}],
               "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 3, "total_tokens": 0}}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

  def __enter__(self):
    threading.Thread(target=self.server.serve_forever, daemon=True).start()
    return self

  def __exit__(self, *exc):
    self.server.shutdown()
    self.server.server_close()
