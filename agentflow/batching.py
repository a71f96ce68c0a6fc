"""A DoFn base that buffers elements with their windows and handles them in batches.

Store writes and queries are far cheaper in batches; outputs keep each element's own
timestamp and window, and every buffered element is flushed by `finish_bundle`.
"""
from __future__ import annotations

import time
from typing import Iterable, List, Tuple

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue


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
