"""CPU cost of PII handling on adversarial inputs: each shape's megabyte through
`parse_event` in a field, as a ratio to a megabyte of support prose in the same field,
and the ratio of the whole to its first half (2 for linear rules, 4 for quadratic ones).

  python -m benchmarks.pii_cost [--fields text,attribute,session_id] [--size 1000000]

Events carry a `locale` attribute, so phone numbers are read in four numbering plans.
The shapes are those `tests/test_pii_linear_time.py` bounds.
"""
from __future__ import annotations

import argparse
import random
import time

from agentflow.stages.preprocess import PreprocessConfig, parse_event

from benchmarks.common import save

SIZE = 1_000_000
CONFIG = PreprocessConfig(max_text_chars=4 * SIZE, max_id_chars=4 * SIZE, max_attribute_chars=4 * SIZE,
                          max_payload_bytes=16 * SIZE, pii_key="benchmark")
HINTS = {"locale": "en_US"}  # regions US, GB, IN, PH

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
# Shapes that are cheap for every rule; the test runs them through the text only.
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


def event(field: str, value: str) -> dict:
  event = {"session_id": "s-1", "text": "hello there", "timestamp": 1, "attributes": dict(HINTS)}
  if field == "text":
    event["text"] = value
  elif field == "attribute":
    event["attributes"]["note"] = value
  else:
    event[field] = value
  return event


def cpu(field: str, value: str) -> float:
  """CPU seconds `parse_event` takes on an event with `value` in `field`."""
  start = time.process_time()
  parse_event(event(field, value), CONFIG)
  return time.process_time() - start


def plain(size: int) -> str:
  return (PLAIN * (size // len(PLAIN) + 1))[:size]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--fields", default="text")
  parser.add_argument("--size", type=int, default=SIZE)
  args = parser.parse_args(argv)
  result = {"size": args.size}
  for field in args.fields.split(","):
    prose = min(cpu(field, plain(args.size)) for _ in range(2))
    print(f"{field}: {prose:.2f} s CPU for {args.size:,} characters of prose")
    rows = {"prose_s": round(prose, 3)}
    shapes = {**SHAPES, **TEXT_ONLY} if field == "text" else SHAPES
    for name, make in sorted(shapes.items()):
      value = make(args.size)[:args.size]
      half, full = cpu(field, value[:args.size // 2]), cpu(field, value)
      rows[name] = {"cpu_s": round(full, 3), "vs_prose": round(full / prose, 2),
                    "vs_half": round(full / max(half, 1e-3), 2)}
      print(f"  {name:24} {full:6.2f} s  {full / prose:5.1f}x prose  {full / max(half, 1e-3):4.2f}x its half")
    result[field] = rows
  print(save("pii_cost", result))
  return result


if __name__ == "__main__":
  main()


