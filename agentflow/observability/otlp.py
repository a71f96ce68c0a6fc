"""Optional OTLP export: the run summary's counters pushed to an OpenTelemetry collector.

`--otlp_endpoint http://collector:4318` sends, once at the end of a run, per-stage element
counts, dead letters by reason, decisions by action, duplicates dropped and PII redactions as OTLP/HTTP
metrics (protobuf), tagged `service.name=agentflow`. Needs the `otlp` extra.
"""
from __future__ import annotations

from agentflow.observability.summary import RunSummary


def export_summary(summary: RunSummary, endpoint: str, service_name: str = "agentflow",
                   timeout_s: float = 10.0) -> None:
  """Pushes the summary's counters to an OpenTelemetry collector over OTLP/HTTP."""
  try:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
  except ImportError as e:
    raise RuntimeError("OTLP export needs the 'otlp' extra: pip install 'agentflow[otlp]'") from e
  exporter = OTLPMetricExporter(endpoint=endpoint.rstrip("/") + "/v1/metrics", timeout=timeout_s)
  reader = PeriodicExportingMetricReader(exporter, export_interval_millis=24 * 3600 * 1000)
  provider = MeterProvider(resource=Resource.create({"service.name": service_name}), metric_readers=[reader])
  meter = provider.get_meter("agentflow")
  elements = meter.create_counter("agentflow.stage.elements", description="Elements into and out of each stage")
  for stage, io in summary.stages.items():
    for direction, n in io.items():
      elements.add(n, {"stage": stage, "direction": direction})
  dead = meter.create_counter("agentflow.dead_letters", description="Dead letters by stage and reason")
  for key, n in summary.dead_letter_reasons.items():
    stage, _, reason = key.partition(".")
    dead.add(n, {"stage": stage, "reason": reason})
  decisions = meter.create_counter("agentflow.decisions", description="Decisions by action")
  for action, n in summary.actions.items():
    decisions.add(n, {"action": action})
  duplicates = meter.create_counter("agentflow.duplicates_dropped",
                                    description="Redeliveries dropped by Dedupe (same event id and payload)")
  duplicates.add(summary.duplicates)
  pii = meter.create_counter("agentflow.pii.redacted", description="PII spans redacted, by kind")
  for kind, n in summary.pii_redacted.items():
    pii.add(n, {"kind": kind})
  try:
    if not provider.force_flush(timeout_millis=int(timeout_s * 1000)):
      raise RuntimeError(f"OTLP export to {endpoint} did not complete")
  finally:
    provider.shutdown()
