"""Streaming latency against offered load on the Pub/Sub emulator or Kafka, every job beside its hand-written peer.

  python -m benchmarks.streaming_latency [--runners direct,prism,flink] [--rates 10,20,35,50,75,100]
                                        [--events 1000] [--warmup 100] [--short] [--job graph|passthrough]
                                        [--backend torch|onnx] [--default_path] [--transport pubsub|kafka]

Starts the transport (`--transport`: the Pub/Sub emulator, or a single-node KRaft Kafka
broker) and ingests the support knowledge base once. Then, for each runner in `--runners`,
it runs a pair: first the peer (`support_peer.py`: the same agent by hand, no Beam, with the
library's own model handler, store and policy, in `pubsub_relay.py`'s or `kafka_relay.py`'s
loop; for `--job passthrough` the plain relay), then `agentflow run --streaming` on that
runner, each on fresh topics and a fresh copy of the store. Each job is started once, waited
for until it answers a probe event (start-up is not measured), and then offered each rate
of `--rates` in turn: `--events` events at that rate (after `--warmup` unmeasured ones),
each stamped with the time it is sent, sent on its own and timed from the send (Pub/Sub:
one Publish call each; Kafka: one send, flushed), with the time from send to its decision
arriving in this process recorded per event (Pub/Sub: a subscriber; Kafka: one consumer
thread assigned the output and dead-letter partitions). A job that falls behind at a rate (events missing 60 s after the
last send, or latency still growing over the step: the last quarter's p50 above twice the
first quarter's plus 100 ms, or a p50 above 1 s) is marked saturated there; past a p50 of
5 s higher rates are not offered.
`--profile` samples each job with py-spy while it runs and prints its hottest frames.

It prints one row per job and rate with p50/p90/p99 and the ratio of the job's p99 to its
peer's at the same rate, the job's CPU per event (its process group) against the peer's,
the share of the whole machine's cores busy during the step (job, transport, clients and
anything else: near 100% latency is queueing for CPU), the rate at which each job
saturates, `os.getloadavg()` with each run (the machine may be shared), and saves one
chart: p50 and p99 against offered rate, log-scale latency, every job and its peer
(`benchmarks/results/streaming_latency_series*.png`, `_kafka` in the name for `--transport kafka`).
Goal: p99 < 250 ms at 50 events/s, and <= 1.25x the peer's p99.

`direct` is `agentflow run --streaming` with no `--runner`; `--default_path` leaves out
`--model_backend` (auto: onnx for a streaming job), so the run measures exactly what a user
gets by default (otherwise both the peer and the job run `--backend`). `prism` runs on Prism
(LOOPBACK, agentflow's Python Pub/Sub IO; built by runners/prism/install.sh). `flink` runs on
Flink (local, parallelism 1, LOOPBACK), reading with Java's PubsubIO cross-language (runners/flink
and runners/expansion jars) and publishing with agentflow's Python sink, or over Kafka with
Beam's cross-language KafkaIO read and write (runners/kafka for the broker). Kafka runs on
`flink` only: the DirectRunner runs no Java transforms and Prism would need a Java SDK
container. The Kafka IO's expansion service gets `--experiments=use_deprecated_read`
(`tests.services.kafka_expansion_service`), as Pub/Sub's does: through KafkaIO's default SDF
read a streaming job on Flink answered one probe and then stalled.
`--short` offers 300 events a rate after 50 warm-up, so a whole series runs in minutes.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

from agentflow.io.pubsub_portable import publisher_api

from benchmarks.common import RESULTS, embed_rate, percentiles, save
from benchmarks.texts import make_events, texts_of
from tests.pubsub_emulator import PubSubEmulator, create_topics, emulator_jar
from tests.services import (
  java_available,
  kafka_broker,
  kafka_expansion_service,
  killable_job_env,
  local_flink_args,
  prism_args,
  pubsub_expansion_service,
)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PROJECT = "agentflow-bench"
KNOWLEDGE = os.path.join(ROOT, "examples", "support_chatbot", "knowledge.jsonl")
RUNNER_NAMES = {"direct": "DirectRunner", "prism": "PrismRunner", "flink": "FlinkRunner"}
DRAIN_S = 60.0
GOAL_MS = 250.0
BACKLOG_MS = 1000.0  # a median above this is a queue, not processing
GIVE_UP_MS = 5000.0  # past this, higher rates are not offered


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--runners", default="direct", help="comma-separated: direct, prism, flink")
  ap.add_argument("--transport", choices=("pubsub", "kafka"), default="pubsub",
                  help="the Pub/Sub emulator, or a local Kafka broker (flink only)")
  ap.add_argument("--rates", default="10,20,35,50,75,100", help="comma-separated events/s, offered in this order")
  ap.add_argument("--events", type=int, default=1000, help="measured events per rate")
  ap.add_argument("--warmup", type=int, default=100, help="unmeasured events before each rate's")
  ap.add_argument("--short", action="store_true", help="300 events a rate after 50 warm-up")
  ap.add_argument("--job", choices=("graph", "passthrough"), default="graph")
  ap.add_argument("--backend", choices=("torch", "onnx"), default="onnx", help="the model's --model_backend")
  ap.add_argument("--default_path", action="store_true",
                  help="run `agentflow run --streaming` with no --model_backend (the default a user gets)")
  ap.add_argument("--profile", action="store_true",
                  help="sample each job's CPU with py-spy (on PATH) from ready to stop; print the hottest frames")
  ap.add_argument("--job_args", default="",
                  help="extra flags for every agentflow job (not the peer), e.g. \"--max_bundle_time_mills 100\"")
  ap.add_argument("--ready_timeout", type=float, default=600.0,
                  help="seconds to wait for a job to answer its first probe event")
  args = ap.parse_args(argv)
  if args.short:
    args.events, args.warmup = 300, 50
  runners = [r.strip() for r in args.runners.split(",") if r.strip()]
  unknown = sorted(set(runners) - set(RUNNER_NAMES))
  if unknown:
    sys.exit(f"unknown runner(s) {unknown}; expected some of {', '.join(RUNNER_NAMES)}")
  if args.transport == "kafka" and set(runners) - {"flink"}:
    sys.exit(f"--transport kafka runs on flink only: {', '.join(sorted(set(runners) - {'flink'}))} cannot run "
             "Beam's cross-language Kafka IO here (the DirectRunner runs no Java transforms; Prism would "
             "need a Java SDK container)")
  rates = [float(r) for r in args.rates.split(",")]
  print(f"load average at start {fmt_load()}", flush=True)
  runs = []
  with tempfile.TemporaryDirectory() as work:
    with TRANSPORTS[args.transport](work) as transport:
      env = killable_job_env(os.path.join(work, "tmp"))
      base_store = os.path.join(work, "store-base")
      if args.job == "graph":
        subprocess.run([sys.executable, "-m", "agentflow.cli", "ingest", "--knowledge", KNOWLEDGE,
                        "--store", f"local:{base_store}", "--dead_letter_output", os.path.join(work, "dl")],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
      for n, runner in enumerate(runners):
        for job in ("peer", runner):
          name = f"{job}-{n}"
          store = os.path.join(work, f"store-{name}")
          if args.job == "graph":
            shutil.copytree(base_store, store)
          runs.append(measure_job(args, transport, job, runner, rates, work, env, name, f"local:{store}"))
          print_run(runs[-1], runs[-2] if job != "peer" else None)
  report(args, transport, runs, rates)


def measure_job(args, transport, job, runner, rates, work, env, name, store):
  """Starts `job` ("peer" or a runner), offers it each rate, stops it; returns its run record."""
  model = [] if args.default_path else ["--model_backend", args.backend]
  received, dead = {}, {}

  def on_output(data):
    arrived = time.time()
    received.setdefault(json.loads(data)["event_id"], arrived)

  def on_dead_letter(data):
    letter = json.loads(data)
    with contextlib.suppress(ValueError, TypeError, AttributeError):
      dead.setdefault(json.loads(letter["payload"]).get("event_id"), letter["reason"])

  job_args = shlex.split(args.job_args)  # every agentflow job's, graph or passthrough; never the peer's
  with (transport.job_io(name, on_output, on_dead_letter) as (io_args, publish),
        runner_services(job, work, transport) as runner_args):
    if job == "peer":
      module = "support_peer" if args.job == "graph" else transport.relay
      command = [sys.executable, "-m", f"benchmarks.{module}", "--store", store, *model]
    elif args.job == "graph":
      command = [sys.executable, "-m", "agentflow.cli", "run", "--streaming", "--store", store,
                 "--progress_interval", "0", *model, *job_args]
    else:
      command = [sys.executable, "-m", "benchmarks.pubsub_passthrough", *job_args]
    log_path = os.path.join(work, f"{name}.log")
    proc = subprocess.Popen([*command, *runner_args, *io_args], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(log_path, "w"), start_new_session=True)
    label = "peer" if job == "peer" else RUNNER_NAMES[job]
    run = {"job": label, "runner": runner, "load_start": list(os.getloadavg()), "steps": []}
    try:
      run["ready_after_s"] = round(wait_ready(publish, received, proc, args.ready_timeout, log_path), 1)
      profiler = start_profile(proc, os.path.join(work, f"{name}.stacks")) if args.profile else None
      events = make_events((args.warmup + args.events) * len(rates), seed=3)
      for i, rate in enumerate(rates):
        chunk = events[i * (args.warmup + args.events):(i + 1) * (args.warmup + args.events)]
        cpu, machine = group_cpu_s(proc.pid), machine_jiffies()
        step = offer(publish, chunk, rate, args.warmup, received, dead)
        step["cpu_ms_per_event"] = round((group_cpu_s(proc.pid) - cpu) * 1000 / len(chunk), 2)
        step["machine_busy"] = busy_share(machine, machine_jiffies())
        run["steps"].append(step)
        print(f"  {label:12s} {rate:5g}/s  p50 {step['p50']:7.0f}  p99 {step['p99']:7.0f} ms  "
              f"CPU {step['cpu_ms_per_event']:6.1f} ms/event  machine {step['machine_busy']:.0%} busy"
              f"{'  SATURATED' if step['saturated'] else ''}  load {fmt_load()}", flush=True)
        if step["missing"] or step["p50"] > GIVE_UP_MS:
          break
    finally:
      stop(proc)
  run["load_end"] = list(os.getloadavg())
  if args.profile and profiler is not None:
    profiler.wait(60)
    run["profile"] = hottest(os.path.join(work, f"{name}.stacks"))
  return run


def live(event_json):
  """The event stamped with the time it is sent, as a live client stamps it. Dedupe forgets an
  id `--dedupe_horizon_s` after the event's timestamp, so the fixed timestamps of
  `make_events` (months old) would make every event late: its state cleared at once by a
  timer, a bundle of its own on the runners that fire it (docs/reliability.md, limits)."""
  return {**json.loads(event_json), "timestamp": round(time.time(), 3)}


def offer(publish, events, rate, warmup, received, dead):
  """Publishes `events` at `rate`; the latency record of those after the first `warmup`."""
  sent = {}
  start = time.time()
  for i, e in enumerate(events):
    time.sleep(max(0.0, start + i / rate - time.time()))
    event = live(e)
    sent[event["event_id"]] = time.time()
    publish(json.dumps(event).encode())
  deadline = time.time() + DRAIN_S
  while len(sent.keys() - received.keys() - dead.keys()) and time.time() < deadline:
    time.sleep(0.2)
  measured = [json.loads(e)["event_id"] for e in events[warmup:]]
  lat = [(received[i] - sent[i]) * 1000 for i in measured if i in received]
  dead_letters = Counter(dead[i] for i in measured if i in dead and i not in received)
  missing = len(measured) - len(lat) - sum(dead_letters.values())
  quarter = max(1, len(lat) // 4)
  growing = bool(lat) and (percentiles(lat[-quarter:], (50,))["p50"]
                           > 2 * percentiles(lat[:quarter], (50,))["p50"] + 100)
  p = percentiles(lat or [float("nan")], (50, 90, 99))
  return {"rate": rate, "events": len(lat), "missing": missing, "dead_letters": dict(dead_letters), **p,
          "saturated": missing > 0 or growing or p["p50"] > BACKLOG_MS, "load": list(os.getloadavg())}


def start_profile(proc, path):
  """py-spy sampling `proc` and its children (every Python thread on CPU) until they exit."""
  spy = shutil.which("py-spy")
  if spy is None:
    sys.exit("--profile needs py-spy on PATH (pip install py-spy)")
  return subprocess.Popen([spy, "record", "--pid", str(proc.pid), "--subprocesses", "--nonblocking",
                           "--rate", "50", "--format", "raw", "--output", path],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def hottest(path, top=30):
  """The frames holding most CPU samples (inclusive), as (share, frame), from py-spy's collapsed stacks."""
  inclusive, total = Counter(), 0
  with contextlib.suppress(OSError), open(path) as f:
    for line in f:
      stack, _, count = line.rstrip().rpartition(" ")
      if not count.isdigit():
        continue
      total += int(count)
      for frame in {re.sub(r":\d+\)$", ")", f) for f in stack.split(";")}:
        inclusive[frame] += int(count)
  return [(round(n / total, 3), frame) for frame, n in inclusive.most_common(top)] if total else []


