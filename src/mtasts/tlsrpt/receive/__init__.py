"""Receiving TLS-RPT reports (RFC 8460 §5): intake, decisions, DKIM, import sources."""
