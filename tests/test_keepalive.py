import multiprocessing as mp
import os
import threading
import time

import pytest

from agentflow import keepalive
from agentflow.keepalive import KeptObjects


class _Thing:

  def __init__(self, name):
    self.name, self.closed, self.ok = name, 0, True


def _closing(closed):
  def close(thing):
    thing.closed += 1
    closed.append(thing.name)
  return close


def _wait_until(condition, timeout_s=10.0):
  deadline = time.time() + timeout_s
  while not condition() and time.time() < deadline:
    time.sleep(0.01)
  return condition()


def test_get_builds_once_and_keeps_the_most_recently_used_within_the_bound():
  closed = []
  kept = KeptObjects(keep=2, close=_closing(closed))
  builds = []

  def build(name):
    return lambda: builds.append(name) or _Thing(name)

  a = kept.get("a", build("a"))
  assert kept.get("a", build("a")) is a and builds == ["a"]
  kept.get("b", build("b"))
  kept.get("a", build("a"))  # a is now the most recently used
  kept.get("c", build("c"))
  assert [t.name for t in kept.values()] == ["a", "c"] and closed == ["b"]
  kept.get("b", build("b"))
  assert builds == ["a", "b", "c", "b"] and closed == ["b", "a"]


def test_the_bound_never_drops_an_object_in_use():
  closed = []
  kept = KeptObjects(keep=1, close=_closing(closed))
  held = kept.acquire("held", lambda: _Thing("held"))
  kept.get("other", lambda: _Thing("other"))
  assert held in kept.values() and closed == []
  kept.get("third", lambda: _Thing("third"))
  assert closed == ["other"]
  kept.release("held", held)
  assert closed == ["other", "held"]


def test_a_lingering_object_is_reused_when_acquired_again():
  closed = []
  kept = KeptObjects(close=_closing(closed))
  first = kept.acquire("k", lambda: _Thing("first"))
  assert kept.release("k", first, linger_s=1.0) is True
  again = kept.acquire("k", lambda: _Thing("second"))
  assert again is first
  time.sleep(1.5)  # the cancelled timer must not drop it
  assert closed == [] and kept.values() == [first]
  assert kept.release("k", again, linger_s=0) is False
  assert closed == ["first"] and kept.values() == []


def test_linger_expiry_releases_and_closes():
  closed = []
  kept = KeptObjects(close=_closing(closed))
  thing = kept.acquire("k", lambda: _Thing("t"))
  kept.acquire("k", lambda: _Thing("unused"))
  assert kept.release("k", thing, linger_s=0.05) is False  # one user still holds it
  assert kept.release("k", thing, linger_s=0.05) is True
  assert _wait_until(lambda: closed == ["t"])
  assert thing.closed == 1 and kept.values() == []
  assert kept.acquire("k", lambda: _Thing("next")).name == "next"


def test_an_unusable_idle_object_is_closed_and_built_again():
  closed = []
  kept = KeptObjects(close=_closing(closed), usable=lambda t: t.ok)
  stale = kept.acquire("k", lambda: _Thing("stale"))
  stale.ok = False
  assert kept.acquire("k", lambda: _Thing("unused")) is stale  # held: never discarded
  kept.release("k", stale, linger_s=60)
  kept.release("k", stale, linger_s=60)
  fresh = kept.acquire("k", lambda: _Thing("fresh"))
  assert fresh is not stale and closed == ["stale"]
  kept.release("k", fresh)


def test_release_idle_drops_idle_and_lingering_objects_but_not_held_ones():
  closed = []
  kept = KeptObjects(close=_closing(closed))
  kept.get("plain", lambda: _Thing("plain"))
  lingering = kept.acquire("lingering", lambda: _Thing("lingering"))
  kept.release("lingering", lingering, linger_s=60)
  held = kept.acquire("held", lambda: _Thing("held"))
  keepalive.release_idle()  # every registry, as at exit
  assert sorted(closed) == ["lingering", "plain"] and kept.values() == [held]
  kept.release("held", held)


def test_a_failing_close_still_closes_the_others_and_is_raised():
  closed = []

  def close(thing):
    if thing.name == "bad":
      raise OSError("disk full")
    closed.append(thing.name)

  kept = KeptObjects(close=close)
  for name in ("bad", "good"):
    kept.get(name, lambda name=name: _Thing(name))
  with pytest.raises(OSError, match="disk full"):
    kept.release_idle()
  assert closed == ["good"] and kept.values() == []


def test_concurrent_first_users_build_one_object():
  kept, builds = KeptObjects(), []
  barrier = threading.Barrier(8)
  got = []

  def build():
    builds.append(1)
    time.sleep(0.05)
    return _Thing("only")

  def use():
    barrier.wait()
    got.append(kept.get("k", build))

  threads = [threading.Thread(target=use) for _ in range(8)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert len(builds) == 1 and len({id(t) for t in got}) == 1


def test_create_may_take_another_key_of_the_same_registry():
  kept = KeptObjects()
  base = kept.get("base", lambda: _Thing("base"))
  derived = kept.get("derived", lambda: (kept.get("base", lambda: _Thing("other")), _Thing("derived")))
  assert derived[0] is base


def _in_child(kept, parent_thing, queue):
  child_thing = kept.get("k", lambda: _Thing("child"))
  kept.release_idle()
  queue.put((child_thing is not parent_thing, child_thing.name, kept.values(), parent_thing.closed))


def test_a_forked_process_builds_its_own_object_and_never_closes_the_parents():
  closed = []
  kept = KeptObjects(close=_closing(closed))
  parent_thing = kept.get("k", lambda: _Thing("parent"))
  ctx = mp.get_context("fork")
  queue = ctx.Queue()
  proc = ctx.Process(target=_in_child, args=(kept, parent_thing, queue))
  proc.start()
  proc.join(60)
  assert queue.get(timeout=5) == (True, "child", [], 0) and proc.exitcode == 0
  assert kept.values() == [parent_thing] and os.getpid() != proc.pid


def test_a_release_this_process_does_not_hold_is_ignored():
  kept = KeptObjects()
  thing = kept.acquire("k", lambda: _Thing("t"))
  assert kept.release("k", _Thing("stranger")) is False
  assert kept.release("other", thing) is False
  assert kept.values() == [thing]
  kept.release("k", thing)
  assert kept.values() == []


def test_a_bound_below_one_is_refused():
  with pytest.raises(ValueError, match="keep must be at least 1"):
    KeptObjects(keep=0)
