"""PII leak rates per kind and locale: agentflow's Preprocess vs presidio-analyzer's
pattern recognizers, on the corpus of `benchmarks.pii_corpus`, plus false positives on
prose full of numbers that are not PII.

agentflow runs as `agentflow run` would (`parse_event` on a JSON event: normalisation,
language detection, redaction). presidio gets the same normalised text (so both are
compared as recognizers, not as normalisers), its recognizers for emails, phones (told
every region of the corpus, which it would not know by itself), cards, IBANs, IPs and US
SSNs, every result whatever its score, replaced like agentflow's placeholders. The
`agentflow+presidio` column adds presidio's spans to agentflow's, to see where presidio
would add anything.

  python -m benchmarks.pii_leaks [--per_kind 20] [--seed 20]

presidio-analyzer imports spaCy at module level though its pattern recognizers never use
it; it is installed without dependencies (`pip install --no-deps presidio-analyzer
tldextract`) and spaCy is stubbed here.
"""
from __future__ import annotations

import argparse
import sys
import time
import types
from collections import defaultdict
from typing import Dict, List, Tuple

from agentflow.stages.preprocess import PreprocessConfig, normalize_text, parse_event

from benchmarks.common import save
from benchmarks.pii_corpus import KINDS, LOCALES, REFERENCE_FRAMES, build, leaked

PRESIDIO_KINDS = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CARD", "IBAN_CODE": "IBAN",
                  "IP_ADDRESS": "IP", "US_SSN": "SSN"}
CONFIG = PreprocessConfig(pii_key="benchmark")
REFERENCE_LANGUAGES = {language for language, _ in REFERENCE_FRAMES}


def agentflow_redact(text: str) -> str:
  return parse_event({"session_id": "s", "text": text, "timestamp": 1}, CONFIG).text


def _stub_spacy() -> None:
  class _Any:
    def __init__(self, *a, **k):
      pass

    def __call__(self, *a, **k):
      return a[0] if len(a) == 1 and callable(a[0]) and not k else _Any()

    def __getattr__(self, name):
      if name.startswith("__"):
        raise AttributeError(name)
      return _Any()

    def __mro_entries__(self, bases):
      return (object,)

  class _Module(types.ModuleType):
    def __getattr__(self, name):
      if name.startswith("__"):
        raise AttributeError(name)
      return _Any()

  for name in ("spacy", "spacy.tokens", "spacy.language", "spacy.vocab", "spacy.util", "spacy.pipeline", "thinc",
               "thinc.api"):
    sys.modules.setdefault(name, _Module(name))


def presidio_recognizers():
  _stub_spacy()
  import tldextract
  tldextract.extract = tldextract.TLDExtract(suffix_list_urls=())  # offline: the bundled suffix list
  from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    UsSsnRecognizer,
  )
  regions = sorted({region for region, _, _ in LOCALES.values()})
  return [EmailRecognizer(), PhoneRecognizer(supported_regions=regions), CreditCardRecognizer(), IbanRecognizer(),
          IpRecognizer(), UsSsnRecognizer()]


def presidio_spans(recognizers, text: str) -> List[Tuple[int, int, str]]:
  spans = []
  for r in recognizers:
    for result in r.analyze(text, r.supported_entities, None) or []:
      spans.append((result.start, result.end, PRESIDIO_KINDS.get(result.entity_type, result.entity_type)))
  return spans


def apply(text: str, spans) -> str:
  out, last = [], 0
  for start, end, kind in sorted(spans):
    if start < last:
      start = last
    if end <= start:
      continue
    out += [text[last:start], f"[{kind}]"]
    last = end
  return "".join(out) + text[last:]


