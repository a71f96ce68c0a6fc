"""A seeded multi-locale PII corpus: ordinary values in sentences of eleven locales, the
same values disguised (evasions), and prose full of numbers that are not PII (dates,
prices, versions, and order, tracking and article numbers in ten languages).

Values come from Faker (emails, cards, IBANs, IPs, SSNs, its own phone formats) and from
libphonenumber's numbering plans (valid numbers with random subscriber digits, written in
national, international, E.164, digits-only and dotted/dashed national form). Sentences
are written per locale; Japanese and Chinese ones glue the value to the text, as those
languages are written. `leaked(kind, value, redacted)` says whether a significant part of
the value survived redaction.

Run `python -m benchmarks.pii_corpus` to print a sample.
"""
from __future__ import annotations

import ipaddress
import random
import re
import string
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

KINDS = ("EMAIL", "PHONE", "CARD", "IBAN", "IPV4", "IPV6", "SSN")

# locale -> (phone region, IBAN country or None, sentence frames). Frames are in the
# locale's language; {v} is the value.
LOCALES: Dict[str, Tuple[str, Optional[str], Tuple[str, ...]]] = {
    "en_US": ("US", None, ("Please call or write me at {v} tomorrow, thanks.",
                           "My details for the account: {v}. Cheers!",
                           "You can reach me on {v} if anything changes with the order.")),
    "ja_JP": ("JP", None, ("連絡先は{v}です。よろしくお願いします。", "こちらの{v}までご連絡ください。",
                           "登録情報：{v}を確認してください。")),
    "zh_CN": ("CN", None, ("我的联系方式是{v}，谢谢。", "请通过{v}联系我，我明天有空。", "账户信息：{v}请核对一下。")),
    "ko_KR": ("KR", None, ("제 연락처는 {v}입니다. 감사합니다.", "{v}로 연락 주세요. 내일 가능합니다.",
                           "등록 정보: {v} 확인 부탁드립니다.")),
    "hi_IN": ("IN", None, ("मेरा विवरण {v} है, कृपया संपर्क करें।", "कृपया {v} पर संपर्क करें, धन्यवाद।",
                           "खाते की जानकारी: {v} कृपया जांच करें।")),
    "pt_BR": ("BR", "BR", ("Meus dados são {v}. Obrigado pela ajuda!", "Pode me contatar pelo {v} amanhã de manhã.",
                           "Segue a informação {v} para o cadastro da conta.")),
    "it_IT": ("IT", "IT", ("I miei dati sono {v}. Grazie mille!", "Può contattarmi al {v} domani mattina.",
                           "Ecco l'informazione {v} per la registrazione del conto.")),
    "fr_FR": ("FR", "FR", ("Mes coordonnées sont {v}. Merci beaucoup !", "Vous pouvez me joindre au {v} demain matin.",
                           "Voici l'information {v} pour l'inscription de mon compte.")),
    "tr_TR": ("TR", "TR", ("Bilgilerim şunlar: {v}. Çok teşekkürler!", "Bana yarın {v} üzerinden ulaşabilirsiniz.",
                           "Hesap kaydı için bilgi: {v} lütfen kontrol edin.")),
    "en_PH": ("PH", None, ("Hi po, my details are {v}. Salamat po!", "Pakitawagan po ako sa {v} bukas ng umaga.",
                           "Here is the info {v} for my account po, thank you.")),
    "de_DE": ("DE", "DE", ("Meine Daten lauten {v}. Vielen Dank!", "Sie erreichen mich morgen früh unter {v}.",
                           "Hier die Angabe {v} für die Anmeldung meines Kontos.")),
}

# Frames that glue the value to text written without spaces, for every locale's values.
GLUED = ("電話番号は{v}です", "请联系{v}谢谢", "カード{v}の件", "地址{v}。", "口座{v}まで")
BRACKETS = ("[ref]{v}", "[EMAIL]{v}", "see ]{v} now", "[PHONE]{v}", "(note)[1]{v}")
INVISIBLE = ("\u2060", "\u00ad", "\u200b", "\u200c", "\u200d", "\u180e", "\u2062", "\u2063", "\u2064", "\u202a",
             "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\ufeff", "\U000e0041",
             "\u034f", "\ufe0f")
EVASIONS = ("glued", "separators", "invisible", "brackets", "fullwidth")


@dataclass(frozen=True)
class Case:
  """One value in one sentence; `category` is "ordinary" or an evasion's name, `form`
  how the value is written (for phones: national, international, ...)."""
  kind: str
  locale: str
  category: str
  form: str
  value: str
  text: str


