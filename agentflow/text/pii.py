"""PII redaction: emails, phone numbers, card numbers, IBANs, IP addresses, US SSNs and
credentials become `[KIND]` placeholders before text is embedded, stored or logged.

Each kind is a candidate regex of bounded length plus a validator (Luhn, ISO 13616
mod-97, `ipaddress`, numbering plans through libphonenumber), so look-alikes such as
dates, times, prices, versions and order numbers are left alone. Kinds run in a fixed
order, most specific first, so a card number or IBAN is never half-taken as a phone.

Rules match on a probe: a copy of the text of the same length in which letters of
scripts written without spaces (CJK, kana, Hangul, Thai, ...) and their punctuation are
spaces and dash look-alikes are `-`. So `電話090-1234-5678です` has the boundaries
`電話 090-1234-5678 ` has, while a value glued to Latin letters or digits (a hash, an id)
is still not taken. Spans found on the probe are replaced in the text. Placeholders are
no word characters: a `]` before a value does not hide it.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from agentflow.text.phones import follows_reference, looks_like_date, phone_spans

KINDS = ("SECRET", "EMAIL", "IBAN", "CARD", "SSN", "IPV6", "IPV4", "PHONE")
DEFAULT_KINDS = KINDS
_MAX_PASSES = 3

Span = Tuple[int, int]


@dataclass(frozen=True)
class RedactionConfig:
  """Which kinds to redact and what replaces them.

  Kinds are applied in the fixed order of `KINDS` whatever the order given here.
  `placeholder_format` is formatted with `kind=`; the default gives `[EMAIL]`.
  """
  kinds: Tuple[str, ...] = DEFAULT_KINDS
  placeholder_format: str = "[{kind}]"

  def __post_init__(self):
    kinds = (self.kinds,) if isinstance(self.kinds, str) else self.kinds
    kinds = tuple(dict.fromkeys(str(k).strip().upper() for k in kinds))
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
      raise ValueError(f"unknown PII kind(s) {unknown}; known: {list(KINDS)}")
    object.__setattr__(self, "kinds", kinds)
    for kind in kinds:
      self.placeholder_format.format(kind=kind)

  def placeholder(self, kind: str) -> str:
    return self.placeholder_format.format(kind=kind)


def redact(text: str, config: RedactionConfig = RedactionConfig(),
           regions: Sequence[str] = ()) -> Tuple[str, Dict[str, int]]:
  """Replace every PII match in `text` with its placeholder; returns (text, counts per kind).

  `regions` (ISO 3166 codes, see `agentflow.text.phones.region_hints`) are the numbering
  plans national phone numbers are read in. A candidate that already contains a
  placeholder is never taken, and passes repeat (at most three) until one finds nothing,
  so the result is stable under redaction.
  """
  counts: Dict[str, int] = {}
  if not text:
    return text, counts
  rules = [(kind, _RULES[kind], config.placeholder(kind)) for kind in KINDS if kind in config.kinds]
  placeholders = [p for _, _, p in rules if p]
  probe = _probe(text)
  for _ in range(_MAX_PASSES):
    found = 0
    for kind, finders, placeholder in rules:
      for find in finders:
        spans = find(text, probe, placeholders, regions)
        text, probe, hits = _substitute(text, probe, spans, placeholder)
        if hits:
          counts[kind] = counts.get(kind, 0) + hits
          found += hits
    if not found:
      break
  return text, counts


def _substitute(text: str, probe: str, spans: Iterable[Span], placeholder: str) -> Tuple[str, str, int]:
  """Replace ascending, disjoint `spans` in both the text and its probe."""
  pieces: List[str] = []
  probes: List[str] = []
  last = hits = 0
  for start, end in spans:
    pieces += [text[last:start], placeholder]
    probes += [probe[last:start], placeholder]
    last = end
    hits += 1
  if not hits:
    return text, probe, 0
  pieces.append(text[last:])
  probes.append(probe[last:])
  return "".join(pieces), "".join(probes), hits


def _scan(pattern: re.Pattern, validate: _Validate,
          refuse: Optional[Callable[[str, int], bool]] = None) -> _Find:
  """A finder like `pattern.finditer`, but the validator picks the span to replace, and
  the scan resumes right after it: text a candidate over-reached into is seen again. A
  rejected candidate moves the scan on by one character only (boundaries skip the rest
  of its token), so it cannot hide a real match that starts inside it; every candidate
  has a bounded length, which keeps this linear. `refuse(text, start)` turns down a
  span by what the text (not the probe) has before it."""

  def find(text: str, probe: str, placeholders: Sequence[str], regions: Sequence[str]) -> Iterator[Span]:
    pos = 0
    openers = {p[0] for p in placeholders}
    while True:
      m = pattern.search(probe, pos)
      if m is None:
        return
      s = m.group()
      if any(c in s for c in openers) and any(p in s for p in placeholders):
        pos = m.end()
        continue
      span = validate(m)
      if span is not None and refuse is not None and refuse(text, span[0]):
        span = None
      if span is None:
        pos = m.start() + 1
        continue
      yield span
      pos = span[1]

  return find


def _phone_numbers(text: str, probe: str, placeholders: Sequence[str], regions: Sequence[str]) -> List[Span]:
  """Numbers libphonenumber reads as valid in one of the hinted regions (any, with `+`).
  It reads the text itself, which tells it where a number glued to CJK text ends better
  than the probe's spaces do."""
  return [_with_extension(probe, s) for s in phone_spans(text, regions, probe) if "[" not in text[s[0]:s[1]]]


