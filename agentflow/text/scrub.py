"""One event's PII handling, in one place: the text and attribute values redacted, the
ids and attribute keys that hold PII pseudonymised, and what was done, counted.

Phone numbers are read in the numbering plans of the text's language and of region
attributes (`country`, `locale`, ...), so the language is detected first, on the
normalised text (in process; nothing unredacted leaves this function).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping

from agentflow.text.invisible import strip_invisible
from agentflow.text.language import UNDETERMINED, detect_language
from agentflow.text.phones import region_hints
from agentflow.text.pii import RedactionConfig, redact
from agentflow.text.pseudonym import protect_identifier, warn_if_ephemeral


@dataclass(frozen=True)
class ScrubbedEvent:
  """The event's fields as they may be stored and logged, with what redaction found
  (`redactions`, per kind) and what normalisation removed (`normalization`)."""
  text: str
  session_id: str
  tenant: str
  event_id: str
  attributes: Dict[str, Any]
  language: str = UNDETERMINED
  redactions: Dict[str, int] = field(default_factory=dict)
  normalization: Dict[str, int] = field(default_factory=dict)


def scrub_event(text: str, session_id: str, tenant: str, event_id: str, attributes: Mapping[str, Any], *,
                raw_text: str, key: str, redaction: RedactionConfig = RedactionConfig(),
                detect: bool = True) -> ScrubbedEvent:
  """Redact `text` (normalised) and string attribute values; pseudonymise ids and attribute
  keys holding PII with `key`. `raw_text` is the text as sent, for counting the invisible
  characters normalisation removed."""
  language = detect_language(text) if detect else UNDETERMINED
  regions = region_hints(language, attributes)
  counts: Dict[str, int] = {}

  def add(found: Mapping[str, int]) -> None:
    for kind, n in found.items():
      counts[kind] = counts.get(kind, 0) + n

  text, found = redact(text, redaction, regions)
  add(found)
  ids = []
  for value in (session_id, tenant, event_id):
    value, found = protect_identifier(value, key, redaction, regions)
    ids.append(value)
    add(found)
  pseudonymised = sum(a != b for a, b in zip(ids, (session_id, tenant, event_id)))
  attrs: Dict[str, Any] = {}
  for name, value in attributes.items():
    safe_name, found = protect_identifier(name, key, redaction, regions)
    pseudonymised += safe_name != name
    add(found)
    if isinstance(value, str):
      value, found = redact(value, redaction, regions)
      add(found)
    attrs[safe_name] = value
  if pseudonymised:
    warn_if_ephemeral(key)
  normalization = {}
  invisible = strip_invisible(raw_text)[1]
  if invisible:
    normalization["invisible_removed"] = invisible
  if pseudonymised:
    normalization["ids_pseudonymised"] = pseudonymised
  return ScrubbedEvent(text, ids[0], ids[1], ids[2], attrs, language, counts, normalization)
