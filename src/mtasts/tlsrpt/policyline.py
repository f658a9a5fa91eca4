"""An MTA-STS policy line as the value of Postfix's ``policy_string`` TLSRPT attribute,
and back.

``mtasts daemon`` (:mod:`mtasts.postfix.socketmap`) encodes every line of the policy it
answers with; Postfix passes the value to libtlsrpt unchanged; the collector
(:mod:`mtasts.tlsrpt.collect.datagram`) decodes it from the datagram. Pure: no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

# Printable ASCII but the braces, single spaces between visible characters: what
# Postfix passes on verbatim inside "{ policy_string = ... }". Postfix's parser
# (smtp_tls_policy.c: mystrtokq, then extpar with EXTPAR_FLAG_STRIP|NORMAL_WS) ends the
# value at an unbalanced brace, strips leading and trailing white space and turns tabs
# and line breaks into spaces.
_VERBATIM = re.compile(r"[!-z|~](?:[!-z|~]| (?=[!-z|~]))*")
_QUOTE_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "%{}")
#: an encoded line starts with this: no policy line can (RFC 8461 §3.2 field names
#: begin with ALPHA or DIGIT)
POLICY_LINE_MARK = "%"


def encode_policy_line(line: str) -> str:
    """``line`` as a ``policy_string`` value Postfix carries unchanged to libtlsrpt.

    A line Postfix keeps verbatim is sent as is (every line of an ordinary policy).
    Any other (a tab after ``mode:``, braces, ``%`` first, leading, trailing or double
    spaces, control characters, non-ASCII, an empty line) is sent as ``%`` followed by
    the line percent-encoded (RFC 3986 §2.1, UTF-8), which has no space, brace or
    control character left, so it can neither end the attribute nor add one. RFC 8460
    §4.4 asks for the policy's own text; :func:`decode_policy_line` restores it and the
    collector applies it to what libtlsrpt reports.
    """
    if _VERBATIM.fullmatch(line) and not line.startswith(POLICY_LINE_MARK):
        return line
    return POLICY_LINE_MARK + quote(line, safe=_QUOTE_SAFE)


def decode_policy_line(value: str) -> str:
    """Inverse of :func:`encode_policy_line`; any other string is returned unchanged."""
    if not value.startswith(POLICY_LINE_MARK):
        return value
    return unquote(value[1:], errors="replace")
