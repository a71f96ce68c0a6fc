"""The Flex Template: metadata matches the pipeline's options, gcloud builds its spec, the
build and launch scripts send what they should (to a local stand-in for the Google APIs),
and the entry point runs locally with exactly the template's parameters."""
import argparse
import base64
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from unittest import mock
from urllib.parse import parse_qs, urlparse

import pytest

from agentflow.options import AgentflowOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "templates", "agent_pipeline")
METADATA = json.load(open(os.path.join(TEMPLATE, "metadata.json")))
PARAMS = {p["name"]: p for p in METADATA["parameters"]}
BUILD = os.path.join(ROOT, "runners", "dataflow", "build_template.sh")
LAUNCH = os.path.join(ROOT, "runners", "dataflow", "launch.sh")
IMAGE = "us-docker.pkg.dev/demo-project/agentflow/agent-pipeline:test"
needs_gcloud = pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud (Google Cloud CLI) is not on PATH")


def _actions():
  parser = argparse.ArgumentParser(add_help=False)
  AgentflowOptions._add_argparse_args(parser)
  return {a.option_strings[0][2:]: a for a in parser._actions if a.option_strings}


def _accepted(name, value):
  return all(re.fullmatch(rx, value) for rx in PARAMS[name].get("regexes", []))


def test_metadata_matches_options_exactly():
  names = [p["name"] for p in METADATA["parameters"]]
  assert len(names) == len(set(names))
  assert set(names) == set(_actions())


def test_every_parameter_is_described_and_its_regexes_accept_the_default():
  actions = _actions()
  for p in METADATA["parameters"]:
    assert p["label"] and p["helpText"] == actions[p["name"]].help and p["isOptional"] is True
    for rx in p.get("regexes", []):
      compiled = re.compile(rx)
      default = actions[p["name"]].default
      if default not in (None, ""):
        assert compiled.fullmatch(str(default)), (p["name"], default)


def test_dockerfile_points_at_the_entry_point_and_setup():
  text = open(os.path.join(TEMPLATE, "Dockerfile")).read()
  assert "python311-template-launcher-base" in text
  assert re.search(r'FLEX_TEMPLATE_PYTHON_PY_FILE="\$\{WORKDIR\}/pipelines/agent_pipeline.py"', text)
  assert re.search(r'FLEX_TEMPLATE_PYTHON_SETUP_FILE="\$\{WORKDIR\}/setup.py"', text)
  assert os.path.exists(os.path.join(ROOT, "pipelines", "agent_pipeline.py"))


class _GoogleApis(http.server.ThreadingHTTPServer):
  """Answers the Cloud Storage, Cloud Build and Dataflow calls the scripts make; records them."""

  def __init__(self):
    super().__init__(("127.0.0.1", 0), _GoogleApisHandler)
    self.url = f"http://127.0.0.1:{self.server_address[1]}/"
    self.requests, self.objects = [], {}


