"""Google's Pub/Sub emulator (installed with the Cloud SDK) for tests, and small client helpers."""
import glob
import json
import os
import shutil
import time

from tests.services import Service, free_port

JAR_GLOB = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar"


def emulator_jar():
  jars = sorted(glob.glob(os.environ.get("PUBSUB_EMULATOR_JAR", JAR_GLOB)))
  return jars[-1] if jars and shutil.which("java") else None


class PubSubEmulator(Service):
  """`with PubSubEmulator(log) as host:` sets nothing globally; pass `host` as PUBSUB_EMULATOR_HOST."""

  # C1 only: the emulator stands in for a managed service, and C2's compiler threads took
  # about 0.6 of this machine's 2 cores while a Flink job's first RPCs reached it, CPU a
  # benchmark would otherwise charge to whichever job ran then (docs/performance.md).
  JVM_FLAGS = ("-XX:TieredStopAtLevel=1",)

  def __init__(self, log_path):
    port = free_port()
    super().__init__(["java", *self.JVM_FLAGS, "-jar", emulator_jar(), "--host=127.0.0.1", f"--port={port}"],
                     log_path, port)
    self.host = f"127.0.0.1:{port}"

  def __enter__(self):
    super().__enter__()
    return self.host


def create_topics(project, names):
  """A topic and a `<name>-sub` subscription per name; returns (publisher, subscriber, {name: (topic, sub)})."""
  from google.cloud import pubsub_v1
  pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
  paths = {}
  for name in names:
    topic = pub.topic_path(project, name)
    pub.create_topic(name=topic)
    subscription = sub.subscription_path(project, f"{name}-sub")
    sub.create_subscription(name=subscription, topic=topic)
    paths[name] = (topic, subscription)
  return pub, sub, paths


def pull_json(sub, subscription, max_messages=100):
  """One pull, acknowledged; the messages' JSON bodies."""
  resp = sub.pull(subscription=subscription, max_messages=max_messages, timeout=5)
  if not resp.received_messages:
    return []
  sub.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in resp.received_messages])
  return [json.loads(m.message.data) for m in resp.received_messages]


def pull_until(sub, subscription, want, deadline):
  got = []
  while len(got) < want and time.time() < deadline:
    batch = pull_json(sub, subscription)
    got.extend(batch)
    if not batch:
      time.sleep(0.5)
  return got
