"""Phone numbers found by libphonenumber (the `phonenumbers` port), with region hints.

A national number ("090-1234-5678", "06 12 34 56 78", "13812345678") only means
something in its country's numbering plan, so the matcher is run once per hinted region:
from the text's detected language and from attributes such as `country` or `locale`.
Numbers written with `+` or `00` are found whatever the region. Only numbers valid in
the plan are taken (`Leniency.VALID`), which keeps dates, prices and order numbers.

The matcher gives up after a fixed number of tries per text and costs much per digit,
so it only reads bounded windows around runs of digits short enough to hold a number:
its tries never run out before a real number, and the cost stays linear.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

Span = Tuple[int, int]

# Regions assumed for a detected language (ISO 639-1): the countries whose numbering plan
# its text most likely uses. English covers the plans Faker and support traffic see most.
LANGUAGE_REGIONS = {
    "en": ("US", "GB", "IN", "PH"), "ja": ("JP",), "zh": ("CN", "TW"), "ko": ("KR",), "hi": ("IN",),
    "pt": ("BR", "PT"), "it": ("IT",), "fr": ("FR", "BE", "CH"), "tr": ("TR",), "tl": ("PH",), "de": ("DE", "AT", "CH"),
    "es": ("ES", "MX"), "nl": ("NL", "BE"), "pl": ("PL",), "ru": ("RU",), "sv": ("SE",), "vi": ("VN",),
    "th": ("TH",), "id": ("ID",), "ms": ("MY",), "ar": ("SA", "EG", "AE"), "bn": ("BD", "IN"), "ur": ("PK",),
}
# Attribute keys whose value may name a region ("PH"), a locale ("fil_PH", "pt-BR") or a language.
HINT_ATTRIBUTES = ("country", "country_code", "region", "locale", "lang", "language", "market", "phone_region")
_LOCALE = re.compile(r"([A-Za-z]{2,3})(?:[_-]([A-Za-z]{2}))?")
_DIGIT = re.compile(r"\d")
_RUN = re.compile(r"[+(]*\d[\d ()./\-]*")
MIN_DIGITS = 7  # a number with its area code or trunk prefix; shorter runs are local extensions
MAX_RUN_DIGITS = 40
# Dates and references that start with a year (`1993-214784`), which some plans read as
# numbers, and numbers right after `#` or `№` (orders, tickets).
_NOT_A_PHONE = re.compile(r"(?:19|20)\d\d[-./ ]\d|[0-3]?\d([-./])[01]?\d\1(?:\d{4}|\d{2})(?!\d|\1\d)")
_REFERENCE = re.compile(r"[#№]\s?$")
_DATE = re.compile(r"(?:\d{4}([-./])[01]?\d\1[0-3]?\d|[0-3]?\d([-./])[01]?\d\2(?:\d{2}|\d{4}))(?: [0-2]?\d)?")
CONTEXT = 16
WINDOW = 1024


def region_hints(language: str = "", attributes: Optional[Mapping] = None,
                 extra: Sequence[str] = ()) -> Tuple[str, ...]:
  """Regions to try, most specific first: attribute hints, then the language's, then `extra`."""
  import phonenumbers
  regions: List[str] = []
  for key, value in (attributes or {}).items():
    if str(key).lower() in HINT_ATTRIBUTES and isinstance(value, str):
      m = _LOCALE.fullmatch(value.strip())
      if m:
        region, lang = (m.group(2) or "").upper(), m.group(1).lower()
        if not region and len(lang) == 2 and lang.upper() in phonenumbers.SUPPORTED_REGIONS:
          region = lang.upper()
        regions += [region] if region else []
        regions += list(LANGUAGE_REGIONS.get(lang, ()))
  regions += list(LANGUAGE_REGIONS.get((language or "").lower(), ()))
  regions += [r.upper() for r in extra]
  return tuple(r for r in dict.fromkeys(regions) if r in phonenumbers.SUPPORTED_REGIONS)


def phone_spans(text: str, regions: Iterable[str]) -> List[Span]:
  """Spans of valid phone numbers for any of `regions` (numbers written with `+` too).
  With no region there is nothing to read that `agentflow.text.pii`'s international
  shape does not already take, so the matcher is not run."""
  from phonenumbers import Leniency, PhoneNumberMatcher
  found: Set[Span] = set()
  regions = tuple(regions)
  if not regions:
    return []
  for lo, hi in _windows(text):
    window = text[lo:hi]
    for region in regions:
      for m in PhoneNumberMatcher(window, region, leniency=Leniency.VALID, min_candidate_length=MIN_DIGITS):
        if not looks_like_date(m.raw_string) and not _REFERENCE.search(window, 0, m.start):
          found.add(_balanced(text, lo + m.start, lo + m.end))
  return _disjoint(found)


def looks_like_date(candidate: str) -> bool:
  """Whether a number starts like a date or a year-prefixed reference (`05.03.2024 18`,
  `1993-214784`): some plans read those as phone numbers."""
  return bool(_NOT_A_PHONE.match(candidate))


def _windows(text: str) -> Iterator[Span]:
  """Bounded windows around runs of digits and phone punctuation holding `MIN_DIGITS` to
  `MAX_RUN_DIGITS` digits, dates aside, with some context for the matcher's own boundary checks.
  Longer runs (tables, digit floods) are not one phone number; the shapes in
  `agentflow.text.pii` still see them."""
  lo = hi = -1
  for run in _RUN.finditer(text):
    digits = len(_DIGIT.findall(run.group()))
    if not MIN_DIGITS <= digits <= MAX_RUN_DIGITS or _DATE.fullmatch(run.group().strip(" ./-")):
      continue
    start, end = max(0, run.start() - CONTEXT), min(len(text), run.end() + CONTEXT)
    if start <= hi and end - lo <= WINDOW:
      hi = end
      continue
    if hi > lo:
      yield lo, hi
    lo, hi = start, end
  if hi > lo:
    yield lo, hi


def _balanced(text: str, start: int, end: int) -> Span:
  """Drop an opening parenthesis the number does not close (`(+1 415 555 0134)`)."""
  while start < end and text[start] == "(" and text.count("(", start, end) > text.count(")", start, end):
    start += 1
  return start, end


def _disjoint(spans: Set[Span]) -> List[Span]:
  """Longest first wins where two regions read overlapping numbers."""
  out: List[Span] = []
  for s, e in sorted(spans, key=lambda sp: (sp[0], -sp[1])):
    if out and s < out[-1][1]:
      if e > out[-1][1]:
        out[-1] = (out[-1][0], e)
      continue
    out.append((s, e))
  return out
