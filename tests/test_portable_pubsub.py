"""agentflow's Python Pub/Sub IO in pieces: its restriction, its publish batches, its checks.

The whole IO on Prism and Flink against the emulator is in test_pubsub_portable.py.
"""
import datetime

import pytest
from apache_beam.io.restriction_trackers import OffsetRange
from apache_beam.utils.timestamp import Timestamp

from agentflow.io import pubsub_portable
from agentflow.io.pubsub_portable import PublishToPubSub, PullConfig


def test_the_pull_restriction_can_be_checkpointed_but_not_split_into_more_readers():
  tracker = pubsub_portable._EndlessPulls().create_tracker(OffsetRange(0, 2 ** 63 - 1))
  assert not tracker.is_bounded()
  assert tracker.try_claim(0)
  assert tracker.try_split(0.5) is None
  primary, residual = tracker.try_split(0)
  assert (primary.start, primary.stop) == (0, 1)
  assert residual.start == 1
  assert not tracker.try_claim(1)
  tracker.check_done()


class _RecordingApi:

  def __init__(self):
    self.calls = []

  def publish(self, topic, messages, timeout):
    self.calls.append((topic, [m.data for m in messages]))


def _publish_bundle(payloads, monkeypatch, max_messages=1000, max_bytes=9_000_000):
  monkeypatch.setattr(pubsub_portable, "MAX_PUBLISH_MESSAGES", max_messages)
  monkeypatch.setattr(pubsub_portable, "MAX_PUBLISH_BYTES", max_bytes)
  fn = pubsub_portable._PublishFn("projects/p/topics/out", 30.0)
  fn._api = api = _RecordingApi()
  fn.start_bundle()
  for data in payloads:
    fn.process(data)
  fn.finish_bundle()
  return api.calls


def test_a_bundle_is_published_in_order_in_requests_within_pubsubs_limits(monkeypatch):
  payloads = [f"m{i}".encode() for i in range(25)]
  calls = _publish_bundle(payloads, monkeypatch, max_messages=10)
  assert [len(batch) for _, batch in calls] == [10, 10, 5]
  assert {topic for topic, _ in calls} == {"projects/p/topics/out"}
  assert [d for _, batch in calls for d in batch] == payloads

  big = [b"x" * 400, b"y" * 400, b"z" * 400]
  assert [len(batch) for _, batch in _publish_bundle(big, monkeypatch, max_bytes=1000)] == [2, 1]


def test_nothing_is_sent_for_an_empty_bundle_and_each_bundle_is_sent_by_its_end(monkeypatch):
  assert _publish_bundle([], monkeypatch) == []
  assert [len(b) for _, b in _publish_bundle([b"a", b"b"], monkeypatch)] == [2]


def test_publishing_anything_but_bytes_fails_clearly():
  fn = pubsub_portable._PublishFn("projects/p/topics/out", 30.0)
  fn.start_bundle()
  with pytest.raises(TypeError, match="bytes, got str"):
    fn.process("text")


def test_bad_names_and_limits_are_refused_when_the_graph_is_built():
  with pytest.raises(ValueError, match="projects/P/topics/T"):
    PublishToPubSub("out")
  with pytest.raises(ValueError, match="projects/P/subscriptions/S"):
    PullConfig("projects/p/topics/t")
  with pytest.raises(ValueError, match="1..1000"):
    PullConfig("projects/p/subscriptions/s", max_messages=5000)
  with pytest.raises(ValueError, match="pull_timeout_s"):
    PullConfig("projects/p/subscriptions/s", pull_timeout_s=0)
  with pytest.raises(ValueError, match="ack_deadline_s must be 10..600"):
    PullConfig("projects/p/subscriptions/s", ack_deadline_s=3600)


class _Message:

  def __init__(self, attributes):
    self.attributes = attributes
    self.publish_time = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)


def test_event_time_is_the_named_attribute_else_the_publish_time():
  published = Timestamp.from_rfc3339("2026-11-30T12:00:00Z")
  assert pubsub_portable.message_timestamp(_Message({}), None) == published
  assert pubsub_portable.message_timestamp(_Message({"ts": "1000"}), "ts") == Timestamp(1)
  assert pubsub_portable.message_timestamp(_Message({"ts": "2026-01-01T00:00:00Z"}), "ts") == \
      Timestamp.from_rfc3339("2026-01-01T00:00:00Z")
  assert pubsub_portable.message_timestamp(_Message({}), "ts") == published


class _Received:

  def __init__(self, i):
    self.ack_id = f"ack-{i}"
    self.message = _Message({})
    self.message.data = f"m{i}".encode()


class _FakeSubscriber:

  def __init__(self, batches):
    self.batches, self.log = list(batches), []

  def pull(self, subscription, max_messages, timeout):
    self.log.append(("pull", subscription, max_messages))
    return type("Response", (), {"received_messages": self.batches.pop(0)})()

  def modify_ack_deadline(self, subscription, ack_ids, ack_deadline_seconds):
    self.log.append(("lease", tuple(ack_ids), ack_deadline_seconds))

  def acknowledge(self, subscription, ack_ids):
    self.log.append(("ack", tuple(ack_ids)))


class _Finalizer:

  def __init__(self):
    self.callbacks = []

  def register(self, callback):
    self.callbacks.append(callback)


def _one_pull(fn, client):
  """One `process` call as the SDK harness makes it; returns (outputs, finalizer, deferred residual)."""
  from apache_beam.runners.sdf_utils import RestrictionTrackerView, ThreadsafeRestrictionTracker
  fn._client = client
  tracker = ThreadsafeRestrictionTracker(pubsub_portable._EndlessPulls().create_tracker(OffsetRange(7, 2 ** 63 - 1)))
  finalizer = _Finalizer()
  out = list(fn.process(None, finalizer=finalizer, tracker=RestrictionTrackerView(tracker)))
  status = tracker.deferred_status()
  return out, finalizer, status[0] if status else None


def test_a_pull_is_leased_emitted_and_acked_only_when_its_bundle_is_finalized():
  fn = pubsub_portable._PullFn(PullConfig("projects/p/subscriptions/in", max_messages=50, ack_deadline_s=90))
  client = _FakeSubscriber([[_Received(0), _Received(1)], []])
  out, finalizer, residual = _one_pull(fn, client)
  assert [v.value for v in out] == [b"m0", b"m1"]
  assert client.log == [("pull", "projects/p/subscriptions/in", 50), ("lease", ("ack-0", "ack-1"), 90)]
  assert residual.start == 8, "each call claims one pull and hands the rest back to the runner"
  [ack] = finalizer.callbacks
  ack()
  assert client.log[-1] == ("ack", ("ack-0", "ack-1"))

  client.log.clear()
  out, finalizer, residual = _one_pull(fn, client)
  assert out == [] and residual.start == 8
  [ack] = finalizer.callbacks
  ack()
  assert client.log == [("pull", "projects/p/subscriptions/in", 50)]


def test_an_unparseable_timestamp_attribute_falls_back_to_the_publish_time_instead_of_failing_the_pull():
  fn = pubsub_portable._PullFn(PullConfig("projects/p/subscriptions/in", timestamp_attribute="ts"))
  good, bad = _Received(0), _Received(1)
  good.message.attributes = {"ts": "2000"}
  bad.message.attributes = {"ts": "yesterday"}
  out, _, _ = _one_pull(fn, _FakeSubscriber([[good, bad]]))
  assert [(v.value, v.timestamp) for v in out] == [(b"m0", Timestamp(2)),
                                                   (b"m1", Timestamp.from_rfc3339("2026-11-30T12:00:00Z"))]
