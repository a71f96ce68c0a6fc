"""Preprocess: raw JSON message -> validated, normalised, PII-redacted `AgentEvent`.

Input elements may be `bytes` (Pub/Sub, Kafka), `str` (text files) or already-decoded
dicts. Redaction happens here, before anything is embedded, stored or logged.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Optional, Union

import apache_beam as beam
from apache_beam.transforms.window import TimestampedValue

from agentflow.observability import metrics
from agentflow.stages.base import DEAD_LETTER, MAIN, Stage, StageCounters
from agentflow.text.invisible import strip_invisible
from agentflow.text.pii import RedactionConfig
from agentflow.text.pseudonym import key_from_environment
from agentflow.text.scrub import scrub_event
from agentflow.types import AgentEvent, trace_id_for

REQUIRED_FIELDS = ("session_id", "text", "timestamp")
OPTIONAL_FIELDS = ("event_id", "attributes", "tenant")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_SPACE = re.compile(r"\s+")
_MAX_TS = 253402300800.0  # 10000-01-01T00:00:00Z, exclusive
_MAX_EPOCH_S = 1e11  # numbers below this are seconds (before the year 5138) ...
_MIN_EPOCH_MS = 1e12  # ... and from this on milliseconds (2001-09-09 on); between them, either
_MAX_INT_DIGITS = 4300  # Python's own limit on converting digit strings to int
_MAX_INT = 10 ** _MAX_INT_DIGITS
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


class InvalidEvent(ValueError):
  """A message that is not a valid event; `reason` is the dead-letter reason code."""

  def __init__(self, reason: str, message: str):
    super().__init__(message)
    self.reason = reason


@dataclass(frozen=True)
class PreprocessConfig:
  """Validation and normalisation rules.

  `max_text_chars` bounds the text after normalisation (longer texts are dead-lettered,
  not truncated, so nobody gets an answer to half a question); `max_payload_bytes` bounds
  the raw message; `max_attributes` bounds the attribute map and `max_attribute_chars`
  each string value in it (longer ones are dead-lettered `field_too_long`).
  `pii_key` keys the pseudonyms of ids and attribute keys holding PII
  (`agentflow.text.pseudonym`); None takes `AGENTFLOW_PII_KEY`, else a random key, so
  pseudonyms then change from run to run. It is left out of repr and equality.
  """
  max_text_chars: int = 20_000
  max_payload_bytes: int = 2_000_000
  max_attributes: int = 64
  max_id_chars: int = 256
  max_attribute_chars: int = 4_096
  detect_language: bool = True
  redaction: RedactionConfig = field(default_factory=RedactionConfig)
  pii_key: Optional[str] = field(default=None, repr=False, compare=False)

  def __post_init__(self):
    if not self.pii_key:
      object.__setattr__(self, "pii_key", key_from_environment())


def normalize_text(text: str) -> str:
  """NFKC, drop invisible (default-ignorable) characters, controls to spaces, collapse whitespace.

  Raises `InvalidEvent("invalid_unicode")` for lone surrogates, which JSON's `\\ud800`
  escapes can produce but UTF-8 (and so every sink and store) cannot hold.
  """
  try:
    text.encode("utf-8")
  except UnicodeEncodeError as e:
    raise InvalidEvent("invalid_unicode", f"text holds an unpaired surrogate at {e.start}") from None
  text = strip_invisible(unicodedata.normalize("NFKC", text))[0]
  text = _CONTROL.sub(" ", text)
  return _SPACE.sub(" ", text).strip()


def _shown(value: Any) -> str:
  try:
    return repr(value)[:64]
  except ValueError:  # an int too long for str()
    return "a number of over 4,300 digits"


def _epoch(value: float, shown: str) -> float:
  if value < _MAX_EPOCH_S:
    return value
  if value >= _MIN_EPOCH_MS:
    return value / 1000.0
  raise InvalidEvent("bad_timestamp", f"epoch number {shown} is ambiguous: below 1e11 is read as seconds and "
                     "from 1e12 on as milliseconds; send seconds, milliseconds after 2001-09-09, or RFC 3339")


def parse_timestamp(value: Any) -> float:
  """An RFC 3339 string or an epoch number -> epoch seconds; raises `InvalidEvent("bad_timestamp")`.

  A number (or a string of digits) is seconds when below 1e11 and milliseconds from 1e12
  on; one in between could be either (seconds after the year 5138, or milliseconds before
  2001), so it is rejected rather than guessed. Results must lie in 1970..9999 UTC.
  """
  if isinstance(value, bool):
    raise InvalidEvent("bad_timestamp", "timestamp must be RFC 3339 or epoch seconds, got a boolean")
  if isinstance(value, (int, float)):
    try:
      ts = float(value)
    except OverflowError:
      ts = math.inf
    if math.isfinite(ts):
      ts = _epoch(ts, _shown(value))
  elif isinstance(value, str):
    s = value.strip()
    try:
      if re.fullmatch(r"\d+(\.\d+)?", s):
        ts = _epoch(float(s), repr(s[:64]))
      else:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        if dt.tzinfo is None:
          dt = dt.replace(tzinfo=timezone.utc)
        ts = dt.timestamp()
    except InvalidEvent:
      raise
    except (ValueError, OverflowError) as e:
      raise InvalidEvent("bad_timestamp", f"unparseable timestamp {s[:64]!r}: {e}") from None
  else:
    raise InvalidEvent("bad_timestamp", f"timestamp must be a string or number, got {type(value).__name__}")
  if not math.isfinite(ts) or ts < 0 or ts >= _MAX_TS:
    raise InvalidEvent("bad_timestamp", f"timestamp {_shown(value)} is out of range (1970 to 9999 UTC)")
  return ts


def derive_event_id(session_id: str, timestamp: float, text: str) -> str:
  """Content hash for events sent without an id, so redeliveries get the same id."""
  h = hashlib.blake2b(f"{session_id}\x1f{timestamp!r}\x1f{text}".encode(), digest_size=12)
  return "h-" + h.hexdigest()


def _reject_constant(name: str):
  raise InvalidEvent("invalid_json", f"{name} is not a JSON number; send null or a string instead")


def _parse_int(digits: str) -> int:
  if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
    raise InvalidEvent("number_too_large", f"an integer has {len(digits)} digits; at most {_MAX_INT_DIGITS}")
  return int(digits)


def _parse_float(text: str) -> float:
  value = float(text)
  if not math.isfinite(value):
    raise InvalidEvent("number_too_large", f"number {text[:64]} does not fit a 64-bit float")
  return value


def decode_object(raw: Union[bytes, str, Mapping]) -> Mapping:
  """A message's JSON object; raises `InvalidEvent` (`invalid_utf8`, `invalid_json`, `not_an_object`).

  Bytes must be UTF-8 (a leading byte-order mark is dropped); NaN and Infinity, which
  Python's parser would accept, are not JSON and are rejected, as are integers longer
  than 4,300 digits and numbers beyond a 64-bit float (`number_too_large`). Shared by events and
  knowledge entries so both reject the same malformed input with the same reasons.
  """
  if isinstance(raw, Mapping):
    return raw
  if isinstance(raw, (bytes, bytearray)):
    try:
      raw = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as e:
      raise InvalidEvent("invalid_utf8", f"payload is not UTF-8: {e}; re-encode the source as UTF-8") from None
  if not isinstance(raw, str):
    raise InvalidEvent("invalid_json", f"expected bytes or str, got {type(raw).__name__}")
  try:
    obj = json.loads(raw.removeprefix("\ufeff"), parse_constant=_reject_constant, parse_int=_parse_int,
                     parse_float=_parse_float)
  except (json.JSONDecodeError, RecursionError) as e:
    raise InvalidEvent("invalid_json", f"not JSON: {e}") from None
  if not isinstance(obj, dict):
    raise InvalidEvent("not_an_object", f"a message must be a JSON object, got {type(obj).__name__}")
  return obj


def _string_field(obj: Mapping, name: str, limit: int, required: bool) -> str:
  if name not in obj or obj[name] is None:
    if required:
      raise InvalidEvent("missing_field", f"missing required field {name!r}")
    return ""
  value = obj[name]
  if not isinstance(value, str):
    raise InvalidEvent("wrong_type", f"field {name!r} must be a string, got {type(value).__name__}")
  value = normalize_text(value)
  if len(value) > limit:
    raise InvalidEvent("field_too_long", f"field {name!r} is longer than {limit} characters")
  return value


def _attributes(obj: Mapping, config: PreprocessConfig) -> dict:
  attrs = obj.get("attributes")
  if attrs is None:
    return {}
  if not isinstance(attrs, dict):
    raise InvalidEvent("wrong_type", f"field 'attributes' must be an object, got {type(attrs).__name__}")
  if len(attrs) > config.max_attributes:
    raise InvalidEvent("too_many_attributes",
                       f"{len(attrs)} attributes; at most {config.max_attributes} allowed")
  out = {}
  for k, v in attrs.items():
    if not isinstance(v, (str, int, float, bool)) and v is not None:
      raise InvalidEvent("wrong_type", f"attribute {k[:64]!r} must be a scalar, got {type(v).__name__}")
    if isinstance(v, float) and not math.isfinite(v):
      raise InvalidEvent("wrong_type", f"attribute {k[:64]!r} is {v}; only finite numbers are stored")
    if isinstance(v, int) and abs(v) >= _MAX_INT:
      raise InvalidEvent("number_too_large", f"attribute {k[:64]!r} has over {_MAX_INT_DIGITS} digits")
    if isinstance(v, str):
      v = normalize_text(v)
      if len(v) > config.max_attribute_chars:
        raise InvalidEvent("field_too_long", f"attribute {k[:64]!r} is longer than {config.max_attribute_chars} "
                           "characters")
    out[normalize_text(k)[:config.max_id_chars]] = v
  return out


def parse_event(raw: Union[bytes, str, Mapping], config: PreprocessConfig = PreprocessConfig()) -> AgentEvent:
  """Validate and clean one message; raises `InvalidEvent` with a reason code."""
  if isinstance(raw, (bytes, str)) and len(raw) > config.max_payload_bytes:
    raise InvalidEvent("payload_too_large", f"payload of {len(raw)} bytes exceeds {config.max_payload_bytes}")
  obj = decode_object(raw)
  unknown = sorted(set(obj) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
  if unknown:
    raise InvalidEvent("unknown_field", f"unknown field(s) {', '.join(repr(u[:64]) for u in unknown[:5])}; "
                       "put extra data under 'attributes'")
  session_id = _string_field(obj, "session_id", config.max_id_chars, required=True)
  if not session_id:
    raise InvalidEvent("empty_field", "field 'session_id' is empty")
  if "text" not in obj or obj["text"] is None:
    raise InvalidEvent("missing_field", "missing required field 'text'")
  if not isinstance(obj["text"], str):
    raise InvalidEvent("wrong_type", f"field 'text' must be a string, got {type(obj['text']).__name__}")
  original_text = obj["text"]
  text = normalize_text(original_text)
  if not text:
    raise InvalidEvent("empty_text", "field 'text' is empty after normalisation")
  if len(text) > config.max_text_chars:
    raise InvalidEvent("text_too_long", f"text has {len(text)} characters; at most {config.max_text_chars}")
  if "timestamp" not in obj or obj["timestamp"] is None:
    raise InvalidEvent("missing_field", "missing required field 'timestamp'")
  timestamp = parse_timestamp(obj["timestamp"])
  tenant = _string_field(obj, "tenant", config.max_id_chars, required=False)
  event_id = _string_field(obj, "event_id", config.max_id_chars, required=False)
  if not event_id:
    event_id = derive_event_id(session_id, timestamp, original_text)
  attributes = _attributes(obj, config)
  safe = scrub_event(text, session_id, tenant, event_id, attributes, raw_text=original_text, key=config.pii_key,
                     redaction=config.redaction, detect=config.detect_language)
  return AgentEvent(event_id=safe.event_id, session_id=safe.session_id, text=safe.text, timestamp=timestamp,
                    attributes=safe.attributes, tenant=safe.tenant, language=safe.language,
                    redactions=safe.redactions, normalization=safe.normalization,
                    trace_id=trace_id_of(safe.attributes, safe.event_id), payload_digest=payload_digest(obj))


def payload_digest(obj: Mapping) -> str:
  """A digest of the message as sent (before redaction), key order aside: what tells a
  redelivery (same digest) from a different event reusing an id."""
  canonical = json.dumps(obj, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=repr)
  return hashlib.blake2b(canonical.encode("ascii"), digest_size=16).hexdigest()


def trace_id_of(attributes: Mapping, event_id: str) -> str:
  """The trace id from a W3C `traceparent` attribute, else one derived from the event id."""
  m = _TRACEPARENT.match(str(attributes.get("traceparent", "")).strip().lower())
  if m and m.group(1) != "0" * 32:
    return m.group(1)
  return trace_id_for(event_id)


def parse_or_dead_letter(parse: Callable[[Any], Any], raw, counters: StageCounters):
  """`(parse(raw), None)`, or `(None, dead letter)`: the `InvalidEvent`'s reason, else
  `internal_error` for an error nobody foresaw (a bug to report), with the raw payload."""
  try:
    return parse(raw), None
  except InvalidEvent as e:
    return None, counters.dead_letter(e.reason, str(e), payload_text(raw))
  except Exception as e:  # pylint: disable=broad-except
    return None, counters.dead_letter("internal_error", f"{type(e).__name__}: {e}", payload_text(raw))


def payload_text(raw) -> str:
  """A raw message as valid UTF-8 text for a dead letter (undecodable bytes backslash-escaped)."""
  if isinstance(raw, (bytes, bytearray)):
    return bytes(raw).decode("utf-8", errors="backslashreplace")
  if isinstance(raw, str):
    return raw.encode("utf-8", "backslashreplace").decode("utf-8")
  try:
    return json.dumps(raw, ensure_ascii=True, default=str)
  except (TypeError, ValueError):
    return repr(raw)


class _PreprocessFn(beam.DoFn):

  def __init__(self, config: PreprocessConfig):
    self.config = config

  def setup(self):
    self.counters = StageCounters("preprocess")
    self.redacted = {}

  def process(self, raw):
    self.counters.inputs.inc()
    event, dead = parse_or_dead_letter(lambda r: parse_event(r, self.config), raw, self.counters)
    if dead is not None:
      yield dead
      return
    for kind, n in event.redactions.items():
      counter = self.redacted.get(kind)
      if counter is None:
        counter = self.redacted[kind] = metrics.counter(f"pii.redacted.{kind}")
      counter.inc(n)
    self.counters.outputs.inc()
    yield TimestampedValue(event, event.timestamp)


class Preprocess(Stage):
  """Raw messages (bytes, str or dict) -> `AgentEvent`s stamped with their event time."""

  def __init__(self, config: PreprocessConfig = PreprocessConfig()):
    super().__init__()
    self.config = config

  def expand_tagged(self, pcoll):
    return pcoll | "Parse" >> beam.ParDo(_PreprocessFn(self.config)).with_outputs(DEAD_LETTER, main=MAIN)