class _GoogleApisHandler(http.server.BaseHTTPRequestHandler):
  def log_message(self, *args):
    pass

  def _reply(self, body):
    data = json.dumps(body).encode()
    self.send_response(200)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def do_GET(self):
    self._handle(b"")

  def do_POST(self):
    self._handle(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

  def _handle(self, body):
    url = urlparse(self.path)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    self.server.requests.append((self.command, url.path, body))
    bucket = re.match(r"^(?:/upload)?/storage/v1/b/([^/]+)", url.path)
    if url.path == "/storage/v1/b":
      return self._reply({"items": [{"name": query["prefix"], "id": query["prefix"]}]})
    if bucket and url.path.endswith("/o"):
      boundary = self.headers["Content-Type"].split("boundary=")[1].strip("'\"").encode()
      data = body.split(b"--" + boundary)[2].split(b"\n\n", 1)[1][:-1]
      self.server.objects[(bucket.group(1), query["name"])] = data
      return self._reply({"bucket": bucket.group(1), "name": query["name"], "generation": "1",
                          "size": str(len(data)), "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode()})
    if bucket:
      return self._reply({"name": bucket.group(1), "id": bucket.group(1)})
    project = re.match(r"^/v1/projects/([^/]+)/", url.path)
    build = {"id": "build-1", "projectId": project and project.group(1), "status": "SUCCESS",
             "logUrl": "http://127.0.0.1/logs"}
    if url.path.endswith("/builds") and self.command == "POST":
      return self._reply({"name": "operations/build-1", "done": True, "metadata": {
          "@type": "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata", "build": build}})
    if "/builds/" in url.path:
      return self._reply(build)
    if url.path.endswith("/flexTemplates:launch"):
      launch = json.loads(body)["launchParameter"]
      return self._reply({"job": {"id": "2026-01-01_00_00_00-1", "name": launch["jobName"], "type": "JOB_TYPE_BATCH"}})
    self.send_error(404)


@pytest.fixture
def google_apis():
  server = _GoogleApis()
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield server
  server.shutdown()
  server.server_close()


def _gcloud_env(tmp_path, api=None, **extra):
  """gcloud with its own config dir, a dummy token and, given `api`, every API it uses on `api`."""
  (tmp_path / "token").write_text("test-token")
  env = dict(os.environ, CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), CLOUDSDK_CORE_DISABLE_PROMPTS="1",
             CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=str(tmp_path / "token"))
  for name in ("PROJECT", "REGION", "BUCKET", "IMAGE", "TEMPLATE", "BUILDER", "JOB_NAME", "CLOUDBUILD_FLAGS"):
    env.pop(name, None)
  if api is not None:
    for service in ("STORAGE", "CLOUDBUILD", "DATAFLOW"):
      env[f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{service}"] = api.url
  env.update(extra)
  return env


def _run(cmd, env):
  out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
  return out.stdout


def _spec(stdout):
  """The spec from `--print-only --format=json`, which prints it as one JSON string."""
  return json.loads(json.loads(stdout))


@needs_gcloud
def test_gcloud_builds_the_spec_offline(tmp_path):
  spec = _spec(_run(["gcloud", "dataflow", "flex-template", "build", "gs://demo-bucket/agent.json",
                     f"--image={IMAGE}", "--sdk-language=PYTHON",
                     f"--metadata-file={os.path.join(TEMPLATE, 'metadata.json')}", "--print-only", "--format=json"],
                    _gcloud_env(tmp_path)))
  assert spec["image"] == IMAGE
  assert spec["sdkInfo"]["language"] == "PYTHON"
  assert spec["metadata"] == METADATA


@needs_gcloud
def test_build_script_prints_the_spec_without_building_an_image(tmp_path):
  env = _gcloud_env(tmp_path, IMAGE=IMAGE, BUCKET="demo-bucket", BUILDER="none-would-fail")
  spec = _spec(_run([BUILD, "--print-only", "--format=json"], env))
  assert spec["image"] == IMAGE and spec["metadata"] == METADATA
  assert spec["defaultEnvironment"] == {"tempLocation": "gs://demo-bucket/tmp",
                                        "stagingLocation": "gs://demo-bucket/staging"}


@needs_gcloud
def test_build_script_builds_the_image_with_cloud_build_and_writes_the_spec(tmp_path, google_apis):
  env = _gcloud_env(tmp_path, google_apis, PROJECT="demo-project", BUCKET="demo-bucket", IMAGE=IMAGE,
                    CLOUDBUILD_FLAGS="--async")  # waiting would stream logs from storage.googleapis.com itself
  _run([BUILD], env)
  build = json.loads(next(b for m, p, b in google_apis.requests if p.endswith("/builds") and m == "POST"))
  assert build["substitutions"] == {"_IMAGE": IMAGE} and build["images"] == ["$_IMAGE"]
  assert build["steps"][0]["args"] == ["build", "-f", "templates/agent_pipeline/Dockerfile", "-t", "$_IMAGE", "."]
  source = google_apis.objects[("demo-project_cloudbuild", build["source"]["storageSource"]["object"])]
  names = set(tarfile.open(fileobj=io.BytesIO(source)).getnames())
  for line in open(os.path.join(TEMPLATE, "Dockerfile")):
    if line.startswith("COPY "):
      for src in line.split()[1:-1]:
        assert src in names or any(n.startswith(src + "/") for n in names), src
  assert not any(n.startswith((".git/", ".venv", "runners/flink/lib/")) for n in names)
  spec = json.loads(google_apis.objects[("demo-bucket", "templates/agent_pipeline.json")])
  assert spec["image"] == IMAGE and spec["metadata"] == METADATA


@needs_gcloud
def test_launch_script_sends_each_parameter_intact(tmp_path, google_apis):
  params = {"input": "gs://demo-bucket/events/*.jsonl", "kafka_bootstrap": "broker-1:9092,broker-2:9092",
            "embedding_cache": "redis://cache:6379/0", "store": "vespa:https://vespa.example:8080", "top_k": "7"}
  assert all(name in PARAMS and _accepted(name, value) for name, value in params.items())
  env = _gcloud_env(tmp_path, google_apis, PROJECT="demo-project", REGION="us-central1", BUCKET="demo-bucket",
                    JOB_NAME="agentflow-test")
  _run([LAUNCH, *(f"{k}={v}" for k, v in params.items()), "--max-workers=3"], env)
  (_, path, body), = [r for r in google_apis.requests if r[1].endswith(":launch")]
  assert path == "/v1b3/projects/demo-project/locations/us-central1/flexTemplates:launch"
  launch = json.loads(body)["launchParameter"]
  assert launch["parameters"] == params
  assert launch["containerSpecGcsPath"] == "gs://demo-bucket/templates/agent_pipeline.json"
  assert launch["jobName"] == "agentflow-test"
  assert launch["environment"]["maxWorkers"] == 3 and launch["environment"]["tempLocation"] == "gs://demo-bucket/tmp"


def test_entry_point_runs_locally_with_the_template_parameters(tmp_path):
  events = tmp_path / "events.jsonl"
  texts = ["how do I reset my password", "cancel my plan", "where is my invoice"]
  events.write_text("".join(json.dumps({"event_id": f"t{i}", "session_id": "s", "text": t,
                                        "timestamp": 1772442900 + i}) + "\n" for i, t in enumerate(texts))
                    + "not json\n")
  kb = tmp_path / "kb.jsonl"
  kb.write_text(json.dumps({"id": "kb-1", "question": "How do I reset my password?", "answer": "Settings.",
                            "topic": "account"}) + "\n"
                + json.dumps({"id": "kb-2", "question": "How do I cancel my plan?", "answer": "Billing.",
                              "topic": "billing"}) + "\n")
  values = {"input": str(events), "knowledge": str(kb), "decisions_output": str(tmp_path / "d.jsonl"),
            "dead_letter_output": str(tmp_path / "dl.jsonl"), "store": f"local:{tmp_path}/store",
            "summary_output": str(tmp_path / "summary.json"), "metrics_output": str(tmp_path / "m.prom"),
            "audit_output": str(tmp_path / "audit"), "progress_interval": "0"}
  actions = _actions()
  args = []
  for p in METADATA["parameters"]:
    default = actions[p["name"]].default
    value = str(values.get(p["name"], "" if default is None else default))
    assert value == "" or _accepted(p["name"], value), (p["name"], value)
    args.append(f"--{p['name']}={value}")
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "pipelines", "agent_pipeline.py"), "--runner",
                         "DirectRunner", *args], capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=ROOT), cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  decisions = open(tmp_path / "d.jsonl").read().splitlines()
  dead = open(tmp_path / "dl.jsonl").read().splitlines()
  assert len(decisions) + len(dead) == len(events.read_text().splitlines())
  assert len(decisions) == 3 and len(dead) == 1
  assert json.load(open(tmp_path / "summary.json"))["accounted"] is True


