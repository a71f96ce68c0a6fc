"""Beam's worker state cache, weighed without scanning every module's globals on each write.

Beam (2.62) weighs each value it caches for user state with `objsize.get_deep_size`, which
by default first collects the ids of every loaded module's globals so as to leave them
out. With torch and transformers loaded that scan is thousands of modules per state read
and write: a py-spy profile of `benchmarks/embed_throughput.py` spent 40% of the run in it,
for Dedupe's one small state cell per event. Beam's own filter already stops the walk at
modules, types and functions (what links a value to module globals), so the weights stay
what they were for the strings and records agentflow keeps in state.
"""
from __future__ import annotations


def weigh_state_without_module_scan() -> None:
  """Makes this process's Beam state cache weigh values without the module-globals scan."""
  import objsize
  from apache_beam.runners.worker import statecache
  if getattr(statecache.get_deep_size, "skips_module_scan", False):
    return

  def get_deep_size(*objs) -> int:
    return objsize.get_deep_size(*objs, get_size_func=statecache._size_func,
                                 get_referents_func=statecache._get_referents_func,
                                 filter_func=statecache._filter_func, exclude_modules_globals=False)

  get_deep_size.skips_module_scan, get_deep_size.beams = True, statecache.get_deep_size
  statecache.get_deep_size = get_deep_size
