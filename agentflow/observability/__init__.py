"""What a run reports: its summary, progress lines, Prometheus/OTLP metrics export and audit chain."""
