"""The agent job: events in, decisions and dead letters out, on any Beam runner.

Run it through `agentflow run`, `python -m agentflow.job`, or as a Flex Template
(`pipelines/agent_pipeline.py` is the template's entry point). With `--knowledge`, the knowledge base is
ingested first, in its own pipeline, so every event can retrieve all of it.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import List, Optional, Tuple

import apache_beam as beam
from apache_beam.options.pipeline_options import (
  FlinkRunnerOptions,
  GoogleCloudOptions,
  JobServerOptions,
  PipelineOptions,
  SetupOptions,
  StandardOptions,
)

from agentflow.io import (
  PORTABLE_RUNNERS,
  FileSink,
  FileSource,
  KafkaSink,
  KafkaSource,
  PubSubSink,
  PubSubSource,
  ReadEvents,
  ReadFiles,
  Sink,
  Source,
  WriteRecords,
  declared_runner,
  set_default_pubsub_root_url,
)
from agentflow.models.base import model_from_spec, sentence_transformers_path
from agentflow.models.cache import CachingEmbeddingHandler, cache_from_spec
from agentflow.observability.audit import AuditLog
from agentflow.observability.progress import ShowProgress
from agentflow.observability.summary import RunSummary
from agentflow.options import AgentflowOptions, answer_threshold, model_backend
from agentflow.policies.centroid_answer import CentroidAnswerPolicy
from agentflow.policies.retrieval_answer import RetrievalAnswerPolicy
from agentflow.stages.dedupe import DedupeConfig
from agentflow.stages.graph import AgentGraph, GraphConfig
from agentflow.stages.knowledge import IngestKnowledge
from agentflow.stages.preprocess import PreprocessConfig
from agentflow.stages.retrieve import RetrieveConfig
from agentflow.stages.upsert import UpsertConfig
from agentflow.stores import absolute_store_uri, local_store_dir, store_from_uri
from agentflow.stores.local import LocalVectorStore
from agentflow.text.pseudonym import key_for_store
from agentflow.types import KIND_KNOWLEDGE


def components(opts: AgentflowOptions):
  """The model handler, store and policy the options describe (built, not opened)."""
  handler = model_from_spec(opts.model, backend=model_backend(opts), max_batch_size=opts.embed_batch_size)
  if opts.embedding_cache != "none":
    handler = CachingEmbeddingHandler(handler, cache_from_spec(opts.embedding_cache, opts.embedding_cache_size))
  store = store_from_uri(opts.store, handler.dimension)
  threshold = answer_threshold(opts)
  policy = (CentroidAnswerPolicy(threshold=threshold) if opts.answer_policy == "centroid"
            else RetrievalAnswerPolicy(threshold=threshold))
  return handler, store, policy


# Beside a local store: the model its knowledge was embedded with, so a later run on the store
# without --knowledge embeds events with the same model (same dimension, other vectors otherwise).
STORE_MODEL_RECORD = "model.json"


def recorded_model(store_uri: str) -> Optional[str]:
  """The model a local store's knowledge was embedded with (its STORE_MODEL_RECORD), if it has one."""
  store_dir = local_store_dir(store_uri)
  record_path = os.path.join(store_dir, STORE_MODEL_RECORD) if store_dir else None
  if not (record_path and os.path.isfile(record_path)):
    return None
  with open(record_path, encoding="utf-8") as f:
    return json.load(f)["model"]


def with_tuned_model(argv: List[str], log=print) -> List[str]:
  """`argv` plus the --model that puts `--tune auto`'s model in place: with --knowledge, the named
  model tuned on it (tuned now, or reused); without, the model the local store's knowledge was
  embedded with, unless --model names another."""
  from agentflow.models import tuning
  opts = PipelineOptions(argv).view_as(AgentflowOptions)
  given = flags_given(argv)
  store_dir = local_store_dir(opts.store)
  path = sentence_transformers_path(opts.model)
  remote_knowledge = bool(opts.knowledge) and "://" in opts.knowledge  # read by the pipeline, not here
  if opts.tune == "off" or store_dir is None or remote_knowledge or path is None:
    return list(argv)
  named = f"sentence-transformers:{os.path.abspath(path)}" if path else opts.model
  if opts.knowledge:
    tuned = None if path and tuning.is_tuned(path) else tuning.tuned_model_for(
        opts.knowledge, os.path.abspath(opts.tuned_models), path or None, log=log)
    model = f"sentence-transformers:{tuned}" if tuned else named
    os.makedirs(store_dir, exist_ok=True)
    with open(os.path.join(store_dir, STORE_MODEL_RECORD), "w", encoding="utf-8") as f:
      json.dump({"model": model, "knowledge": os.path.abspath(opts.knowledge)}, f, indent=2)
  else:
    model = recorded_model(opts.store)
    if model is None:
      return list(argv)
    if model != named and "model" in given:
      log(f"warning: the knowledge in {store_dir} was embedded with {model}, not {named}: "
          "retrieval would compare vectors of two models; ingest the knowledge again with this model")
      return list(argv)
    if model != named:
      log(f"using {model}, the model the knowledge in {store_dir} was embedded with")
  return list(argv) + (["--model", model] if model != named else [])


