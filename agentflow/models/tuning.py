"""Fine-tuning the embedding model on the knowledge base's own phrasings (`agentflow tune`, `--tune auto`).

With a few phrasings per answer, the stock model often puts a question nearer a
near-synonymous answer than its own. Tuning pulls each answer's phrasings together and
pushes other answers' apart (a contrastive loss with in-batch negatives, every batch
holding pairs of distinct answers), on the text ingestion embeds (normalised, redacted).
The result is an ordinary sentence-transformers directory (`--model
sentence-transformers:DIR`); tuning moves the scores, so it has its own answer threshold.
Answers with one phrasing give no pairs; a knowledge base made only of those is not tuned.
`agentflow run --tune auto` (the default) calls `tuned_model_for`, which tunes once per
knowledge file and reuses the result.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

METADATA = "agentflow_tuning.json"


@dataclass(frozen=True)
class TuneConfig:
  """`epochs` over the (question, other phrasing of its answer) pairs, at most
  `max_pairs_per_answer` of each answer's (so tuning time grows with the number of answers,
  not with the square of their phrasings); `scale` multiplies cosines in the loss; `seed`
  fixes pair order and initialisation, so a rerun gives the same model."""
  epochs: int = 1
  batch_size: int = 32
  learning_rate: float = 2e-5
  scale: float = 20.0
  max_pairs_per_answer: int = 20
  seed: int = 0

  def __post_init__(self):
    if not (isinstance(self.epochs, int) and self.epochs >= 1):
      raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
    if not (isinstance(self.batch_size, int) and self.batch_size >= 2):
      raise ValueError(f"batch_size must be an integer >= 2 (the other pairs in a batch are the negatives), "
                       f"got {self.batch_size!r}")
    if not (isinstance(self.max_pairs_per_answer, int) and self.max_pairs_per_answer >= 1):
      raise ValueError(f"max_pairs_per_answer must be a positive integer, got {self.max_pairs_per_answer!r}")
    if not (self.learning_rate > 0 and self.scale > 0):
      raise ValueError(f"learning_rate and scale must be positive, got {self.learning_rate!r}, {self.scale!r}")


def phrasings(knowledge_path: str) -> Tuple[Dict[Tuple[str, str], List[str]], int, str]:
  """(tenant, answer) -> its distinct questions as ingestion embeds them, how many lines were
  invalid, and the file's sha256 (one read of the file)."""
  from agentflow.stages.knowledge import answer_key, parse_knowledge
  from agentflow.stages.preprocess import InvalidEvent
  with open(knowledge_path, "rb") as f:
    data = f.read()
  groups: Dict[Tuple[str, str], List[str]] = {}
  invalid = 0
  for line in data.decode("utf-8").split("\n"):  # as ReadFromText splits: not on U+2028 and the like
    if not line.strip():
      continue
    try:
      entry = parse_knowledge(line)
    except InvalidEvent:
      invalid += 1
      continue
    questions = groups.setdefault(answer_key(entry), [])
    if entry.text not in questions:
      questions.append(entry.text)
  return groups, invalid, hashlib.sha256(data).hexdigest()


def tunable(groups: Dict[Tuple[str, str], List[str]]) -> Dict[Tuple[str, str], List[str]]:
  """The answers with two or more phrasings; tuning needs two such answers at least."""
  return {key: qs for key, qs in groups.items() if len(qs) >= 2}


