"""`AgentflowOptions`: the pipeline's own flags, beside Beam's (runner, workers, ...)."""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

DEFAULT_STORE = "local:.agentflow/store"
DEFAULT_MODEL = "sentence-transformers"
ANSWER_POLICIES = ("centroid", "top1")
DEFAULT_ANSWER_THRESHOLD = 0.45
TUNED_ANSWER_THRESHOLD = 0.52


def model_backend(options: PipelineOptions) -> str:
  """The model runtime `--model_backend` names, with auto resolved: onnx for a streaming job's
  sentence-transformers model, else torch (a TF-Hub model has one runtime)."""
  from apache_beam.options.pipeline_options import StandardOptions
  opts = options.view_as(AgentflowOptions)
  if opts.model_backend != "auto":
    return opts.model_backend
  tfhub = opts.model.partition(":")[0] == "tfhub"
  return "onnx" if options.view_as(StandardOptions).streaming and not tfhub else "torch"


def _optional_float(value: str):
  """A float, or None for "" (a Flex Template launch passes unset parameters empty)."""
  return None if value == "" else float(value)


def answer_threshold(opts: AgentflowOptions) -> float:
  """--answer_threshold, or its default for the model: tuning raises every question's similarity
  to its nearest answer, out-of-scope ones included, so a tuned model has a higher one."""
  if opts.answer_threshold is not None:
    return opts.answer_threshold
  from agentflow.models.base import sentence_transformers_path
  from agentflow.models.tuning import is_tuned
  path = sentence_transformers_path(opts.model)
  return TUNED_ANSWER_THRESHOLD if path and is_tuned(path) else DEFAULT_ANSWER_THRESHOLD


