"""The whole agent graph as one composite: Preprocess -> Dedupe -> Embed -> VectorUpsert -> Retrieve -> Decide."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import apache_beam as beam

from agentflow.models.base import EmbeddingModelHandler
from agentflow.policies.base import DecisionPolicy
from agentflow.stages.base import DEAD_LETTER, MAIN, Stage
from agentflow.stages.decide import Decide
from agentflow.stages.dedupe import Dedupe, DedupeConfig
from agentflow.stages.embed import Embed
from agentflow.stages.memory import MemoryConfig, SessionMemory
from agentflow.stages.preprocess import Preprocess, PreprocessConfig
from agentflow.stages.retrieve import Retrieve, RetrieveConfig
from agentflow.stages.upsert import UpsertConfig, VectorUpsert
from agentflow.stores.base import VectorStore


@dataclass(frozen=True)
class GraphConfig:
  """Per-stage configuration for `AgentGraph`.

  Session memory is added when `memory` is set or the policy `uses_memory` (then with
  `MemoryConfig()` defaults). `dedupe=None` leaves out the redelivery filter.
  """
  preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
  dedupe: Optional[DedupeConfig] = field(default_factory=DedupeConfig)
  upsert: UpsertConfig = field(default_factory=UpsertConfig)
  retrieve: RetrieveConfig = field(default_factory=RetrieveConfig)
  memory: Optional[MemoryConfig] = None


class AgentGraph(Stage):
  """Raw messages -> `Decision`s; every stage's dead letters are merged into one output.

  Every input ends as exactly one decision, exactly one dead letter, or (a redelivery
  of an event already let through) a dropped duplicate counted as `dedupe.duplicates`.
  """

  def __init__(self, handler: EmbeddingModelHandler, store: VectorStore, policy: DecisionPolicy,
               config: GraphConfig = GraphConfig(), model_metadata_pcoll=None):
    super().__init__()
    store.check_dimension(handler.dimension)
    self.handler, self.store, self.policy, self.config = handler, store, policy, config
    self.model_metadata_pcoll = model_metadata_pcoll

  def expand_tagged(self, pcoll):
    c = self.config
    # Sources emit from few workers (one file split, one partition). Dedupe's keyed state
    # already spreads events by id over the workers; without it, redistributing the source's
    # output lets --parallelism N run the model, store and policy work on N workers.
    if c.dedupe is None:
      pcoll = pcoll | "Redistribute" >> beam.Reshuffle()
    events, dl1 = pcoll | "Preprocess" >> Preprocess(c.preprocess).with_dead_letters()
    dead = [dl1]
    if c.dedupe is not None:
      events, dl_dedupe = events | "Dedupe" >> Dedupe(c.dedupe).with_dead_letters()
      dead.append(dl_dedupe)
    embedded, dl2 = events | "Embed" >> Embed(
        self.handler, self.model_metadata_pcoll, self.store.dimension).with_dead_letters()
    written, dl3 = embedded | "VectorUpsert" >> VectorUpsert(self.store, c.upsert).with_dead_letters()
    retrieved, dl4 = written | "Retrieve" >> Retrieve(self.store, c.retrieve).with_dead_letters()
    if c.memory is not None or getattr(self.policy, "uses_memory", False):
      retrieved = retrieved | "SessionMemory" >> SessionMemory(c.memory or MemoryConfig())
    decisions, dl5 = retrieved | "Decide" >> Decide(self.policy).with_dead_letters()
    dead = (*dead, dl2, dl3, dl4, dl5) | "AllDeadLetters" >> beam.Flatten()
    return {MAIN: decisions, DEAD_LETTER: dead}
