"""Real services for tests, started from the project's own runner profiles (Maven Central jars).

Each helper starts a process on a free loopback port and stops it on exit.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_GIVEN_PORTS = set()


def free_port():
  """A loopback port nothing listens on now, never one this process was given before: the
  port is free only until a server binds it, and two calls before that could get the same."""
  while True:
    with socket.socket() as s:
      s.bind(("127.0.0.1", 0))
      port = s.getsockname()[1]
    if port not in _GIVEN_PORTS:
      _GIVEN_PORTS.add(port)
      return port


def wait_for_port(port, proc, log_path, timeout=120):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if proc.poll() is not None:
      raise RuntimeError(f"process exited ({proc.returncode}): {open(log_path).read()[-3000:]}")
    try:
      socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
      return
    except OSError:
      time.sleep(0.3)
  raise RuntimeError(f"port {port} not open after {timeout}s: {open(log_path).read()[-3000:]}")


def cli_env(**extra):
  """Environment for an `agentflow` subprocess: this checkout importable, models offline."""
  return dict(os.environ, PYTHONPATH=ROOT, HF_HUB_OFFLINE="1", **extra)


def killable_job_env(scratch, **extra):
  """cli_env for a job that will be killed: its Python and Java temporary files go to `scratch`.

  A killed job runs no exit hooks, so what they would delete stays behind: Beam's Flink job
  server stages ~180 MB of jars in a `beam-temp*` folder and Flink unpacks a 22 MB RPC jar.
  In /tmp that is ~0.6 GB per CI run; in `scratch` the caller removes it.
  """
  os.makedirs(scratch, exist_ok=True)
  return cli_env(TMPDIR=str(scratch), JAVA_TOOL_OPTIONS=f"-Djava.io.tmpdir={scratch}", **extra)


def agentflow_cli(*args, cwd, env=None, timeout=600):
  """Runs `python -m agentflow.cli ARGS` and asserts it succeeded; returns the finished process."""
  proc = subprocess.run([sys.executable, "-m", "agentflow.cli", *args], capture_output=True, text=True,
                        timeout=timeout, cwd=cwd, env=cli_env(**(env or {})))
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
  return proc


def java_available():
  return shutil.which("java") is not None and shutil.which("mvn") is not None


def launcher(name):
  """Path of runners/<name>/launcher.jar, resolving the jars from Maven Central on first use."""
  out = subprocess.run([os.path.join(ROOT, "runners", "jars.sh"), name], capture_output=True, text=True,
                       timeout=900)
  if out.returncode != 0:
    raise RuntimeError(f"runners/jars.sh {name} failed: {out.stderr[-3000:]}")
  return out.stdout.strip().splitlines()[-1]


class Service:
  """A subprocess that is stopped (then killed) on exit."""

  def __init__(self, args, log_path, port, cwd=None):
    self.args, self.log_path, self.port, self.cwd = args, log_path, port, cwd

  def __enter__(self):
    self.log = open(self.log_path, "w")
    self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.cwd)
    wait_for_port(self.port, self.proc, self.log_path)
    return self

  def __exit__(self, *exc):
    self.proc.terminate()
    try:
      self.proc.wait(20)
    except subprocess.TimeoutExpired:
      self.proc.kill()
    self.log.close()


def prism_args():
  """`agentflow run` options for Prism, built at the installed Beam version (LOOPBACK workers)."""
  import apache_beam
  out = subprocess.run([os.path.join(ROOT, "runners", "prism", "install.sh")], capture_output=True, text=True,
                       timeout=900, env=dict(os.environ, BEAM_VERSION=apache_beam.__version__))
  if out.returncode != 0:
    raise RuntimeError(f"runners/prism/install.sh failed: {out.stderr[-1500:]}")
  return ["--runner", "PrismRunner", "--prism_location", out.stdout.strip().splitlines()[-1],
          "--environment_type", "LOOPBACK", "--prism_log_level", "warn"]


def local_flink_args():
  """`agentflow run` options for Flink on an embedded local cluster: parallelism 1, LOOPBACK workers."""
  return ["--runner", "FlinkRunner", "--flink_job_server_jar", launcher("flink"), "--flink_master", "[local]",
          "--environment_type", "LOOPBACK", "--parallelism", "1"]


def kafka_broker(workdir):
  """A single-node Kafka broker in KRaft mode (broker + controller) on loopback."""
  port, controller = free_port(), free_port()
  data = os.path.join(workdir, "kafka-data")
  props = os.path.join(workdir, "server.properties")
  with open(props, "w") as f:
    f.write("\n".join([
        "process.roles=broker,controller", "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={data}", "num.partitions=1", "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0", "auto.create.topics.enable=true", ""]))
  jar = launcher("kafka")
  lib = os.path.join(os.path.dirname(jar), "lib", "*")
  fmt = subprocess.run(["java", "-cp", lib, "kafka.tools.StorageTool", "format", "-t", uuid.uuid4().hex[:22],
                        "-c", props], capture_output=True, text=True, timeout=120)
  if fmt.returncode != 0:
    raise RuntimeError(f"kafka storage format failed: {fmt.stdout[-2000:]} {fmt.stderr[-2000:]}")
  service = Service(["java", "-jar", jar, props], os.path.join(workdir, "kafka.log"), port)
  service.bootstrap = f"127.0.0.1:{port}"
  return service


def expansion_service(workdir, *options):
  """Beam's Java expansion service with the Kafka and Pub/Sub IOs on its classpath.

  Its transforms get the EMBEDDED environment: the Flink job server runs them in its own
  JVM (runners/flink has the same IO jars), so no Docker Java SDK container is needed.
  `options` are Java pipeline options for the expansion (e.g. --experiments=...).
  """
  port = free_port()
  service = Service(["java", "-jar", launcher("expansion"), str(port), "--javaClassLookupAllowlistFile=*",
                     "--defaultEnvironmentType=EMBEDDED", *options],
                    os.path.join(workdir, "expansion.log"), port)
  service.address = f"127.0.0.1:{port}"
  return service


def pubsub_expansion_service(workdir):
  """The expansion service for Java's PubsubIO on Flink.

  use_deprecated_read: Flink runs the Pub/Sub source as a native unbounded source (acks on
  checkpoint), not through the SDF wrapper, which stalls on the portable Flink runner.
  """
  return expansion_service(workdir, "--experiments=use_deprecated_read")


def kafka_expansion_service(workdir):
  """The expansion service for an unbounded (streaming) Kafka read on Flink.

  use_deprecated_read, as for Pub/Sub: Flink runs KafkaIO's UnboundedSource natively. Through
  the SDF wrapper (KafkaIO's default without --kafka_max_records) a streaming job on [local]
  Flink answered its first event after ~40 s and then none of the next 30 within a minute
  (benchmarks/streaming_latency.py --transport kafka). A bounded read takes the same
  UnboundedSource path either way.
  """
  return expansion_service(workdir, "--experiments=use_deprecated_read")


class FlinkCluster:
  """A Flink session cluster (runners/flink/cluster.sh) on free ports, stopped on exit.

  Its TaskManagers start Python SDK workers with this interpreter and this checkout importable.
  """

  def __init__(self, workdir, taskmanagers=2):
    self.workdir, self.taskmanagers = str(workdir), taskmanagers
    self.rest_port = free_port()
    self.env = cli_env(FLINK_REST_PORT=str(self.rest_port), FLINK_RPC_PORT=str(free_port()),
                       FLINK_CLUSTER_DIR=os.path.join(self.workdir, "flink-cluster"),
                       AGENTFLOW_PYTHON=sys.executable)
    self.script = os.path.join(ROOT, "runners", "flink", "cluster.sh")

  def __enter__(self):
    out = subprocess.run([self.script, "start", str(self.taskmanagers)], capture_output=True, text=True,
                         timeout=900, env=self.env)
    if out.returncode != 0:
      raise RuntimeError(f"runners/flink/cluster.sh start failed: {out.stdout[-2000:]} {out.stderr[-3000:]}")
    return self

  def __exit__(self, *exc):
    subprocess.run([self.script, "stop"], capture_output=True, timeout=120, env=self.env)

  def rest(self, path):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}/v1/{path}", timeout=30) as r:
      return json.load(r)

  def run_args(self, parallelism):
    """`agentflow run` options submitting to this cluster, as runners/README.md gives them."""
    return ["--runner", "FlinkRunner", "--flink_job_server_jar", launcher("flink"),
            "--flink_master", f"localhost:{self.rest_port}", "--parallelism", str(parallelism),
            "--environment_type", "PROCESS",
            "--environment_config", json.dumps({"command": os.path.join(ROOT, "runners", "flink", "sdk_worker.sh")}),
            "--pipeline_resources_detector_factory_class", "dev.agentflow.flink.ClusterClasspath"]
