"""Models loaded once per process and kept alive across bundles.

RunInference shares its model through Beam's `Shared`, which holds only weak references
plus one strong reference to the object acquired last. RunInference's `setup` acquires a
model-status object before the model, so when a runner calls `setup`/`teardown` per bundle
(the DirectRunner does) a model with no reference cycles is freed between bundles and
loaded again for every bundle. Handlers load through `keep_loaded` instead, which holds
the last `KEEP` models of the process strongly (in `agentflow.keepalive`).
"""
from __future__ import annotations

from typing import Any, Callable, Hashable

from agentflow.keepalive import KeptObjects

KEEP = 4

_MODELS = KeptObjects(keep=KEEP)


def keep_loaded(key: Hashable, load: Callable[[], Any]) -> Any:
  """The model for `key`, loaded by `load` the first time; the oldest beyond `KEEP` are released."""
  return _MODELS.get(key, load)


def release_all() -> None:
  """Drop every kept model, so the next `keep_loaded` loads again (for runs that measure loading)."""
  _MODELS.release_idle()
