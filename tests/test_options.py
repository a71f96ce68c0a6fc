"""agentflow's flags live beside Beam's: none may be a prefix of a Beam flag.

Beam's portable runners re-parse pipeline options with argparse abbreviations, so a
flag like `--output` silently became `--output_executable_path` on Flink (the job was
written to a jar instead of run).
"""
import argparse
import os

from apache_beam.options.pipeline_options import PipelineOptions

from agentflow.options import AgentflowOptions


def _flags(cls):
  parser = argparse.ArgumentParser(add_help=False)
  cls._add_argparse_args(parser)
  return {s for a in parser._actions for s in a.option_strings if s.startswith("--")}


def _all_subclasses(cls):
  for sub in cls.__subclasses__():
    yield sub
    yield from _all_subclasses(sub)


def test_no_flag_is_a_prefix_of_a_beam_flag():
  import apache_beam.runners.portability.flink_runner  # noqa: F401  (registers Flink options)
  import apache_beam.runners.portability.prism_runner  # noqa: F401
  beam_flags = set()
  for cls in _all_subclasses(PipelineOptions):
    if cls is not AgentflowOptions:
      try:
        beam_flags |= _flags(cls)
      except argparse.ArgumentError:
        continue
  assert len(beam_flags) > 100
  ours = _flags(AgentflowOptions)
  clashes = {o: sorted(b for b in beam_flags if b.startswith(o)) for o in ours}
  assert {o: c for o, c in clashes.items() if c} == {}


def test_defaults_parse():
  opts = PipelineOptions(["--input", "x.jsonl"]).view_as(AgentflowOptions)
  assert (opts.input, opts.decisions_output, opts.store, opts.top_k) == (
      "x.jsonl", "decisions.jsonl", "local:.agentflow/store", 5)


def test_readme_points_to_run_help_and_names_only_flags_that_exist():
  """The flag table is `agentflow run --help` (tests/test_cli.py); README may not name a flag that is gone."""
  import os
  import re

  from apache_beam.options.pipeline_options import PipelineOptions
  readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")).read()
  assert "agentflow run --help" in readme
  named = {m[2:] for m in re.findall(r"(?<![\w-])--[a-z][a-z_]+", readme)}
  other_commands = {"help", "out"}  # agentflow vespa package --out DIR
  from agentflow.evaluation import eval_parser
  from agentflow.models.tuning import tune_parser
  command_flags = {a.option_strings[0][2:] for parser in (eval_parser(), tune_parser())  # agentflow eval, tune
                   for a in parser._actions if a.option_strings}
  known = ({f[2:] for f in _flags(AgentflowOptions)} | set(PipelineOptions([]).get_all_options()) | other_commands
           | command_flags)
  assert named - known == set()


def _read_events(*argv):
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions

  from agentflow.io import ReadEvents
  from agentflow.job import source_from_options
  options = PipelineOptions(["--streaming", *argv])
  p = beam.Pipeline(options=options)
  _ = p | "Read" >> ReadEvents(source_from_options(options.view_as(AgentflowOptions)))
  return {t.full_label for t in p.transforms_stack[0].parts[0].parts}


def test_pubsub_is_read_in_python_on_prism_and_direct_and_by_java_on_flink():
  import pytest
  sub = ["--input_subscription", "projects/proj-1/subscriptions/sub-1"]
  assert "Read/PullPubSub" in _read_events("--runner", "PrismRunner", *sub)
  assert "Read/ReadPubSub" in _read_events("--runner", "DirectRunner", *sub)
  with pytest.raises(ValueError, match="--pubsub_expansion_service"):
    _read_events("--runner", "FlinkRunner", *sub)


def test_python_pubsub_on_a_portable_runner_rejects_what_it_cannot_do_naming_the_way_out():
  import pytest
  with pytest.raises(ValueError, match="--input_subscription"):
    _read_events("--runner", "PrismRunner", "--input_topic", "projects/p/topics/t")
  with pytest.raises(ValueError, match="--pubsub_expansion_service"):
    _read_events("--runner", "PrismRunner", "--input_subscription", "projects/p/subscriptions/s",
                 "--pubsub_id_attribute", "id")
  with pytest.raises(ValueError, match="projects/P/subscriptions/S"):
    _read_events("--runner", "PrismRunner", "--input_subscription", "s")


def test_cross_language_pubsub_endpoint_defaults_to_the_emulator(monkeypatch):
  from apache_beam.options.pipeline_options import PipelineOptions

  from agentflow.io import set_default_pubsub_root_url
  monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")
  xlang = PipelineOptions(["--pubsub_expansion_service", "localhost:8097"]).view_as(AgentflowOptions)
  set_default_pubsub_root_url(xlang)
  assert xlang.pubsub_root_url == "http://127.0.0.1:8085"
  given = PipelineOptions(["--pubsub_expansion_service", "localhost:8097",
                           "--pubsub_endpoint", "https://pubsub.example:443"]).view_as(AgentflowOptions)
  set_default_pubsub_root_url(given)
  assert given.pubsub_root_url == "https://pubsub.example:443"
  native = PipelineOptions(["--pubsub_endpoint="]).view_as(AgentflowOptions)
  set_default_pubsub_root_url(native)
  assert native.pubsub_root_url is None
  assert "pubsub_root_url" not in native.get_all_options(drop_default=True)


