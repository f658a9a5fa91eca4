"""Postfix integration: the socketmap TLS policy daemon (``mtasts daemon``).

``netstring`` and ``socketmap`` are pure; ``server`` and ``dane`` do the I/O.
"""
