"""Writes the trading example: a pattern library and a day of minute ticks with injected patterns.

  python examples/trading_signals/make_data.py

`patterns.jsonl` holds labelled price-movement templates (the "past patterns" the agent
knows), several noisy variants each, with the signal each implies. `ticks.jsonl` holds
one price per symbol per minute: a quiet random walk with injected occurrences of the
patterns; `expected.jsonl` lists each occurrence (symbol, first and last minute, signal).
Deterministic (seeded).
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SYMBOLS = ["ACME", "BOLT", "CRUX", "DYNA"]
T0 = 1772442000   # 2026-03-02T09:00:00Z
MINUTES = 480
PATTERN_LEN = 30

TEMPLATES = {  # name -> (signal, shape over 0..1)
    "breakout": ("buy", lambda x: np.where(x < 0.6, 0.0, (x - 0.6) / 0.4)),
    "breakdown": ("sell", lambda x: np.where(x < 0.6, 0.0, -(x - 0.6) / 0.4)),
    "v_reversal": ("buy", lambda x: -np.abs(x - 0.5) * -2 - 1.0),
    "blow_off_top": ("sell", lambda x: -np.abs(x - 0.5) * 2),
}
INJECTED = [("ACME", 60, "breakout"), ("BOLT", 120, "breakdown"), ("CRUX", 200, "v_reversal"),
            ("DYNA", 270, "blow_off_top"), ("ACME", 350, "blow_off_top"), ("CRUX", 420, "breakout")]


def shape(name, rng, noise=0.03):
  x = np.linspace(0, 1, PATTERN_LEN)
  return TEMPLATES[name][1](x) + rng.normal(0, noise, PATTERN_LEN)


def main():
  rng = np.random.default_rng(7)
  with open(os.path.join(HERE, "patterns.jsonl"), "w") as f:
    for name, (signal, _) in TEMPLATES.items():
      for v in range(6):
        prices = 100 * (1 + 0.05 * shape(name, rng))
        f.write(json.dumps({"id": f"{name}-{v}", "pattern": name, "signal": signal,
                            "prices": [round(float(p), 3) for p in prices]}) + "\n")
  ticks = []
  for s, symbol in enumerate(SYMBOLS):
    log_price = np.log(50 + 30 * s) + np.cumsum(rng.normal(0, 0.0004, MINUTES))
    for sym, start, name in INJECTED:
      if sym == symbol:
        move = 0.06 * shape(name, rng, noise=0.02)
        log_price[start:start + PATTERN_LEN] += move - move[0]
        log_price[start + PATTERN_LEN:] += move[-1] - move[0]
    ticks += [{"symbol": symbol, "timestamp": T0 + 60 * m, "price": round(float(np.exp(lp)), 4)}
              for m, lp in enumerate(log_price)]
  with open(os.path.join(HERE, "ticks.jsonl"), "w") as f:
    f.writelines(json.dumps(t) + "\n" for t in sorted(ticks, key=lambda t: (t["timestamp"], t["symbol"])))
  with open(os.path.join(HERE, "expected.jsonl"), "w") as f:
    for sym, start, name in INJECTED:
      f.write(json.dumps({"symbol": sym, "start": T0 + 60 * start, "end": T0 + 60 * (start + PATTERN_LEN - 1),
                          "pattern": name, "signal": TEMPLATES[name][0]}) + "\n")
  print(f"{len(TEMPLATES) * 6} patterns, {len(ticks)} ticks, {len(INJECTED)} injected occurrences")


if __name__ == "__main__":
  main()