def source_from_options(opts: AgentflowOptions) -> Source:
  """The event source the flags name: Kafka, else Pub/Sub, else files."""
  if opts.input_kafka_topic:
    return KafkaSource(opts.kafka_bootstrap, opts.input_kafka_topic, opts.kafka_max_records,
                       opts.kafka_expansion_service)
  if opts.input_subscription or opts.input_topic:
    return PubSubSource(opts.input_subscription, opts.input_topic, opts.pubsub_id_attribute,
                        opts.pubsub_expansion_service)
  return FileSource(opts.input)


def sink_from_options(opts: AgentflowOptions, path: str, topic: str = "", kafka_topic: str = "") -> Sink:
  """A Kafka topic, else a Pub/Sub topic, else the file `path`."""
  if kafka_topic:
    return KafkaSink(opts.kafka_bootstrap, kafka_topic, opts.kafka_expansion_service)
  if topic:
    return PubSubSink(topic)
  return FileSink(path)


def graph_config(opts: AgentflowOptions, store, policy) -> GraphConfig:
  """The stages' configs the options describe, for `store` and `policy` from `components`."""
  # The store's own parsed directory, not the URI again: the key lives beside a local store.
  pii_key = key_for_store(store.path if isinstance(store, LocalVectorStore) else None, opts.pii_key_file)
  return GraphConfig(preprocess=PreprocessConfig(max_text_chars=opts.max_text_chars, pii_key=pii_key),
                     dedupe=DedupeConfig(opts.dedupe_horizon_s) if opts.dedupe_horizon_s else None,
                     upsert=UpsertConfig(batch_size=opts.store_batch_size),
                     retrieve=RetrieveConfig(k=opts.top_k, batch_size=opts.store_batch_size,
                                             kind=getattr(policy, "retrieve_kind", KIND_KNOWLEDGE)))


def build(p: beam.Pipeline, opts: AgentflowOptions, source=None) -> Tuple[beam.PCollection, beam.PCollection]:
  """Add the agent graph to `p`; returns (decisions, dead_letters) after wiring the sinks."""
  handler, store, policy = components(opts)
  config = graph_config(opts, store, policy)
  raw = p | "Read" >> (source or ReadEvents(source_from_options(opts)))
  decisions, dead = raw | "Agent" >> AgentGraph(handler, store, policy, config).with_dead_letters()
  set_default_pubsub_root_url(opts)
  _ = decisions | "WriteDecisions" >> WriteRecords(
      sink_from_options(opts, opts.decisions_output, opts.output_topic, opts.output_kafka_topic))
  _ = dead | "WriteDeadLetters" >> WriteRecords(
      sink_from_options(opts, opts.dead_letter_output, opts.dead_letter_topic, opts.dead_letter_kafka_topic))
  if opts.audit_output:
    _ = decisions | "Audit" >> AuditLog(opts.audit_output)
  if opts.progress_interval > 0:
    _ = (decisions, dead) | "Outputs" >> beam.Flatten() | ShowProgress(opts.progress_interval)
  return decisions, dead


# Options naming local files and directories the workers open.
_PATH_OPTIONS = ("input", "knowledge", "decisions_output", "dead_letter_output", "audit_output", "pii_key_file",
                 "tuned_models")


def make_paths_absolute(opts: AgentflowOptions) -> None:
  """Resolve local paths against the submitter's working directory before submission: SDK
  workers on a cluster run elsewhere (a TaskManager's directory), where relative outputs got lost."""
  for name in _PATH_OPTIONS:
    value = getattr(opts, name)
    if value and "://" not in value:
      setattr(opts, name, os.path.abspath(value))
  opts.store = absolute_store_uri(opts.store)


def ingest_knowledge(options: PipelineOptions) -> RunSummary:
  """Embed and store the `--knowledge` file; returns its summary."""
  opts = options.view_as(AgentflowOptions)
  make_paths_absolute(opts)
  handler, store, _ = components(opts)
  start = time.monotonic()
  with beam.Pipeline(options=options) as p:
    written, dead = (p | "ReadKnowledge" >> ReadFiles(FileSource(opts.knowledge))
                     | "Knowledge" >> IngestKnowledge(handler, store, UpsertConfig(
                         batch_size=opts.store_batch_size)).with_dead_letters())
    _ = dead | "WriteKnowledgeDeadLetters" >> WriteRecords(FileSink(opts.dead_letter_output + ".knowledge"))
  return RunSummary.from_result(p.result, first_stage="knowledge", last_stage="upsert",
                                elapsed_s=time.monotonic() - start)


# Beam's PortableRunner opens a Prism job's state and message streams with
# --job_server_timeout (default 60 s) as their deadline, so a streaming job on Prism
# ended after a minute with DEADLINE_EXCEEDED, its LOOPBACK workers with it.
STREAMING_JOB_SERVER_TIMEOUT_S = 10 * 365 * 24 * 3600


