"""Progress lines: counts always, a rate only over a span it can honestly be measured on."""
import logging

import apache_beam as beam

from agentflow.observability import progress
from agentflow.types import DeadLetter


class _Clock:
  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


def _fn(monkeypatch, interval=5.0):
  clock = _Clock()
  monkeypatch.setattr(progress.time, "monotonic", clock)
  fn = progress._ProgressFn(interval, "t")
  fn.setup()
  return fn, clock


def test_a_burst_prints_counts_without_a_rate(monkeypatch, capsys):
  fn, clock = _fn(monkeypatch)
  for _ in range(300):
    assert list(fn.process(object())) == []
    clock.now += 0.001
  fn.process(DeadLetter("preprocess", "invalid_json", "e", "p"))
  fn.teardown()
  err = capsys.readouterr().err.strip().splitlines()
  assert err == ["[t] 1 dead letters, 300 decisions"]


def test_the_rate_is_measured_from_the_first_output(monkeypatch, capsys):
  fn, clock = _fn(monkeypatch, interval=5.0)
  clock.now = 50_000.0  # setup ran long before the first output: that wait is not in the rate
  fn.setup()
  for _ in range(100):
    fn.process(object())
    clock.now += 0.1  # 10 outputs a second
  err = capsys.readouterr().err.strip().splitlines()
  assert err, "a line every 5 s"
  rate = float(err[-1].split("(")[1].split(" events/s")[0])
  assert 9.5 <= rate <= 10.5, err


def test_beam_finds_nothing_to_warn_about(caplog):
  with caplog.at_level(logging.WARNING, logger="apache_beam"):
    _ = beam.ParDo(progress._ProgressFn(1.0, "t"))
  assert not [r for r in caplog.records if "iterator" in r.getMessage()]
