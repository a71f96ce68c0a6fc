"""Benchmark inputs: realistic support messages, made varied by combining real example texts."""
from __future__ import annotations

import json
import os
import random

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                       "support_chatbot", "events.jsonl")


def example_texts():
  texts = []
  with open(EXAMPLE, encoding="utf-8") as f:
    for line in f:
      try:
        obj = json.loads(line)
      except ValueError:
        continue
      if isinstance(obj, dict) and isinstance(obj.get("text"), str) and obj["text"].strip():
        texts.append(obj["text"])
  return texts


def make_events(n: int, seed: int = 0):
  """`n` distinct JSON events: example texts, each given a distinct greeting and ticket number."""
  rng = random.Random(seed)
  base = example_texts()
  openers = ["", "Hi, ", "Hello team, ", "Quick question: ", "Hey, ", "Good morning. "]
  events = []
  for i in range(n):
    text = f"{rng.choice(openers)}{rng.choice(base)} (ticket {i})"
    events.append(json.dumps({"event_id": f"b-{i}", "session_id": f"s-{i % 997}", "text": text,
                              "timestamp": 1772442900 + i}))
  return events


def texts_of(events):
  return [json.loads(e)["text"] for e in events]
