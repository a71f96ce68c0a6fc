"""Helpers shared by the benchmark scripts: percentiles, result files and plots."""
from __future__ import annotations

import json
import os
import platform
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def percentiles(samples_ms, qs=(50, 99)):
  arr = np.asarray(samples_ms, dtype=np.float64)
  return {f"p{q}": round(float(np.percentile(arr, q)), 3) for q in qs}


def embed_rate(handler, model, texts, call: int) -> float:
  """Texts per second for `handler.embed` on `texts`, `call` texts per call, as RunInference hands them over."""
  start = time.perf_counter()
  for i in range(0, len(texts), call):
    handler.embed(model, texts[i:i + call])
  return len(texts) / (time.perf_counter() - start)


def machine() -> dict:
  return {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
          "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def save(name: str, result: dict) -> str:
  os.makedirs(RESULTS, exist_ok=True)
  path = os.path.join(RESULTS, f"{name}.json")
  with open(path, "w") as f:
    json.dump({**result, "machine": machine()}, f, indent=2, sort_keys=True)
  return path


def bar_plot(name: str, title: str, labels, series: dict, ylabel: str, hline=None) -> str:
  """One grouped bar chart (PNG) next to the JSON result."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  os.makedirs(RESULTS, exist_ok=True)
  fig, ax = plt.subplots(figsize=(7, 4))
  width = 0.8 / max(1, len(series))
  for i, (label, values) in enumerate(series.items()):
    xs = [x + i * width for x in range(len(labels))]
    bars = ax.bar(xs, values, width, label=label)
    ax.bar_label(bars, fmt="%.3g", fontsize=8)
  ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))], labels)
  if hline is not None:
    ax.axhline(hline[0], color="red", linestyle="--", linewidth=1, label=hline[1])
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.legend(fontsize=8)
  fig.tight_layout()
  path = os.path.join(RESULTS, f"{name}.png")
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def relay_batches(pull, deliver, stop, handle=None) -> int:
  """The peers' loop, whatever the transport: until `stop()` is true, `pull()` -> (datas, done)
  what is waiting (datas empty when nothing came), `handle(datas)` -> (outputs, dead) turns it
  into what `deliver(outputs, dead)` sends on (by default it is unchanged), then `done()` acks
  or commits it. Returns the number of messages relayed."""
  relayed = 0
  while not stop():
    datas, done = pull()
    if not datas:
      continue
    deliver(*(handle(datas) if handle else (datas, [])))
    done()
    relayed += len(datas)
  return relayed