def pair_batches(groups: Dict[Tuple[str, str], List[str]], config: TuneConfig,
                 rng: random.Random) -> List[List[Tuple[str, str]]]:
  """Ordered pairs of two phrasings of one answer (up to `max_pairs_per_answer` of each, every
  phrasing an anchor before any is one twice), in shuffled batches in which no answer appears
  twice (another pair of the same answer would be taught as a negative)."""
  queues = {}
  for key, qs in sorted(groups.items()):
    by_anchor = [[(a, p) for p in qs if p != a] for a in qs]
    for row in by_anchor:
      rng.shuffle(row)
    # Round-robin over anchors: the first len(qs) pairs give every phrasing one turn as anchor.
    pairs = [row[i] for i in range(len(qs) - 1) for row in by_anchor][:config.max_pairs_per_answer]
    if pairs:
      queues[key] = pairs
  batches: List[List[Tuple[str, str]]] = []
  while len(queues) >= 2:  # a round takes one pair of every answer that has pairs left
    live = sorted(queues)
    rng.shuffle(live)
    for i in range(0, len(live), config.batch_size):
      chunk = live[i:i + config.batch_size]
      if len(chunk) >= 2:
        batches.append([queues[key].pop() for key in chunk])
    queues = {key: pairs for key, pairs in queues.items() if pairs}
  rng.shuffle(batches)
  return batches  # pairs of a last answer with no other left are dropped: nothing to contrast them with


def tune(knowledge_path: str, out_dir: str, model_path: Optional[str] = None,
         config: TuneConfig = TuneConfig(), log=None, knowledge=None) -> dict:
  """Fine-tunes the model at `model_path` (default: the packaged all-MiniLM-L6-v2) into `out_dir`;
  returns the metadata it writes beside the model. `knowledge` is `phrasings(knowledge_path)` when
  the caller has it. Raises ValueError when there is nothing to tune on."""
  import numpy as np
  import torch
  from sentence_transformers import SentenceTransformer

  from agentflow.models.sentence_transformers import default_model_path, offline_and_quiet

  offline_and_quiet()
  groups, invalid, digest = knowledge or phrasings(knowledge_path)
  answers = tunable(groups)
  if len(answers) < 2:
    raise ValueError(f"{knowledge_path}: {len(answers)} answer(s) have two or more distinct questions; tuning "
                     "needs at least two such answers (it learns from several phrasings of one answer against "
                     "the others). Add phrasings, or run without --model pointing at a tuned model")
  base = os.path.abspath(model_path) if model_path else default_model_path()
  rng = random.Random(config.seed)
  torch.manual_seed(config.seed)
  model = SentenceTransformer(base, device="cpu", local_files_only=True)
  optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
  started, losses, pairs = time.monotonic(), [], 0
  model.train()
  for epoch in range(config.epochs):
    epoch_start = len(losses)
    for batch in pair_batches(answers, config, rng):
      anchors = _embed(model, [a for a, _ in batch])
      positives = _embed(model, [p for _, p in batch])
      loss = torch.nn.functional.cross_entropy(anchors @ positives.T * config.scale, torch.arange(len(batch)))
      optimiser.zero_grad()
      loss.backward()
      optimiser.step()
      losses.append(loss.item())
      pairs += len(batch)
    if log:
      log(f"epoch {epoch + 1}/{config.epochs}: mean loss {np.mean(losses[epoch_start:]):.3f}")
  model.eval()
  os.makedirs(out_dir, exist_ok=True)
  model.save(out_dir)
  meta = {"base_model": base, "knowledge": os.path.abspath(knowledge_path), "knowledge_sha256": digest,
          "answers": len(groups), "tuned_answers": len(answers),
          "questions": sum(len(qs) for qs in groups.values()), "invalid_lines": invalid,
          "pairs_seen": pairs, "first_loss": losses[0], "last_loss": losses[-1],
          "seconds": round(time.monotonic() - started, 1), "config": asdict(config)}
  with open(os.path.join(out_dir, METADATA), "w", encoding="utf-8") as f:
    json.dump(meta, f, indent=2)
  return meta


def is_tuned(model_dir: str) -> bool:
  """Whether `model_dir` is the output of `tune` (so it is not tuned again)."""
  return os.path.isfile(os.path.join(model_dir, METADATA))