_EXTENSION = re.compile(r"[ ]?(?i:x|ext\.?|extension)[ ]?\d{1,6}(?!\d)")


def _with_extension(probe: str, span: Span) -> Span:
  """A phone number's span with the extension written after it (`x1234`, `ext. 12`)."""
  m = _EXTENSION.match(probe, span[1])
  return (span[0], m.end()) if m else span


# The probe: same length as the text. Letters and punctuation of scripts written without
# spaces become spaces, so they bound values as spaces do; dash and dot look-alikes fold.
_UNSPACED = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1100, 0x11FF), (0x1780, 0x17FF), (0x2E80, 0x2FDF),
             (0x3000, 0x303F), (0x3040, 0x30FF), (0x3100, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
             (0xA960, 0xA97F), (0xAC00, 0xD7FF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF61, 0xFFEF),
             (0x20000, 0x2FA1F))
_UNSPACED_RUN = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _UNSPACED) + "]+")
_FOLD = {ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\u02d7\u30fc\uff70"}
_FOLD.update({ord(c): "." for c in "\u00b7\u2027\u2219\u22c5\u30fb\uff65"})
_FOLD.update({ord(c): "/" for c in "\u2044\u2215"})


def _probe(text: str) -> str:
  return _UNSPACED_RUN.sub(lambda m: " " * len(m.group()), text.translate(_FOLD))


def luhn_valid(digits: str) -> bool:
  """The Luhn (mod 10) check digit test used by payment card numbers."""
  if not digits.isascii():
    digits = "".join(str(int(d)) for d in digits)
  total = sum(map(int, digits[-1::-2])) + sum(map(int, digits[-2::-2].translate(_LUHN_DOUBLED)))
  return total % 10 == 0


_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")


def iban_valid(iban: str) -> bool:
  """ISO 13616: a registered country, its length, and mod-97 == 1."""
  code = _NON_ALNUM.sub("", iban).upper()
  if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+", code) or len(code) != IBAN_LENGTHS.get(code[:2]):
    return False
  return int("".join(str(int(c, 36)) for c in code[4:] + code[:4])) % 97 == 1


IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "BI": 27, "DJ": 27, "FK": 18, "HN": 28,
    "LY": 25, "MN": 20, "NI": 28, "OM": 23, "RU": 33, "SD": 18, "SO": 23, "YE": 30,
}

_Validate = Callable[[re.Match], Optional[Span]]
_Find = Callable[[str, str, Sequence[str], Sequence[str]], Iterable[Span]]


def _whole(m: re.Match) -> Optional[Span]:
  return m.span()


