"""The Vespa application package for the `agent_context` schema, generated with pyvespa.

One schema holds every stored context: the filter fields are cased, fast-search
attributes (exact, case-sensitive matching on ids, sessions and tenants); `tenantless` is
a bool attribute set for documents without a tenant, because Vespa's query parser rejects
the empty word `tenant contains ""` (so a tenant-less query filters on `tenantless = true`
and still sees only tenant-less documents); `text` is a BM25 index so hybrid queries can add
the customer's text through `userInput`; `embedding` is an HNSW-indexed tensor attribute.
Both rank profiles expose `closeness(field, embedding)` as a match feature, which is what
`VespaVectorStore` turns back into cosine similarity. The hybrid profile fuses the two
signals by rank (global-phase reciprocal rank fusion) instead of adding an unbounded BM25
score to a closeness of at most 1, which let text matches push every semantic neighbour out.
The content cluster declares `<min-redundancy>` (`<redundancy>` is deprecated in Vespa 8).

`agentflow vespa package --out DIR [--dimension N]` calls `main_vespa_package`.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Optional, Sequence

DISTANCE_METRICS = ("angular", "prenormalized-angular")
FILTER_FIELDS = ("id", "event_id", "session_id", "tenant", "kind")
TENANTLESS_FIELD = "tenantless"
CLOSENESS_FEATURE = "closeness(field, embedding)"
BM25_FEATURE = "bm25(text)"


@dataclass(frozen=True)
class VespaSchemaConfig:
  """What the schema is generated from; `VespaConfig.schema_config` derives it for a store.

  `distance_metric`: "angular" for arbitrary vectors; "prenormalized-angular" only when
  every document and query vector is L2-normalised (faster, different closeness scale).
  `hybrid_rerank_count`: hits per content node the hybrid profile's global phase fuses.
  `min_redundancy`: copies of each document the content cluster keeps (2+ in production).
  """
  dimension: int = 384
  doc_type: str = "agent_context"
  distance_metric: str = "angular"
  semantic_profile: str = "semantic"
  hybrid_profile: str = "hybrid"
  query_tensor: str = "q"
  app_name: str = "agentflow"
  max_links_per_node: int = 16
  neighbors_to_explore_at_insert: int = 200
  hybrid_rerank_count: int = 200
  min_redundancy: int = 1

  def __post_init__(self):
    if self.distance_metric not in DISTANCE_METRICS:
      raise ValueError(f"distance_metric must be one of {DISTANCE_METRICS}, not {self.distance_metric!r}")
    if int(self.dimension) <= 0:
      raise ValueError(f"dimension must be positive, not {self.dimension}")

  @property
  def tensor_type(self) -> str:
    return f"tensor<float>(x[{int(self.dimension)}])"


def agent_context_schema(config: VespaSchemaConfig = VespaSchemaConfig()):
  """The pyvespa `Schema` for stored contexts (documents, fieldset and rank profiles)."""
  from vespa.package import HNSW, Document, Field, FieldSet, GlobalPhaseRanking, RankProfile, Schema

  def filter_field(name):
    return Field(name, "string", indexing=["summary", "attribute"], attribute=["fast-search"],
                 match=["cased"], rank="filter")

  fields = [filter_field(name) for name in FILTER_FIELDS] + [
      Field(TENANTLESS_FIELD, "bool", indexing=["summary", "attribute"], rank="filter"),
      Field("text", "string", indexing=["summary", "index"], index="enable-bm25"),
      Field("timestamp", "double", indexing=["summary", "attribute"], attribute=["fast-search"]),
      Field("metadata", "string", indexing=["summary"]),
      Field("embedding", config.tensor_type, indexing=["attribute", "index"],
            ann=HNSW(config.distance_metric, config.max_links_per_node,
                     config.neighbors_to_explore_at_insert)),
  ]
  inputs = [(f"query({config.query_tensor})", config.tensor_type)]
  profiles = [
      RankProfile(config.semantic_profile, inputs=inputs, first_phase=CLOSENESS_FEATURE,
                  match_features=[CLOSENESS_FEATURE]),
      RankProfile(config.hybrid_profile, inputs=inputs, first_phase=CLOSENESS_FEATURE,
                  global_phase=GlobalPhaseRanking(f"reciprocal_rank_fusion({CLOSENESS_FEATURE}, {BM25_FEATURE})",
                                                  rerank_count=config.hybrid_rerank_count),
                  match_features=[CLOSENESS_FEATURE, BM25_FEATURE]),
  ]
  return Schema(config.doc_type, Document(fields=fields), fieldsets=[FieldSet("default", ["text"])],
                rank_profiles=profiles)


def application_package(config: VespaSchemaConfig = VespaSchemaConfig()):
  """A deployable pyvespa `ApplicationPackage` (services.xml with document-api and search)."""
  from vespa.package import ApplicationPackage, ContainerCluster, ContentCluster
  clusters = [ContainerCluster(id=f"{config.app_name}_container"),
              ContentCluster(id=f"{config.app_name}_content", document_name=config.doc_type,
                             min_redundancy=str(int(config.min_redundancy)))]
  return ApplicationPackage(name=config.app_name, schema=[agent_context_schema(config)], clusters=clusters)


def write_application_package(out_dir: str, config: VespaSchemaConfig = VespaSchemaConfig()) -> str:
  """Write the package as files under `out_dir` (deploy with `vespa deploy out_dir`); returns the .sd path."""
  application_package(config).to_files(out_dir)
  return os.path.join(out_dir, "schemas", f"{config.doc_type}.sd")


def main_vespa_package(argv: Optional[Sequence[str]] = None) -> int:
  """`agentflow vespa package --out DIR [--dimension N] [--distance-metric M] [--app-name NAME]`."""
  parser = argparse.ArgumentParser(prog="agentflow vespa package",
                                   description="Write the Vespa application package for agentflow.")
  parser.add_argument("--out", required=True, help="directory to write the package to")
  parser.add_argument("--dimension", type=int, default=VespaSchemaConfig.dimension)
  parser.add_argument("--distance-metric", choices=DISTANCE_METRICS, default=VespaSchemaConfig.distance_metric)
  parser.add_argument("--app-name", default=VespaSchemaConfig.app_name)
  args = parser.parse_args(list(argv or []))
  try:
    config = VespaSchemaConfig(dimension=args.dimension, distance_metric=args.distance_metric,
                               app_name=args.app_name)
  except ValueError as e:
    parser.error(str(e))
  path = write_application_package(args.out, config)
  print(f"wrote Vespa application package to {args.out} (schema {path})")
  return 0
