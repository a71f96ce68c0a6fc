"""The generated multi-locale corpus (benchmarks/pii_corpus.py), a small sample of it,
through parse_event: ordinary values and evasions leak at most at the issue's goals, and
prose full of dates, prices, versions, and order, tracking and article numbers in ten
languages is left as it is."""
import pytest

from agentflow.stages.preprocess import PreprocessConfig, normalize_text, parse_event

from benchmarks.pii_corpus import build, leaked

CONFIG = PreprocessConfig(pii_key="test")
LANGUAGES = {"en", "de", "fr", "es", "pt", "it", "tr", "ja", "zh", "ko"}  # of the order and tracking number prose


@pytest.fixture(scope="module")
def corpus():
  return build(per_kind=3, seed=11)


def _redact(text):
  return parse_event({"session_id": "s", "text": text, "timestamp": 1}, CONFIG).text


def test_ordinary_values_in_eleven_locales_leak_at_most_one_percent(corpus):
  ordinary, _, _ = corpus
  leaks = [(c.kind, c.locale, c.text) for c in ordinary if leaked(c.kind, c.value, _redact(c.text))]
  assert len({c.locale for c in ordinary}) == 11 and len(ordinary) > 200
  assert len(leaks) <= 0.01 * len(ordinary), leaks


def test_evasions_leak_at_most_ten_percent(corpus):
  _, evasions, _ = corpus
  leaks = [(c.kind, c.category, c.text) for c in evasions if leaked(c.kind, c.value, _redact(c.text))]
  assert len({c.category for c in evasions}) == 5 and len(evasions) > 50
  assert len(leaks) <= 0.1 * len(evasions), leaks


def test_prose_with_numbers_is_left_alone(corpus):
  _, _, prose = corpus
  sample = prose[:300:2] + [p for p in prose if p[0] in LANGUAGES]
  changed = [(text, out) for _, text in sample for out in [_redact(text)] if out != normalize_text(text)]
  assert len({label for label, _ in sample} & LANGUAGES) == 10
  assert not changed
