"""Reading the ``date-time`` values of a TLS-RPT report leniently (RFC 8460 §4.4).

Pure. RFC 3339 §5.6::

    date-time   = full-date "T" full-time
    full-time   = partial-time time-offset
    time-offset = "Z" / time-numoffset          ; "T" and "Z" may be lower case (§5.6 NOTE)

Real senders deviate: Microsoft (2023) wrote no offset at all (``2023-01-10T00:00:00``).
A report's range is a UTC day (§4.1), so an offset-less value is read as UTC with a
warning (checklist E-63). Other repairs (space separator, ``+0000``, ``UTC`` suffix, no
seconds, date only, leap second) are warned too; anything else is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from mtasts.errors import ReportError

_RFC = "RFC 3339 §5.6"
_DATE_TIME = re.compile(
    r"\s*(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:(?P<sep>[Tt ])(?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?P<frac>\.\d+)?)?)?"
    r"\s*(?P<zone>[Zz]|[+-]\d{2}:?\d{2}|UTC|GMT)?\s*",
    re.ASCII,
)

Warn = Callable[[str, str, str], None]


_STRICT_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", re.ASCII)


@lru_cache(maxsize=1024)
def _strict_utc(value: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM:SSZ``, the form nearly every report uses (and repeats: one day's
    reports share two values), without a repair to warn about; None for anything else."""
    if _STRICT_UTC.fullmatch(value) is None or value[17:19] == "60":
        return None
    try:
        return datetime(
            int(value[:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
            tzinfo=UTC,
        )
    except ValueError:
        return None  # not a real date: the full parse says why


def parse_report_datetime(value: object, name: str, warn: Warn) -> datetime:
    """The UTC instant of a report ``date-time``; repairs are passed to ``warn``.

    Raises :class:`ReportError` ``report.date.missing`` / ``report.date.invalid``.
    """
    if type(value) is str and len(value) == 20:
        strict = _strict_utc(value)
        if strict is not None:
            return strict
    if value is None:
        raise ReportError(f"date-range.{name} is missing", code="report.date.missing")
    if not isinstance(value, str):
        raise ReportError(f"date-range.{name} must be a string", code="report.date.invalid")
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise ReportError(
            f"date-range.{name} {value!r} is not an RFC 3339 date-time",
            code="report.date.invalid",
            rfc=_RFC,
        )
    hour, minute, second = (int(match.group(g) or 0) for g in ("h", "m", "s"))
    if value != value.strip():
        warn("report.date.not-rfc3339", f"date-range.{name} {value!r}: whitespace removed", _RFC)
    if match.group("h") is None:
        warn("report.date.no-time", f"date-range.{name} {value!r} has no time: 00:00", _RFC)
    elif match.group("sep") == " " or match.group("s") is None:
        warn("report.date.not-rfc3339", f"date-range.{name} {value!r} is not RFC 3339", _RFC)
    if second == 60:  # a leap second (RFC 3339 §5.7); datetime cannot hold it
        warn("report.date.leap-second", f"date-range.{name} {value!r}: read as :59", _RFC)
        second = 59
    micro = int((match.group("frac") or ".0")[1:7].ljust(6, "0"))
    zone = match.group("zone")
    if zone is None:
        warn(
            "report.date.no-timezone",
            f"date-range.{name} {value!r} has no time zone; read as UTC",
            _RFC,
        )
        tz: timezone = UTC
    elif zone in ("Z", "z"):
        tz = UTC
    elif zone in ("UTC", "GMT"):
        warn("report.date.not-rfc3339", f"date-range.{name} {value!r}: write Z", _RFC)
        tz = UTC
    else:
        if ":" not in zone:
            warn("report.date.not-rfc3339", f"date-range.{name} {value!r}: offset needs ':'", _RFC)
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset >= timedelta(hours=24) or int(digits[2:]) > 59:
            raise ReportError(
                f"date-range.{name} {value!r} has an impossible offset", code="report.date.invalid"
            )
        tz = timezone(sign * offset)
    try:
        year, month, day = (int(p) for p in match.group("date").split("-"))
        local = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
        return local.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ReportError(
            f"date-range.{name} {value!r} is not a real date-time ({exc})",
            code="report.date.invalid",
            rfc=_RFC,
        ) from None
