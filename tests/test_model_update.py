"""Model rollout without restart: a side input swaps the model mid-stream; events carry the version."""
import json
import shutil

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import ModelMetadata
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import trigger, window
from apache_beam.transforms.window import TimestampedValue

from agentflow import AgentEvent, Embed
from agentflow.models import SentenceTransformerHandler
from agentflow.models.sentence_transformers import default_model_path


def _model_versions(tmp_path):
  v1 = tmp_path / "minilm-v1"
  v2 = tmp_path / "minilm-v2"
  shutil.copytree(default_model_path(), v1)
  shutil.copytree(default_model_path(), v2)
  pooling = v2 / "1_Pooling" / "config.json"
  cfg = json.loads(pooling.read_text())
  cfg.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
  pooling.write_text(json.dumps(cfg))
  return str(v1), str(v2)


class _Emit(beam.DoFn):
  def process(self, element):
    yield from element


def test_side_input_swaps_the_model_mid_stream(tmp_path):
  v1, v2 = _model_versions(tmp_path)
  t0, interval = 1_000_000, 10
  events = [AgentEvent(event_id=f"e{i}", session_id="s", text="How do I reset my password?",
                       timestamp=float(t0 + ts)) for i, ts in enumerate([1, 3, 12, 15, 23])]
  updates = [(t0 + 0, ModelMetadata(model_id=v1, model_name="minilm-v1")),
             (t0 + 10, ModelMetadata(model_id=v2, model_name="minilm-v2")),
             (t0 + 20, ModelMetadata(model_id=v1, model_name="minilm-v1"))]
  handler = SentenceTransformerHandler(v1)
  with TestPipeline("apache_beam.runners.portability.fn_api_runner.FnApiRunner") as p:
    side = (p | "Updates" >> beam.Create(updates) | "StampU" >> beam.Map(lambda x: TimestampedValue(x[1], x[0]))
            | "WinU" >> beam.WindowInto(window.FixedWindows(interval),
                                         accumulation_mode=trigger.AccumulationMode.DISCARDING)
            | "KeyU" >> beam.Map(lambda x: ("k", x)) | "GbkU" >> beam.GroupByKey()
            | "ValsU" >> beam.Map(lambda x: x[1]) | "EmitU" >> beam.ParDo(_Emit()))
    main = (p | "Events" >> beam.Create(events) | "Stamp" >> beam.Map(lambda e: TimestampedValue(e, e.timestamp))
            | "Win" >> beam.WindowInto(window.FixedWindows(interval))
            | "Key" >> beam.Map(lambda e: ("k", e)) | "Gbk" >> beam.GroupByKey()
            | "Vals" >> beam.Map(lambda x: x[1]) | "Emit" >> beam.ParDo(_Emit()))
    embedded = main | Embed(handler, model_metadata_pcoll=side)
    by_id = embedded | beam.Map(lambda e: (e.event_id, e.model_id))
    assert_that(by_id, equal_to([("e0", "minilm-v1"), ("e1", "minilm-v1"), ("e2", "minilm-v2"),
                                 ("e3", "minilm-v2"), ("e4", "minilm-v1")]), label="versions")

    def vectors_differ(items):
      vecs = {e.event_id: e.embedding for e in items}
      assert np.allclose(vecs["e0"], vecs["e1"], atol=1e-5)
      assert np.allclose(vecs["e0"], vecs["e4"], atol=1e-5)
      assert not np.allclose(vecs["e0"], vecs["e2"], atol=1e-3)
    assert_that(embedded | beam.WindowInto(window.GlobalWindows()) | beam.combiners.ToList()
                | beam.FlatMap(lambda x: [x]), lambda got: vectors_differ(got[0]), label="vectors")
