"""`agentflow tune`: pairs batched without in-batch twins, and a tuned model that separates the answers better."""
import io
import json
import os
import random

import numpy as np
import pytest

from agentflow import cli
from agentflow.models.sentence_transformers import SentenceTransformerHandler
from agentflow.models.tuning import METADATA, TuneConfig, pair_batches, phrasings, tune

# Near-synonymous intents, as in banking intent data: the stock model confuses these pairs.
INTENTS = {
    "verify": ["How do I verify my identity?", "Where do I prove who I am?", "What documents confirm my identity?",
               "I want to get my account verified."],
    "unable_verify": ["Why can't I verify my identity?", "The identity check keeps failing.",
                      "My verification was rejected.", "It won't accept my ID photo."],
    "declined": ["Why was my card payment declined?", "The shop refused my card.",
                 "My card got rejected at the checkout.", "Payment with my card was not accepted."],
    "failed_transfer": ["My bank transfer failed.", "The money I sent didn't go through.",
                        "Why did my transfer not complete?", "Sending money to my friend failed."],
    "lost_card": ["I lost my card.", "I can't find my card anywhere.", "My card is missing.",
                  "I misplaced my debit card."],
    "stolen_card": ["Someone stole my card.", "My wallet with my card was stolen.", "My card was taken by a thief.",
                    "I think my card was stolen yesterday."],
}
HELD_OUT = {
    "verify": ["How can I confirm my identity with you?"],
    "unable_verify": ["You keep refusing my identity documents."],
    "declined": ["The terminal declined my card."],
    "failed_transfer": ["My payment to another account did not arrive."],
    "lost_card": ["I have no idea where my card went."],
    "stolen_card": ["A pickpocket took my card."],
}


def _write_kb(path, intents):
  with open(path, "w") as f:
    n = 0
    for intent, questions in intents.items():
      for q in questions:
        n += 1
        f.write(json.dumps({"id": f"kb-{n}", "question": q, "answer": f"The {intent} answer.",
                            "topic": intent}) + "\n")
  return str(path)


def _margin(model_dir, intents, held_out):
  """Mean over held-out questions of (cosine to own answer's centroid - best other centroid)."""
  handler = SentenceTransformerHandler(model_dir)
  model = handler.load_model()
  names = sorted(intents)
  centroids = np.stack([handler.embed(model, intents[n]).mean(0) for n in names])
  centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
  margins = []
  for n in names:
    scores = handler.embed(model, held_out[n]) @ centroids.T
    own = scores[:, names.index(n)]
    other = np.delete(scores, names.index(n), axis=1).max(1)
    margins.extend(own - other)
  return float(np.mean(margins))


def test_every_pair_is_batched_once_and_no_answer_twice_in_a_batch():
  groups = {("", f"a{i}"): [f"q{i}-{j}" for j in range(2 + i % 3)] for i in range(7)}
  batches = pair_batches(groups, TuneConfig(batch_size=3), random.Random(0))
  expected = {(a, p) for qs in groups.values() for a in qs for p in qs if a != p}
  seen = [pair for batch in batches for pair in batch]
  assert len(seen) == len(set(seen))
  owner = {q: key for key, qs in groups.items() for q in qs}
  for batch in batches:
    assert 2 <= len(batch) <= 3
    assert len({owner[a] for a, _ in batch}) == len(batch)
  # All pairs but those of an answer left alone at the end (nothing to contrast them with).
  left = expected - set(seen)
  assert len({owner[a] for a, _ in left}) <= 1
  assert len(seen) >= len(expected) - 12


def test_pairs_per_answer_are_capped_with_every_phrasing_an_anchor():
  groups = {("", "big"): [f"q{j}" for j in range(10)], ("", "small"): ["a", "b"]}
  batches = pair_batches(groups, TuneConfig(max_pairs_per_answer=20), random.Random(1))
  big = [(a, p) for batch in batches for a, p in batch if a.startswith("q")]
  assert len(big) == 2  # one a round while "small" (2 pairs) is there to contrast with; alone, nothing is learnt
  batches = pair_batches({**groups, ("", "other"): [f"o{j}" for j in range(10)]}, TuneConfig(max_pairs_per_answer=20),
                         random.Random(1))
  big = [(a, p) for batch in batches for a, p in batch if a.startswith("q")]
  assert len(big) == 20 and len(set(big)) == 20
  anchors = [a for a, _ in big]
  assert {anchors.count(q) for q in groups[("", "big")]} == {2}  # every phrasing twice, none more


def test_tuning_separates_near_synonymous_answers_on_unseen_questions(tmp_path):
  kb = _write_kb(tmp_path / "kb.jsonl", INTENTS)
  out = tmp_path / "tuned"
  meta = tune(kb, str(out), config=TuneConfig(epochs=3, batch_size=6, learning_rate=5e-5))
  assert (meta["answers"], meta["tuned_answers"], meta["questions"]) == (6, 6, 24)
  assert meta["pairs_seen"] == 3 * 6 * 4 * 3  # epochs x answers x ordered pairs of 4 phrasings
  assert meta["last_loss"] < meta["first_loss"]
  assert json.loads((out / METADATA).read_text())["knowledge_sha256"] == meta["knowledge_sha256"]
  from agentflow.models.sentence_transformers import default_model_path
  before = _margin(default_model_path(), INTENTS, HELD_OUT)
  after = _margin(str(out), INTENTS, HELD_OUT)
  assert after > before + 0.02, (before, after)