def build(per_kind: int = 20, seed: int = 20) -> Tuple[List[Case], List[Case], List[Tuple[str, str]]]:
  """(ordinary cases, evasion cases, prose (locale, text) without PII), deterministic for `seed`."""
  from faker import Faker
  rng = random.Random(seed)
  ordinary, evasions = [], []
  for locale, (region, iban_country, frames) in LOCALES.items():
    fake = Faker(locale)
    fake.seed_instance(seed)
    values = _values(fake, rng, locale, region, iban_country, per_kind)
    for kind, form, value in values:
      ordinary.append(Case(kind, locale, "ordinary", form, value, rng.choice(frames).format(v=value)))
    for kind, form, value in rng.sample(values, min(len(values), per_kind * 2)):
      category = rng.choice(EVASIONS)
      disguised = _disguise(category, kind, value, rng)
      if disguised is None:
        continue
      frame = rng.choice(GLUED) if category == "glued" else rng.choice(frames)
      text = frame.format(v=rng.choice(BRACKETS).format(v=disguised) if category == "brackets" else disguised)
      evasions.append(Case(kind, locale, category, form, value, text))
  return ordinary, evasions, prose(seed)


def _values(fake, rng: random.Random, locale: str, region: str, iban_country: Optional[str],
            n: int) -> List[Tuple[str, str, str]]:
  out = []
  for _ in range(n):
    out.append(("EMAIL", "faker", rng.choice([fake.email, fake.free_email, fake.company_email])()))
    out.append(("CARD",) + _card(fake.credit_card_number(), rng))
    out.append(("IBAN",) + _iban(iban_country or rng.choice(["DE", "FR", "GB", "NL", "ES"]), rng))
    out.append(("IPV4", "dotted", rng.choice([fake.ipv4_public, fake.ipv4_private])()))
    address = ipaddress.IPv6Address(fake.ipv6())
    out.append(("IPV6", "compressed" if rng.random() < 0.5 else "exploded",
                str(address) if rng.random() < 0.5 else address.exploded))
    out.append(("PHONE",) + _plan_phone(region, rng))
    if locale == "en_US":
      out.append(("SSN", "dashed", fake.ssn()))
    if rng.random() < 0.5:
      phone = fake.phone_number() if locale != "en_PH" else rng.choice([fake.mobile_number, fake.landline_number])()
      if len(re.sub(r"\D", "", phone)) >= 7:
        out.append(("PHONE", "faker", phone))
  return out


def _plan_phone(region: str, rng: random.Random) -> Tuple[str, str]:
  """A number valid in `region`'s plan, written as people write them there."""
  import phonenumbers as pn
  from phonenumbers import PhoneNumberFormat as F
  kind = rng.choice([pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.FIXED_LINE])
  example = pn.example_number_for_type(region, kind)
  national = str(example.national_number)
  for _ in range(200):
    digits = national[:3] + "".join(rng.choice(string.digits) for _ in national[3:])
    number = pn.parse(digits, region) if digits[0] != "0" else None
    number = number or pn.PhoneNumber(country_code=example.country_code, national_number=int(digits))
    if pn.is_valid_number_for_region(number, region):
      break
  else:
    number = example
  form = rng.choice(["national", "international", "e164", "digits", "national_alt"])
  if form == "national":
    return form, pn.format_number(number, F.NATIONAL)
  if form == "international":
    return form, pn.format_number(number, F.INTERNATIONAL)
  if form == "e164":
    return form, pn.format_number(number, F.E164)
  if form == "digits":
    return form, re.sub(r"\D", "", pn.format_number(number, F.NATIONAL))
  text = pn.format_number(number, F.NATIONAL)
  return form, re.sub(r"[ ]", rng.choice([".", "-"]), text.replace("(", "").replace(")", ""))


def _card(number: str, rng: random.Random) -> Tuple[str, str]:
  form = rng.choice(["compact", "spaced", "dashed"])
  if form == "compact":
    return form, number
  sep = " " if form == "spaced" else "-"
  if len(number) == 15:
    return form, sep.join([number[:4], number[4:10], number[10:]])
  return form, sep.join(number[i:i + 4] for i in range(0, len(number), 4))


def _iban(country: str, rng: random.Random) -> Tuple[str, str]:
  from agentflow.text.pii import IBAN_LENGTHS
  length = IBAN_LENGTHS[country]
  bban = "".join(rng.choice(string.digits) for _ in range(length - 4))
  if country in ("GB", "NL"):
    bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + bban[4:]
  check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
  code = f"{country}{check:02d}{bban}"
  if rng.random() < 0.5:
    return "compact", code
  return "grouped", " ".join(code[i:i + 4] for i in range(0, len(code), 4))


