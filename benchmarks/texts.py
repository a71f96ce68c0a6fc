"""Benchmark inputs: realistic support messages, made varied by combining real example texts."""
from __future__ import annotations

import json
import os
import random

from agentflow.evaluation import text_events

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                       "support_chatbot", "events.jsonl")


def example_texts():
  return [obj["text"] for obj in text_events(EXAMPLE) if obj["text"].strip()]


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
