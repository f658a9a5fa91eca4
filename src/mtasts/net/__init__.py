"""Shared I/O adapters: DNS, HTTPS, TLS."""
