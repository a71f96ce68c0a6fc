"""Property tests: whatever arrives, Preprocess never crashes and accounts for every input.

Over 10,000 generated inputs in all (invalid JSON and UTF-8, missing / extra / wrong-typed
fields, empty and 1 MB texts, unicode edge cases, huge attribute maps).
"""
import json

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentflow.stages.preprocess import InvalidEvent, Preprocess, PreprocessConfig, parse_event

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=40))
json_values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), c, max_size=4)),
                           max_leaves=12)
texts = st.one_of(st.text(max_size=200),
                  st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Mn", "So", "Cs"]), max_size=50),
                  st.sampled_from(["", " ", "\u200b", "\ufeff", "a\u0000b", "👩‍👩‍👧‍👦" * 10, "x" * 1_000_000,
                                   "e\u0301" * 1000, "\ud800"]))
timestamps = st.one_of(st.integers(min_value=-10, max_value=10**14), st.floats(),
                       st.sampled_from(["2026-03-02T09:15:00Z", "2026-13-45T99:99:99Z", "", "now"]),
                       json_values)
events = st.fixed_dictionaries(
    {},
    optional={"event_id": st.one_of(st.text(max_size=300), json_values),
              "session_id": st.one_of(st.text(max_size=20), json_values),
              "text": st.one_of(texts, json_values),
              "timestamp": timestamps,
              "attributes": st.one_of(st.dictionaries(st.text(max_size=10), scalars, max_size=80), json_values),
              "tenant": st.one_of(st.text(max_size=10), json_values),
              "extra": json_values})


def _encode(obj):
  return json.dumps(obj, ensure_ascii=False, allow_nan=True)


payloads = st.one_of(
    events.map(_encode),
    events.map(lambda e: _encode(e).encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
    st.text(max_size=300),
    json_values.map(_encode),
    events.map(lambda e: _encode(e)[: max(1, len(_encode(e)) // 2)]),
)

SMALL = PreprocessConfig(max_text_chars=20_000, max_payload_bytes=2_000_000)


@settings(max_examples=8000, deadline=None, suppress_health_check=list(HealthCheck))
@given(payloads)
def test_parse_event_only_ever_raises_invalid_event(raw):
  try:
    ev = parse_event(raw, SMALL)
  except InvalidEvent as e:
    assert e.reason and str(e)
    return
  assert ev.text and ev.session_id and ev.event_id and len(ev.trace_id) == 32
  assert 0 <= ev.timestamp
  assert len(ev.text) <= SMALL.max_text_chars


def _as_transported(payload):
  """A str Beam cannot encode (lone surrogates) can only arrive as bytes from a broken producer."""
  if isinstance(payload, str):
    try:
      payload.encode("utf-8")
    except UnicodeEncodeError:
      return payload.encode("utf-8", "surrogatepass")
  return payload


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(payloads, min_size=150, max_size=250))
def test_preprocess_accounts_for_every_input(batch):
  batch = [_as_transported(x) for x in batch]
  with TestPipeline() as p:
    good, dead = p | beam.Create(batch, reshuffle=False) | Preprocess(SMALL).with_dead_letters()
    both = ((good | "g" >> beam.Map(lambda e: "ok"), dead | "d" >> beam.Map(
        lambda d: "dl" if d.stage == "preprocess" and d.reason and d.payload is not None else "bad"))
            | beam.Flatten() | beam.combiners.Count.PerElement() | beam.Map(lambda kv: kv)
            | beam.combiners.ToList() | beam.Map(lambda kvs: (sum(n for _, n in kvs), dict(kvs).get("bad", 0))))
    assert_that(both, equal_to([(len(batch), 0)]))
