"""The package's surface: every exported name resolves, and importing it stays cheap."""
import subprocess
import sys

import agentflow


def test_every_exported_name_resolves():
  missing = [name for name in agentflow.__all__ if getattr(agentflow, name, None) is None]
  assert not missing
  assert set(agentflow.__all__) <= set(dir(agentflow))


def test_unknown_names_raise_attribute_error():
  try:
    agentflow.NoSuchThing  # noqa: B018
  except AttributeError as e:
    assert "NoSuchThing" in str(e)
  else:
    raise AssertionError("expected AttributeError")


def test_import_agentflow_does_not_import_beam():
  code = "import sys, agentflow; print('apache_beam' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
  assert out.stdout.strip() == "False"
