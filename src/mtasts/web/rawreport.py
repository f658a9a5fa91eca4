"""A stored input as the report JSON it holds, for people to read.

Pure: the archived bytes (a report e-mail, gzip or JSON) -> pretty JSON text, through the
same bounded unpacking the intake uses (:mod:`mtasts.tlsrpt.unpack`).
"""

from __future__ import annotations

import orjson

from mtasts.errors import ReportError
from mtasts.tlsrpt.unpack import GZIP_MAGIC, extract_from_mail, gunzip, looks_like_mail

MAX_SHOWN = 10 * 2**20


def report_json(raw: bytes) -> tuple[str | None, str | None]:
    """(pretty JSON, None) or (None, why it cannot be shown)."""
    data = raw
    try:
        head = data.lstrip(b" \t\r\n")
        if not head.startswith((GZIP_MAGIC, b"{", b"[", b"\xef\xbb\xbf")) and looks_like_mail(data):
            data = extract_from_mail(data)[0]
        if data.startswith(GZIP_MAGIC):
            data = gunzip(data, max_bytes=MAX_SHOWN)[0]
    except ReportError as exc:
        return None, exc.message
    try:
        value = orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON: {exc}"
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode(), None