def tuned_model_for(knowledge_path: str, root: str, model_path: Optional[str] = None,
                    config: TuneConfig = TuneConfig(), log=None) -> Optional[str]:
  """The model tuned on `knowledge_path` under `root`, tuned now unless an earlier run left it
  (one per knowledge file content, base model and config); None when the file gives nothing to
  tune on (fewer than two answers with two or more phrasings)."""
  from agentflow.models.sentence_transformers import default_model_path
  knowledge = phrasings(knowledge_path)
  answers = tunable(knowledge[0])
  if len(answers) < 2:
    return None
  base = os.path.abspath(model_path) if model_path else default_model_path()
  key = json.dumps({"knowledge": knowledge[2], "base": base, "config": asdict(config)}, sort_keys=True)
  final = os.path.join(os.path.abspath(root), hashlib.sha256(key.encode()).hexdigest()[:20])
  if is_tuned(final):
    if log:
      log(f"using the model tuned earlier on this knowledge file: {final}")
    return final
  if log:
    log(f"tuning the model on the phrasings of {len(answers)} answers ({sum(map(len, answers.values()))} questions), "
        f"once per knowledge file, into {final} (--tune off skips it)")
  staging = f"{final}.tmp-{os.getpid()}"
  meta = tune(knowledge_path, staging, model_path, config, knowledge=knowledge)
  try:
    os.replace(staging, final)
  except OSError:  # another run finished the same model first: keep its copy
    if not is_tuned(final):
      raise
    import shutil
    shutil.rmtree(staging, ignore_errors=True)
  if log:
    log(f"tuned in {meta['seconds']} s (loss {meta['first_loss']:.3f} -> {meta['last_loss']:.3f})")
  return final


def _embed(model, texts: Sequence[str]):
  import torch
  features = model.preprocess(list(texts))
  return torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)


def tune_parser() -> argparse.ArgumentParser:
  """The flags of `agentflow tune`."""
  d = TuneConfig()
  p = argparse.ArgumentParser(prog="agentflow tune", description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--knowledge", required=True, help="Knowledge JSON lines, as `agentflow ingest` reads them.")
  p.add_argument("--out", required=True, help="Directory for the tuned sentence-transformers model.")
  p.add_argument("--model", default=None, help="Local sentence-transformers directory to start from "
                 "(default: the packaged all-MiniLM-L6-v2).")
  p.add_argument("--epochs", type=int, default=d.epochs)
  p.add_argument("--batch_size", type=int, default=d.batch_size)
  p.add_argument("--learning_rate", type=float, default=d.learning_rate)
  p.add_argument("--max_pairs_per_answer", type=int, default=d.max_pairs_per_answer)
  p.add_argument("--seed", type=int, default=d.seed)
  return p


def main_tune(argv: List[str], out=None) -> int:
  """`agentflow tune`; returns the exit code (2: bad flags or nothing to tune on)."""
  out = out or sys.stdout
  args = tune_parser().parse_args(argv)
  try:
    config = TuneConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                        max_pairs_per_answer=args.max_pairs_per_answer, seed=args.seed)
    meta = tune(args.knowledge, args.out, args.model, config, log=lambda m: print(m, file=out))
  except (ValueError, OSError) as e:
    print(f"agentflow tune: {e}", file=sys.stderr)
    return 2
  print(f"tuned {meta['tuned_answers']} of {meta['answers']} answers ({meta['questions']} questions, "
        f"{meta['pairs_seen']} pairs) in {meta['seconds']} s; loss {meta['first_loss']:.3f} -> "
        f"{meta['last_loss']:.3f}; model in {os.path.abspath(args.out)}", file=out)
  from agentflow.options import TUNED_ANSWER_THRESHOLD
  print(f"run with --model sentence-transformers:{os.path.abspath(args.out)}: its default --answer_threshold is "
        f"{TUNED_ANSWER_THRESHOLD} (tuning moves the scores); agentflow eval --target_precision P finds yours",
        file=out)
  return 0