def test_streaming_on_a_portable_runner_is_watched_past_beams_60_s_job_server_timeout():
  from apache_beam.options.pipeline_options import PortableOptions

  from agentflow.job import STREAMING_JOB_SERVER_TIMEOUT_S, with_runner_defaults

  def timeout(*argv):
    return PipelineOptions(with_runner_defaults(list(argv))).view_as(PortableOptions).job_server_timeout

  assert timeout("--runner", "PrismRunner", "--streaming") == STREAMING_JOB_SERVER_TIMEOUT_S
  assert timeout("--runner", "prism", "--streaming") == STREAMING_JOB_SERVER_TIMEOUT_S
  assert timeout("--runner", "apache_beam.runners.portability.prism_runner.PrismRunner",
                 "--streaming") == STREAMING_JOB_SERVER_TIMEOUT_S
  assert timeout("--runner", "PrismRunner", "--streaming", "--job_server_timeout", "30") == 30
  assert timeout("--runner", "PrismRunner") == 60
  assert timeout("--runner", "DirectRunner", "--streaming") == 60


def test_a_streaming_flink_job_closes_bundles_after_50_ms_unless_told_otherwise():
  from agentflow.job import FLINK_STREAMING_BUNDLE_MS, with_runner_defaults

  def bundle_ms(*argv):
    options = PipelineOptions(with_runner_defaults(list(argv)))
    value = options.get_all_options(retain_unknown_options=True).get("max_bundle_time_mills")
    return None if value is None else int(value)

  assert bundle_ms("--runner", "FlinkRunner", "--streaming") == FLINK_STREAMING_BUNDLE_MS == 50
  assert bundle_ms("--runner", "flink", "--streaming") == FLINK_STREAMING_BUNDLE_MS
  assert bundle_ms("--runner", "FlinkRunner", "--streaming", "--max_bundle_time_mills", "1000") == 1000
  assert bundle_ms("--runner", "FlinkRunner", "--streaming", "--max_bundle_time_mills=7") == 7
  assert bundle_ms("--runner", "FlinkRunner") is None
  assert bundle_ms("--runner", "PrismRunner", "--streaming") is None
  assert bundle_ms("--streaming") is None


def test_a_streaming_flink_job_gets_agentflows_flink_conf_unless_it_has_its_own(monkeypatch):
  import yaml

  from agentflow.job import FLINK_STREAMING_CONF_DIR, with_runner_defaults

  def conf_dir(*argv):
    options = PipelineOptions(with_runner_defaults(list(argv)))
    return options.get_all_options(retain_unknown_options=True).get("flink_conf_dir")

  monkeypatch.delenv("FLINK_CONF_DIR", raising=False)
  assert conf_dir("--runner", "FlinkRunner", "--streaming") == FLINK_STREAMING_CONF_DIR
  with open(os.path.join(FLINK_STREAMING_CONF_DIR, "config.yaml")) as f:
    assert yaml.safe_load(f) == {"execution.buffer-timeout.interval": "5 ms"}
  assert conf_dir("--runner", "FlinkRunner", "--streaming", "--flink_conf_dir", "/etc/flink") == "/etc/flink"
  assert conf_dir("--runner", "FlinkRunner", "--streaming", "--job_endpoint", "localhost:8099") is None
  assert conf_dir("--runner", "FlinkRunner") is None
  monkeypatch.setenv("FLINK_CONF_DIR", "/etc/flink")
  assert conf_dir("--runner", "FlinkRunner", "--streaming") is None


def test_a_local_streaming_flink_job_server_compiles_with_c1_only(tmp_path):
  """The flag reaches the java command line Beam's Flink job server is started with."""
  from apache_beam.runners.portability.flink_runner import FlinkJarJobServer

  from agentflow.job import FLINK_LOCAL_JVM_PROPERTIES, with_runner_defaults
  jar = tmp_path / "job-server.jar"
  jar.write_bytes(b"")

  def java_flags(*argv):
    options = PipelineOptions(with_runner_defaults(["--flink_job_server_jar", str(jar), *argv]))
    cmd, _ = FlinkJarJobServer(options).subprocess_cmd_and_endpoint()
    return cmd[:cmd.index(str(jar))]

  assert FLINK_LOCAL_JVM_PROPERTIES == ("-XX:TieredStopAtLevel=1",)
  assert java_flags("--runner", "FlinkRunner", "--streaming") == ["java", "-jar", "-XX:TieredStopAtLevel=1"]
  assert java_flags("--runner", "FlinkRunner", "--streaming", "--flink_master", "[local]")[2:] == [
      "-XX:TieredStopAtLevel=1"]
  assert java_flags("--runner", "FlinkRunner", "--streaming", "--flink_master", "localhost:8081") == [
      "java", "-jar"]
  assert java_flags("--runner", "FlinkRunner", "--streaming", "--job_server_jvm_property=-Xmx2g") == [
      "java", "-jar", "-Xmx2g"]
  assert java_flags("--runner", "FlinkRunner") == ["java", "-jar"]


def test_model_backend_auto_is_onnx_for_a_streaming_sentence_transformers_job_only():
  from agentflow.options import model_backend
  assert model_backend(PipelineOptions(["--streaming"])) == "onnx"
  assert model_backend(PipelineOptions([])) == "torch"
  assert model_backend(PipelineOptions(["--streaming", "--model_backend", "torch"])) == "torch"
  assert model_backend(PipelineOptions(["--model_backend", "onnx"])) == "onnx"
  assert model_backend(PipelineOptions(["--streaming", "--model", "tfhub:/models/use"])) == "torch"
