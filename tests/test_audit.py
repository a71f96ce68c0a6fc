"""The audit hash chain: written by the pipeline, continued across runs, and tampering is detected."""
import json
import os
import subprocess
import sys

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline

from agentflow.observability.audit import AuditLog, verify
from agentflow.types import Decision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _decisions(prefix, n):
  return [Decision(event_id=f"{prefix}{i}", session_id="s", action="reply", confidence=0.9, policy="p",
                   trace_id=f"{i:032x}", request_digest=f"{i:064x}") for i in range(n)]


def _run(directory, decisions):
  with TestPipeline() as p:
    _ = p | beam.Create(decisions) | AuditLog(str(directory))


def _segments(directory):
  return sorted(p for p in os.listdir(directory) if p.startswith("segment-"))


def test_chain_spans_runs_and_verifies(tmp_path):
  _run(tmp_path, _decisions("a", 20))
  ok, n, _ = verify(str(tmp_path))
  assert ok and n == 20
  _run(tmp_path, _decisions("b", 5))
  ok, n, msg = verify(str(tmp_path))
  assert ok and n == 25, msg
  events = [json.loads(l)["event_id"] for s in _segments(tmp_path) for l in open(tmp_path / s)]
  assert sorted(events) == sorted([f"a{i}" for i in range(20)] + [f"b{i}" for i in range(5)])


def _tamper(path, fn):
  lines = [json.loads(l) for l in open(path)]
  lines = fn(sorted(lines, key=lambda r: r["seq"]))
  with open(path, "w") as f:
    f.write("".join(json.dumps(r) + "\n" for r in lines))


def test_tampering_is_detected(tmp_path):
  for name, fn in [("edit", lambda rs: [dict(r, decision_digest="f" * 64) if r["seq"] == 4 else r for r in rs]),
                   ("delete", lambda rs: [r for r in rs if r["seq"] != 3]),
                   ("truncate-middle", lambda rs: rs[:2] + rs[5:]),
                   ("swap", lambda rs: [dict(r, event_id=rs[1]["event_id"]) if r["seq"] == 1 else r for r in rs])]:
    d = tmp_path / name
    _run(d, _decisions("x", 8))
    ok, _, _ = verify(str(d))
    assert ok
    _tamper(d / _segments(d)[0], fn)
    ok, _, msg = verify(str(d))
    assert not ok, name


def test_cli_audit_verify(tmp_path):
  _run(tmp_path, _decisions("c", 3))
  env = dict(os.environ, PYTHONPATH=ROOT)
  good = subprocess.run([sys.executable, "-m", "agentflow.cli", "audit", "verify", str(tmp_path)],
                        capture_output=True, text=True, env=env, timeout=120)
  assert good.returncode == 0 and "OK: chain of 3 records" in good.stdout
  _tamper(tmp_path / _segments(tmp_path)[0], lambda rs: rs[1:])
  bad = subprocess.run([sys.executable, "-m", "agentflow.cli", "audit", "verify", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=120)
  assert bad.returncode == 1 and "FAILED" in bad.stdout


def _register_auditfs(root):
  """A Beam FileSystem for `auditfs://` paths kept under `root`: stands in for gs:// offline."""
  import glob

  from apache_beam.io.filesystem import FileMetadata, MatchResult
  from apache_beam.io.localfilesystem import LocalFileSystem

  prefix = "auditfs://"

  def local(path):
    return os.path.join(str(root), path[len(prefix):]) if path.startswith(prefix) else path

  def remote(path):
    return prefix + os.path.relpath(path, str(root))

  class AuditFs(LocalFileSystem):
    @classmethod
    def scheme(cls):
      return "auditfs"

    def join(self, basepath, *paths):
      return "/".join([basepath.rstrip("/")] + [p.strip("/") for p in paths])

    def split(self, path):
      head, _, tail = path.rpartition("/")
      return head, tail

    def has_dirs(self):
      return False

    def mkdirs(self, path):
      os.makedirs(local(path), exist_ok=True)

    def match(self, patterns, limits=None):
      return [MatchResult(p, [FileMetadata(remote(f), os.path.getsize(f)) for f in sorted(glob.glob(local(p)))])
              for p in patterns]

    def create(self, path, *args, **kwargs):
      os.makedirs(os.path.dirname(local(path)), exist_ok=True)
      return super().create(local(path), *args, **kwargs)

    def open(self, path, *args, **kwargs):
      return super().open(local(path), *args, **kwargs)

    def copy(self, sources, destinations):
      return super().copy([local(p) for p in sources], [local(p) for p in destinations])

    def rename(self, sources, destinations):
      for d in destinations:
        os.makedirs(os.path.dirname(local(d)), exist_ok=True)
      return super().rename([local(p) for p in sources], [local(p) for p in destinations])

    def exists(self, path):
      return super().exists(local(path))

    def size(self, path):
      return super().size(local(path))

    def last_updated(self, path):
      return super().last_updated(local(path))

    def checksum(self, path):
      return super().checksum(local(path))

    def metadata(self, path):
      m = super().metadata(local(path))
      m.path = path
      return m

    def delete(self, paths):
      import shutil
      for p in map(local, paths):
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)

  return AuditFs


def test_audit_log_goes_through_beam_filesystems(tmp_path):
  """`--audit_output gs://...` on Dataflow: the chain is written, continued and verified by path scheme."""
  fs = _register_auditfs(tmp_path)  # Beam finds FileSystem subclasses through weak references: keep it alive
  _run("auditfs://audit", _decisions("a", 7))
  assert _segments(tmp_path / "audit") and not any(p.name.startswith("segment-") for p in tmp_path.iterdir())
  _run("auditfs://audit", _decisions("b", 3))
  ok, n, msg = verify("auditfs://audit")
  assert ok and n == 10, msg
  assert verify(str(tmp_path / "audit"))[:2] == (True, 10) and fs.scheme() == "auditfs"
