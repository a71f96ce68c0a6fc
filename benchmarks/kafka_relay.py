"""The latency floor of Kafka itself on this machine: messages relayed with no Beam at all.

  python -m benchmarks.kafka_relay --kafka_bootstrap H:P --input_kafka_topic I --output_kafka_topic O
                                   [ignored runner options]

The Kafka twin of `pubsub_relay.py`, the same loop (`benchmarks.common.relay_batches`): take
what is waiting (a poll of up to 0.2 s, up to 1,000 records), send one message per record,
each keyed by its event id as the job's Kafka sink keys it, flush, commit the offsets, repeat.
`streaming_latency.py --transport kafka` runs it as the passthrough job's peer and, with the
agent in the loop, as `support_peer.py`'s (given `--input_kafka_topic`).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys

from benchmarks.common import relay_batches

POLL_MS = 200
GROUP = "agentflow-peer"


def event_key(data: bytes) -> bytes:
  """The event id of a JSON message (a decision, a dead letter or an event) as a Kafka key; b"" without one."""
  try:
    return str(json.loads(data).get("event_id") or "").encode("utf-8")
  except (ValueError, AttributeError):
    return b""


def relay(bootstrap: str, topic_in: str, topic_out: str, stop, handle=None, dead_topic: str = "") -> int:
  """Relays `topic_in` to `topic_out` until `stop()` is true; returns the number of messages relayed.

  `handle(datas)` -> (outputs, dead), each a list of bytes, turns what was polled into what
  is sent to `topic_out` and `dead_topic` (the peer's agent); by default it is unchanged.
  """
  from kafka import KafkaConsumer, KafkaProducer
  consumer = KafkaConsumer(topic_in, bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False,
                           auto_offset_reset="earliest")
  producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)

  def pull():
    polled = consumer.poll(timeout_ms=POLL_MS, max_records=1000)
    return [r.value for records in polled.values() for r in records], consumer.commit

  def deliver(outputs, dead):
    for to, out in ((topic_out, outputs), (dead_topic, dead)):
      for data in out if to else ():
        producer.send(to, key=event_key(data), value=data)
    producer.flush()

  try:
    return relay_batches(pull, deliver, stop, handle)
  finally:
    consumer.close()
    producer.close()


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--kafka_bootstrap", required=True)
  ap.add_argument("--input_kafka_topic", required=True)
  ap.add_argument("--output_kafka_topic", required=True)
  args, _ = ap.parse_known_args(argv)
  stopping = []
  signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
  relayed = relay(args.kafka_bootstrap, args.input_kafka_topic, args.output_kafka_topic, lambda: stopping)
  print(f"relayed {relayed} messages", file=sys.stderr)


if __name__ == "__main__":
  main()
