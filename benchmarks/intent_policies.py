"""Answer policies and models compared on the same vectors, without the pipeline (numpy).

  python -m benchmarks.intent_policies --clinc150 oos-eval [--model DIR] [--tune] [--shots 5] [--seed 0]

Embeds CLINC150's knowledge base (`--shots` training questions per intent, as
benchmarks/intent_eval.py builds it) and its whole test split (4,500 in scope, 1,000 out of
scope) with the model (`--model`: a local sentence-transformers directory, default the
packaged all-MiniLM-L6-v2; `--tune`: first tuned on that knowledge base by
`agentflow.models.tuning`, as `agentflow run`'s `--tune auto` does), then prints per policy:
in-scope top-1 accuracy (the most any threshold can give the in-scope questions) and the
best accuracy with at least 90% of out-of-scope questions escalated (the threshold is
chosen on the test split itself, so this is an upper bound for that policy and model).
Issue 22's goal is accuracy >= 0.85 at >= 90% escalated.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from benchmarks import intent_data


def _norm(x):
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def policies(kb_x, kb_y, kb_text):
  """name -> function(vectors, texts) -> (n, intents) scores, and the intents' order."""
  from sklearn.feature_extraction.text import TfidfVectorizer
  intents = np.array(sorted(set(kb_y)))
  members = [kb_y == i for i in intents]
  centroids = _norm(np.stack([kb_x[m].mean(0) for m in members]))
  means = np.stack([kb_x[m].mean(0) for m in members])
  resid = kb_x - means[np.searchsorted(intents, kb_y)]
  cov = resid.T @ resid / (len(kb_x) - len(intents))
  cov = 0.3 * cov + 0.7 * np.trace(cov) / len(cov) * np.eye(len(cov))  # shrinkage towards a sphere
  w, u = np.linalg.eigh(cov)
  whiten = u @ np.diag(w ** -0.5) @ u.T
  centre = kb_x.mean(0)
  white_centroids = _norm((means - centre) @ whiten)
  tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(kb_text)
  kb_t = tfidf.transform(kb_text).toarray()
  tf_centroids = _norm(np.stack([kb_t[m].mean(0) for m in members]))
  return intents, {
      "nearest question (top1)": lambda x, t: np.stack([(x @ kb_x[m].T).max(1) for m in members], 1),
      "answer centroid (default policy)": lambda x, t: x @ centroids.T,
      "whitened centroid": lambda x, t: _norm((x - centre) @ whiten) @ white_centroids.T,
      "centroid + 0.2 word tf-idf": lambda x, t: x @ centroids.T + 0.2 * _norm(tfidf.transform(t).toarray())
      @ tf_centroids.T,
  }


def score(scores, intents, labels):
  """(in-scope top-1 accuracy, best accuracy with >= 90% out-of-scope escalated, its threshold)."""
  pred, best = intents[scores.argmax(1)], scores.max(1)
  oos = labels == ""
  top1 = float(np.mean(pred[~oos] == labels[~oos]))
  result = (0.0, None)
  for t in np.unique(np.round(best, 3)):
    reply = best >= t
    if np.mean(~reply[oos]) >= 0.9:
      acc = float(np.mean(np.where(reply, (pred == labels) & ~oos, oos)))
      result = max(result, (acc, float(t)), key=lambda r: r[0])
  return top1, *result


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--clinc150", required=True, help="clone of https://github.com/clinc/oos-eval")
  ap.add_argument("--model", default=None, help="local sentence-transformers directory")
  ap.add_argument("--tune", action="store_true", help="tune the model on the knowledge base first")
  ap.add_argument("--shots", type=int, default=5)
  ap.add_argument("--seed", type=int, default=0)
  args = ap.parse_args()
  os.environ.setdefault("HF_HUB_OFFLINE", "1")
  from sentence_transformers import SentenceTransformer

  from agentflow.models.sentence_transformers import default_model_path
  data = intent_data.clinc150(args.clinc150, shots=args.shots, seed=args.seed)
  model_dir = os.path.abspath(args.model) if args.model else default_model_path()
  with tempfile.TemporaryDirectory(prefix="intent-policies-") as tmp:
    if args.tune:
      from agentflow.models.tuning import tune

      from benchmarks.intent_eval import write_files
      _, knowledge, _ = write_files(data, tmp, 1, args.seed)
      meta = tune(knowledge, os.path.join(tmp, "tuned"), args.model)
      model_dir = os.path.join(tmp, "tuned")
      print(f"tuned on {meta['pairs_seen']} pairs in {meta['seconds']} s")
    model = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
    kb_text = [q for _, q in data.kb]
    test_text = [q for _, q in data.test]
    kb_x = model.encode(kb_text, batch_size=64, normalize_embeddings=True)
    test_x = model.encode(test_text, batch_size=64, normalize_embeddings=True)
  kb_y = np.array([i for i, _ in data.kb])
  labels = np.array([i or "" for i, _ in data.test])
  intents, fns = policies(kb_x, kb_y, kb_text)
  print(f"model {os.path.basename(model_dir.rstrip('/'))}{' tuned on the KB' if args.tune else ''}; "
        f"{len(data.kb)} KB questions, {len(test_text)} test questions ({int(np.sum(labels == ''))} out of scope)")
  for name, fn in fns.items():
    top1, acc, t = score(fn(test_x, test_text), intents, labels)
    print(f"  {name:34s} in-scope top-1 {top1:.3f}   best accuracy at >= 90% escalated {acc:.3f}"
          + (f" (threshold {t:.3f})" if t is not None else ""))


if __name__ == "__main__":
  main()
