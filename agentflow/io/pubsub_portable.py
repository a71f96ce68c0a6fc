"""Pub/Sub read and write in Python for portable runners, with no Java.

Beam's Python `ReadFromPubSub` / `WriteToPubSub` run only on the DirectRunner and
Dataflow; on portable runners Beam offers Java's PubsubIO cross-language, which needs
a Java expansion service and a runner that runs Java (Flink does, Prism here does not).
`PullFromPubSub` is a splittable DoFn that pulls what is waiting (the pull long-polls,
so an idle source does not spin), emits it and checkpoints, so every pull is one
bundle: a fused graph behind it runs on those events at once. Messages are
acknowledged by bundle finalization, after the runner has committed the bundle's
output, so a crash redelivers instead of losing them (at-least-once; give the
consumer an id to dedupe on). That needs a runner that finalizes every bundle: Prism
does, Flink only on checkpoints. `PublishToPubSub` sends each bundle's messages in
one Publish call when the bundle ends, so a bundle does not complete before Pub/Sub
has its messages.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Optional

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import WalltimeWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.utils.timestamp import Timestamp

from agentflow.observability import metrics

# Pub/Sub's limits on one Publish request (10 MB), with room for the request's own fields.
MAX_PUBLISH_MESSAGES = 1000
MAX_PUBLISH_BYTES = 9_000_000


@dataclasses.dataclass(frozen=True)
class PullConfig:
  """`subscription`: projects/P/subscriptions/S. Each pull takes up to `max_messages`
  and waits up to `pull_timeout_s` for the first one. Pulled messages are leased for
  `ack_deadline_s` (whatever the subscription's own deadline), the time their bundle
  has to finish before Pub/Sub would deliver them again. An event's timestamp is its
  `timestamp_attribute` (epoch millis or RFC 3339) when given and parseable, else its
  publish time."""
  subscription: str
  max_messages: int = 1000
  pull_timeout_s: float = 2.0
  ack_deadline_s: int = 120
  timestamp_attribute: Optional[str] = None

  def __post_init__(self):
    if not self.subscription.startswith("projects/") or "/subscriptions/" not in self.subscription:
      raise ValueError(f"subscription must be projects/P/subscriptions/S, got {self.subscription!r}")
    if not 1 <= self.max_messages <= 1000:
      raise ValueError(f"max_messages must be 1..1000 (Pub/Sub's limit), got {self.max_messages}")
    if self.pull_timeout_s <= 0:
      raise ValueError(f"pull_timeout_s must be > 0, got {self.pull_timeout_s}")
    if not 10 <= self.ack_deadline_s <= 600:
      raise ValueError(f"ack_deadline_s must be 10..600 (Pub/Sub's limits), got {self.ack_deadline_s}")


class _CheckpointOnlyTracker(OffsetRestrictionTracker):
  """An endless range of pull numbers that the runner may checkpoint but not split.

  Splitting would start a second reader of the same subscription for every split the
  runner asks for; Pub/Sub spreads a subscription's messages over readers itself.
  """

  def is_bounded(self):
    return False

  def try_split(self, fraction_of_remainder):
    if fraction_of_remainder != 0:
      return None
    return super().try_split(0)


class _EndlessPulls(RestrictionProvider):

  def initial_restriction(self, element):
    return OffsetRange(0, sys.maxsize)

  def create_tracker(self, restriction):
    return _CheckpointOnlyTracker(restriction)

  def restriction_size(self, element, restriction):
    return 1

  def truncate(self, element, restriction):
    return None


def message_timestamp(message, timestamp_attribute: Optional[str]) -> Timestamp:
  """The event time of a `google.pubsub_v1.PubsubMessage`: its attribute if named, else publish time."""
  value = message.attributes.get(timestamp_attribute) if timestamp_attribute else None
  if value is None:
    return Timestamp.from_utc_datetime(message.publish_time)
  try:
    return Timestamp(micros=int(value) * 1000)
  except ValueError:
    return Timestamp.from_rfc3339(value)


class _PullFn(beam.DoFn):

  def __init__(self, config: PullConfig):
    self.config = config
    self._client = None
    self._pulled = metrics.counter("pubsub.pulled")
    self._acked = metrics.counter("pubsub.acked")
    self._bad_timestamps = metrics.counter("pubsub.bad_timestamp_attribute")

  def setup(self):
    from google.cloud import pubsub_v1
    self._client = pubsub_v1.SubscriberClient()

  # The finalizer comes first: Beam passes it positionally, the tracker and estimator by name.
  def process(self, _, finalizer=beam.DoFn.BundleFinalizerParam,
              tracker=beam.DoFn.RestrictionParam(_EndlessPulls()),
              watermark=beam.DoFn.WatermarkEstimatorParam(WalltimeWatermarkEstimator.default_provider())):
    position = tracker.current_restriction().start
    if not tracker.try_claim(position):
      return
    received = self._pull()
    ack_ids = [m.ack_id for m in received]
    if ack_ids:
      self._client.modify_ack_deadline(subscription=self.config.subscription, ack_ids=ack_ids,
                                       ack_deadline_seconds=self.config.ack_deadline_s)
    for m in received:
      yield beam.window.TimestampedValue(m.message.data, self._timestamp(m.message))
    self._pulled.inc(len(received))
    # Registered for empty pulls too: Prism finalizes every bundle of this stage, and the
    # SDK harness reports an error for a bundle that asked for no finalization.
    finalizer.register(lambda: self._ack(ack_ids))
    tracker.defer_remainder()

  def _timestamp(self, message) -> Timestamp:
    """A timestamp attribute that parses as neither form gives the publish time, counted,
    rather than failing the bundle and so every later pull of the same message."""
    try:
      return message_timestamp(message, self.config.timestamp_attribute)
    except ValueError:
      self._bad_timestamps.inc()
      return message_timestamp(message, None)

  def _pull(self):
    from google.api_core import exceptions
    try:
      return self._client.pull(subscription=self.config.subscription, max_messages=self.config.max_messages,
                               timeout=self.config.pull_timeout_s).received_messages
    except exceptions.DeadlineExceeded:
      return []

  def _ack(self, ack_ids):
    """One acknowledge call: a pull holds at most 1,000 messages, the call's own limit."""
    if not ack_ids:
      return
    self._client.acknowledge(subscription=self.config.subscription, ack_ids=ack_ids)
    self._acked.inc(len(ack_ids))

  def teardown(self):
    if self._client is not None:
      self._client.close()
      self._client = None


class PullFromPubSub(beam.PTransform):
  """Message bodies (bytes) from a Pub/Sub subscription, on any runner that runs splittable DoFns."""

  def __init__(self, config: PullConfig):
    super().__init__()
    self.config = config

  def expand(self, pbegin):
    return pbegin | beam.Impulse() | "Pull" >> beam.ParDo(_PullFn(self.config)).with_output_types(bytes)


def publisher_api():
  """Pub/Sub's generated publisher client (one RPC per call, no batching thread), on the
  emulator when PUBSUB_EMULATOR_HOST is set."""
  from google.pubsub_v1 import PublisherClient
  host = os.environ.get("PUBSUB_EMULATOR_HOST")
  if not host:
    return PublisherClient()
  import grpc
  from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
  return PublisherClient(transport=PublisherGrpcTransport(channel=grpc.insecure_channel(host)))


class _PublishFn(beam.DoFn):
  """Publishes a bundle's messages in as few Publish calls as Pub/Sub's limits allow.

  The high-level client's batches wait up to 10 ms for more messages before each send;
  here the bundle is the batch, sent when it ends (or fills a request), so a bundle
  completes once Pub/Sub has accepted all of it and no sooner.
  """

  def __init__(self, topic: str, publish_timeout_s: float):
    self.topic, self.publish_timeout_s = topic, publish_timeout_s
    self._api, self._batch, self._bytes = None, [], 0
    self._published = metrics.counter("pubsub.published")

  def setup(self):
    self._api = publisher_api()

  def start_bundle(self):
    self._batch, self._bytes = [], 0

  def process(self, data: bytes):
    if not isinstance(data, bytes):
      raise TypeError(f"PublishToPubSub publishes bytes, got {type(data).__name__}")
    if self._batch and (len(self._batch) == MAX_PUBLISH_MESSAGES or self._bytes + len(data) > MAX_PUBLISH_BYTES):
      self._send()
    self._batch.append(data)
    self._bytes += len(data)
    return ()

  def finish_bundle(self):
    if self._batch:
      self._send()

  def _send(self):
    from google.pubsub_v1 import PubsubMessage
    batch, self._batch, self._bytes = self._batch, [], 0
    self._api.publish(topic=self.topic, messages=[PubsubMessage(data=d) for d in batch],
                      timeout=self.publish_timeout_s)
    self._published.inc(len(batch))

  def teardown(self):
    if self._api is not None:
      self._api.transport.close()
      self._api = None


class PublishToPubSub(beam.PTransform):
  """Publishes bytes to `topic` (projects/P/topics/T); a bundle completes once Pub/Sub has them all."""

  def __init__(self, topic: str, publish_timeout_s: float = 60.0):
    super().__init__()
    if not topic.startswith("projects/") or "/topics/" not in topic:
      raise ValueError(f"topic must be projects/P/topics/T, got {topic!r}")
    self.topic, self.publish_timeout_s = topic, publish_timeout_s

  def expand(self, pcoll):
    return pcoll | "Publish" >> beam.ParDo(_PublishFn(self.topic, self.publish_timeout_s))
