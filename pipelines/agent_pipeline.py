"""Flex Template entry point: runs `agentflow.job` with the template's parameters as flags.

The job itself lives in the installed `agentflow` package; this file only exists because a
Flex Template launcher runs a Python file (FLEX_TEMPLATE_PYTHON_PY_FILE).
"""
from agentflow.job import main

if __name__ == "__main__":
  main()
