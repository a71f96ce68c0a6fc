"""The streaming DirectRunner's Pub/Sub read, pulling up to 1,000 messages per bundle.

Beam's DirectRunner (2.62) reads Pub/Sub in `_PubSubReadEvaluator`, which opens a new
subscriber client for each pull and asks for at most 10 messages. Its one worker thread
pulls once per round of bundles, so when events arrive faster than that, every bundle
(and every model call) stays at 10 events and the backlog grows without bound: at 50
events/s on the 2-core machine, p50 latency was 21 s (benchmarks/streaming_latency.py).
This evaluator pulls what is waiting, up to `MAX_MESSAGES`, through one client per
process, so bundles grow with the backlog and shrink again when it is gone. Messages are
acknowledged on receipt, as Beam's evaluator does. Only the DirectRunner uses it; other
runners read Pub/Sub with their own IO.
"""
from __future__ import annotations

import functools
import os
from typing import List

from agentflow.io.pubsub_portable import message_timestamp
from agentflow.keepalive import KeptObjects

MAX_MESSAGES = 1000
PULL_TIMEOUT_S = 30

_SUBSCRIBERS = KeptObjects(close=lambda client: client.close())


def install() -> None:
  """Makes the DirectRunner in this process read Pub/Sub with `_BatchPullEvaluator`."""
  from apache_beam.runners.direct.direct_runner import _DirectReadFromPubSub
  from apache_beam.runners.direct.transform_evaluator import TransformEvaluatorRegistry
  TransformEvaluatorRegistry._test_evaluators_overrides[_DirectReadFromPubSub] = _evaluator_class()


def _subscriber():
  """One subscriber client per process and emulator host, closed at exit."""
  return _SUBSCRIBERS.get(os.environ.get("PUBSUB_EMULATOR_HOST", ""), _new_subscriber)


def _new_subscriber():
  from google.cloud import pubsub
  return pubsub.SubscriberClient()


@functools.cache
def _evaluator_class():
  from apache_beam.io.gcp.pubsub import PubsubMessage
  from apache_beam.runners.direct.transform_evaluator import _PubSubReadEvaluator

  class _BatchPullEvaluator(_PubSubReadEvaluator):

    def _read_from_pubsub(self, timestamp_attribute) -> List[tuple]:
      client = _subscriber()
      response = client.pull(subscription=self._sub_name, max_messages=MAX_MESSAGES, timeout=PULL_TIMEOUT_S)
      received = response.received_messages
      if received:
        client.acknowledge(subscription=self._sub_name, ack_ids=[m.ack_id for m in received])
      return [(message_timestamp(m.message, timestamp_attribute), PubsubMessage._from_message(m.message))
              for m in received]

  return _BatchPullEvaluator
