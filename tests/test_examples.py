"""The IoT and trading examples run end to end and make the right calls on their data."""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(module, path):
  import importlib.util
  spec = importlib.util.spec_from_file_location(module, path)
  mod = importlib.util.module_from_spec(spec)
  sys.modules[module] = mod
  spec.loader.exec_module(mod)
  return mod


def test_iot_alerts_exactly_the_injected_faults(tmp_path):
  iot = _load("iot_pipeline", os.path.join(ROOT, "examples", "iot_anomaly", "pipeline.py"))
  decisions = iot.run(["--out", str(tmp_path)])
  expected = {f"{e['device']}@{e['window_start']}" for e in
              map(json.loads, open(os.path.join(ROOT, "examples", "iot_anomaly", "expected.jsonl")))}
  assert len(decisions) == 6 * 96
  alerted = {d["window"] for d in decisions if d["action"] == "alert"}
  assert alerted == expected
  assert all(d["anomaly_score"] < 0.002 for d in decisions if d["window"] not in expected)


def test_trading_signals_match_injected_patterns(tmp_path):
  trading = _load("trading_pipeline", os.path.join(ROOT, "examples", "trading_signals", "pipeline.py"))
  signals = trading.run(["--out", str(tmp_path)])
  occurrences = list(map(json.loads, open(os.path.join(ROOT, "examples", "trading_signals", "expected.jsonl"))))
  by_window = {s["window"]: s for s in signals}
  for occ in occurrences:
    got = by_window[f"{occ['symbol']}@{occ['start']}"]
    assert got["signal"] == occ["signal"], occ
  window_s = trading.WINDOW_MIN * 60
  for s in signals:
    symbol, start = s["window"].split("@")
    start = int(start)
    overlaps = any(o["symbol"] == symbol and start < o["end"] + 60 and start + window_s > o["start"]
                   for o in occurrences)
    if not overlaps:
      assert s["signal"] == "hold", s
  assert sum(s["signal"] != "hold" for s in signals) <= 3 * len(occurrences)