class AgentflowOptions(PipelineOptions):
  """Flags of `pipelines/agent_pipeline.py`; each is also a Flex Template parameter."""

  @classmethod
  def _add_argparse_args(cls, parser):
    parser.add_argument("--input", default="", help="Input file pattern of JSON-lines events.")
    parser.add_argument("--input_subscription", default="",
                        help="Pub/Sub subscription to read events from (projects/P/subscriptions/S).")
    parser.add_argument("--input_topic", default="",
                        help="Pub/Sub topic to read events from (a temporary subscription is made).")
    parser.add_argument("--pubsub_id_attribute", default="",
                        help="Pub/Sub attribute holding a unique message id, used by Dataflow to dedupe.")
    parser.add_argument("--output_topic", default="",
                        help="Pub/Sub topic for decisions (instead of --decisions_output).")
    parser.add_argument("--dead_letter_topic", default="",
                        help="Pub/Sub topic for dead letters (instead of --dead_letter_output).")
    parser.add_argument("--pubsub_expansion_service", default="",
                        help="host:port of a Beam expansion service with Java's Pub/Sub IO (runners/expansion): "
                             "Pub/Sub is then read and written cross-language, as portable runners (Flink) need.")
    # dest is what Java's PubsubOptions reads (pubsub_root_url -> pubsubRootUrl); Beam's own
    # --pubsub_root_url flag stores under a camelCase dest that Java does not map back.
    parser.add_argument("--pubsub_endpoint", dest="pubsub_root_url", default=None,
                        help="Pub/Sub API root URL for the cross-language Pub/Sub IO; defaults to "
                             "http://$PUBSUB_EMULATOR_HOST when that is set (the emulator).")
    parser.add_argument("--kafka_bootstrap", default="",
                        help="Kafka bootstrap servers (host:port,...) for the Kafka source and sinks.")
    parser.add_argument("--input_kafka_topic", default="", help="Kafka topic to read events from.")
    parser.add_argument("--output_kafka_topic", default="", help="Kafka topic for decisions.")
    parser.add_argument("--dead_letter_kafka_topic", default="", help="Kafka topic for dead letters.")
    parser.add_argument("--kafka_expansion_service", default="",
                        help="host:port of a Beam expansion service with Kafka IO (runners/expansion).")
    parser.add_argument("--kafka_max_records", type=int, default=0,
                        help="Stop reading Kafka after this many records (a bounded run); 0 = unbounded.")
    parser.add_argument("--decisions_output", default="decisions.jsonl",
                        help="Where decisions are written (JSON lines).")
    parser.add_argument("--dead_letter_output", default="dead_letters.jsonl",
                        help="Where dead letters are written (JSON lines).")
    parser.add_argument("--knowledge", default=None,
                        help="Knowledge-base JSON lines to ingest before the events.")
    parser.add_argument("--store", default=DEFAULT_STORE,
                        help="Vector store URI: local:DIR (embedded, default) or vespa:URL.")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="Embedding model: sentence-transformers[:LOCAL_DIR] or tfhub:SAVED_MODEL_DIR.")
    parser.add_argument("--model_backend", default="auto", choices=("auto", "torch", "onnx"),
                        help="Runtime for a sentence-transformers model: torch, or onnx (exported at load, CPU only); "
                             "auto is onnx for a --streaming job (faster per event, docs/performance.md) and torch "
                             "otherwise.")
    parser.add_argument("--embedding_cache", default="lru",
                        help="Embedding cache: lru (per worker), redis://HOST:PORT[/DB] (shared) or none.")
    parser.add_argument("--embedding_cache_size", type=int, default=100000,
                        help="Entries in the per-worker LRU embedding cache.")
    parser.add_argument("--top_k", type=int, default=5, help="Contexts retrieved per event.")
    parser.add_argument("--answer_threshold", type=_optional_float, default=None,
                        help=f"Cosine similarity needed to reply with a known answer; default "
                             f"{DEFAULT_ANSWER_THRESHOLD}, or {TUNED_ANSWER_THRESHOLD} for a model tuned on the "
                             "knowledge (--tune auto, agentflow tune).")
    parser.add_argument("--tune", default="auto", choices=("auto", "off"),
                        help="auto: with --knowledge, a sentence-transformers model and a local store, fine-tune "
                             "the model on the phrasings of answers that have two or more questions (agentflow "
                             "tune), once per knowledge file, and run with it; later runs on that store use it "
                             "too. off: run the model as named.")
    parser.add_argument("--tuned_models", default=".agentflow/models",
                        help="Directory where --tune auto keeps the models it tunes.")
    parser.add_argument("--answer_policy", default="centroid", choices=ANSWER_POLICIES,
                        help="centroid: the nearest answer, each answer the mean of its questions' vectors; "
                             "top1: the single nearest question (the policy before centroids).")
    parser.add_argument("--embed_batch_size", type=int, default=1024,
                        help="Texts per RunInference batch, fewer only at a bundle end (length-sorted inside it).")
    parser.add_argument("--store_batch_size", type=int, default=64,
                        help="Documents per store write / queries per store call.")
    parser.add_argument("--max_text_chars", type=int, default=20000,
                        help="Longer event texts are dead-lettered.")
    parser.add_argument("--dedupe_horizon_s", type=float, default=86400.0,
                        help="Seconds of event time an event id is remembered, so a redelivery gets no second "
                             "decision; 0 turns dedupe off.")
    parser.add_argument("--pii_key_file", default="",
                        help="File holding the key that pseudonymises ids holding PII (created if missing); default "
                             "pii.key in a local store's directory, else .agentflow/pii.key. AGENTFLOW_PII_KEY wins.")
    parser.add_argument("--summary_output", default=None,
                        help="Write the run summary (JSON) here as well as printing it.")
    parser.add_argument("--audit_output", default=None,
                        help="Directory of the audit hash chain; each run appends a segment.")
    parser.add_argument("--metrics_output", default=None,
                        help="Write the run's metrics here in Prometheus text format.")
    parser.add_argument("--otlp_endpoint", default=None,
                        help="Push the run's metrics to this OpenTelemetry collector (OTLP/HTTP, e.g. http://host:4318).")
    parser.add_argument("--progress_interval", type=float, default=5.0,
                        help="Seconds between progress lines on stderr (0 disables).")


class JobServerOptions(PipelineOptions):
  """Java options of Beam's Flink job server that Python must declare to pass them on.

  Beam's portable runner adds the options the job server describes, which leaves this one out.
  """

  @classmethod
  def _add_argparse_args(cls, parser):
    parser.add_argument("--pipeline_resources_detector_factory_class", default=None,
                        help="Java class choosing the jars a job stages: dev.agentflow.flink.ClusterClasspath "
                             "stages none, for a cluster whose classpath holds the runner (runners/flink/cluster.sh).")
