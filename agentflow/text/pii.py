"""PII redaction: emails, phone numbers, card numbers, IBANs, IP addresses, US SSNs and
credentials become `[KIND]` placeholders before text is embedded, stored or logged.

Each kind is a linear-time candidate regex plus a validator (Luhn, ISO 13616 mod-97,
`ipaddress`, numbering-plan shapes), so look-alikes such as dates, times, prices,
versions and order numbers are left alone. Kinds run in a fixed order, most specific
first, so a card number or IBAN is never half-taken as a phone number. Boundaries
treat `]` like a word character, so a placeholder bounds its neighbours as the token it
replaced did and redacting twice changes nothing.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

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


def redact(text: str, config: RedactionConfig = RedactionConfig()) -> Tuple[str, Dict[str, int]]:
  """Replace every PII match in `text` with its placeholder; returns (text, counts per kind).

  A candidate that already contains a placeholder is never taken, and passes repeat
  (at most three) until one finds nothing, so the result is stable under redaction.
  """
  counts: Dict[str, int] = {}
  if not text:
    return text, counts
  rules = [(kind, _RULES[kind], config.placeholder(kind)) for kind in KINDS if kind in config.kinds]
  placeholders = [p for _, _, p in rules if p]
  for _ in range(_MAX_PASSES):
    found = 0
    for kind, (pattern, validate), placeholder in rules:
      text, hits = _substitute(text, pattern, validate, placeholder, placeholders)
      if hits:
        counts[kind] = counts.get(kind, 0) + hits
        found += hits
    if not found:
      break
  return text, counts


def _substitute(text: str, pattern: re.Pattern, validate: _Validate, placeholder: str,
                placeholders: Sequence[str]) -> Tuple[str, int]:
  """Like `pattern.sub`, but the validator picks the span to replace, and the scan
  resumes right after it: text a candidate over-reached into is seen again. A rejected
  candidate moves the scan on by one character only (boundaries skip the rest of its
  token), so it cannot hide a real match that starts inside it; every candidate has a
  bounded length, which keeps this linear."""
  pieces: List[str] = []
  last = pos = hits = 0
  openers = {p[0] for p in placeholders}
  while True:
    m = pattern.search(text, pos)
    if m is None:
      break
    s = m.group()
    if any(c in s for c in openers) and any(p in s for p in placeholders):
      pos = m.end()
      continue
    span = validate(m)
    if span is None:
      pos = m.start() + 1
      continue
    pieces += [text[last:span[0]], placeholder]
    last = pos = span[1]
    hits += 1
  if not hits:
    return text, 0
  pieces.append(text[last:])
  return "".join(pieces), hits


def luhn_valid(digits: str) -> bool:
  """The Luhn (mod 10) check digit test used by payment card numbers."""
  if not digits.isascii():
    digits = "".join(str(int(d)) for d in digits)
  total = sum(map(int, digits[-1::-2])) + sum(map(int, digits[-2::-2].translate(_LUHN_DOUBLED)))
  return total % 10 == 0


_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")


def iban_valid(iban: str) -> bool:
  """ISO 13616: a registered country, its length, and mod-97 == 1."""
  code = re.sub(r"\s+", "", iban).upper()
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
    (?<![\w\]-])(?:[A-Za-z0-9]+[_-])*
        (?i:(?:api|access|secret|private|client)[_-]?(?:key|secret)|apikey
           |(?:access|auth|refresh|bearer|session)[_-]?token|token|secret|passw(?:or)?d|pwd)
        ["']?[ \t]{0,3}[:=][ \t]{0,3}["']?(?P<value>[^\s"',;]{6,})
  | (?<![\w\]])(?i:bearer)[ \t]+(?P<token>[A-Za-z0-9._~+/-]{16,}=*)
  | (?<![\w\]])(?:[sprk]k_(?:live|test)_[A-Za-z0-9]{16,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{36,}
                 |github_pat_\w{22,}|AKIA[0-9A-Z]{16}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}
                 |eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,})
""", re.X)


def _secret(m: re.Match) -> Optional[Span]:
  """Only the value is replaced; the key name stays so the text still reads."""
  for group in ("value", "token"):
    if m.group(group):
      return m.span(group)
  return m.span()


_ATEXT = r"\w.!#$%&'*+/=?^`{|}~\-"
_EMAIL = re.compile(rf"(?<![{_ATEXT}\]])[{_ATEXT}]{{1,64}}@"
                    rf"(?:[^\W_][\w-]{{0,62}}\.){{1,126}}[^\W\d_][\w-]{{0,62}}")

_IBAN = re.compile(r"(?<![^\W_])(?<!\])[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]{1,4}){3,8}")