# Flink's portable runner closes a bundle after 1,000 elements or 1,000 ms, so a trickle of
# events waited up to a second in each fused stage (the graph has two: before and after
# Dedupe's keyed state). On the emulator 50 ms bundles cut latency by seconds; shorter ones
# gave about the same latency for more CPU per event (docs/performance.md).
FLINK_STREAMING_BUNDLE_MS = 50


# Flink settings for streaming (agentflow/io/flink_conf/config.yaml): a shorter network buffer
# timeout, given as --flink_conf_dir when the job names none and FLINK_CONF_DIR is unset.
FLINK_STREAMING_CONF_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "io", "flink_conf")


# JVM flags for the job server when it runs the whole Flink job itself (an embedded local
# cluster): C1 only. In a streaming run C2's compiler threads were about half of the JVM's
# CPU for the first minutes while the work itself took no more CPU under C1's code
# (docs/performance.md); on a remote --flink_master the job server only submits the job.
FLINK_LOCAL_JVM_PROPERTIES = ("-XX:TieredStopAtLevel=1",)


def flags_given(argv: List[str]) -> set:
  """The flags named in `argv` (without their dashes), even those given their default value,
  which `get_all_options(drop_default=True)` cannot tell from flags left out."""
  return {a[2:].split("=", 1)[0] for a in argv if a.startswith("--")}


def with_runner_defaults(argv: List[str]) -> List[str]:
  """`argv` plus the runner settings a streaming job needs, unless given: on a portable runner a
  --job_server_timeout that outlives the job; on Flink short bundles, agentflow's Flink conf and,
  for an embedded local cluster, a job server JVM that compiles with C1 only."""
  options = PipelineOptions(argv)
  if not options.view_as(StandardOptions).streaming:
    return argv
  runner, given, extra = declared_runner(options), flags_given(argv), []
  if runner in PORTABLE_RUNNERS and "job_server_timeout" not in given:
    extra.append(f"--job_server_timeout={STREAMING_JOB_SERVER_TIMEOUT_S}")
  if runner == "FlinkRunner":
    if "max_bundle_time_mills" not in given:
      extra.append(f"--max_bundle_time_mills={FLINK_STREAMING_BUNDLE_MS}")
    if not ({"flink_conf_dir", "job_endpoint"} & given or os.environ.get("FLINK_CONF_DIR")):
      extra.append(f"--flink_conf_dir={FLINK_STREAMING_CONF_DIR}")
    local = options.view_as(FlinkRunnerOptions).flink_master in ("[local]", "[auto]")
    if local and "job_endpoint" not in given and not options.view_as(JobServerOptions).job_server_jvm_properties:
      extra += [f"--job_server_jvm_property={p}" for p in FLINK_LOCAL_JVM_PROPERTIES]
  return [*argv, *extra]


def run(argv: Optional[List[str]] = None, out=sys.stdout) -> Optional[RunSummary]:
  """Run the job the flags describe and print its summary; returns it.

  Returns None when the runner reports no metrics (e.g. a Dataflow `--dry_run`).
  """
  def fresh_options():
    # Portable runners clear the runner option they were given, so each pipeline needs its own.
    options = PipelineOptions(argv)
    options.view_as(SetupOptions).save_main_session = False
    make_paths_absolute(options.view_as(AgentflowOptions))
    return options

  argv = with_tuned_model(sys.argv[1:] if argv is None else list(argv), log=lambda m: print(m, file=out))
  argv = with_runner_defaults(argv)
  options = fresh_options()
  opts = options.view_as(AgentflowOptions)
  if opts.knowledge and options.view_as(GoogleCloudOptions).template_location:
    raise ValueError("--knowledge cannot be used in a template launch (it is a second pipeline); "
                     "ingest it once with `agentflow ingest --knowledge FILE --store URI`")
  if opts.knowledge:
    ks = ingest_knowledge(fresh_options())
    print(ks.format("knowledge ingestion", outputs="stored"), file=out)
  start = time.monotonic()
  p = beam.Pipeline(options=options)
  build(p, opts)
  result = p.run()
  result.wait_until_finish()
  if not getattr(result, "has_job", True):
    print("job written for a template launch; Dataflow runs it", file=out)
    return None
  try:
    summary = RunSummary.from_result(result, elapsed_s=time.monotonic() - start)
  except NotImplementedError:
    print(f"job finished in state {result.state}; this runner reports no metrics, so no summary",
          file=out)
    return None
  print(summary.format(), file=out)
  if opts.summary_output:
    with open(opts.summary_output, "w") as f:
      f.write(summary.to_json())
  if opts.metrics_output:
    with open(opts.metrics_output, "w") as f:
      f.write(summary.prometheus())
  if opts.otlp_endpoint:
    from agentflow.observability.otlp import export_summary
    export_summary(summary, opts.otlp_endpoint)
  return summary


def main() -> None:
  """`python -m agentflow.job FLAGS` and the Flex Template entry point."""
  logging.getLogger().setLevel(logging.WARNING)
  run()


if __name__ == "__main__":
  main()
