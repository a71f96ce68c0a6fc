"""Vector stores: the `VectorStore` ABC, the embedded default and Vespa, chosen by URI.

`store_from_uri("local:/var/agentflow", 384)` or `store_from_uri("vespa:http://host:8080", 384)`.
A bare path means `local:`.
"""
from __future__ import annotations

import os
import re
from typing import Callable, Dict, Optional, Tuple

from agentflow.stores.base import QueryFilter, StoreError, TransientReason, VectorStore

StoreFactory = Callable[[str, int], VectorStore]
_SCHEMES: Dict[str, StoreFactory] = {}
_UNAVAILABLE: Dict[str, str] = {}


def register_store_scheme(scheme: str, factory: StoreFactory) -> None:
  """Make `scheme:rest` URIs build stores with `factory(rest, dimension)`."""
  _SCHEMES[scheme] = factory


def store_from_uri(uri: str, dimension: int) -> VectorStore:
  """Build (not open) the store a `--store` URI names."""
  _register_builtin()
  scheme, rest = _split(uri)
  if scheme not in _SCHEMES:
    why = f": {_UNAVAILABLE[scheme]}" if scheme in _UNAVAILABLE else ""
    raise ValueError(f"store URI {uri!r}: scheme {scheme!r} is not available{why} "
                     f"(known: {', '.join(sorted(_SCHEMES))})")
  return _SCHEMES[scheme](rest, dimension)


def _split(uri: str) -> Tuple[str, str]:
  scheme, sep, rest = uri.partition(":")
  if not sep or len(scheme) == 1 or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
    return "local", uri  # a bare path (or a Windows drive)
  return scheme, rest


def absolute_store_uri(uri: str) -> str:
  """`uri` with a local store's directory made absolute (workers on a cluster have their own
  working directory); other stores' URIs unchanged."""
  local = local_store_dir(uri)
  return f"local:{local}" if local else uri


def local_store_dir(uri: str) -> Optional[str]:
  """The directory of a `local:` store URI (or bare path), absolute; None for other stores."""
  scheme, rest = _split(uri)
  return os.path.abspath(rest) if scheme == "local" and rest else None


def _register_builtin() -> None:
  if "local" not in _SCHEMES:
    from agentflow.stores.local import LocalVectorStore
    register_store_scheme("local", lambda rest, dim: LocalVectorStore(rest, dim))
  if "vespa" not in _SCHEMES:
    try:
      from agentflow.stores.vespa import vespa_store_from_uri
    except ImportError as e:
      _UNAVAILABLE["vespa"] = str(e)
      return
    register_store_scheme("vespa", vespa_store_from_uri)


__all__ = ["QueryFilter", "StoreError", "TransientReason", "VectorStore", "absolute_store_uri", "local_store_dir",
           "register_store_scheme", "store_from_uri"]
