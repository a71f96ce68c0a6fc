"""Stages plug into Beam's own dead-letter idiom, `ErrorHandler`, as well as `with_dead_letters()`."""
import json

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.error_handling import ErrorHandler

from agentflow import Preprocess

GOOD = json.dumps({"event_id": "a", "session_id": "s", "text": "hello", "timestamp": 1})
BAD = ["{not json", json.dumps([1])]


def test_an_error_handler_receives_the_dead_letters_and_main_holds_the_rest():
  with TestPipeline() as p:
    with ErrorHandler(beam.Map(lambda dl: (dl.stage, dl.reason))) as handler:
      events = p | beam.Create([GOOD, *BAD]) | Preprocess().with_error_handler(handler)
    assert_that(events | beam.Map(lambda e: e.event_id), equal_to(["a"]), label="main")
    assert_that(handler.output(), equal_to([("preprocess", "invalid_json"), ("preprocess", "not_an_object")]),
                label="dead")


def test_no_error_handler_keeps_failing_on_the_first_bad_record():
  try:
    with TestPipeline() as p:
      _ = p | beam.Create(BAD) | Preprocess().with_error_handler(None)
  except Exception as e:  # noqa: BLE001 (Beam wraps the stage's error)
    assert "invalid_json" in str(e) or "not_an_object" in str(e)
  else:
    raise AssertionError("expected the pipeline to fail")