def _longest_prefix(m: re.Match, separators: str, ok: Callable[[str], Optional[bool]]) -> Optional[Span]:
  """The longest prefix of the match, cut at a separator, that `ok` accepts; `ok`
  returns None to stop trying shorter ones."""
  s = m.group()
  cuts = [len(s)] + [i for i in range(len(s) - 1, 0, -1) if s[i] in separators and s[i - 1] not in separators]
  for cut in cuts:
    verdict = ok(s[:cut])
    if verdict is None:
      break
    if verdict:
      return m.start(), m.start() + cut
  return None


_SECRET = re.compile(r"""
    (?<![\w-])(?:[A-Za-z0-9]+[_-])*
        (?i:(?:api|access|secret|private|client)[_-]?(?:key|secret)|apikey
           |(?:access|auth|refresh|bearer|session)[_-]?token|token|secret|passw(?:or)?d|pwd)
        ["']?[ \t]{0,3}[:=][ \t]{0,3}["']?(?P<value>[^\s"',;]{6,})
  | (?<!\w)(?i:bearer)[ \t]+(?P<token>[A-Za-z0-9._~+/-]{16,}=*)
  | (?<![\w-])(?:[sprk]k_(?:live|test)_[A-Za-z0-9]{16,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{36,}
                |github_pat_\w{22,}|AKIA[0-9A-Z]{16}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}
                |eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})
""", re.X)


def _secret(m: re.Match) -> Optional[Span]:
  """Only the value is replaced; the key name stays so the text still reads."""
  for group in ("value", "token"):
    if m.group(group):
      return m.span(group)
  return m.span()


# `@` and `.` may be written `[at]`, `(at)`, `[dot]`, `(dot)`, as addresses on web pages often are.
_ATEXT = r"\w.!#$%&'*+/=?^`{|}~\-"
_AT = r"(?:@|[ ]?(?i:\[at\]|\(at\))[ ]?)"
_DOT = r"(?:\.|[ ]?(?i:\[dot\]|\(dot\))[ ]?)"
_EMAIL = re.compile(rf"(?<![{_ATEXT}])[{_ATEXT}]{{1,64}}{_AT}"
                    rf"(?:[^\W_][\w-]{{0,62}}{_DOT}){{1,126}}[^\W\d_][\w-]{{0,62}}")

_IBAN = re.compile(r"(?<![^\W_])[A-Za-z]{2}[0-9]{2}(?:(?:[ ]?[.\-/][ ]?|[ ])?[A-Za-z0-9]{1,4}){3,8}")


def _iban(m: re.Match) -> Optional[Span]:
  """Cut where the country's registered length ends; the cut must fall between tokens."""
  s, text = m.group(), m.string
  length = IBAN_LENGTHS.get(s[:2].upper())
  ends = [i + 1 for i, c in enumerate(s) if c.isalnum()]
  if not length or length > len(ends):
    return None
  end = m.start() + ends[length - 1]
  if end < len(text) and (text[end].isalnum() or text[end] == "_"):
    return None
  return (m.start(), end) if iban_valid(text[m.start():end]) else None


_IBAN_SHAPE = re.compile(r"(?<![^\W_])([A-Z]{2})[0-9]{2}(?:[ .\-][A-Z0-9]{4})+(?:[ .\-][A-Z0-9]{1,3})?(?![^\W_])")


def _continues_iban(m: re.Match) -> bool:
  """Digits inside a token shaped exactly like an IBAN (grouped by four, its country's
  length) that failed the checksum belong to it, not to a card or phone of their own."""
  text, start = m.string, m.start()
  for shape in _IBAN_SHAPE.finditer(text, max(0, start - 45), start + 50):
    if shape.start() < start < shape.end():
      return len(_NON_ALNUM.sub("", shape.group())) == IBAN_LENGTHS.get(shape.group(1))
  return False


# Groups of digits joined by one separator (space, `.`, `-`, `/`, `_`, or one of those
# between spaces); an issuer range starts with 2-6.
_CARD = re.compile(r"""
    (?<![\w+])(?<!\d[.,/-])
    (?=[2-6]|1800|2131)
    \d{1,19}+(?:(?:[ ]?[.\-/_][ ]?|[ ])\d{1,19}+){0,9}
    (?!\w)
""", re.X)


