"""Streaming latency on the Pub/Sub emulator: event published -> decision received, at a fixed rate.

  python -m benchmarks.streaming_latency [--rate 50] [--events 1000] [--warmup 100] [--runner direct|prism|flink]
                                        [--job graph|passthrough|relay] [--backend torch|onnx]

Starts the Pub/Sub emulator, ingests the support knowledge base, starts `agentflow run
--streaming` reading a subscription and publishing decisions to a topic, waits until the
job answers a probe event (so start-up is not measured), then publishes events at `--rate`
per second and records, per event, the time from publish to the decision arriving at a
subscriber in this process. Each event goes out in its own Publish call, started when the
clock starts: no client-side batch holds it first. Events that come out as dead letters are counted by reason;
"missing" ones came out as neither within 120 s of the last publish. Goal: p99 < 250 ms at 50 events/s.

`--runner prism` runs the job on Prism (LOOPBACK), reading and writing Pub/Sub with
agentflow's Python IO (`agentflow.io.pubsub_portable`); Prism is built by runners/prism/install.sh.
`--runner flink` runs the job on Flink (local, parallelism 1, LOOPBACK) reading and
writing Pub/Sub through Java's PubsubIO cross-language, as `tests/test_pubsub_portable.py`
does; it needs java and resolves runners/flink and runners/expansion from Maven Central.
`--job passthrough` runs `pubsub_passthrough.py` instead of the graph: the same Pub/Sub
source and sink with nothing between them, the latency floor of the runner and its IO.
`--job relay` runs `pubsub_relay.py`: the same pulls and publishes in a plain loop with no
Beam (`--runner` is then ignored), the floor of the emulator and its clients alone.
`--backend onnx` runs the graph's model on ONNX Runtime (`--model_backend onnx`).

Afterwards it encodes the measured texts in this process, one second's events (`--rate`)
a call, and prints the share of wall-clock time the model alone needs at that rate.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

from agentflow.io.pubsub_portable import publisher_api

from benchmarks.common import bar_plot, embed_rate, percentiles, save
from benchmarks.texts import make_events, texts_of
from tests.pubsub_emulator import PubSubEmulator, create_topics, emulator_jar
from tests.services import killable_job_env, local_flink_args, prism_args, pubsub_expansion_service

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PROJECT = "agentflow-bench"
KNOWLEDGE = os.path.join(ROOT, "examples", "support_chatbot", "knowledge.jsonl")


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--rate", type=float, default=50.0)
  ap.add_argument("--events", type=int, default=1000)
  ap.add_argument("--warmup", type=int, default=100)
  ap.add_argument("--runner", choices=("direct", "prism", "flink"), default="direct")
  ap.add_argument("--job", choices=("graph", "passthrough", "relay"), default="graph")
  ap.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="the graph's --model_backend")
  ap.add_argument("--ready_timeout", type=float, default=600.0,
                  help="seconds to wait for the job to answer its first probe event")
  args = ap.parse_args(argv)
  if args.job == "relay":
    args.runner = "none"
  if emulator_jar() is None:
    sys.exit("the Pub/Sub emulator (Cloud SDK component) and java are required")
  with tempfile.TemporaryDirectory() as work:
    with PubSubEmulator(os.path.join(work, "emulator.log")) as host, runner_services(args.runner, work) as runner_args:
      os.environ["PUBSUB_EMULATOR_HOST"] = host
      _, sub, paths = create_topics(PROJECT, ["bench-in", "bench-out", "bench-dead"])
      env = killable_job_env(os.path.join(work, "tmp"))
      store = f"local:{work}/store"
      if args.job == "graph":
        subprocess.run([sys.executable, "-m", "agentflow.cli", "ingest", "--knowledge", KNOWLEDGE, "--store", store,
                        "--dead_letter_output", os.path.join(work, "dl")], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        command = [sys.executable, "-m", "agentflow.cli", "run", "--streaming", "--store", store,
                   "--dead_letter_topic", paths["bench-dead"][0], "--progress_interval", "0",
                   "--model_backend", args.backend]
      else:
        command = [sys.executable, "-m", f"benchmarks.pubsub_{args.job}"]
      job = subprocess.Popen([*command, *runner_args, "--input_subscription", paths["bench-in"][1],
                              "--output_topic", paths["bench-out"][0]],
                             env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "job.log"), "w"),
                             start_new_session=True)
      sent, received, dead = {}, {}, {}

      def on_message(message):
        received.setdefault(json.loads(message.data)["event_id"], time.time())
        message.ack()

      def on_dead_letter(message):
        letter = json.loads(message.data)
        with contextlib.suppress(ValueError, TypeError, AttributeError):
          dead.setdefault(json.loads(letter["payload"]).get("event_id"), letter["reason"])
        message.ack()

      future = sub.subscribe(paths["bench-out"][1], callback=on_message)
      dead_future = sub.subscribe(paths["bench-dead"][1], callback=on_dead_letter)
      try:
        publish = unbatched_publisher(paths["bench-in"][0])
        ready = wait_ready(publish, received, job, args.ready_timeout, os.path.join(work, "job.log"))
        print(f"job answered its first probe after {ready:.0f} s", flush=True)
        total = args.warmup + args.events
        events = make_events(total, seed=3)
        start = time.time()
        for i, e in enumerate(events):
          due = start + i / args.rate
          time.sleep(max(0.0, due - time.time()))
          sent[json.loads(e)["event_id"]] = time.time()
          publish(e.encode())
        deadline = time.time() + 120
        while len(sent.keys() - received.keys() - dead.keys()) and time.time() < deadline:
          time.sleep(0.2)
      finally:
        future.cancel()
        dead_future.cancel()
        with contextlib.suppress(ProcessLookupError):
          os.killpg(job.pid, signal.SIGTERM)
        try:
          job.wait(30)
        except subprocess.TimeoutExpired:
          os.killpg(job.pid, signal.SIGKILL)
          job.wait(30)
  measured = [json.loads(e)["event_id"] for e in events[args.warmup:]]
  call = max(1, int(args.rate))
  encode_ms = encode_ms_per_text(texts_of(events[args.warmup:]), call, args.backend)
  lat = [(received[i] - sent[i]) * 1000 for i in measured if i in received]
  dead_letters = Counter(dead[i] for i in measured if i in dead and i not in received)
  missing = len(measured) - len(lat) - sum(dead_letters.values())
  p = percentiles(lat, (50, 90, 99))
  print(f"rate {args.rate}/s, {len(lat)} events measured after {args.warmup} warm-up, "
        f"{sum(dead_letters.values())} dead-lettered {dict(dead_letters)}, {missing} missing")
  print(f"event -> decision latency: p50 {p['p50']:.0f} ms, p90 {p['p90']:.0f} ms, p99 {p['p99']:.0f} ms")
  print(f"ratio goal(250 ms)/p99 = {250.0 / p['p99']:.3f}  (>= 1 meets the goal)")
  busy = encode_ms * args.rate / 1000.0
  print(f"model encode alone, {call} texts a call: {encode_ms:.1f} ms/text = {busy:.2f} of wall-clock time "
        f"at {args.rate:g}/s")
  name = "_".join(["streaming_latency"] + [a for a in (args.runner, args.job, args.backend)
                                           if a not in ("none", "direct", "graph", "torch")]
                  + ([] if args.rate == 50 else [f"{args.rate:g}per_s"]))
  save(name, {"runner": args.runner, "job": args.job, "backend": args.backend, "rate": args.rate,
              "events": len(lat), "missing": missing, "dead_letters": dict(dead_letters), **p,
              "ready_after_s": round(ready, 1), "encode_texts_per_call": call,
              "encode_ms_per_text": round(encode_ms, 3),
              "encode_busy_fraction": round(busy, 3)})
  runner_name = {"none": "no runner", "direct": "DirectRunner", "prism": "PrismRunner",
                 "flink": "FlinkRunner"}[args.runner]
  bar_plot(name, f"Pub/Sub emulator, {runner_name}, {args.job} ({args.backend}), {args.rate:g} events/s",
           ["p50", "p90", "p99"],
           {"latency ms": [p["p50"], p["p90"], p["p99"]]}, "ms", hline=(250.0, "goal p99 < 250 ms"))


@contextlib.contextmanager
def runner_services(runner, work):
  """Yields the `agentflow run` arguments for `runner`, with any service it needs running."""
  if runner in ("none", "direct"):
    yield []
    return
  if runner == "prism":
    yield prism_args()
    return
  with pubsub_expansion_service(work) as expansion:
    yield [*local_flink_args(), "--pubsub_expansion_service", expansion.address]


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
      publish(probes[published % len(probes)].encode())
      published += 1
    time.sleep(0.2)
  return time.time() - start


def encode_ms_per_text(texts, batch, backend):
  """Milliseconds per text for the graph's model encoding `texts` `batch` at a time, in this process."""
  from agentflow.models import SentenceTransformerHandler
  handler = SentenceTransformerHandler(backend=backend)
  model = handler.load_model()
  handler.embed(model, texts[:batch])
  return 1000.0 / embed_rate(handler, model, texts, batch)


if __name__ == "__main__":
  main()
