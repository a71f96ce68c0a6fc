"""Starts Google's Pub/Sub emulator (installed with the Cloud SDK) for a test, on a free port."""
import glob
import os
import shutil
import socket
import subprocess
import time

JAR_GLOB = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar"


def emulator_jar():
  jars = sorted(glob.glob(os.environ.get("PUBSUB_EMULATOR_JAR", JAR_GLOB)))
  return jars[-1] if jars and shutil.which("java") else None


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class PubSubEmulator:
  """`with PubSubEmulator() as host:` sets nothing globally; pass `host` as PUBSUB_EMULATOR_HOST."""

  def __init__(self, log_path):
    self.log_path = log_path
    self.port = _free_port()
    self.host = f"127.0.0.1:{self.port}"
    self.proc = None

  def __enter__(self):
    self.log = open(self.log_path, "w")
    self.proc = subprocess.Popen(["java", "-jar", emulator_jar(), "--host=127.0.0.1", f"--port={self.port}"],
                                 stdout=self.log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
      if self.proc.poll() is not None:
        raise RuntimeError(f"Pub/Sub emulator exited: {open(self.log_path).read()[-2000:]}")
      try:
        socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        return self.host
      except OSError:
        time.sleep(0.2)
    raise RuntimeError("Pub/Sub emulator did not start within 60 s")

  def __exit__(self, *exc):
    self.proc.terminate()
    try:
      self.proc.wait(10)
    except subprocess.TimeoutExpired:
      self.proc.kill()
    self.log.close()