def test_entry_point_returns_once_a_template_launch_has_written_the_job(tmp_path):
  from apache_beam.internal.gcp import auth
  from apache_beam.options.pipeline_options import GoogleCloudOptions
  from apache_beam.runners.dataflow.internal import apiclient

  from agentflow import job as agent_pipeline

  written = []

  class TemplateWriter:
    """What DataflowApplicationClient does with --template_location: stage the job, submit nothing."""

    def __init__(self, *args, **kwargs):
      pass

    def create_job(self, job):
      written.append(job)

  with mock.patch.object(apiclient, "DataflowApplicationClient", TemplateWriter), \
       mock.patch.object(auth, "get_service_credentials", lambda *a, **k: None), \
       mock.patch.object(GoogleCloudOptions, "_warn_if_soft_delete_policy_enabled", lambda *a: None):
    agent_pipeline.run(["--runner", "DataflowRunner", "--project", "demo-project", "--region", "us-central1",
                        "--temp_location", "gs://demo-bucket/tmp", "--staging_location", "gs://demo-bucket/staging",
                        "--template_location", "gs://demo-bucket/staging/template_launches/1/job_object",
                        "--no_auth", "--input", "gs://demo-bucket/events/*.jsonl",
                        "--store", f"local:{tmp_path}/store", "--progress_interval", "0"], out=io.StringIO())
  names = [t.unique_name for t in written[0].proto_pipeline.components.transforms.values()]
  assert any(n.startswith("Agent/Decide") for n in names)
