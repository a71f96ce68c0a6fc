"""Assembled agentflow pipelines (also the Flex Template entry points)."""