def _disguise(category: str, kind: str, value: str, rng: random.Random) -> Optional[str]:
  if category in ("glued", "brackets"):
    return value
  if category == "fullwidth":
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in value)
  if category == "invisible":
    chars = list(value)
    for _ in range(rng.randint(1, 3)):
      chars.insert(rng.randint(1, len(chars) - 1), rng.choice(INVISIBLE))
    return "".join(chars)
  # separators the ordinary form does not use
  digits = re.sub(r"\W", "", value)
  if kind == "CARD":
    sep = rng.choice([".", "/", " - ", "_"])
    return sep.join(digits[i:i + 4] for i in range(0, len(digits), 4))
  if kind == "IBAN":
    sep = rng.choice(["-", ".", " - "])
    return sep.join(digits[i:i + 4] for i in range(0, len(digits), 4))
  if kind == "IPV4":
    octets = value.split(".")
    return rng.choice([f"ip-{'-'.join(octets)}", ".".join(o.zfill(3) for o in octets), "[.]".join(octets)])
  if kind == "PHONE":
    groups = re.findall(r"\+?\d+", value)
    return rng.choice([".", "/", "-"]).join(groups) if len(groups) > 1 else None
  if kind == "EMAIL":
    local, domain = value.split("@")
    return rng.choice([f"{local}[at]{domain}", f"{local} (at) {domain}", f"{local}@{domain.replace('.', '[dot]')}"])
  return None


def leaked(kind: str, value: str, redacted: str) -> bool:
  """Whether a significant part of `value` is still in `redacted`: for numbers, any five
  of its digits in a row (separators ignored); for IBANs any eight of its characters; for
  emails the address, its local part before `@`, or its domain; for IPs the address or
  all but one octet or group of it."""
  flat = re.sub(r"[\W_]", "", redacted.upper())
  if kind in ("PHONE", "CARD", "SSN"):
    digits = re.sub(r"\D", "", value)
    if kind == "PHONE":
      digits = digits.lstrip("0")
    run = re.sub(r"(?<=\d)[ .\-/()]+(?=\d)", "", redacted)
    return any(digits[i:i + 5] in run for i in range(len(digits) - 4))
  if kind == "IBAN":
    code = re.sub(r"[\W_]", "", value.upper())
    return any(code[i:i + 8] in flat for i in range(len(code) - 7))
  if kind == "EMAIL":
    local, _, domain = value.lower().partition("@")
    low = redacted.lower()
    alone = re.search(rf"(?<![\w.]){re.escape(local)}(?![\w])", low) if len(local) >= 4 else None
    return value.lower() in low or f"{local}@" in low or bool(alone) or domain in low
  if kind == "IPV4":
    octets = value.split(".")
    parts = {".".join(octets), ".".join(octets[1:]), ".".join(octets[:3])}
    return any(p in redacted for p in parts)
  if kind == "IPV6":
    groups = ipaddress.IPv6Address(value).exploded.split(":")
    low = redacted.lower()
    return value.lower() in low or any(":".join(groups[i:i + 2]) in low and groups[i] != "0000"
                                       for i in range(7))
  raise ValueError(kind)


# Prose with numbers that are not PII: dates, times, prices, versions, order and
# reference numbers, quantities, scores, postcodes, years.
PROSE_FRAMES = (
    "The meeting moved to {date} at {time}; bring the {version} release notes.",
    "Order #{order} shipped on {date} and costs {price}.",
    "We sold {qty} units in {year}, up {pct} from {year2}; see pages {p1}-{p2}.",
    "Invoice INV-{year}-{short} for {price} is due {date}; reference {ref}.",
    "Upgrade from {version} to {version2} before {date} {time}, build {build}.",
    "The score was {s1}-{s2} and the match started at {time} on {date}.",
    "Ticket {ticket} was opened {date} at {time}, room {room}, floor {floor}.",
    "Postcode {postcode}, {qty} items weighing {weight} kg, delivered by {date}.",
    "ISBN {isbn} costs {price}; order number {order} placed {date}.",
    "Between {year} and {year2} the population grew to {big} people.",
    "注文番号{order}は{date}に発送されました。合計{price}です。",
    "订单{order}已于{date}发货，金额{price}，版本{version}。",
    "주문번호 {order}는 {date} {time}에 발송되었습니다. 금액은 {price}입니다.",
)


