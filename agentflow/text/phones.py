"""Phone numbers found by libphonenumber (the `phonenumbers` port), with region hints.

A national number ("090-1234-5678", "06 12 34 56 78", "13812345678") only means
something in its country's numbering plan, so candidates are read once per hinted region:
from the text's detected language and from attributes such as `country` or `locale`.
Numbers written with `+` or `00` are read whatever the region. Only numbers valid in
the plan are taken (libphonenumber's `Leniency.VALID`), which keeps dates, prices and
order numbers.

`PhoneNumberMatcher` is not used: it tries many sub-spans per candidate, each through a
full parse, so text dense with digits cost it tens of times what prose does. Candidates
are found here in one linear scan, are bounded in length, and most are turned down by
the plan's length and number pattern before libphonenumber parses them.
"""
from __future__ import annotations

import functools
import re
from typing import Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

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
MIN_DIGITS = 7  # a number with its area code or trunk prefix; shorter runs are local extensions
MAX_RUN_DIGITS = 40
# Dates and references that start with a year (`1993-214784`), which some plans read as
# numbers.
_NOT_A_PHONE = re.compile(r"(?:19|20)\d\d[-./ ]\d|[0-3]?\d([-./])[01]?\d\1(?:\d{4}|\d{2})(?!\d|\1\d)")
# Numbers right after `#` or `№`, or after a word that names a reference (order, invoice,
# tracking, SKU, ... in the corpus's languages) and at most three words such as `number`,
# `no.`, `is`: order and tracking numbers are often valid in some numbering plan.
_CUES = frozenset((
    "order|orders|invoice|tracking|ticket|ref|reference|sku|item|article|booking|confirmation|transaction|parcel"
    "|shipment|serial|part|model|product|isbn|case|receipt|waybill|awb|bestellung|bestellnummer|auftrag"
    "|auftragsnummer|rechnung|rechnungsnummer|sendung|sendungsnummer|artikel|artikelnummer|commande|facture|suivi"
    "|colis|référence|réf|pedido|factura|fatura|rastreamento|rastreio|seguimiento|referencia|referência|ordine"
    "|fattura|spedizione|riferimento|codice|articolo|artículo|artigo|código|cod|modelo|modello|encomenda|sipariş"
    "|siparişi|siparişiniz|kargo|takip|fiş|package|paket|paquete|pacote|pacco|lieferung|envío|envio|주문|주문번호|송장번호|운송장|운송장번호|예약번호").split("|"))
_CUE_FILLERS = frozenset(("n|no|nr|nro|num|number|numbers|nummer|numéro|número|numero|numarası|n°|nº|id|code|is"
                          "|was|are|est|ist|es|é|è|de|du|del|do|la|le|el|il|your|votre|ihre|su|seu|sua|tuo|vostro"
                          "|번호|는|은|이|가").split("|"))
_CJK_CUES = ("注文番号", "注文", "伝票番号", "追跡番号", "問い合わせ番号", "品番", "型番", "請求書番号", "受付番号",
             "予約番号", "订单号", "订单编号", "订单", "单号", "快递单号", "运单号", "发票号", "编号", "货号", "流水号")
_PARTICLES = "はがの是为："
# Read backwards: the reversed text before a number, up to four words and what separates them.
_TAIL = re.compile(r"[\s.:,;：#№°º]*(?:[^\W\d_]+[\s.:,;：°º]*){0,4}")
_WORD = re.compile(r"[^\W\d_]+")
_DATE = re.compile(r"(?:\d{4}([-./])[01]?\d\1[0-3]?\d|[0-3]?\d([-./])[01]?\d\2(?:\d{2}|\d{4}))(?: [0-2]?\d)?")
CONTEXT = 48


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


