"""mtasts: MTA-STS (RFC 8461) and SMTP TLS Reporting (RFC 8460), end to end."""

__version__ = "0.1.0"
