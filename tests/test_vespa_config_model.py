"""The generated Vespa application package, checked by Vespa's own Java config model.

`runners/jars.sh vespa` resolves `com.yahoo.vespa:config-model` (pinned in
runners/vespa/pom.xml) from Maven Central and builds `runners/vespa/launcher.jar`, whose
main class (runners/vespa/src/main/java/dev/agentflow/vespa/ValidatePackage.java) does what a
config server does on prepare: services.xml against Vespa's RELAX NG schemas, the .sd schemas
parsed and derived with validation on (fields, HNSW, fieldsets, rank profiles and their
expressions' types), the VespaModel built and every model validator run. The negative cases
prove that it rejects real mistakes with Vespa's own message.
"""
import os
import subprocess

import pytest

from agentflow.stores.vespa_app import VespaSchemaConfig, main_vespa_package, write_application_package

from tests.services import java_available, launcher


@pytest.fixture(scope="module")
def validator():
  if not java_available():
    pytest.skip("java and mvn are needed to run Vespa's config model (runners/jars.sh vespa)")
  return launcher("vespa")  # resolves from Maven Central on first use, then cached


def _validate(jar, app_dir):
  return subprocess.run(["java", "-jar", jar, str(app_dir)], capture_output=True, text=True, timeout=300)


def _files(root):
  return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


@pytest.mark.parametrize("metric", ["angular", "prenormalized-angular"])
@pytest.mark.parametrize("dimension", [384, 8])
def test_generated_package_is_accepted(validator, tmp_path, metric, dimension):
  config = VespaSchemaConfig(dimension=dimension, distance_metric=metric)
  sd = write_application_package(str(tmp_path), config)
  text = open(sd).read()
  assert f"distance-metric: {metric}" in text and f"tensor<float>(x[{dimension}])" in text
  before = _files(tmp_path)
  out = _validate(validator, tmp_path)
  assert out.returncode == 0, out.stderr
  assert "OK " in out.stdout and "schema agent_context in agentflow_content" in out.stdout, out.stdout
  assert "hybrid" in out.stdout and "semantic" in out.stdout, out.stdout
  assert "<min-redundancy>1</min-redundancy>" in open(tmp_path / "services.xml").read()
  assert "global-phase" in text and "field tenantless type bool" in text
  assert "redundancy" not in out.stderr, "no deprecation warning about <redundancy>"
  assert _files(tmp_path) == before  # validated on a copy; the package is left as written


def test_cli_package_is_accepted(validator, tmp_path, capsys):
  assert main_vespa_package(["--out", str(tmp_path), "--dimension", "16", "--distance-metric",
                             "prenormalized-angular", "--app-name", "ctx"]) == 0
  out = _validate(validator, tmp_path)
  assert out.returncode == 0, out.stderr
  assert "schema agent_context in ctx_content" in out.stdout, out.stdout


def _tamper(path, old, new):
  text = open(path).read()
  assert old in text, f"{old!r} not in {path}"
  with open(path, "w") as f:
    f.write(text.replace(old, new, 1))


@pytest.mark.parametrize("file,old,new,message", [
    # A rank profile's global phase using a field that does not exist.
    ("schemas/agent_context.sd", "reciprocal_rank_fusion(closeness(field, embedding), bm25(text))",
     "reciprocal_rank_fusion(closeness(field, embedding), attribute(no_such_field))",
     "attribute(no_such_field)"),
    # An HNSW index on a tensor type that cannot have one (mapped dimension only).
    ("schemas/agent_context.sd", "field embedding type tensor<float>(x[8])", "field embedding type tensor<float>(x{})",
     "field 'embedding': A tensor of type 'tensor<float>(x{})' does not support having an 'index'"),
    # A first phase that does not produce a scalar.
    ("schemas/agent_context.sd", "        first-phase {\n            expression {\n                closeness(field, embedding)",
     "        first-phase {\n            expression {\n                query(q)",
     "The first-phase expression must produce a double (a tensor with no dimensions), but produces tensor<float>(x[8])"),
    # services.xml naming a document type no schema defines.
    ("services.xml", 'type="agent_context"', 'type="agent_contexts"',
     "Document type 'agent_contexts' not found in application package"),
    # services.xml that Vespa's RELAX NG schema rejects.
    ("services.xml", "<min-redundancy>1</min-redundancy>", "<min-redundancy>one</min-redundancy>",
     'Invalid XML according to XML schema, error in services.xml: character content of element "min-redundancy" '
     'invalid'),
])
def test_invalid_package_is_rejected(validator, tmp_path, file, old, new, message):
  write_application_package(str(tmp_path), VespaSchemaConfig(dimension=8))
  _tamper(os.path.join(tmp_path, file), old, new)
  out = _validate(validator, tmp_path)
  assert out.returncode == 1, (out.stdout, out.stderr)
  assert "INVALID" in out.stderr and message in out.stderr, out.stderr