def phone_spans(text: str, regions: Iterable[str], probe: Optional[str] = None) -> List[Span]:
  """Spans of valid phone numbers for any of `regions` (numbers written with `+` too).
  With no region there is nothing to read that `agentflow.text.pii`'s international
  shape does not already take, so nothing is read.

  `probe` is the text with the same length in which letters of scripts written without
  spaces are spaces (`agentflow.text.pii` makes it); it bounds numbers glued to such text.
  Candidates are runs of digit groups joined by one separator, found in one linear scan;
  each is cut into group-aligned spans of `MIN_DIGITS` to `MAX_DIGITS` digits, longest
  first, and each span is checked against the regions' numbering plans: first by length
  and the plan's number pattern (cheap), then by libphonenumber (`parse`, valid, national
  prefix where the plan needs one). Runs of more than `MAX_RUN_DIGITS` digits are skipped.
  Every step reads a bounded number of bounded spans per digit group, so the cost is linear.
  """
  regions = tuple(r for r in regions if r in _plans())
  if not regions:
    return []
  probe = text if probe is None else probe
  found: List[Span] = []
  for run in _runs(probe):
    found += _read_run(text, probe, run, regions)
  return found


def follows_reference(text: str, start: int, signs: bool = True) -> bool:
  """Whether the number at `start` follows `#`, `№` (unless not `signs`) or a word naming
  an order, invoice, tracking or other reference number (`order no. 0612345678`,
  `注文番号13812345678`). The few words before it are read backwards, so the cost does
  not grow with the text."""
  tail = _TAIL.match(text[max(0, start - CONTEXT):start][::-1]).group()
  if signs and ("#" in tail[:3] or "№" in tail[:3]):
    return True
  for word in _WORD.findall(tail):
    word = word[::-1].lower()
    if word in _CUES:
      return True
    if word.rstrip(_PARTICLES).endswith(_CJK_CUES):
      return True
    if word not in _CUE_FILLERS:
      return False
  return False


def looks_like_date(candidate: str) -> bool:
  """Whether a number starts like a date or a year-prefixed reference (`05.03.2024 18`,
  `1993-214784`): some plans read those as phone numbers."""
  return bool(_NOT_A_PHONE.match(candidate))


_GROUP = re.compile(r"\d+")
_GAP = re.compile(r"\)?[ ]?[.\-/]?[ ]?\(?")
MAX_DIGITS = 17  # 00, a country code and 15 digits at most
MAX_GAP = 4


def _runs(probe: str) -> Iterator[List[Span]]:
  """Runs of digit groups (spans in `probe`) joined by a short separator (space, one of
  `.-/`, parentheses), with at most `MAX_RUN_DIGITS` digits; longer runs are not yielded."""
  run: List[Span] = []
  digits = 0
  for m in _GROUP.finditer(probe):
    start, end = m.span()
    if end - start > MAX_DIGITS:
      if run and digits <= MAX_RUN_DIGITS:
        yield run
      run, digits = [], MAX_RUN_DIGITS + 1  # a run cut by a flood of digits is not read
      continue
    if run and start - run[-1][1] <= MAX_GAP and _GAP.fullmatch(probe, run[-1][1], start):
      run.append((start, end))
      digits += end - start
      continue
    if run and digits <= MAX_RUN_DIGITS:
      yield run
    run, digits = [(start, end)], end - start
  if run and digits <= MAX_RUN_DIGITS:
    yield run


def _read_run(text: str, probe: str, run: List[Span], regions: Tuple[str, ...]) -> List[Span]:
  """Valid numbers in one run, left to right: at each group the longest valid span wins."""
  found: List[Span] = []
  i = 0
  if follows_reference(text, _candidate_start(probe, run[0][0])):
    return found
  while i < len(run):
    date = _DATE.match(probe, run[i][0]) or _NOT_A_PHONE.match(probe, run[i][0])
    if date:  # no number starts inside a date either
      while i < len(run) and run[i][0] < date.end():
        i += 1
      continue
    for j in range(min(len(run), i + MAX_DIGITS) - 1, i - 1, -1):
      digits = sum(e - s for s, e in run[i:j + 1])
      if digits > MAX_DIGITS:
        continue
      if digits < MIN_DIGITS:
        break
      span = _candidate(probe, run[i][0], run[j][1], j == len(run) - 1)
      if span and _valid(text, span, regions):
        found.append(_balanced(text, *span))
        i = j
        break
    i += 1
  return found


