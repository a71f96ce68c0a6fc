"""Keyed pseudonyms for identifiers that hold PII: session ids, tenants, event ids and
attribute keys that are emails, phone numbers, card numbers and the like.

An identifier cannot be redacted to `[EMAIL]` without merging every session into one, so
it is replaced as a whole by `pii-` and an HMAC-SHA256 of it: the same id always gives
the same pseudonym under one key (sessions still group, replays still overwrite), and
without the key nobody can test guesses against it (a phone number has few enough
values to try them all against an unkeyed hash). Identifiers without PII stay as sent.

The key comes from `AGENTFLOW_PII_KEY`, else from a key file (`agentflow run` keeps one
beside a local store, created on first use), else it is random for the process, with a
warning, since pseudonyms then change from one run to the next.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from typing import Dict, Optional, Sequence, Tuple

from agentflow.text.pii import RedactionConfig, redact

PREFIX = "pii-"
KEY_ENV = "AGENTFLOW_PII_KEY"
KEY_FILE = "pii.key"
_PHONE_SHAPED = re.compile(r"\+?[\d()][\d ().\-/]{5,30}")
_DIGIT = re.compile(r"\d")
_ID_DIGITS = re.compile(r"(?<![A-Za-z0-9])\+?[0-9]{7,15}(?![A-Za-z0-9])")
_OURS = re.compile(rf"{PREFIX}[0-9a-f]{{32}}|h-[0-9a-f]{{24}}")  # pseudonyms, preprocess.derive_event_id
_log = logging.getLogger(__name__)


def pseudonym(value: str, key: str) -> str:
  """`pii-` and 32 hex digits of HMAC-SHA256(key, value)."""
  mac = hmac.new(key.encode("utf-8"), value.encode("utf-8", "backslashreplace"), hashlib.sha256)
  return PREFIX + mac.hexdigest()[:32]


def protect_identifier(value: str, key: str, redaction: RedactionConfig = RedactionConfig(),
                       regions: Sequence[str] = ()) -> Tuple[str, Dict[str, int]]:
  """`value`, or its pseudonym when it holds PII; returns (id, PII counts per kind).

  Besides the redaction rules, an id that is a phone-shaped run of 7 to 15 digits, or
  holds 7 to 15 digits in a row between non-alphanumerics (`ev-4155550134`), is taken as
  a phone number: an id has no context to tell it from an order number, and a
  pseudonym of an order number costs nothing. Pseudonyms and derived ids (`h-` and hex)
  are left as they are.
  """
  if not value or _OURS.fullmatch(value):
    return value, {}
  _, counts = redact(value, redaction, regions)
  if not counts and "PHONE" in redaction.kinds and (_ID_DIGITS.search(value) or (
      _PHONE_SHAPED.fullmatch(value) and 7 <= len(_DIGIT.findall(value)) <= 15)):
    counts = {"PHONE": 1}
  if not counts:
    return value, {}
  return pseudonym(value, key), counts


def key_from_environment() -> str:
  """`AGENTFLOW_PII_KEY`, else a random key made in this process (a warning says so when
  it is first used). Resolve it where the pipeline is built: the config carrying it is
  pickled to every worker, so all of them pseudonymise alike."""
  return os.environ.get(KEY_ENV, "") or _EPHEMERAL


_EPHEMERAL_PREFIX = "ephemeral:"
_EPHEMERAL = _EPHEMERAL_PREFIX + secrets.token_hex(32)
_warned = False


def warn_if_ephemeral(key: str) -> None:
  """Say once per process that pseudonyms made with a random key will not outlive the run."""
  global _warned
  if key.startswith(_EPHEMERAL_PREFIX) and not _warned:
    _warned = True
    _log.warning("identifiers holding PII are pseudonymised with a random key: they will differ in the next "
                 "run; set %s or PreprocessConfig(pii_key=...) to keep them stable", KEY_ENV)


def key_for_store(store_dir: Optional[str], key_file: str = "") -> str:
  """The key `agentflow run` uses: `AGENTFLOW_PII_KEY`, else `key_file`, else `pii.key` in
  the local store's directory `store_dir` (so the key travels with the store it keeps
  consistent), else `.agentflow/pii.key`; a key file is created on first use and that is logged."""
  if os.environ.get(KEY_ENV):
    return os.environ[KEY_ENV]
  key_file = key_file or os.path.join(store_dir or ".agentflow", KEY_FILE)
  key, created = load_or_create_key(key_file)
  if created:
    _log.warning("created PII key %s: ids holding PII are pseudonymised with it; keep it (or set %s) so they "
                 "stay the same in later runs", key_file, KEY_ENV)
  return key


def load_or_create_key(path: str) -> Tuple[str, bool]:
  """The key in file `path`, creating it (32 random bytes, hex, mode 0600) if missing;
  returns (key, created)."""
  if not os.path.exists(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    key = secrets.token_hex(32)
    try:
      fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
      with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
      return key, True
    except FileExistsError:  # another process made it first
      pass
  with open(path, encoding="utf-8") as f:
    key = f.read().strip()
  if not key:
    raise ValueError(f"PII key file {path} is empty")
  return key, False
