"""A DoFn base that buffers elements with their windows and handles them in batches.

Store writes and queries are far cheaper in batches; outputs keep each element's own
timestamp and window, and every buffered element is flushed by `finish_bundle`.
"""
from __future__ import annotations

import time
from typing import Iterable, List, Tuple

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from agentflow.observability import metrics
from agentflow.stages.base import StageCounters


class BatchingDoFn(beam.DoFn):
  """Subclasses implement `handle_batch(elements) -> iterable of (index, output)`.

  `output` may be a plain value or a `TaggedOutput`; it is emitted with the timestamp
  and window of `elements[index]`.
  """

  def __init__(self, batch_size: int):
    self.batch_size = max(1, int(batch_size))

  def start_bundle(self):
    self._buffer: List[Tuple[object, object, object]] = []

  def process(self, element, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
    self._buffer.append((element, timestamp, window))
    if len(self._buffer) >= self.batch_size:
      yield from self._flush()

  def finish_bundle(self):
    yield from self._flush()

  def _flush(self) -> Iterable:
    buffered, self._buffer = self._buffer, []
    if not buffered:
      return
    start = time.perf_counter()
    outputs = list(self.handle_batch([e for e, _, _ in buffered]))
    self.observe_latency((time.perf_counter() - start) * 1000.0)
    for index, out in outputs:
      _, ts, win = buffered[index]
      if isinstance(out, beam.pvalue.TaggedOutput):
        yield beam.pvalue.TaggedOutput(out.tag, WindowedValue(out.value, ts, (win,)))
      else:
        yield WindowedValue(out, ts, (win,))

  def handle_batch(self, elements: list) -> Iterable[Tuple[int, object]]:
    raise NotImplementedError

  def observe_latency(self, millis: float) -> None:
    """Hook for per-batch latency metrics."""


class StoreBatchingDoFn(BatchingDoFn):
  """A `BatchingDoFn` that talks to a `VectorStore`: opens it in setup, closes it in
  teardown, and keeps the stage's counters (inputs, per-batch latency, retries)."""

  stage = "store"

  def __init__(self, store, config):
    super().__init__(config.batch_size)
    self.store, self.config = store, config

  def setup(self):
    self.counters = StageCounters(self.stage)
    self.retries = metrics.counter(f"{self.stage}.retries")
    self.store.open()

  def teardown(self):
    self.store.close()

  def process(self, element, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
    self.counters.inputs.inc()
    yield from super().process(element, timestamp, window)

  def observe_latency(self, millis):
    self.counters.latency_us.update(int(millis * 1000))
