"""Models loaded once per process and kept alive across bundles.

RunInference shares its model through Beam's `Shared`, which holds only weak references
plus one strong reference to the object acquired last. RunInference's `setup` acquires a
model-status object before the model, so when a runner calls `setup`/`teardown` per bundle
(the DirectRunner does) a model with no reference cycles is freed between bundles and
loaded again for every bundle. Handlers load through `keep_loaded` instead, which holds
the last `KEEP` models of the process strongly.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

KEEP = 4

_models: OrderedDict[Hashable, Any] = OrderedDict()
_lock = threading.Lock()


def keep_loaded(key: Hashable, load: Callable[[], Any]) -> Any:
  """The model for `key`, loaded by `load` the first time; the oldest beyond `KEEP` are released."""
  with _lock:
    if key not in _models:
      _models[key] = load()
    _models.move_to_end(key)
    while len(_models) > KEEP:
      _models.popitem(last=False)
    return _models[key]


def release_all() -> None:
  """Drop every kept model, so the next `keep_loaded` loads again (for runs that measure loading)."""
  with _lock:
    _models.clear()
