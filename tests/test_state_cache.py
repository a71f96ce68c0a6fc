"""Beam's state cache weighs agentflow's state values as before, without the module-globals scan."""
import objsize.traverse
from apache_beam.runners.worker import statecache

from agentflow.stages.state_cache import weigh_state_without_module_scan

VALUES = [["3f2a" * 8], [], [{"role": "user", "text": "how do I reset my password", "ts": 1772442900.0}] * 3,
          ("a", 1, 2.5, None)]


def _counting_scans(monkeypatch):
  scans = []
  original = objsize.traverse._iter_modules_globals
  monkeypatch.setattr(objsize.traverse, "_iter_modules_globals", lambda: scans.append(1) or original())
  return scans


def test_weights_are_beams_and_no_write_scans_module_globals(monkeypatch):
  # Beam's own function for this test (a Dedupe run earlier in the process replaced it), restored after.
  monkeypatch.setattr(statecache, "get_deep_size", getattr(statecache.get_deep_size, "beams", statecache.get_deep_size))
  scans = _counting_scans(monkeypatch)
  beams = [statecache.get_deep_size(v) for v in VALUES]
  assert len(scans) == len(VALUES)  # Beam's own weighing scans once per value
  weigh_state_without_module_scan()
  weigh_state_without_module_scan()  # a second call changes nothing
  cache = statecache.StateCache(1 << 20)
  for i, v in enumerate(VALUES):
    cache.put(("key", i), v)
  ours = [statecache.get_deep_size(v) for v in VALUES]
  assert ours == beams and all(w > 0 for w in ours)
  assert len(scans) == len(VALUES)
  assert [cache.peek(("key", i)) for i in range(len(VALUES))] == VALUES