def issuer_length(digits: str) -> bool:
  """Whether a card number of this length exists in the issuer range its first digits name
  (Visa 13, 16 or 19; Mastercard 16; Amex 15; Diners 14-19; Maestro 12-19; others 16-19):
  most order and invoice numbers that pass Luhn by chance fail it."""
  n = len(digits)
  if digits.startswith(_MAESTRO):
    return 12 <= n <= 19
  if digits[0] == "4":
    return n in (13, 16, 19)
  if digits[:2] in ("34", "37"):
    return n == 15
  if digits.startswith(("2131", "1800")):
    return n == 15
  if "51" <= digits[:2] <= "55" or "2221" <= digits[:4] <= "2720":
    return n == 16
  if digits[:2] in ("36", "38", "39") or "300" <= digits[:3] <= "305" or digits.startswith("3095"):
    return 14 <= n <= 19
  return 16 <= n <= 19


def _card(m: re.Match) -> Optional[Span]:
  """The longest run of leading groups holding 13-19 digits (12 for Maestro's ranges,
  unless right after another group of digits) that passes Luhn and fits the issuer
  range's lengths (`issuer_length`); every group but the
  last has four to six digits, as issuers print them. Trailing groups (an expiry date,
  say) are left out. Groups that continue a run of four-digit groups (a 22-digit
  tracking number `9400 1234 ...`) are not a card of their own."""
  if _AFTER_GROUP_OF_FOUR.search(m.string, max(0, m.start() - 6), m.start()):
    return None
  groups = [g.span() for g in _DIGIT_RUN.finditer(m.group())]
  digits, best = "", None
  after_group = m.start() >= 2 and m.string[m.start() - 1] == " " and m.string[m.start() - 2].isdigit()
  for k, (start, end) in enumerate(groups):
    if k and not 4 <= groups[k - 1][1] - groups[k - 1][0] <= 6:
      break
    digits += m.group()[start:end]
    if len(digits) > 19:
      break
    if (len(digits) >= 13 or len(digits) == 12 and digits.startswith(_MAESTRO) and not after_group) and \
        issuer_length(digits) and luhn_valid(digits):
      best = end
  if best is None or _continues_iban(m):
    return None
  return m.start(), m.start() + best


def _reference_number(text: str, start: int) -> bool:
  """Digits written without separators right after a word naming an order or invoice
  (`invoice 5845086613315`) are that number, not a card; `card #4111...` still is one."""
  compact = _DIGIT_RUN.match(text, start)
  return compact is not None and compact.end() - start >= 12 and follows_reference(text, start, signs=False)


_AFTER_GROUP_OF_FOUR = re.compile(r"(?<!\d)\d{4}[ ]$")
_NON_DIGITS = re.compile(r"\D+")
_MAESTRO = ("5018", "5020", "5038", "56", "57", "58", "6304", "6390", "6759", "6761", "6762", "6763")
_DIGIT_RUN = re.compile(r"\d+")
_NON_ALNUM = re.compile(r"[\W_]+")


_SSN = re.compile(r"(?<![\w+])(?<!\d[.,-])"
                  r"(?!000|666|9)[0-9]{3}(?P<sep>[- .])(?!00)[0-9]{2}(?P=sep)(?!0000)[0-9]{4}(?!\w)(?![.,-]\d)")

_IPV6 = re.compile(r"""
    (?<![\w.])(?<![0-9A-Fa-f:]:)(?=[0-9A-Fa-f.]{0,39}:[0-9A-Fa-f.]{0,39}:)
    [0-9A-Fa-f:]{2,39}(?:(?<=:)[0-9]{1,3}(?:\.[0-9]{1,3}){3})?(?:%[0-9A-Za-z]{1,16})?
    (?![\w:])(?!\.\d)
""", re.X)


def _ipv6(m: re.Match) -> Optional[Span]:
  """Valid per `ipaddress`; a compressed form also needs two groups, one of at least
  three hex digits, so ratios and scopes such as `12::34` or `a::b` stay."""
  address = m.group().split("%")[0]
  try:
    ipaddress.IPv6Address(address)
  except ValueError:
    return None
  groups = [g for g in address.split(":") if g]
  if "::" in address and (len(groups) < 2 or max(len(g) for g in groups) < 3):
    return None
  return m.span()


