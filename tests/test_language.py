"""detect_language: ISO 639-1 codes for short support messages, "und" for text with no
language in it, configurable confidence and language set, one shared model across threads."""
import threading
import time

import pytest

from agentflow.keepalive import KeptObjects
from agentflow.text import language
from agentflow.text.language import LanguageConfig, classify_language, detect_language


@pytest.mark.parametrize("code, text", [
    ("en", "how do I reset my password?"),
    ("en", "Where do admins add users to the workspace?"),
    ("en", "my card was charged twice"),
    ("en", "i subscribed through the iphone app, how do i unsubscribe"),
    ("en", "WHY DOES THIS APP LOG ME OUT EVERY SINGLE DAY. fix it."),
    ("en", "Mail me at [EMAIL] please, I cannot log in to my account"),
    ("es", "¿Cómo puedo cambiar mi contraseña?"),
    ("es", "no puedo iniciar sesión"),
    ("es", "Hola, me han cobrado dos veces la suscripción este mes"),
    ("de", "Wie kann ich mein Passwort zurücksetzen?"),
    ("de", "Ich habe mein Passwort vergessen."),
    ("de", "Die App stürzt ständig ab"),
    ("fr", "Comment réinitialiser mon mot de passe ?"),
    ("fr", "je n'arrive pas à me connecter"),
    ("fr", "Mes notes ne se synchronisent plus entre mon Mac et mon iPhone"),
    ("zh", "这是中文"),
    ("ja", "パスワードをリセットするにはどうすればいいですか？"),
])
def test_common_languages(code, text):
  assert detect_language(text) == code


@pytest.mark.parametrize("text", [
    "", "   ", "hi", "ok", "a1", "12345 678", "!!! ???", "👍👍", "[EMAIL] [PHONE]", "4111 1111 1111 1111",
    "asdfgh qwerty", "xkcd", "\ud800\udfff", "\x00\x01\x02", "x" * 1_000_000,
])
def test_undetermined(text):
  assert detect_language(text) == "und"


def test_confidence_threshold():
  code, probability = classify_language("how do I reset my password?")
  assert code == "en" and 0.3 <= probability <= 1.0
  assert detect_language("how do I reset my password?", LanguageConfig(min_confidence=0.99)) == "und"
  assert detect_language("ok thanks", LanguageConfig(min_letters=20)) == "und"
  assert classify_language("hi") == ("und", 0.0)
  with pytest.raises(ValueError):
    LanguageConfig(min_confidence=1.5)


def test_restricting_the_language_set():
  assert detect_language("Passwort vergessen") == "und"
  assert detect_language("Passwort vergessen", LanguageConfig(languages=("en", "de", "fr", "es"))) == "de"
  assert detect_language("粵語係香港嘅語言", LanguageConfig(languages=["ZH", "en"])) == "zh"
  assert LanguageConfig(languages=["FR", "en", "fr"]).languages == ("en", "fr")
  assert detect_language("how do I reset my password?") == "en"
  with pytest.raises(ValueError):
    detect_language("hello there", LanguageConfig(languages=("xx",)))


def test_long_text_is_classified_from_its_start():
  text = "Ich kann mich nicht anmelden, bitte helfen Sie mir. " * 20_000
  start = time.process_time()
  assert detect_language(text) == "de"
  assert time.process_time() - start < 1.0


def test_model_loads_once_and_is_shared_across_threads(monkeypatch):
  from py3langid.langid import LanguageIdentifier
  loads = []
  original = LanguageIdentifier.from_model_file.__func__

  def counting(cls, *args, **kwargs):
    loads.append(1)
    return original(cls, *args, **kwargs)

  monkeypatch.setattr(language, "_IDENTIFIERS", KeptObjects())
  monkeypatch.setattr(LanguageIdentifier, "from_model_file", classmethod(counting))
  texts = ["how do I reset my password?", "Wie kann ich mein Passwort zurücksetzen?",
           "¿Cómo puedo cambiar mi contraseña?", "je n'arrive pas à me connecter", "hi"] * 20
  results = {}
  barrier = threading.Barrier(8)

  def work(i):
    barrier.wait()
    results[i] = [detect_language(t) for t in texts]

  threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert len(loads) == 1
  assert all(r == results[0] for r in results.values())
  assert results[0][:5] == ["en", "de", "es", "fr", "und"]


def test_config_is_hashable_and_picklable():
  import pickle
  config = LanguageConfig(languages=("de", "en"))
  assert pickle.loads(pickle.dumps(config)) == config
  assert hash(config) == hash(LanguageConfig(languages=["en", "de"]))
