import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

# TensorFlow and triton (loaded lazily by torch) each bundle LLVM; whichever loads second
# aborts the process unless triton comes first. Some tests import TensorFlow at collection.
try:
  import torch._dynamo  # noqa: F401,E402
except ImportError:
  pass


@pytest.fixture(scope="session")
def handler():
  from agentflow.models import SentenceTransformerHandler
  return SentenceTransformerHandler(max_batch_size=32)


@pytest.fixture(scope="session")
def st_model(handler):
  return handler.load_model()

from apache_beam.testing.test_pipeline import TestPipeline  # noqa: E402

TestPipeline.__test__ = False
from apache_beam.testing.test_stream import TestStream  # noqa: E402

TestStream.__test__ = False


def pytest_configure(config):
  config.addinivalue_line("markers", "flink_cluster: runs the job on a Flink session cluster of two "
                          "TaskManagers (runners/flink/cluster.sh); select with -m flink_cluster")


def pytest_terminal_summary(terminalreporter):
  """Say what Vespa's own Java code checked of the protocol server's traffic (tests/vespa_java.py)."""
  import sys
  checker = sys.modules.get("tests.vespa_java")
  line = checker.summary() if checker is not None else None
  if line:
    terminalreporter.write_line(line)
