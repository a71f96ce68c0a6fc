"""PII handling is linear in every field: a megabyte built to make rules rescan, or to make
libphonenumber read as much as it can, in the text, an attribute value or an id, costs at
most a fixed multiple of a megabyte of support prose in the same field, and twice the
input costs about twice the CPU (a quadratic rule would cost four times).

Events go through `parse_event` (normalisation, language detection, redaction,
pseudonyms) with the length caps lifted and a `locale` attribute, so phone numbers are
read in four numbering plans. CPU time, not wall time; each figure is the least of a
few tries, so a loaded machine does not fail it."""
import random
import time

import pytest

from agentflow.stages.preprocess import PreprocessConfig, parse_event

SIZE = 1_000_000
CONFIG = PreprocessConfig(max_text_chars=4 * SIZE, max_id_chars=4 * SIZE, max_attribute_chars=4 * SIZE,
                          max_payload_bytes=16 * SIZE, pii_key="test")
HINTS = {"locale": "en_US"}  # regions US, GB, IN, PH
# Digit-dense text costs libphonenumber parses (a few per number it reads): more per
# character than prose, but a bounded amount per digit group.
RATIO = 15.0
DOUBLING = 3.0
TRIES = 3

PLAIN = ("Hello, I ordered 3 items on 2026-03-02 for $12.99 and version 2.3.1 crashed at 10:30; "
         "please help me reset my password before the meeting. ")


def _phones(n: int) -> str:
  """Distinct valid US, UK and Indian numbers, as many as fit: the most work per
  character libphonenumber is given."""
  rng = random.Random(7)
  parts, size = [], 0
  while size < n:
    part = rng.choice([f"call {rng.choice(['212', '415', '646', '312'])}-{rng.randint(200, 999)}-"
                       f"{rng.randint(0, 9999):04d} ",
                       f"020 {rng.randint(7000, 8999)} {rng.randint(0, 9999):04d}, ",
                       f"{rng.randint(70000, 99999)} {rng.randint(0, 99999):05d}; "])
    parts.append(part)
    size += len(part)
  return "".join(parts)


def _random_groups(n: int) -> str:
  rng = random.Random(3)
  return " ".join(f"{rng.randint(0, 9999):04d}" for _ in range(n // 5 + 1))


def _repeat(unit: str):
  return lambda n: unit * (n // len(unit) + 1)


SHAPES = {
    "digits-with-separators": _repeat("12-34 56.78/90 (1) "),
    "random-digit-groups": _random_groups,
    "distinct-phones": _phones,
    "dash-digits": _repeat("1-"),
    "jwt-dashes": _repeat("eyJ-"),
    "at-signs": _repeat("a@"),
    "email-labels": lambda n: "x@" + "a." * (n // 2 + 1),
    "cjk-glued-digits": _repeat("番号4111111111111111です电话13812345678号码"),
    "invisible-chars": _repeat("a\u200b1\u2060\u00ad2\u202e"),
    "placeholder-brackets": _repeat("[EMAIL][PHONE]1 [x]2 "),
    "iban-like-alnum": _repeat("DE89AB12CD34EF56GH78 DE89 3704 0044 "),
    "ip-like-dots": _repeat("1.2.3.4.5.6.7.8.010.001.002.003 ip-10-1-2-"),
    "secret-keys": _repeat("token:"),
    "card-groups": _repeat("4111 "),
}
# Shapes that are cheap for every rule, run through the text only.
TEXT_ONLY = {
    "dotted-digits": _repeat("1."),
    "spaced-digits": _repeat("1 "),
    "colons": _repeat("a:"),
    "iban-groups": _repeat("AB12 "),
    "trunk-pairs": _repeat("01 "),
    "long-word": lambda n: "a" * n,
    "long-number": lambda n: "4" * n,
    "snake-case": lambda n: "a_" * (n // 2 - 4) + "password",
    "dotted-groups": _repeat("4111."),
}
FIELDS = ("text", "attribute", "session_id")
CASES = [(shape, field) for shape in sorted(SHAPES) for field in FIELDS] + [(shape, "text") for shape in sorted(TEXT_ONLY)]


def _event(field: str, value: str) -> dict:
  event = {"session_id": "s-1", "text": "hello there", "timestamp": 1, "attributes": dict(HINTS)}
  if field == "text":
    event["text"] = value
  elif field == "attribute":
    event["attributes"]["note"] = value
  else:
    event[field] = value
  return event


def _cpu(field: str, value: str) -> float:
  start = time.process_time()
  parse_event(_event(field, value), CONFIG)
  return time.process_time() - start


_plain_cost = {}


def _plain(field: str) -> float:
  if field not in _plain_cost:
    text = (PLAIN * (SIZE // len(PLAIN) + 1))[:SIZE]
    _plain_cost[field] = min(_cpu(field, text) for _ in range(2))
  return _plain_cost[field]


@pytest.mark.parametrize("shape, field", CASES)
def test_megabyte_adversarial_field_is_linear(shape, field):
  value = {**SHAPES, **TEXT_ONLY}[shape](SIZE)[:SIZE]
  assert len(value) == SIZE
  halves, fulls = [], []
  for _ in range(TRIES):
    halves.append(_cpu(field, value[:SIZE // 2]))
    fulls.append(_cpu(field, value))
    half, full, plain = min(halves), min(fulls), _plain(field)
    if full < RATIO * plain and full < DOUBLING * half:
      break
  assert full < RATIO * plain, f"{shape} in {field}: {full:.2f}s CPU vs {plain:.2f}s for plain prose"
  assert full < DOUBLING * max(half, 0.02 * plain), f"{shape} in {field}: {half:.2f}s for half, {full:.2f}s for all"