# Order, tracking and article numbers, amounts, dates and times in ten languages, each
# number after the word that names it, as shops and carriers write them. Order numbers
# include 10-12 digits with a leading 0 and 11 digits starting 13-19 (valid national
# phone numbers in several plans).
REFERENCE_FRAMES = (
    ("en", "Your order {order0} shipped on {date}; tracking number {ups}, total {amount}."),
    ("en", "Order number: {ordercn} placed on {date} at {time}, SKU {sku}, version {version}."),
    ("en", "Tracking {usps} for order #{orderany}; invoice {order0} of {amount}."),
    ("en", "Amazon order {amazon} arrives {date}; FedEx tracking {fedex}."),
    ("de", "Ihre Bestellung {order0} wurde am {date} versandt, Sendungsnummer {fedex}, Betrag {amount}."),
    ("de", "Bestellnummer {ordercn}, Artikelnummer {sku}, Rechnung Nr. {orderany} über {amount}."),
    ("fr", "Votre commande n° {order0} du {date} est expédiée, suivi colis {ups}, montant {amount}."),
    ("fr", "Commande {ordercn} à {time}, référence {sku}, facture {orderany}."),
    ("es", "Su pedido {order0} fue enviado el {date}; número de seguimiento {fedex}, total {amount}."),
    ("es", "Pedido nº {ordercn}, referencia {sku}, factura {orderany} por {amount}."),
    ("pt", "Seu pedido nº {ordercn} foi enviado em {date}, código de rastreio {cpost}, valor {amount}."),
    ("pt", "Pedido {order0} às {time}, nota fatura {orderany}, total {amount}."),
    ("it", "Il suo ordine n. {order0} è stato spedito il {date}, codice spedizione {fedex}, importo {amount}."),
    ("it", "Ordine {ordercn}, fattura {orderany}, articolo {sku}, totale {amount}."),
    ("tr", "Siparişiniz {order0} {date} tarihinde kargoya verildi, takip numarası {fedex}, tutar {amount}."),
    ("tr", "Sipariş no {ordercn}, fatura {orderany}, toplam {amount}."),
    ("ja", "ご注文番号{order0}の商品は{date}に発送しました。お問い合わせ番号{yamato}、金額{amount}。"),
    ("ja", "注文{ordercn}、品番{sku}、合計{amount}です。"),
    ("zh", "您的订单号{ordercn}已于{date}发货，快递单号{sf}，金额{amount}。"),
    ("zh", "订单{order0}，货号{sku}，合计{amount}，版本{version}。"),
    ("ko", "주문번호 {order0} 상품이 {date}에 발송되었습니다. 송장번호 {yamato}, 금액 {amount}."),
    ("ko", "주문 {ordercn}, 금액 {amount}, {time} 도착 예정."),
)


def _digits(rng: random.Random, n: int) -> str:
  return "".join(rng.choice(string.digits) for _ in range(n))


def reference_prose(seed: int = 20, n: int = 440) -> List[Tuple[str, str]]:
  """`n` sentences with order, tracking and article numbers, amounts, dates and times in
  ten languages (see `REFERENCE_FRAMES`), labelled with the language."""
  rng = random.Random(seed + 2)
  out = []
  for i in range(n):
    language, frame = REFERENCE_FRAMES[i % len(REFERENCE_FRAMES)]
    y, m, d = rng.randint(2015, 2030), rng.randint(1, 12), rng.randint(1, 28)
    fields = dict(
        order0="0" + str(rng.randint(1, 9)) + _digits(rng, rng.randint(8, 10)),
        ordercn=str(rng.randint(13, 19)) + _digits(rng, 9),
        orderany=str(rng.randint(1, 9)) + _digits(rng, rng.randint(6, 13)),
        amazon=f"{rng.randint(100, 999)}-{_digits(rng, 7)}-{_digits(rng, 7)}",
        ups="1Z" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6)) + _digits(rng, 10),
        usps=" ".join(["9400", _digits(rng, 4), _digits(rng, 4), _digits(rng, 4), _digits(rng, 4), _digits(rng, 2)]),
        fedex=rng.choice([_digits(rng, 12), f"{_digits(rng, 4)} {_digits(rng, 4)} {_digits(rng, 4)}"]),
        yamato=f"{_digits(rng, 4)}-{_digits(rng, 4)}-{_digits(rng, 4)}",
        sf="SF" + _digits(rng, 13),
        cpost=f"{rng.choice(['EA', 'LB', 'RR'])}{_digits(rng, 9)}{rng.choice(['CN', 'BR'])}",
        sku=rng.choice([f"SKU-{rng.randint(1000, 9999)}-{rng.randint(100, 999)}-XL",
                        f"{rng.choice(['AB', 'KX', 'TR'])}-{_digits(rng, 5)}-{_digits(rng, 2)}",
                        f"{_digits(rng, 4)}-{_digits(rng, 4)}-{_digits(rng, 2)}"]),
        amount=rng.choice([f"{rng.randint(1, 999)}.{_digits(rng, 3)}.{_digits(rng, 3)},{_digits(rng, 2)} €",
                           f"${rng.randint(1, 99)},{_digits(rng, 3)},{_digits(rng, 3)}.{_digits(rng, 2)}",
                           f"¥{rng.randint(1, 9)},{_digits(rng, 3)},{_digits(rng, 3)}",
                           f"₩{rng.randint(1, 99)},{_digits(rng, 3)},000",
                           f"R$ {rng.randint(1, 9)}.{_digits(rng, 3)},{_digits(rng, 2)}",
                           f"{rng.randint(1, 99)}.{_digits(rng, 3)},{_digits(rng, 2)} TL"]),
        date=rng.choice([f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}", f"{d:02d}.{m:02d}.{y}", f"{y}年{m}月{d}日",
                         f"{y}. {m}. {d}."]),
        time=f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
        version=f"{rng.randint(0, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
    )
    out.append((language, frame.format(**fields)))
  return out


