"""Language identification for event text: an ISO 639-1 code, or "und" when the text is
too short, has no language in it, or the model is not confident.

Uses py3langid with normalised probabilities. The model loads lazily, once per process,
and is shared by all threads (classification does not mutate it); a restricted language
set gets its own view of the same arrays.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Optional, Tuple

from agentflow.keepalive import KeptObjects

UNDETERMINED = "und"

# Model labels without an ISO 639-1 code of their own, folded into their macrolanguage.
_MACROLANGUAGE = {"ary": "ar", "arz": "ar", "yue": "zh", "wuu": "zh", "uzs": "uz", "gug": "gn",
                  "sdh": "ku", "kik": "ki", "fuv": "ff", "ltg": "lv"}
_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*\]")


@dataclass(frozen=True)
class LanguageConfig:
  """How sure detection must be before it names a language.

  `min_confidence` is the probability over the candidate languages below which the
  answer is "und": 0.3 keeps short support questions ("how do I reset my password?"
  scores about 0.49) while greetings, single words and keyboard mashing fall below it.
  Texts with fewer than `min_letters` letters are "und". `languages` restricts the
  answer to these ISO 639-1 codes (None: every language the model knows); that raises
  confidence on short texts but labels any other language as the nearest allowed one.
  Only the first `max_chars` characters are classified, which bounds latency.
  """
  min_confidence: float = 0.3
  min_letters: int = 3
  languages: Optional[Tuple[str, ...]] = None
  max_chars: int = 2000

  def __post_init__(self):
    if self.languages is not None:
      langs = (self.languages,) if isinstance(self.languages, str) else self.languages
      object.__setattr__(self, "languages", tuple(sorted({str(l).strip().lower() for l in langs})))
    if not 0.0 <= self.min_confidence <= 1.0:
      raise ValueError(f"min_confidence must be within [0, 1], got {self.min_confidence}")


def classify_language(text: str, config: LanguageConfig = LanguageConfig()) -> Tuple[str, float]:
  """(ISO 639-1 code or "und", the model's probability for its best guess)."""
  text = _PLACEHOLDER.sub(" ", text[:config.max_chars])
  cased = [c for c in text if c.isupper() or c.islower()]
  if sum(c.isalpha() for c in text) < config.min_letters:
    return UNDETERMINED, 0.0
  if cased and 2 * sum(c.isupper() for c in cased) > len(cased):
    text = text.lower()
  label, probability = _identifier(config.languages).classify(text)
  code = _MACROLANGUAGE.get(label, label)
  if len(code) != 2 or probability < config.min_confidence:
    return UNDETERMINED, probability
  return code, probability


def detect_language(text: str, config: LanguageConfig = LanguageConfig()) -> str:
  """The ISO 639-1 code of `text`'s language, or "und"."""
  return classify_language(text, config)[0]


# The model (key None) and its restricted views, one per language set.
_IDENTIFIERS = KeptObjects()


def _identifier(languages: Optional[Tuple[str, ...]]):
  if languages is None:
    return _IDENTIFIERS.get(None, _load_model)
  return _IDENTIFIERS.get(languages, lambda: _restricted(languages))


def _load_model():
  from py3langid.langid import MODEL_FILE, LanguageIdentifier
  return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _restricted(languages: Tuple[str, ...]):
  base = _IDENTIFIERS.get(None, _load_model)
  identifier = copy.copy(base)
  identifier.set_languages(_model_labels(base.labels, languages))
  return identifier


def _model_labels(labels, languages: Tuple[str, ...]) -> list:
  wanted = [l for l in labels if _MACROLANGUAGE.get(l, l) in languages]
  unknown = sorted(set(languages) - {_MACROLANGUAGE.get(l, l) for l in wanted})
  if unknown or not wanted:
    raise ValueError(f"language(s) {unknown or list(languages)} are not known to the language model")
  return wanted
