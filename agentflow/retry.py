"""The one retry mechanism: exponential backoff with full jitter, for blocking and async calls.

The stages retry store calls with `RetryPolicy.call`; the Vespa store retries each HTTP
request with `RetryPolicy.acall` on its event loop. Both take their waits from
`RetryPolicy.backoff`, so attempts, growth, cap and jitter are defined here once. No Beam
import: stores use it on workers and in plain Python.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional, TypeVar

T = TypeVar("T")
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
  """Exponential backoff with full jitter; `max_attempts` counts the first try.

  The wait after failed attempt n (1-based) is uniform in [0, min(max_backoff_s,
  initial_backoff_s * 2 ** (n - 1))]: full jitter spreads workers that failed together.
  """
  max_attempts: int = 5
  initial_backoff_s: float = 0.2
  max_backoff_s: float = 10.0

  def __post_init__(self):
    if self.max_attempts < 1 or self.initial_backoff_s < 0 or self.max_backoff_s < 0:
      raise ValueError("RetryPolicy needs max_attempts >= 1 and non-negative backoffs")

  def backoff(self, attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based)."""
    return random.uniform(0, self.cap(attempt))

  def cap(self, attempt: int) -> float:
    """The most `backoff(attempt)` can be."""
    return min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))

  def call(self, fn: Callable[[], T], retryable: Callable[[Exception], bool] = lambda e: True,
           on_retry: Optional[Callable[[Exception], None]] = None) -> T:
    """`fn()`, retried on exceptions `retryable` accepts; the last exception propagates."""
    attempt = 0
    while True:
      attempt += 1
      try:
        return fn()
      except Exception as e:  # pylint: disable=broad-except
        if attempt >= self.max_attempts or not retryable(e):
          raise
        if on_retry:
          on_retry(e)
        _LOG.warning("attempt %d failed (%s); retrying in <= %.2fs", attempt, type(e).__name__, self.cap(attempt))
        time.sleep(self.backoff(attempt))

  async def acall(self, fn: Callable[[], Awaitable[T]], retryable: Callable[[Exception], bool] = lambda e: True,
                  retry_result: Callable[[T], bool] = lambda r: False,
                  on_retry: Optional[Callable[[Any], None]] = None) -> T:
    """`await fn()`, retried on exceptions `retryable` accepts and on results `retry_result` accepts.

    After the last attempt the last result is returned, or the last exception raised, so
    callers see what the service last said. `on_retry` gets the exception or result retried.
    """
    attempt = 0
    while True:
      attempt += 1
      try:
        result = await fn()
      except Exception as e:  # pylint: disable=broad-except
        if attempt >= self.max_attempts or not retryable(e):
          raise
        why: Any = e
      else:
        if attempt >= self.max_attempts or not retry_result(result):
          return result
        why = result
      if on_retry:
        on_retry(why)
      await asyncio.sleep(self.backoff(attempt))