def prose(seed: int = 20, n: int = 600) -> List[Tuple[str, str]]:
  """`n` sentences full of numbers that are not PII, with the frame as label, then the
  sentences of `reference_prose`."""
  rng = random.Random(seed + 1)
  out = []
  for i in range(n):
    frame = PROSE_FRAMES[i % len(PROSE_FRAMES)]
    y = rng.randint(1990, 2030)
    m, d = rng.randint(1, 12), rng.randint(1, 28)
    fields = dict(
        date=rng.choice([f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}", f"{d:02d}.{m:02d}.{y}",
                         f"{m}/{d}/{y % 100:02d}", f"{y}年{m}月{d}日", f"{d} March {y}"]),
        time=rng.choice([f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
                         f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
                         f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} pm"]),
        price=rng.choice([f"${rng.randint(1, 9999):,}.{rng.randint(0, 99):02d}",
                          f"€{rng.randint(1, 9):d}.{rng.randint(0, 999):03d},{rng.randint(0, 99):02d}",
                          f"R$ {rng.randint(1, 9999)},{rng.randint(0, 99):02d}", f"¥{rng.randint(100, 999999):,}",
                          f"₹{rng.randint(1, 99)},{rng.randint(0, 99):02d},{rng.randint(0, 999):03d}",
                          f"{rng.randint(1, 999)} {rng.randint(0, 999):03d},{rng.randint(0, 99):02d} €",
                          f"{rng.randint(1, 99)}.{rng.randint(0, 999):03d} TL"]),
        version=f"{rng.randint(0, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
        version2=f"v{rng.randint(0, 20)}.{rng.randint(0, 30)}",
        order=str(rng.randint(10**4, 10**8)), short=f"{rng.randint(1, 9999):04d}",
        ref=f"{y}-{rng.randint(1, 999999):06d}", qty=f"{rng.randint(1, 99999):,}", year=y, year2=y - rng.randint(1, 30),
        pct=f"{rng.randint(0, 99)}.{rng.randint(0, 9)}%", p1=rng.randint(1, 200), p2=rng.randint(201, 900),
        build=rng.randint(100, 99999), s1=rng.randint(0, 9), s2=rng.randint(0, 9),
        ticket=f"#{rng.randint(1000, 999999)}", room=rng.randint(1, 999), floor=rng.randint(1, 60),
        postcode=rng.choice([f"{rng.randint(10000, 99999)}", f"{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}",
                             f"{rng.randint(10000, 99999)}-{rng.randint(0, 999):03d}"]),
        weight=f"{rng.randint(0, 99)}.{rng.randint(0, 9)}", isbn=f"978-{rng.randint(0, 9)}-{rng.randint(10, 99)}-"
                                                                 f"{rng.randint(100000, 999999)}-{rng.randint(0, 9)}",
        big=f"{rng.randint(1, 999):,}{rng.randint(0, 999):03d}{rng.randint(0, 999):03d}".replace(",", ""),
    )
    out.append((frame, frame.format(**fields)))
  return out + reference_prose(seed)


if __name__ == "__main__":
  ordinary, evasions, plain = build(per_kind=2)
  for case in ordinary[:12] + evasions[:12]:
    print(case.kind, case.locale, case.category, case.form, repr(case.text))
  for _, text in plain[:13]:
    print(text)