def run(per_kind: int, seed: int) -> dict:
  ordinary, evasions, prose = build(per_kind, seed)
  recognizers = presidio_recognizers()
  systems = {
      "agentflow": agentflow_redact,
      "presidio": lambda t: apply(normalize_text(t), presidio_spans(recognizers, normalize_text(t))),
      "agentflow+presidio": lambda t: (lambda a: apply(a, presidio_spans(recognizers, a)))(agentflow_redact(t)),
  }
  result = {"per_kind": per_kind, "seed": seed, "cases": {"ordinary": len(ordinary), "evasion": len(evasions),
                                                            "prose": len(prose)}}
  for name, redact in systems.items():
    start = time.process_time()
    leaks: Dict[str, Dict[str, List[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    examples = []
    for case in ordinary + evasions:
      out = redact(case.text)
      hit = leaked(case.kind, case.value, out)
      for key in ((case.category, case.kind), (case.category, case.locale), (case.category, "all"),
                  ("phone-" + case.form, case.locale) if case.kind == "PHONE" else None):
        if key:
          leaks[key[0]][key[1]][0] += hit
          leaks[key[0]][key[1]][1] += 1
      if hit and len(examples) < 40:
        examples.append([case.kind, case.locale, case.category, case.text, out])
    false_positives = [[label, text, out] for label, text in prose
                       for out in [redact(text)] if out != normalize_text(text)]
    references = sum(label in REFERENCE_LANGUAGES for label, _, _ in false_positives)
    result[name] = {
        "leaks": {cat: {k: {"leaked": v[0], "total": v[1], "rate": round(v[0] / v[1], 4)} for k, v in by.items()}
                  for cat, by in leaks.items()},
        "false_positives": {"texts": len(false_positives), "total": len(prose), "references": references,
                            "references_total": sum(label in REFERENCE_LANGUAGES for label, _ in prose),
                            "rate": round(len(false_positives) / len(prose), 4), "examples": false_positives[:20]},
        "leak_examples": examples, "cpu_s": round(time.process_time() - start, 2)}
  return result


def _rate(system: dict, category: str, key: str) -> str:
  cell = system["leaks"].get(category, {}).get(key)
  return f"{cell['leaked']}/{cell['total']}" if cell else "-"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--per_kind", type=int, default=20)
  parser.add_argument("--seed", type=int, default=20)
  args = parser.parse_args(argv)
  result = run(args.per_kind, args.seed)
  names = ("agentflow", "presidio", "agentflow+presidio")
  print(f"cases: {result['cases']}")
  for category in ["ordinary", "glued", "separators", "invisible", "brackets", "fullwidth"]:
    print(f"\n{category}: leaked/total per kind ({' | '.join(names)})")
    for key in KINDS + ("all",):
      print(f"  {key:6} " + " | ".join(f"{_rate(result[n], category, key):>9}" for n in names))
  print("\nordinary, per locale")
  for locale in LOCALES:
    print(f"  {locale:6} " + " | ".join(f"{_rate(result[n], 'ordinary', locale):>9}" for n in names))
  print("\nphones by written form, all locales")
  for form in ("national", "national_alt", "international", "e164", "digits", "faker"):
    row = []
    for n in names:
      cells = result[n]["leaks"].get("phone-" + form, {}).values()
      row.append(f"{sum(c['leaked'] for c in cells)}/{sum(c['total'] for c in cells)}")
    print(f"  {form:13} " + " | ".join(f"{r:>9}" for r in row))
  print("\nfalse positives on prose: " + " | ".join(
      f"{result[n]['false_positives']['texts']}/{result[n]['false_positives']['total']}" for n in names))
  print("  of which order, tracking and article number sentences: " + " | ".join(
      f"{result[n]['false_positives']['references']}/{result[n]['false_positives']['references_total']}"
      for n in names))
  a, p = result["agentflow"], result["presidio"]
  for category in ("ordinary",):
    ra, rp = a["leaks"][category]["all"]["rate"], p["leaks"][category]["all"]["rate"]
    print(f"ordinary leak rate: agentflow {ra:.2%}, presidio {rp:.2%}")
  ev = [a["leaks"][c]["all"] for c in ("glued", "separators", "invisible", "brackets", "fullwidth") if c in a["leaks"]]
  evp = [p["leaks"][c]["all"] for c in ("glued", "separators", "invisible", "brackets", "fullwidth") if c in p["leaks"]]
  print(f"evasion leak rate: agentflow {sum(c['leaked'] for c in ev) / sum(c['total'] for c in ev):.2%}, "
        f"presidio {sum(c['leaked'] for c in evp) / sum(c['total'] for c in evp):.2%}")
  print("cpu s: " + ", ".join(f"{n} {result[n]['cpu_s']}" for n in names))
  print(save("pii_leaks", result))
  return result


if __name__ == "__main__":
  main()