def _candidate(probe: str, start: int, end: int, last: bool) -> Optional[Span]:
  """The span with its leading `+` or `(` and closing `)`, or None when a letter, `_` or
  `+` touches it."""
  start = _candidate_start(probe, start)
  if end < len(probe) and probe[end] == ")" and probe.count("(", start, end) > probe.count(")", start, end):
    end += 1
  before = probe[start - 1] if start else " "
  after = probe[end] if end < len(probe) else " "
  glued = start > 1 and before in "-./" and (probe[start - 2].isalnum() or probe[start - 2] == "_")
  if glued or before.isalnum() or before in "_+" or (last and (after.isalnum() or after == "_")) or \
      _DECIMALS.match(probe, end) or _CURRENCY.search(probe, max(0, start - 4), start):
    return None
  return start, end


def _candidate_start(probe: str, start: int) -> int:
  """Where a number whose digits start at `start` begins: with its `+` or `(`."""
  if start and probe[start - 1] in "+(":
    start -= 1
    if start and probe[start - 1] == "(" and probe[start] == "+":
      start -= 1
  return start


# Amounts: digits followed by decimals (`350.250.328,17`) or after a currency sign.
_DECIMALS = re.compile(r"[.,]\d")
_CURRENCY = re.compile(r"(?:[$€£¥₩₹₺₽¢]|R\$|[A-Z]{3})[ ]?$")


def _valid(text: str, span: Span, regions: Tuple[str, ...]) -> bool:
  candidate = text[span[0]:span[1]]
  if looks_like_date(candidate) or _DATE.fullmatch(candidate.strip(" ./-")) or \
      follows_reference(text, span[0]):
    return False
  digits = "".join(_DIGIT.findall(candidate))
  if not digits.isascii():
    digits = "".join(str(int(d)) for d in digits)
  international = candidate.lstrip("(").startswith("+") or digits.startswith("00")
  plans = _plans()
  for region in regions:
    if international or _fits_plan(digits, plans[region]):
      if _reads_valid(candidate, region):
        return True
      if international:
        return False
  return False


def _fits_plan(digits: str, plan) -> bool:
  """Whether the digits, or the digits after the plan's national (trunk) prefix, have a
  length and a shape of a number type the plan has: a cheap test that lets through
  every number libphonenumber could read as valid in the plan."""
  lengths, shapes, prefix, rewrites = plan
  if rewrites:
    return True
  trunk = prefix.match(digits) if prefix else None
  return any(len(nsn) in lengths and shapes.fullmatch(nsn) for nsn in (digits, digits[trunk.end():] if trunk else ""))


@functools.lru_cache(maxsize=4096)
def _reads_valid(candidate: str, region: str) -> bool:
  """libphonenumber's `Leniency.VALID` for `candidate` read in `region`: a valid number,
  with the national prefix written where the plan needs one."""
  import phonenumbers
  from phonenumbers.phonenumbermatcher import Leniency, _verify
  try:
    number = phonenumbers.parse(candidate, region, keep_raw_input=True)
  except phonenumbers.NumberParseException:
    return False
  return _verify(Leniency.VALID, number, candidate, None)


_PLANS: dict = {}
_TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number", "voip", "pager",
          "uan", "voicemail")


def _plans() -> dict:
  """Per region: the possible national lengths, one pattern for all its number types, its
  national prefix pattern, and whether parsing rewrites the digits (then the cheap test
  is skipped)."""
  if not _PLANS:
    import phonenumbers
    from phonenumbers import PhoneMetadata
    for region in phonenumbers.SUPPORTED_REGIONS:
      meta = PhoneMetadata.metadata_for_region(region)
      if meta is None or meta.general_desc is None:
        continue
      shapes = [d.national_number_pattern for d in (getattr(meta, t, None) for t in _TYPES)
                if d is not None and d.national_number_pattern]
      prefix = meta.national_prefix_for_parsing or meta.national_prefix
      _PLANS[region] = (frozenset(meta.general_desc.possible_length or ()),
                        re.compile("|".join(f"(?:{p})" for p in shapes) or "(?!)"),
                        re.compile(f"(?:{prefix})") if prefix else None,
                        bool(meta.national_prefix_transform_rule))
  return _PLANS


def _balanced(text: str, start: int, end: int) -> Span:
  """Drop an opening parenthesis the number does not close (`(+1 415 555 0134)`)."""
  while start < end and text[start] == "(" and text.count("(", start, end) > text.count(")", start, end):
    start += 1
  return start, end
