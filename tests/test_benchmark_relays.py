"""The benchmark peers' relay loop and Kafka keys, without a broker or an emulator."""
import json

import pytest

from benchmarks.common import relay_batches
from benchmarks.kafka_relay import event_key


def test_relay_batches_sends_on_then_acks_each_batch_and_skips_empty_pulls():
  pulls = [[], [b"a", b"b"], [], [b"c"]]
  log = []

  def pull():
    datas = pulls.pop(0)
    return datas, lambda: log.append(("done", datas))

  def handle(datas):
    return [d.upper() for d in datas], [b"dead"] if b"c" in datas else []

  relayed = relay_batches(pull, lambda out, dead: log.append(("deliver", out, dead)), lambda: not pulls, handle)
  assert relayed == 3
  assert log == [("deliver", [b"A", b"B"], []), ("done", [b"a", b"b"]),
                 ("deliver", [b"C"], [b"dead"]), ("done", [b"c"])]


def test_relay_batches_passes_messages_through_unchanged_without_a_handler():
  pulls = [[b"x"]]
  delivered = []
  relay_batches(lambda: (pulls.pop(0), lambda: None), lambda out, dead: delivered.append((out, dead)),
                lambda: not pulls)
  assert delivered == [([b"x"], [])]


def test_kafka_messages_are_keyed_by_event_id():
  assert event_key(json.dumps({"event_id": "e-1", "action": "reply"}).encode()) == b"e-1"
  assert event_key(json.dumps({"stage": "preprocess", "event_id": ""}).encode()) == b""
  assert event_key(b"not json") == b""
  assert event_key(b"[1, 2]") == b""


def test_streaming_latency_over_kafka_refuses_runners_other_than_flink(capsys):
  from benchmarks.streaming_latency import main
  with pytest.raises(SystemExit, match="flink only: direct, prism"):
    main(["--transport", "kafka", "--runners", "direct,flink,prism"])
