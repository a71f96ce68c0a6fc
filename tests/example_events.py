"""The support example's events as tests use them across runners and IOs."""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENTS = os.path.join(ROOT, "examples", "support_chatbot", "events.jsonl")


def event_lines(n):
  """The first `n` non-blank lines of the example, malformed ones included."""
  with open(EVENTS) as f:
    return [l for l in f.read().splitlines() if l.strip()][:n]


def valid_event_ids(lines):
  """Ids of the lines that must end in a decision: JSON objects with an id and a non-blank text."""
  ids = set()
  for line in lines:
    try:
      obj = json.loads(line)
    except ValueError:
      continue
    if isinstance(obj, dict) and obj.get("event_id") and isinstance(obj.get("text"), str) and obj["text"].strip():
      ids.add(obj["event_id"])
  return ids
