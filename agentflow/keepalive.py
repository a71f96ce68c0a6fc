"""Objects a process keeps alive between their users: loaded models, store engines, clients.

Beam sets up and tears down DoFns and model handlers as often as every bundle (the
DirectRunner does), and RunInference's `Shared` holds only weak references, so anything
costly to build (a model, a store's index, a gRPC client) is kept here instead: one
object per key and process, built on first use. A `KeptObjects` registry can count its
users (`acquire`/`release`) and keep an unused object for a while (linger) so the next
bundle reuses it, bound how many it keeps (least recently used go first), check an idle
object before reuse (`usable`) and close what it drops: on eviction, linger expiry,
`release_idle` and at interpreter exit. Keys are per process id, so a forked worker
builds its own object and never uses or closes its parent's (a SQLite connection or a
gRPC channel must not cross a fork).
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable, Hashable, List, Optional, Tuple

_LOG = logging.getLogger(__name__)
_REGISTRIES: weakref.WeakSet[KeptObjects] = weakref.WeakSet()
# This process's id, kept current by the fork hook below (os.getpid() is a system call per lookup).
_PID = os.getpid()


class _Entry:
  __slots__ = ("value", "refs", "timer")

  def __init__(self, value: Any):
    self.value, self.refs, self.timer = value, 0, None

  def cancel_timer(self) -> None:
    if self.timer is not None:
      self.timer.cancel()
      self.timer = None


class KeptObjects:
  """A thread-safe registry of one object per key in this process, built by the caller's `create`.

  `keep`: keep at most this many objects, dropping the least recently used idle ones first
  (None: no bound). `close(obj)`: runs on every object the registry drops. `usable(obj)`:
  asked of an idle object before it is reused; False drops (closes) it and builds a new
  one. An object held by `acquire` is never dropped until its last `release`. `create`
  runs under the registry's lock, so concurrent first users build one object, not several.
  """

  def __init__(self, keep: Optional[int] = None, close: Optional[Callable[[Any], None]] = None,
               usable: Optional[Callable[[Any], bool]] = None):
    if keep is not None and keep < 1:
      raise ValueError(f"keep must be at least 1 (or None for no bound), got {keep}")
    self._keep, self._close, self._usable = keep, close, usable
    self._entries: OrderedDict[Tuple[int, Hashable], _Entry] = OrderedDict()
    self._lock = threading.RLock()  # create() may take another key of the same registry
    _REGISTRIES.add(self)

  def get(self, key: Hashable, create: Callable[[], Any]) -> Any:
    """The object for `key`, built by `create()` the first time; kept until dropped by the bound,
    found unusable, or released by `release_idle`."""
    if self._keep is None and self._usable is None:
      # Nothing to reorder or check: a hit needs no lock (per-event lookups take this path).
      entry = self._entries.get((_PID, key))
      if entry is not None and entry.timer is None:
        return entry.value
    return self._take(key, create, hold=False)

  def acquire(self, key: Hashable, create: Callable[[], Any]) -> Any:
    """Like `get`, and holds the object (stopping its linger) until the matching `release`."""
    return self._take(key, create, hold=True)

  def release(self, key: Hashable, value: Any, linger_s: float = 0.0) -> bool:
    """Ends one `acquire` of `value`. After the last, the object is dropped now (`linger_s` <= 0)
    or after `linger_s` seconds unless acquired again; returns True when it now lingers.
    A `value` this process does not hold under `key` (e.g. one inherited through fork) is ignored."""
    slot = (_PID, key)
    with self._lock:
      entry = self._entries.get(slot)
      if entry is None or entry.value is not value or entry.refs <= 0:
        return False
      entry.refs -= 1
      if entry.refs > 0:
        return False
      if linger_s > 0:
        entry.timer = threading.Timer(linger_s, self._expire, (slot, entry))
        entry.timer.daemon = True
        entry.timer.start()
        return True
    self._expire(slot, entry)
    return False

  def values(self) -> List[Any]:
    """This process's objects, least recently used first."""
    pid = _PID
    with self._lock:
      return [e.value for (p, _), e in self._entries.items() if p == pid]

  def release_idle(self) -> None:
    """Drops (and closes) every object of this process that no one holds, lingering or not: for
    benchmarks that measure loading, tests, and interpreter exit. Held objects stay."""
    pid = _PID
    with self._lock:
      idle = [(slot, e) for slot, e in self._entries.items() if slot[0] == pid and e.refs == 0]
      for slot, entry in idle:
        entry.cancel_timer()
        del self._entries[slot]
    self._close_all([e.value for _, e in idle])

  def _take(self, key: Hashable, create: Callable[[], Any], hold: bool) -> Any:
    slot, dropped = (_PID, key), []
    try:
      with self._lock:
        entry = self._entries.get(slot)
        if entry is not None and entry.refs == 0 and self._usable is not None and not self._usable(entry.value):
          entry.cancel_timer()
          del self._entries[slot]
          dropped.append(entry.value)
          entry = None
        if entry is None:
          entry = self._entries[slot] = _Entry(create())
        entry.cancel_timer()
        entry.refs += int(hold)
        self._entries.move_to_end(slot)
        dropped += self._over_bound(slot)
        return entry.value
    finally:
      self._close_all(dropped, raise_error=False)

  def _over_bound(self, taken: Tuple[int, Hashable]) -> List[Any]:
    """Removes this process's least recently used idle objects beyond `keep`, never the one just
    `taken`; returns them to close."""
    if self._keep is None:
      return []
    pid = _PID
    mine = [slot for slot in self._entries if slot[0] == pid]
    excess, dropped = len(mine) - self._keep, []
    for slot in mine:
      if excess <= 0:
        break
      entry = self._entries[slot]
      if entry.refs == 0 and slot != taken:
        entry.cancel_timer()
        del self._entries[slot]
        dropped.append(entry.value)
        excess -= 1
    return dropped

  def _expire(self, slot: Tuple[int, Hashable], entry: _Entry) -> None:
    """Drops `entry` if it is still this registry's and idle (a reacquire may have beaten its timer)."""
    with self._lock:
      if entry.refs > 0 or self._entries.get(slot) is not entry:
        return
      entry.timer = None
      del self._entries[slot]
    self._close_all([entry.value])

  def _close_all(self, values: List[Any], raise_error: bool = True) -> None:
    """Closes each of `values`, all of them even when one fails. The first failure is raised after,
    or only logged where dropping was incidental (`get`/`acquire` hand out an object all the same)."""
    if self._close is None:
      return
    error = None
    for value in values:
      try:
        self._close(value)
      except Exception as e:  # the others still need closing
        error = error or e
    if error is None:
      return
    if raise_error:
      raise error
    _LOG.warning("closing an object this process no longer keeps failed; it is left to the garbage collector: %r",
                 error)

  def _after_fork(self) -> None:
    # Another thread of the parent may have held the lock at fork; the child has only this thread.
    self._lock = threading.RLock()


@atexit.register
def release_idle() -> None:
  """Drops every idle object of every registry in this process (also run at interpreter exit)."""
  for registry in list(_REGISTRIES):
    try:
      registry.release_idle()
    except Exception:  # one registry's failure must not keep the others open
      _LOG.warning("closing objects kept by this process failed; they are left to the OS", exc_info=True)


def _after_fork_in_child() -> None:
  global _PID
  _PID = os.getpid()
  for registry in list(_REGISTRIES):
    registry._after_fork()


if hasattr(os, "register_at_fork"):
  os.register_at_fork(after_in_child=_after_fork_in_child)