def _iban(m: re.Match) -> Optional[Span]:
  """Cut where the country's registered length ends; the cut must fall between tokens."""
  s, text = m.group(), m.string
  length = IBAN_LENGTHS.get(s[:2].upper())
  ends = [i + 1 for i, c in enumerate(s) if c != " "]
  if not length or length > len(ends):
    return None
  end = m.start() + ends[length - 1]
  if end < len(text) and (text[end].isalnum() or text[end] == "_"):
    return None
  return (m.start(), end) if iban_valid(text[m.start():end]) else None


_IBAN_SHAPE = re.compile(r"(?<![^\W_])([A-Z]{2})[0-9]{2}(?: [A-Z0-9]{4})+(?: [A-Z0-9]{1,3})?(?![^\W_])")


def _continues_iban(m: re.Match) -> bool:
  """Digits inside a token shaped exactly like an IBAN (grouped by four, its country's
  length) that failed the checksum belong to it, not to a card or phone of their own."""
  text, start = m.string, m.start()
  for shape in _IBAN_SHAPE.finditer(text, max(0, start - 45), start + 50):
    if shape.start() < start < shape.end():
      return len(shape.group().replace(" ", "")) == IBAN_LENGTHS.get(shape.group(1))
  return False


_CARD = re.compile(r"""
    (?<![\w\]])(?<![\d\]][.,-])
    (?![01789])
    (?: \d{4}(?P<sep>[ -]?)\d{4}(?P=sep)\d{4}(?P=sep)\d{1,4}(?:(?P=sep)\d{1,3})?
      | \d{4}(?P<sep2>[ -])\d{6}(?P=sep2)\d{4,5} )
    (?!\w)(?![.,-]\d)
""", re.X)


def _card(m: re.Match) -> Optional[Span]:
  """13-19 digits from an issuer range (leading 2-6) passing Luhn; a trailing group of
  at most three digits (an expiry month, say) may be dropped."""
  s = m.group()
  ends = [len(s)]
  cut = max(s.rfind(" "), s.rfind("-"))
  if 0 < cut and len(s) - cut <= 4:
    ends.append(cut)
  for end in ends:
    digits = _NON_DIGITS.sub("", s[:end])
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
      return None if _continues_iban(m) else (m.start(), m.start() + end)
  return None


_NON_DIGITS = re.compile(r"\D+")


_SSN = re.compile(r"(?<![\w\]])(?<![\d\]][.,-])"
                  r"(?!000|666|9)[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?!\w)(?![.,-]\d)")

_IPV6 = re.compile(r"""
    (?<![\w:.\]])(?=[0-9A-Fa-f.]{0,39}:[0-9A-Fa-f.]{0,39}:)
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


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?<![\w.\]]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w)(?!\.[0-9])")

_PHONE = re.compile(r"""
    (?<![\w+\]])(?<![\d\]][.\-/])
    (?: (?P<intl>(?:\+|00(?=[1-9]))[1-9]\d{0,2}(?:[ .-]?\(0\))?(?:[ .\-/]?(?:\(\d{1,6}\)|\d{1,6})){1,6}+)
      | (?P<us>(?:1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4})
      | (?P<national>(?:\(0[1-9]\d{0,3}\)|0[1-9]\d{0,3})(?P<sep>[ /.-])\d{2,8}(?:(?P=sep)\d{2,8}){0,3}+) )
    (?!\d)(?![.\-/]\d)
""", re.X)


def _phone(m: re.Match) -> Optional[Span]:
  """US shapes are exact. International (+ or 00, 7-15 digits) and trunk-prefixed
  national numbers (0..., 9-12 digits, one separator kind) may have run into a following
  number, so the longest prefix with a valid digit count wins."""
  if m.group("us"):
    span = m.span()
  else:
    low, high = (7, 15) if m.group("intl") else (9, 12)
    prefix = 2 if m.group().startswith("00") else 0

    def ok(candidate: str) -> Optional[bool]:
      digits = len(_NON_DIGITS.sub("", candidate)) - prefix
      return None if digits < low else digits <= high

    span = _longest_prefix(m, " .-/", ok)
  return None if span is None or _continues_iban(m) else span


_RULES: Dict[str, Tuple[re.Pattern, _Validate]] = {
    "SECRET": (_SECRET, _secret),
    "EMAIL": (_EMAIL, _whole),
    "IBAN": (_IBAN, _iban),
    "CARD": (_CARD, _card),
    "SSN": (_SSN, _whole),
    "IPV6": (_IPV6, _ipv6),
    "IPV4": (_IPV4, _whole),
    "PHONE": (_PHONE, _phone),
}
