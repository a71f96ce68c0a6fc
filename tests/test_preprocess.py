"""parse_event: validation reasons, normalisation, timestamps, ids, redaction before anything else."""
import json

import pytest

from agentflow.stages.preprocess import InvalidEvent, PreprocessConfig, derive_event_id, parse_event, parse_timestamp


def _ev(**kw):
  base = {"session_id": "s1", "text": "hello there", "timestamp": 1700000000}
  base.update(kw)
  return json.dumps(base)


@pytest.mark.parametrize("raw, reason", [
    (b"\xff\xfe\xfa", "invalid_utf8"),
    ("{", "invalid_json"),
    ("", "invalid_json"),
    ("[1, 2]", "not_an_object"),
    ("42", "not_an_object"),
    (json.dumps({"text": "x", "timestamp": 1}), "missing_field"),
    (json.dumps({"session_id": "s", "timestamp": 1}), "missing_field"),
    (json.dumps({"session_id": "s", "text": "x"}), "missing_field"),
    (_ev(text=42), "wrong_type"),
    (_ev(text=["a"]), "wrong_type"),
    (_ev(session_id=7), "wrong_type"),
    (_ev(session_id="   "), "empty_field"),
    (_ev(text=" \u200b\t\n "), "empty_text"),
    (_ev(text="x" * 20001), "text_too_long"),
    (_ev(timestamp="yesterday"), "bad_timestamp"),
    (_ev(timestamp=-5), "bad_timestamp"),
    (_ev(timestamp=True), "bad_timestamp"),
    (_ev(timestamp=float("nan")), "invalid_json"),
    ({"session_id": "s", "text": "x", "timestamp": float("nan")}, "bad_timestamp"),
    ({"session_id": "s", "text": "x", "timestamp": 10 ** 5000}, "bad_timestamp"),
    (_ev(attributes={"score": float("nan")}), "invalid_json"),
    (_ev(attributes={"score": float("inf")}), "invalid_json"),
    (_ev(attributes={"score": float("-inf")}), "invalid_json"),
    ('{"session_id": "s", "text": "x", "timestamp": 1, "attributes": {"n": 1e999}}', "number_too_large"),
    ('{"session_id": "s", "text": "x", "timestamp": 1, "attributes": {"n": ' + "7" * 4301 + "}}",
     "number_too_large"),
    ({"session_id": "s", "text": "x", "timestamp": 1, "attributes": {"n": float("nan")}}, "wrong_type"),
    (_ev(timestamp=253402300800), "bad_timestamp"),
    (_ev(timestamp="253402300800"), "bad_timestamp"),
    (_ev(timestamp=10 ** 11), "bad_timestamp"),
    (_ev(timestamp=10 ** 12 - 1), "bad_timestamp"),
    (_ev(timestamp=253402300800000), "bad_timestamp"),
    (_ev(attributes=[1]), "wrong_type"),
    (_ev(attributes={"a": {"nested": 1}}), "wrong_type"),
    (_ev(attributes={str(i): i for i in range(65)}), "too_many_attributes"),
    (_ev(colour="red"), "unknown_field"),
    ("[" * 100000 + "]" * 100000, "invalid_json"),
    ('{"session_id": "s", "text": "a\\ud800b", "timestamp": 1}', "invalid_unicode"),
    ('{"session_id": "s\\udfff", "text": "ok", "timestamp": 1}', "invalid_unicode"),
    ('{"session_id": "s", "text": "ok", "timestamp": 1, "attributes": {"k": "\\ud800"}}', "invalid_unicode"),
])
def test_invalid_events_have_reasons(raw, reason):
  assert _reason(parse_event, raw) == reason


def _reason(parse, raw):
  with pytest.raises(InvalidEvent) as e:
    parse(raw)
  return e.value.reason


def test_payload_size_limit():
  with pytest.raises(InvalidEvent) as e:
    parse_event(_ev(text="a" * 100), PreprocessConfig(max_payload_bytes=50))
  assert e.value.reason == "payload_too_large"


def test_normalises_and_keeps_fields():
  ev = parse_event(_ev(event_id=" e-1 ", text="  Ｈｅｌｌｏ\u0000  wide\n\nworld\u200b  ", tenant="acme",
                       attributes={"channel": "web", "n": 3, "ok": True, "none": None}))
  assert ev.event_id == "e-1"
  assert ev.text == "Hello wide world"
  assert ev.tenant == "acme"
  assert ev.attributes == {"channel": "web", "n": 3, "ok": True, "none": None}
  assert ev.timestamp == 1700000000.0


@pytest.mark.parametrize("value, expected", [
    ("2026-03-02T09:15:00Z", 1772442900.0),
    ("2026-03-02T10:15:00+01:00", 1772442900.0),
    ("2026-03-02T09:15:00", 1772442900.0),
    (1772442900, 1772442900.0),
    (1772442900123, 1772442900.123),
    ("1772442900", 1772442900.0),
    (99999999999, 99999999999.0),
    (10 ** 12, 10 ** 9),
    (253402300799999, 253402300799.999),
    ("9999-12-31T23:59:59Z", 253402300799.0),
    (0, 0.0),
])
def test_timestamps(value, expected):
  assert parse_timestamp(value) == pytest.approx(expected)