def test_the_command_refuses_a_knowledge_base_without_phrasings(tmp_path, capsys):
  kb = _write_kb(tmp_path / "kb.jsonl", {k: v[:1] for k, v in INTENTS.items()})
  assert phrasings(kb)[0][("", "The verify answer.")] == ["How do I verify my identity?"]
  assert cli.main(["tune", "--knowledge", kb, "--out", str(tmp_path / "m")]) == 2
  assert "two or more distinct questions" in capsys.readouterr().err
  assert not (tmp_path / "m").exists()


def test_bad_settings_say_what_to_fix():
  with pytest.raises(ValueError, match="batch_size"):
    TuneConfig(batch_size=1)
  with pytest.raises(ValueError, match="epochs"):
    TuneConfig(epochs=0)


def _events(path, questions):
  with open(path, "w") as f:
    for n, q in enumerate(questions):
      f.write(json.dumps({"event_id": f"e{n}", "session_id": f"s{n}", "text": q, "timestamp": 1772442900 + n}) + "\n")
  return str(path)


def test_run_tunes_on_phrasings_once_and_later_runs_on_the_store_use_that_model(tmp_path):
  from apache_beam.options.pipeline_options import PipelineOptions

  from agentflow.job import STORE_MODEL_RECORD, run, with_tuned_model
  from agentflow.options import DEFAULT_ANSWER_THRESHOLD, TUNED_ANSWER_THRESHOLD, AgentflowOptions, answer_threshold
  kb = _write_kb(tmp_path / "kb.jsonl", INTENTS)
  events = _events(tmp_path / "events.jsonl", [q for qs in HELD_OUT.values() for q in qs])
  common = ["--store", f"local:{tmp_path}/store", "--tuned_models", str(tmp_path / "models"),
            "--progress_interval", "0", "--dead_letter_output", str(tmp_path / "dead.jsonl")]
  out = io.StringIO()
  summary = run(["--input", events, "--knowledge", kb, "--decisions_output", str(tmp_path / "d1.jsonl"), *common],
                out=out)
  assert summary.accounted and "tuning the model on the phrasings of 6 answers (24 questions)" in out.getvalue()
  (tuned,) = [p for p in (tmp_path / "models").iterdir()]
  assert (tuned / METADATA).is_file()
  record = json.loads((tmp_path / "store" / STORE_MODEL_RECORD).read_text())
  assert record["model"] == f"sentence-transformers:{tuned}"
  first = [json.loads(line) for line in open(tmp_path / "d1.jsonl")]
  assert {d["model_id"] for d in first} == {tuned.name}
  # Every held-out question is answered by its own intent with the tuned model.
  answers = {f"e{n}": f"The {i} answer." for n, i in enumerate(i for i, qs in HELD_OUT.items() for _ in qs)}
  assert {d["event_id"]: d["action"] for d in first} == {e: "reply" for e in answers}
  assert all(d["response"] == answers[d["event_id"]] for d in first)

  # Again with the same file: reused, not tuned again.
  out = io.StringIO()
  argv = with_tuned_model(["--knowledge", kb, *common], log=lambda m: print(m, file=out))
  assert "using the model tuned earlier" in out.getvalue() and len(list((tmp_path / "models").iterdir())) == 1
  assert argv[-2:] == ["--model", f"sentence-transformers:{tuned}"]
  # The tuned model's own threshold, unless one is given.
  threshold = [answer_threshold(PipelineOptions(a).view_as(AgentflowOptions))
               for a in (argv, argv + ["--answer_threshold", "0.3"], ["--knowledge", kb, *common])]
  assert threshold == [TUNED_ANSWER_THRESHOLD, 0.3, DEFAULT_ANSWER_THRESHOLD]

  # Events alone on that store: the store's model and threshold, unless given.
  out = io.StringIO()
  assert with_tuned_model(["--input", events, *common], log=lambda m: print(m, file=out))[-2:] == argv[-2:]
  assert "the model the knowledge in" in out.getvalue()
  out = io.StringIO()
  other = ["--input", events, "--model", "sentence-transformers", *common]
  assert with_tuned_model(other, log=lambda m: print(m, file=out)) == other
  assert "warning: the knowledge in" in out.getvalue()
  # --tune off, or a store that is not local: nothing changes.
  for argv in (["--knowledge", kb, "--tune", "off", *common],
               ["--knowledge", kb, "--store", "vespa:http://localhost:8080", "--tuned_models", str(tmp_path / "m2")]):
    assert with_tuned_model(argv) == argv
  assert not (tmp_path / "m2").exists()


def test_a_knowledge_base_with_one_phrasing_per_answer_runs_the_model_as_named(tmp_path):
  from agentflow.job import STORE_MODEL_RECORD, with_tuned_model
  kb = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "support_chatbot",
                    "knowledge.jsonl")
  argv = ["--knowledge", kb, "--store", f"local:{tmp_path}/store", "--tuned_models", str(tmp_path / "models")]
  assert with_tuned_model(argv) == argv
  assert not (tmp_path / "models").exists()
  record = json.loads((tmp_path / "store" / STORE_MODEL_RECORD).read_text())
  assert record["model"] == "sentence-transformers"