def group_cpu_s(pgid):
  """CPU seconds (user + system) of every live process in process group `pgid` (the job and its
  workers, Prism's or Flink's own process included): a per-event cost that a shared machine
  does not inflate the way it inflates latency."""
  tick, total = os.sysconf("SC_CLK_TCK"), 0
  for pid in filter(str.isdigit, os.listdir("/proc")):
    with contextlib.suppress(OSError, ValueError, IndexError):
      with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
      if int(fields[2]) == pgid:
        total += int(fields[11]) + int(fields[12])
  return total / tick


def machine_jiffies():
  """(busy, total) CPU time of the whole machine, all cores, from /proc/stat."""
  with open("/proc/stat") as f:
    fields = [int(x) for x in f.readline().split()[1:]]
  idle = fields[3] + fields[4]  # idle + iowait
  total = sum(fields[:8])  # guest time is already counted in user
  return total - idle, total


def busy_share(before, after) -> float:
  """The share of all the machine's cores busy between two `machine_jiffies` readings: the
  job, its peer's emulator or broker, the benchmark's clients and anything else running.
  Near 1.0 a job's latency is queueing for CPU."""
  total = after[1] - before[1]
  return round((after[0] - before[0]) / total, 3) if total else 0.0


def stop(proc):
  with contextlib.suppress(ProcessLookupError):
    os.killpg(proc.pid, signal.SIGTERM)
  try:
    proc.wait(30)
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def fmt_load():
  return "/".join(f"{x:.2f}" for x in os.getloadavg())


