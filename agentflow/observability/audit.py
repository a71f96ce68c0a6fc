"""Audit log: an append-only hash chain of request/decision digests, verifiable offline.

Each record commits to the previous record's hash, so changing, removing or reordering
any record breaks every hash after it. A run appends one segment file to the audit
directory (local or any Beam filesystem, e.g. gs://), named by the first sequence number it
holds, continuing the chain from the directory's current head; `agentflow audit
verify DIR` recomputes the whole chain. Digests are of the redacted request and of the
decision, so the log itself holds no PII.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from dataclasses import asdict, dataclass
from typing import Iterable, List, Optional, Tuple

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

GENESIS = "0" * 64


def digest(text: str) -> str:
  """SHA-256 of `text` (UTF-8), hex."""
  return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
  """One decision in the audit chain; `hash` covers the record and the previous record's hash."""
  seq: int
  event_id: str
  trace_id: str
  request_digest: str
  decision_digest: str
  prev: str
  hash: str

  @staticmethod
  def chain(seq: int, prev: str, event_id: str, trace_id: str, request_digest: str,
            decision_digest: str) -> AuditRecord:
    body = json.dumps([seq, prev, event_id, trace_id, request_digest, decision_digest])
    return AuditRecord(seq, event_id, trace_id, request_digest, decision_digest, prev, digest(body))

  def to_json(self) -> str:
    return json.dumps(asdict(self), sort_keys=True)


class _ChainFn(beam.DoFn):
  HEAD = ReadModifyWriteStateSpec("head", PickleCoder())

  def __init__(self, start: Tuple[int, str]):
    self.start = start

  def process(self, keyed, head=beam.DoFn.StateParam(HEAD)):
    _, decision = keyed
    seq, prev = head.read() or self.start
    record = AuditRecord.chain(seq + 1, prev, decision.event_id, decision.trace_id,
                               decision.request_digest, digest(decision.to_json()))
    head.write((record.seq, record.hash))
    yield record


def _segments(directory: str) -> List[str]:
  pattern = FileSystems.join(directory, "segment-*.jsonl")
  return sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)


def read_records(directory: str) -> List[AuditRecord]:
  """Every record under `directory` (any Beam filesystem: local, gs://, ...), in chain order."""
  records = []
  for path in _segments(directory):
    with io.TextIOWrapper(FileSystems.open(path), encoding="utf-8") as f:
      records.extend(AuditRecord(**json.loads(line)) for line in f if line.strip())
  return sorted(records, key=lambda r: r.seq)


def head_of(directory: str) -> Tuple[int, str]:
  """(last seq, last hash) of the chain in `directory`, or the genesis when there is none."""
  records = read_records(directory)
  return (records[-1].seq, records[-1].hash) if records else (0, GENESIS)


def verify(directory: str) -> Tuple[bool, int, str]:
  """(ok, records checked, message). Fails on any edited, missing, duplicated or reordered record."""
  try:
    records = read_records(directory)
  except (ValueError, TypeError, KeyError) as e:
    return False, 0, f"unreadable audit record: {e}"
  prev, expected_seq = GENESIS, 1
  for r in records:
    if r.seq != expected_seq:
      return False, expected_seq - 1, f"record {expected_seq} is missing (found seq {r.seq})"
    again = AuditRecord.chain(r.seq, prev, r.event_id, r.trace_id, r.request_digest, r.decision_digest)
    if r.prev != prev or r.hash != again.hash:
      return False, r.seq - 1, f"record {r.seq} (event {r.event_id}) does not match the chain"
    prev, expected_seq = r.hash, expected_seq + 1
  return True, len(records), f"chain of {len(records)} records verified; head {prev}"


class AuditLog(beam.PTransform):
  """Decisions -> chained `AuditRecord`s written as a new segment in `directory` (local or gs://).

  The chain is built by one stateful DoFn on a single key: auditing is sequential by
  nature, and the per-record work is a hash.
  """

  def __init__(self, directory: str):
    super().__init__()
    self.directory = directory

  def expand(self, decisions):
    if "://" not in self.directory:
      os.makedirs(self.directory, exist_ok=True)
    head = head_of(self.directory)
    segment = FileSystems.join(self.directory, f"segment-{head[0] + 1:012d}-{uuid.uuid4().hex[:12]}.jsonl")
    return (decisions | "SingleKey" >> beam.Map(lambda d: ("audit", d))
            | "Chain" >> beam.ParDo(_ChainFn(head))
            | "ToJson" >> beam.Map(AuditRecord.to_json)
            | "WriteSegment" >> beam.io.WriteToText(segment, shard_name_template=""))


def main_audit(argv: Optional[Iterable[str]] = None) -> int:
  """`agentflow audit verify DIR`: checks every segment's hash chain; returns the exit code."""
  argv = list(argv or [])
  if len(argv) != 2 or argv[0] != "verify":
    print("usage: agentflow audit verify DIR")
    return 2
  ok, n, message = verify(argv[1])
  print(("OK: " if ok else "FAILED: ") + message)
  return 0 if ok else 1
