"""Vespa's own Java code in the loop: the protocol server asks it about every query and feed body.

`runners/vespa`'s CheckRequests (container-search's YQL parsing and validating searchers,
the document JSON reader, configured by Vespa's config model from the application package
the server's schema generates) runs in one JVM per test session. The first server in a
process starts it and exports its address in AGENTFLOW_VESPA_CHECKER, so protocol servers in
child processes (the live suite's) use the same JVM. Set AGENTFLOW_VESPA_CHECKER=off to run
without it; without `java` and `mvn` it is off and the server's own checks stand alone.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from typing import Any, Dict, Optional

ENV = "AGENTFLOW_VESPA_CHECKER"
_lock = threading.Lock()
_shared: Optional[VespaJavaChecker] = None
_why_not: Optional[str] = None


class VespaJavaChecker:
  """A connection to a CheckRequests JVM; thread-safe (one request at a time on one socket)."""

  def __init__(self, address: str, process: Optional[subprocess.Popen] = None):
    host, port = address.rsplit(":", 1)
    self.address, self.process = address, process
    self._sock = socket.create_connection((host, int(port)), timeout=300)
    self._file = self._sock.makefile("rw", encoding="utf-8")
    self._lock = threading.Lock()
    self._packages: Dict[str, str] = {}
    self._workdir = tempfile.mkdtemp(prefix="vespa-java-check-")

  @classmethod
  def start(cls) -> VespaJavaChecker:
    """Build runners/vespa/launcher.jar if needed and start CheckRequests on a loopback port."""
    from tests.services import launcher
    jar = launcher("vespa")
    process = subprocess.Popen(["java", "-Xss4m", "-cp", jar, "dev.agentflow.vespa.CheckRequests"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline().split()
    if len(line) != 2 or line[0] != "LISTENING":
      process.kill()
      raise RuntimeError(f"CheckRequests did not start (said {line!r})")
    return cls(f"127.0.0.1:{line[1]}", process)

  def package_for(self, schema) -> str:
    """The application package directory for a pyvespa `Schema` (written once per schema)."""
    from vespa.package import ApplicationPackage, ContainerCluster, ContentCluster
    text = schema.schema_to_text
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    if key not in self._packages:
      out = os.path.join(self._workdir, key)
      ApplicationPackage(name="agentflow", schema=[schema], clusters=[
          ContainerCluster(id="agentflow_container"),
          ContentCluster(id="agentflow_content", document_name=schema.name)]).to_files(out)
      self._packages[key] = out
    return self._packages[key]

  def _ask(self, request: Dict[str, Any]) -> Dict[str, Any]:
    with self._lock:
      self._file.write(json.dumps(request, ensure_ascii=False) + "\n")
      self._file.flush()
      answer = self._file.readline()
    if not answer:
      raise RuntimeError("the CheckRequests JVM closed the connection")
    out = json.loads(answer)
    if out.get("internal"):
      raise RuntimeError(out["message"])
    return out

  def check_query(self, package: str, body: Dict[str, Any], source: str = "") -> Dict[str, Any]:
    """Vespa's verdict on a /search/ request body: {"ok": True} or the error Vespa would answer.

    `source` "agentflow" marks a request agentflow's store sent (listed in `stats` if rejected).
    """
    return self._ask({"op": "query", "app": package, "body": body, "source": source})

  def check_feed(self, package: str, document_id: str, body: Dict[str, Any], source: str = "") -> Dict[str, Any]:
    """Vespa's verdict on a document/v1 put body: {"ok": True} or {"ok": False, "message": ...}."""
    return self._ask({"op": "feed", "app": package, "id": document_id, "body": body, "source": source})

  def stats(self) -> Dict[str, Any]:
    """Requests checked by the JVM so far, from every process using it."""
    return self._ask({"op": "stats"})

  def close(self) -> None:
    try:
      self._file.close()
      self._sock.close()
    finally:
      if self.process is not None:
        self.process.stdin.close()  # CheckRequests exits when its stdin closes
        try:
          self.process.wait(10)
        except subprocess.TimeoutExpired:
          self.process.kill()
      shutil.rmtree(self._workdir, ignore_errors=True)


def shared_checker() -> Optional[VespaJavaChecker]:
  """This process's checker: connected to AGENTFLOW_VESPA_CHECKER, or started; None where off or impossible."""
  global _shared, _why_not
  with _lock:
    if _shared is not None or _why_not is not None:
      return _shared
    address = os.environ.get(ENV, "")
    if address == "off":
      _why_not = f"{ENV}=off"
    elif address:
      _shared = VespaJavaChecker(address)
    elif shutil.which("java") is None or shutil.which("mvn") is None:
      _why_not = "java and mvn are needed (runners/jars.sh vespa)"
    else:
      _shared = VespaJavaChecker.start()
      os.environ[ENV] = _shared.address
    if _shared is not None:
      atexit.register(_shared.close)
    return _shared


def started_here() -> bool:
  """Whether this process started (and owns) the session's JVM."""
  return _shared is not None and _shared.process is not None


def summary() -> Optional[str]:
  """One line on what Vespa's own code checked, for the end of a test session; None if no server asked."""
  if _shared is None:
    return f"Vespa's own code did not check the protocol server's requests: {_why_not}" if _why_not else None
  s = _shared.stats()
  ours = s["rejected_from_agentflow"]
  return (f"Vespa {s['version']}'s own container code checked {s['queries']} queries and {s['feeds']} feed bodies "
          f"sent to the protocol server; it rejected {s['rejected_queries']} queries and {s['rejected_feeds']} feed "
          f"bodies, {len(ours)} of them sent by agentflow's store (tests that misconfigure it on purpose)"
          + "".join(f"\n  {r[:300]}" for r in ours))