def print_run(run, peer):
  print(f"{run['job']}: ready after {run['ready_after_s']} s, load {run['load_start']} -> {run['load_end']}",
        flush=True)
  for share, frame in run.get("profile", []):
    print(f"  {share:6.1%}  {frame}")
  if peer is None:
    return
  peers = {s["rate"]: s for s in peer["steps"]}
  for s in run["steps"]:
    ref = peers.get(s["rate"])
    ratio = f"{s['p99'] / ref['p99']:.2f}x peer" if ref else "peer saturated"
    print(f"  {run['job']} {s['rate']:g}/s: p99 {s['p99']:.0f} ms = {ratio}", flush=True)


def saturation(run):
  """The lowest offered rate at which `run` fell behind, or None."""
  return next((s["rate"] for s in run["steps"] if s["saturated"]), None)


def report(args, transport, runs, rates):
  print(f"\nevent -> decision latency (ms), {transport.title}, {args.job}, backend "
        f"{'default' if args.default_path else args.backend}, {args.events} events a rate after {args.warmup}")
  print("| job | rate/s | p50 | p90 | p99 | p99 / peer p99 | CPU ms/event | / peer | machine busy | missing | dead "
        "| load (1 min) |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|")
  peer = None
  for run in runs:
    if run["job"] == "peer":
      peer = {s["rate"]: s for s in run["steps"]}
    for s in run["steps"]:
      ref = peer.get(s["rate"]) if peer else None
      ratio = "" if run["job"] == "peer" else (f"{s['p99'] / ref['p99']:.2f}" if ref else "n/a")
      cpu = "" if run["job"] == "peer" or not ref else f"{s['cpu_ms_per_event'] / ref['cpu_ms_per_event']:.2f}"
      print(f"| {run['job']} | {s['rate']:g} | {s['p50']:.0f} | {s['p90']:.0f} | {s['p99']:.0f} | {ratio} | "
            f"{s['cpu_ms_per_event']:.1f} | {cpu} | {s['machine_busy']:.0%} | {s['missing']} | "
            f"{sum(s['dead_letters'].values())} | "
            f"{s['load'][0]:.2f} |")
  for run in runs:
    sat = saturation(run)
    print(f"{run['job']} ({run['runner']}) saturates at "
          f"{f'{sat:g} events/s' if sat else f'> {max(rates):g} events/s (never within the rates offered)'}")
  encode = raw_encode_rate(args)
  print(f"raw encode in this process, 50 texts a call: {encode:.1f} texts/s")
  backend = "default" if args.default_path else args.backend
  tag = "_".join(["streaming_latency_series"] + ([] if args.job == "graph" else [args.job])
                 + ([] if args.transport == "pubsub" else [args.transport]) + [backend])
  save(tag, {"job": args.job, "transport": args.transport, "backend": backend, "rates": rates,
             "events_per_rate": args.events, "warmup": args.warmup, "raw_encode_texts_per_s": round(encode, 1),
             "runs": [{**r, "saturates_at": saturation(r)} for r in runs]})
  print(f"chart: {load_plot(tag, runs, args, transport.title)}")


