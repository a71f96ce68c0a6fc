"""Text handling applied before anything is embedded, stored or logged: PII redaction, language detection."""
