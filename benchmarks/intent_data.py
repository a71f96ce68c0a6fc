"""Public labelled intent data sets, assembled into a knowledge base, held-out questions and labels.

Nothing here is committed data: each loader reads a clone of the data set's own repository,
either a working tree (`git clone https://github.com/clinc/oos-eval`) or a bare git directory
(read with `git show HEAD:PATH`):

  clinc150   https://github.com/clinc/oos-eval                 150 intents + out-of-scope ("oos")
  banking77  https://github.com/PolyAI-LDN/task-specific-datasets   77 intents, 27 held out as out-of-scope
  hwu64      https://github.com/xliuhw/NLU-Evaluation-Data      64 intents, 14 held out as out-of-scope

Banking77 and HWU64 have no out-of-scope questions, so (as Banking77-OOS does) a seeded set of
intents is held out: they get no knowledge entry and their questions must be escalated.
The knowledge base holds `shots` seeded training questions per in-scope intent, all with the
intent's one answer; `val` questions come from the training split (never from the KB) and
`test` from the test split, so a policy can be chosen on `val` and reported on `test`.
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

OOS = None  # the label of an out-of-scope question

HWU_FOLD = ("CrossValidation/autoGeneFromRealAnno/autoGene_2018_03_22-13_01_25_169/CrossValidation/KFold_1")


@dataclass(frozen=True)
class IntentData:
  """`kb`: (intent, question); `val` / `test`: (intent or OOS, question)."""
  name: str
  kb: Tuple[Tuple[str, str], ...]
  val: Tuple[Tuple[Optional[str], str], ...]
  test: Tuple[Tuple[Optional[str], str], ...]

  @property
  def intents(self) -> List[str]:
    return sorted({i for i, _ in self.kb})


class Repo:
  """Reads files from a working tree or a bare git directory."""

  def __init__(self, path: str):
    self.path = path
    self.bare = not os.path.exists(os.path.join(path, ".git")) and os.path.exists(os.path.join(path, "HEAD"))

  def read(self, rel: str) -> str:
    if not self.bare:
      with open(os.path.join(self.path, rel), encoding="utf-8") as f:
        return f.read()
    return subprocess.run(["git", f"--git-dir={self.path}", "show", f"HEAD:{rel}"], check=True,
                          capture_output=True).stdout.decode("utf-8")

  def listdir(self, rel: str) -> List[str]:
    if not self.bare:
      return sorted(os.listdir(os.path.join(self.path, rel)))
    out = subprocess.run(["git", f"--git-dir={self.path}", "ls-tree", "--name-only", f"HEAD:{rel}"], check=True,
                         capture_output=True).stdout.decode("utf-8")
    return sorted(out.split())


def _split(by_intent: Dict[str, List[str]], test: Sequence[Tuple[str, str]], held_out: Sequence[str],
           shots: int, val_per_intent: int, seed: int, name: str) -> IntentData:
  rng = random.Random(seed)
  kb, val = [], []
  for intent in sorted(by_intent):
    questions = sorted(set(by_intent[intent]))
    rng.shuffle(questions)
    if intent in held_out:
      val.extend((OOS, q) for q in questions[:val_per_intent])
      continue
    kb.extend((intent, q) for q in questions[:shots])
    val.extend((intent, q) for q in questions[shots:shots + val_per_intent])
  test = [(OOS if i in held_out else i, q) for i, q in test]
  return IntentData(name, tuple(kb), tuple(val), tuple(test))


def clinc150(path: str, shots: int = 5, seed: int = 0) -> IntentData:
  """KB from `train`; val = `val` + `oos_val`; test = `test` + `oos_test` (data_full.json)."""
  data = json.loads(Repo(path).read("data/data_full.json"))
  by_intent: Dict[str, List[str]] = {}
  for q, intent in data["train"]:
    by_intent.setdefault(intent, []).append(q)
  rng = random.Random(seed)
  kb = []
  for intent in sorted(by_intent):
    questions = sorted(set(by_intent[intent]))
    kb.extend((intent, q) for q in rng.sample(questions, shots))
  val = [(i, q) for q, i in data["val"]] + [(OOS, q) for q, _ in data["oos_val"]]
  test = [(i, q) for q, i in data["test"]] + [(OOS, q) for q, _ in data["oos_test"]]
  return IntentData("clinc150", tuple(kb), tuple(val), tuple(test))


def _held_out(intents: Sequence[str], n: int, seed: int) -> List[str]:
  return sorted(random.Random(seed).sample(sorted(intents), n))


def banking77(path: str, shots: int = 5, seed: int = 0, held_out: int = 27, val_per_intent: int = 10
              ) -> IntentData:
  """banking_data/train.csv and test.csv; `held_out` seeded intents become out-of-scope."""
  repo = Repo(path)

  def rows(rel):
    return [(r["category"], r["text"]) for r in csv.DictReader(io.StringIO(repo.read(rel)))]

  by_intent: Dict[str, List[str]] = {}
  for intent, q in rows("banking_data/train.csv"):
    by_intent.setdefault(intent, []).append(q)
  out = _held_out(by_intent, held_out, seed)
  return _split(by_intent, rows("banking_data/test.csv"), out, shots, val_per_intent, seed, "banking77")


def hwu64(path: str, shots: int = 5, seed: int = 0, held_out: int = 14, val_per_intent: int = 10) -> IntentData:
  """Fold 1 of the authors' cross-validation split (trainset / testset CSVs, `answer_from_anno`)."""
  repo = Repo(path)

  def rows(rel):
    text = repo.read(rel)
    return [(f"{r['scenario']}_{r['intent']}", r["answer_from_anno"].strip())
            for r in csv.DictReader(io.StringIO(text), delimiter=";") if r["answer_from_anno"].strip()]

  by_intent: Dict[str, List[str]] = {}
  for name in repo.listdir(f"{HWU_FOLD}/trainset"):
    for intent, q in rows(f"{HWU_FOLD}/trainset/{name}"):
      by_intent.setdefault(intent, []).append(q)
  test = []
  for name in repo.listdir(f"{HWU_FOLD}/testset/csv"):
    test.extend(rows(f"{HWU_FOLD}/testset/csv/{name}"))
  out = _held_out(by_intent, held_out, seed)
  return _split(by_intent, test, out, shots, val_per_intent, seed, "hwu64")


LOADERS = {"clinc150": clinc150, "banking77": banking77, "hwu64": hwu64}