def load_plot(name, runs, args, title):
  """p50 (dashed) and p99 (solid) against offered rate, log-scale latency, one colour per job."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(8, 5))
  colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
  for i, run in enumerate(runs):
    xs = [s["rate"] for s in run["steps"]]
    label = run["job"] if run["job"] != "peer" else f"peer (before {RUNNER_NAMES[runs[i + 1]['runner']]})"
    colour = next(colours)
    ax.plot(xs, [s["p99"] for s in run["steps"]], "o-", color=colour, label=f"{label} p99")
    ax.plot(xs, [s["p50"] for s in run["steps"]], "x--", color=colour, alpha=0.6, label=f"{label} p50")
  ax.axhline(GOAL_MS, color="red", linestyle=":", linewidth=1, label="goal p99 < 250 ms")
  ax.set_yscale("log")
  ax.set_xlabel("offered load, events/s")
  ax.set_ylabel("event -> decision latency, ms")
  ax.set_title(f"{title}, {args.job}, {'default backend' if args.default_path else args.backend}, "
               f"{os.cpu_count()} CPUs")
  ax.legend(fontsize=7, ncol=2)
  ax.grid(True, which="both", alpha=0.3)
  fig.tight_layout()
  os.makedirs(RESULTS, exist_ok=True)
  path = os.path.join(RESULTS, f"{name}.png")
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


@contextlib.contextmanager
def runner_services(job, work, transport):
  """Yields the command-line arguments for `job`, with any service it needs running."""
  if job in ("peer", "direct"):
    yield []
    return
  if job == "prism":
    yield prism_args()
    return
  with transport.flink_io(work) as io_args:
    yield [*local_flink_args(), *io_args]


class PubSub:
  """The Pub/Sub emulator (one for the whole run): a topic and subscription per job's input,
  output and dead letters; each event in its own Publish call."""

  title = "Pub/Sub emulator"
  relay = "pubsub_relay"

  def __init__(self, work):
    if emulator_jar() is None:
      sys.exit("the Pub/Sub emulator (Cloud SDK component) and java are required")
    self.emulator = PubSubEmulator(os.path.join(work, "emulator.log"))

  def __enter__(self):
    os.environ["PUBSUB_EMULATOR_HOST"] = self.emulator.__enter__()
    return self

  def __exit__(self, *exc):
    self.emulator.__exit__(*exc)

  @contextlib.contextmanager
  def job_io(self, name, on_output, on_dead):
    """Fresh topics for job `name`; yields (its IO flags, publish(data)), every message on its
    output and dead-letter topics handed (data) to `on_output` / `on_dead` until exit."""
    _, sub, paths = create_topics(PROJECT, [f"{name}-in", f"{name}-out", f"{name}-dead"])
    topic_in, topic_out, topic_dead = (paths[f"{name}-{k}"] for k in ("in", "out", "dead"))

    def listener(on):
      def callback(message):
        on(message.data)
        message.ack()
      return callback

    futures = [sub.subscribe(topic_out[1], callback=listener(on_output)),
               sub.subscribe(topic_dead[1], callback=listener(on_dead))]
    try:
      yield (["--input_subscription", topic_in[1], "--output_topic", topic_out[0], "--dead_letter_topic",
              topic_dead[0]], unbatched_publisher(topic_in[0]))
    finally:
      for f in futures:
        f.cancel()

  @contextlib.contextmanager
  def flink_io(self, work):
    with pubsub_expansion_service(work) as expansion:
      yield ["--pubsub_expansion_service", expansion.address]


class Kafka:
  """A single-node KRaft broker (one for the whole run): three one-partition topics per job;
  each event sent alone and flushed; one consumer thread in this process, assigned the
  output and dead-letter partitions (no group, so no rebalance), hands each record on."""

  title = "Kafka (one KRaft broker)"
  relay = "kafka_relay"

  def __init__(self, work):
    if not java_available():
      sys.exit("java and mvn are required for the Kafka broker and the Kafka IO's expansion service")
    self.broker = kafka_broker(work)

  def __enter__(self):
    self.broker.__enter__()
    return self

  def __exit__(self, *exc):
    self.broker.__exit__(*exc)

  @contextlib.contextmanager
  def job_io(self, name, on_output, on_dead):
    """As `PubSub.job_io`, on Kafka topics."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    bootstrap = self.broker.bootstrap
    topic_in, topic_out, topic_dead = (f"{name}-{k}" for k in ("in", "out", "dead"))
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)
                         for t in (topic_in, topic_out, topic_dead)])
    admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    consumer.assign([TopicPartition(topic_out, 0), TopicPartition(topic_dead, 0)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    stopping = threading.Event()

    def listen():
      while not stopping.is_set():
        for partition, records in consumer.poll(timeout_ms=100).items():
          for record in records:
            (on_output if partition.topic == topic_out else on_dead)(record.value)

    def publish(data):
      producer.send(topic_in, value=data)
      producer.flush()

    listener = threading.Thread(target=listen, name=f"{name}-listener", daemon=True)
    listener.start()
    try:
      yield (["--kafka_bootstrap", bootstrap, "--input_kafka_topic", topic_in, "--output_kafka_topic", topic_out,
              "--dead_letter_kafka_topic", topic_dead], publish)
    finally:
      stopping.set()
      listener.join(10)
      consumer.close()
      producer.close()

  @contextlib.contextmanager
  def flink_io(self, work):
    with kafka_expansion_service(work) as expansion:
      yield ["--kafka_expansion_service", expansion.address]


TRANSPORTS = {"pubsub": PubSub, "kafka": Kafka}


def unbatched_publisher(topic):
  """A function that publishes one message to `topic` in one Publish call, returning when
  Pub/Sub has it. The high-level client would hold each message up to 10 ms for a batch,
  which is the publisher's latency, not the job's."""
  from google.pubsub_v1 import PubsubMessage
  api = publisher_api()
  return lambda data: api.publish(topic=topic, messages=[PubsubMessage(data=data)], timeout=30)


def wait_ready(publish, received, job, timeout_s, log_path):
  """Publishes a probe event every 2 s until a decision for one arrives; returns the seconds waited."""
  start = time.time()
  probes = [json.dumps({**json.loads(e), "event_id": f"probe-{i}"}) for i, e in enumerate(make_events(60, seed=5))]
  published = 0
  while not any(k.startswith("probe-") for k in received):
    if job.poll() is not None:
      sys.exit(f"the job exited with {job.returncode} before answering a probe; its log ends:\n"
               + open(log_path).read()[-3000:])
    if time.time() - start > timeout_s:
      sys.exit(f"the job answered no probe within {timeout_s:.0f} s")
    if time.time() - start >= 2 * published:
      publish(json.dumps(live(probes[published % len(probes)])).encode())
      published += 1
    time.sleep(0.2)
  return time.time() - start


def raw_encode_rate(args):
  """Texts per second for the model alone in this process, 50 texts a call (the machine's ceiling)."""
  from agentflow.models import SentenceTransformerHandler
  handler = SentenceTransformerHandler(backend="onnx" if args.default_path else args.backend)
  model = handler.load_model()
  texts = texts_of(make_events(500, seed=4))
  handler.embed(model, texts[:50])
  return embed_rate(handler, model, texts, 50)


if __name__ == "__main__":
  main()
