"""OTLP export: a run's metrics arrive at a local OTLP/HTTP collector as protobuf metrics."""
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest  # noqa: E402

from agentflow.job import run  # noqa: E402


@pytest.fixture
def collector():
  received = []

  class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
      pass

    def do_POST(self):
      body = self.rfile.read(int(self.headers["Content-Length"]))
      received.append((self.path, self.headers.get("Content-Type"), body))
      self.send_response(200)
      self.send_header("Content-Type", "application/x-protobuf")
      self.end_headers()

  server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  yield f"http://127.0.0.1:{server.server_address[1]}", received
  server.shutdown()


def _points(body):
  req = ExportMetricsServiceRequest()
  req.ParseFromString(body)
  out = {}
  for rm in req.resource_metrics:
    service = {a.key: a.value.string_value for a in rm.resource.attributes}["service.name"]
    for sm in rm.scope_metrics:
      for m in sm.metrics:
        for p in m.sum.data_points:
          attrs = tuple(sorted((a.key, a.value.string_value) for a in p.attributes))
          out[(m.name, attrs)] = p.as_int
  return service, out


def test_run_pushes_its_metrics_to_the_collector(tmp_path, collector):
  url, received = collector
  events = tmp_path / "e.jsonl"
  event = json.dumps({"event_id": "o1", "session_id": "s", "text": "reset my password", "timestamp": 1772442900})
  events.write_text("\n".join([event, "not json", event]) + "\n")
  summary = run(["--input", str(events), "--store", f"local:{tmp_path}/s", "--decisions_output",
                 str(tmp_path / "d"), "--dead_letter_output", str(tmp_path / "dl"), "--progress_interval", "0",
                 "--otlp_endpoint", url], out=open(os.devnull, "w"))
  assert summary.accounted
  assert received and all(path == "/v1/metrics" and ctype == "application/x-protobuf"
                          for path, ctype, _ in received)
  body = received[0][2]
  service, points = _points(body)
  assert service == "agentflow"
  assert points[("agentflow.stage.elements", (("direction", "in"), ("stage", "preprocess")))] == 3
  assert points[("agentflow.duplicates_dropped", ())] == 1
  assert points[("agentflow.dead_letters", (("reason", "invalid_json"), ("stage", "preprocess")))] == 1
  assert sum(v for (name, _), v in points.items() if name == "agentflow.decisions") == 1