# Octets may carry leading zeros (`010.001.002.003`); dots may be defanged (`10[.]0[.]0[.]1`).
_OCTET = r"(?:(?=[0-9]{1,3}(?![0-9]))0{0,2}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))"
_IP_DOT = r"(?:\.|\[\.\]|\(\.\)|\{\.\}|(?i:\[dot\]|\(dot\)))"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:{_IP_DOT}{_OCTET}){{3}}(?!\w)(?!\.[0-9])")
# Host names that spell the address with dashes or underscores: `ip-10-1-2-3`.
_IPV4_HOST = re.compile(rf"(?<![A-Za-z0-9])(?i:ip)(?P<sep>[-_])(?P<address>{_OCTET}(?:(?P=sep){_OCTET}){{3}})(?![0-9])")


def _ipv4_host(m: re.Match) -> Optional[Span]:
  return m.span("address")


_PHONE = re.compile(r"""
    (?<![\w+])(?<![\d][.\-/])
    (?: (?P<intl>(?:\+|(?<!\d[ ])00(?=[1-9]))[1-9]\d{0,2}(?:[ .-]?\(0\))?(?:[ .\-/]?(?:\(\d{1,6}\)|\d{1,6})){1,6}+)
      | (?P<us>(?:1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4})
      | (?P<dashed>\d{2,4}-\d{3,4}-\d{4}|(?:\(\d{2}\)|\d{2})[ ]?\d{4,5}-\d{4}|0[1-9]\d{8,10}
                  |1[3-9]\d(?P<cn>[ -]?)\d{4}(?P=cn)\d{4})
      | (?<!\d[ ])(?P<national>(?:\(0[1-9]\d{0,3}\)|0[1-9]\d{0,4})[ /.-]\d{2,8}(?:[ /.-]\d{2,8}){0,3}+) )
    (?!\d)(?![.\-/]\d)
""", re.X)


def _phone(m: re.Match) -> Optional[Span]:
  """US shapes, East Asian dashed groups (`03-1234-5678`, `61-3930-3113`), Brazil's
  `(11) 98765-4321`, Chinese mobiles (`131 7866 3743`, `13178663743`) and digits-only
  trunk-prefixed numbers (`09052917633`) are exact: they catch numbers libphonenumber
  has no region for (text of another language, or none). International (+ or 00, 7-15
  digits) and trunk-prefixed national numbers (0..., 9-12 digits, one separator between
  groups) may have run into a following number, so the longest prefix with a valid
  digit count wins. Order and tracking numbers have these shapes too: `_RULES` turns
  down any right after a word naming them (`phones.follows_reference`)."""
  if m.group("us") or m.group("dashed"):
    span = m.span()
  else:
    low, high = (7, 15) if m.group("intl") else (9, 12)
    prefix = 2 if m.group().startswith("00") else 0

    def ok(candidate: str) -> Optional[bool]:
      digits = len(_NON_DIGITS.sub("", candidate)) - prefix
      return None if digits < low else digits <= high

    span = _longest_prefix(m, " .-/", ok)
  if span is None or _continues_iban(m) or looks_like_date(m.string[span[0]:span[1]]):
    return None
  return _with_extension(m.string, span)


# Each kind's finders, run in order. Phones: libphonenumber's reading first, then shapes
# that need no numbering plan (US, international, trunk-prefixed national).
_RULES: Dict[str, Tuple[_Find, ...]] = {
    "SECRET": (_scan(_SECRET, _secret),),
    "EMAIL": (_scan(_EMAIL, _whole),),
    "IBAN": (_scan(_IBAN, _iban),),
    "CARD": (_scan(_CARD, _card, refuse=_reference_number),),
    "SSN": (_scan(_SSN, _whole),),
    "IPV6": (_scan(_IPV6, _ipv6),),
    "IPV4": (_scan(_IPV4, _whole), _scan(_IPV4_HOST, _ipv4_host)),
    "PHONE": (_phone_numbers, _scan(_PHONE, _phone, refuse=follows_reference)),
}