def test_missing_event_id_is_derived_deterministically():
  a = parse_event(_ev(text="same"))
  b = parse_event(_ev(text="same"))
  c = parse_event(_ev(text="different"))
  assert a.event_id == b.event_id != c.event_id
  assert a.event_id == derive_event_id("s1", 1700000000.0, "same")


def test_pii_is_redacted_in_text_and_attributes():
  ev = parse_event(_ev(text="write to jane.doe@example.com please",
                       attributes={"reply_to": "jane.doe@example.com"}))
  assert "jane.doe@example.com" not in ev.text and "jane.doe@example.com" not in json.dumps(ev.attributes)
  assert ev.redactions.get("EMAIL") == 2


def test_bytes_and_dicts_are_accepted():
  assert parse_event(_ev().encode()).text == "hello there"
  assert parse_event(json.loads(_ev())).text == "hello there"


def test_trace_id_from_traceparent_or_derived():
  tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
  assert parse_event(_ev(attributes={"traceparent": tp})).trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
  a, b = parse_event(_ev(event_id="x")), parse_event(_ev(event_id="x"))
  assert a.trace_id == b.trace_id and len(a.trace_id) == 32
  assert parse_event(_ev(event_id="y")).trace_id != a.trace_id


def test_dead_letter_payloads_are_always_valid_utf8():
  from agentflow.stages.preprocess import PreprocessConfig, _PreprocessFn
  fn = _PreprocessFn(PreprocessConfig())
  fn.setup()
  outs = [o for raw in ("bad\ud800json", {"text": "\udfff"}) for o in fn.process(raw)]
  assert [o.value.reason for o in outs] == ["invalid_json", "missing_field"]
  for o in outs:
    o.value.to_json().encode("utf-8")


def test_knowledge_entries_are_rejected_with_the_same_reasons_as_events():
  from agentflow.stages.knowledge import parse_knowledge
  bad = [b'{"id": "k", "question": "caf\xe9?", "answer": "yes"}', "[" * 100000 + "]" * 100000, "[1]",
         '{"id": "k", "question": "q"}']
  assert [_reason(parse_knowledge, raw) for raw in bad] == ["invalid_utf8", "invalid_json", "not_an_object",
                                                            "missing_field"]


def test_a_leading_byte_order_mark_is_not_an_error():
  assert parse_event(b"\xef\xbb\xbf" + _ev().encode()).text == "hello there"


def test_the_largest_integer_python_converts_is_still_accepted():
  assert parse_event('{"session_id": "s", "text": "x", "timestamp": 1, "attributes": {"n": '
                     + "7" * 4300 + "}}").attributes["n"] == int("7" * 4300)


def test_invisible_characters_are_removed_and_counted():
  hidden = "jo\u00adhn@exa\u2060mple.com, card 4111\u200b1111\u200d1111\u20621111 \u202eabc\u202c \U000e0041"
  ev = parse_event(_ev(text=hidden))
  assert ev.text == "[EMAIL], card [CARD] abc"
  assert ev.normalization["invisible_removed"] == 8
  assert ev.redactions == {"EMAIL": 1, "CARD": 1}
  assert parse_event(_ev()).normalization == {}


def test_ids_and_attribute_keys_holding_pii_are_pseudonymised():
  key = PreprocessConfig(pii_key="k1")
  raw = dict(session_id="jane@example.com", tenant="+44 20 7946 0958", event_id="ev-4155550134",
             attributes={"bob@example.org": "ip 10.0.0.1", "channel": "web"})
  a, b = parse_event(_ev(**raw), key), parse_event(_ev(**raw), PreprocessConfig(pii_key="k1"))
  other = parse_event(_ev(**raw), PreprocessConfig(pii_key="k2"))
  assert (a.session_id, a.tenant, a.event_id) == (b.session_id, b.tenant, b.event_id)
  assert a.session_id != other.session_id
  for value in (a.session_id, a.tenant, a.event_id, *a.attributes):
    assert value == "channel" or (value.startswith("pii-") and len(value) == 36)
  dumped = json.dumps([a.session_id, a.tenant, a.event_id, a.attributes, a.trace_id])
  for secret in ("jane", "7946", "4155550134", "bob", "10.0.0.1"):
    assert secret not in dumped
  assert a.normalization["ids_pseudonymised"] == 4
  assert parse_event(_ev(session_id=a.session_id), key).session_id == a.session_id  # replays keep it
  plain = parse_event(_ev(session_id="s-001", event_id="evt-0001", tenant="acme"), key)
  assert (plain.session_id, plain.event_id, plain.tenant) == ("s-001", "evt-0001", "acme")


def test_pii_key_is_not_in_repr_or_equality():
  assert "k1" not in repr(PreprocessConfig(pii_key="k1"))
  assert PreprocessConfig(pii_key="k1") == PreprocessConfig(pii_key="k2")
  assert PreprocessConfig().pii_key


def test_long_attribute_values_are_dead_lettered():
  with pytest.raises(InvalidEvent) as e:
    parse_event(_ev(attributes={"note": "x" * 5000}))
  assert e.value.reason == "field_too_long"
