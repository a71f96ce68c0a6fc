"""RunSummary: the accounting identity with dropped duplicates, what `agentflow run` exits with, and
the dead-letter reasons it counts, each documented in README."""
from agentflow.cli import _run
from agentflow.observability.summary import RunSummary

COUNTERS = {"preprocess.in": 10, "preprocess.out": 8, "preprocess.dead_letter.invalid_json": 2,
            "dedupe.in": 8, "dedupe.out": 6, "dedupe.duplicates": 1, "dedupe.dead_letter.conflicting_event_id": 1,
            "decide.in": 6, "decide.out": 6, "decision.reply": 6}


def test_inputs_are_decisions_plus_dead_letters_plus_duplicates_dropped():
  s = RunSummary.from_counters(COUNTERS)
  assert (s.inputs, s.decisions, s.dead_letters, s.duplicates, s.accounted) == (10, 6, 3, 1, True)
  assert s.stages["dedupe"] == {"in": 8, "out": 6} and "dedupe.duplicates" not in s.other
  assert "dead letters 3  duplicates dropped 1  accounted yes" in s.format()
  assert "agentflow_duplicates_dropped_total 1\n" in s.prometheus()
  assert '"duplicates": 1' in s.to_json()


def test_a_lost_element_still_breaks_the_identity_and_the_exit_code(monkeypatch):
  lost = RunSummary.from_counters({**COUNTERS, "preprocess.in": 11})
  assert not lost.accounted and "accounted NO" in lost.format()
  assert "agentflow_run_accounted 0" in lost.prometheus()
  monkeypatch.setattr("agentflow.job.run", lambda argv: lost)
  assert _run([]) == 3
  monkeypatch.setattr("agentflow.job.run", lambda argv: RunSummary.from_counters(COUNTERS))
  assert _run([]) == 0


def test_readme_documents_every_dead_letter_reason():
  import os
  import re
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  reasons = set()
  for folder, _, files in os.walk(os.path.join(root, "agentflow")):
    for name in files:
      if name.endswith(".py"):
        text = open(os.path.join(folder, name), encoding="utf-8").read()
        reasons |= set(re.findall(r'(?:InvalidEvent|dead_letter)\(\s*"([a-z0-9_]+)"', text))
        for chosen in re.findall(r'reason = "([a-z0-9_]+)" if .* else "([a-z0-9_]+)"', text):
          reasons |= set(chosen)
  assert {"invalid_utf8", "conflicting_event_id", "internal_error", "invalid_unicode", "dimension_mismatch"} <= reasons
  table = open(os.path.join(root, "README.md"), encoding="utf-8").read()
  assert not [r for r in sorted(reasons) if f"`{r}`" not in table]
