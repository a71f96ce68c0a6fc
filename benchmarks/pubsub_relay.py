"""The latency floor of Pub/Sub itself on this machine: messages relayed with no Beam at all.

  python -m benchmarks.pubsub_relay --input_subscription S --output_topic T [ignored runner options]

One loop in one process does what `PullFromPubSub` and `PublishToPubSub` do in a bundle:
pull what is waiting (long-polling up to 2 s), publish it in one call, acknowledge it,
repeat. `streaming_latency.py --job passthrough` measures it as the passthrough job's peer,
so the emulator's and the clients' share of the latency can be told apart from the
runner's; `support_peer.py` runs the same loop with the agent's work in it.
"""
from __future__ import annotations

import argparse
import signal
import sys

from agentflow.io.pubsub_portable import publisher_api

from benchmarks.common import relay_batches


def relay(subscription: str, topic: str, stop, handle=None, dead_topic: str = "") -> int:
  """Relays until `stop()` is true (`benchmarks.common.relay_batches`); returns the number of
  messages relayed.

  `handle(datas)` -> (outputs, dead), each a list of bytes, turns what was pulled into what
  is published to `topic` and `dead_topic` (the peer's agent); by default it is unchanged.
  """
  from google.api_core.exceptions import DeadlineExceeded
  from google.cloud import pubsub_v1
  from google.pubsub_v1 import PubsubMessage
  subscriber, publisher = pubsub_v1.SubscriberClient(), publisher_api()

  def pull():
    try:
      received = subscriber.pull(subscription=subscription, max_messages=1000, timeout=2.0).received_messages
    except DeadlineExceeded:
      received = []
    return [m.message.data for m in received], lambda: subscriber.acknowledge(
        subscription=subscription, ack_ids=[m.ack_id for m in received])

  def deliver(outputs, dead):
    for to, out in ((topic, outputs), (dead_topic, dead)):
      if out and to:
        publisher.publish(topic=to, messages=[PubsubMessage(data=d) for d in out], timeout=60)

  try:
    return relay_batches(pull, deliver, stop, handle)
  finally:
    subscriber.close()


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--input_subscription", required=True)
  ap.add_argument("--output_topic", required=True)
  args, _ = ap.parse_known_args(argv)
  stopping = []
  signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
  print(f"relayed {relay(args.input_subscription, args.output_topic, lambda: stopping)} messages", file=sys.stderr)


if __name__ == "__main__":
  main()
