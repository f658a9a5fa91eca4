"""The policy cache port: one ``Protocol`` every backend implements, and the entry codec.

The stored value is :class:`~mtasts.sts.refresh.CacheEntry`: the record id, the policy,
its raw text, the fetch time and the failure (back-off) state. Persistent backends store
the raw policy text, not a second encoding of the parsed policy, and re-parse it when
read: the text is what TLS-RPT reports, and one parser is the only source of truth.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

import orjson

from mtasts.errors import MtastsError, Notice
from mtasts.redact import redacted
from mtasts.results import ResultType
from mtasts.rfc3339 import utc_text
from mtasts.sts.policy import read_policy
from mtasts.sts.refresh import CacheEntry

__all__ = [
    "CacheEntry",
    "PolicyCache",
    "decode_entry",
    "entry_from_bytes",
    "entry_to_bytes",
    "redacted",
]

log = logging.getLogger(__name__)


@runtime_checkable
class PolicyCache(Protocol):
    """Where resolvers keep :class:`CacheEntry` values, one per Policy Domain."""

    #: The URL this cache was opened from, credentials removed (for logs).
    url: str

    async def get(self, domain: str) -> CacheEntry | None:
        """The entry for ``domain``, or None."""
        ...

    async def set(self, entry: CacheEntry) -> None:
        """Store ``entry`` under ``entry.domain``, replacing any older one."""
        ...

    async def delete(self, domain: str) -> None:
        """Forget ``domain`` (no error if it is unknown)."""
        ...

    async def domains(self) -> list[str]:
        """Every domain with an entry, sorted (for inspection and proactive refresh)."""
        ...

    async def aclose(self) -> None:
        """Release connections; the cache is not used afterwards."""
        ...


def _notice(value: Any) -> Notice | None:
    if value is None:
        return None
    return Notice(value["code"], value["message"], value.get("rfc", ""))


def entry_to_json(entry: CacheEntry) -> dict[str, Any]:
    """The entry as JSON-ready data (version 1 of the stored format)."""
    return {
        "v": 1,
        "domain": entry.domain,
        "checked_at": entry.checked_at,
        "recheck_at": entry.recheck_at,
        "txt_id": entry.txt_id,
        "txt_error": entry.txt_error.to_json() if entry.txt_error else None,
        "record_id": entry.record_id,
        "raw_text": entry.raw_text if entry.policy is not None else None,
        "fetched_at": entry.fetched_at,
        "failed_id": entry.failed_id,
        "failed_at": entry.failed_at,
        "failures": entry.failures,
        "failure": entry.failure.to_json() if entry.failure else None,
        "failure_type": str(entry.failure_type) if entry.failure_type else None,
    }


def entry_view(entry: CacheEntry) -> dict[str, Any]:
    """The entry as ``mtasts cache show --json`` prints it (docs/json.md): the query's key
    names, instants as RFC 3339 UTC text. (:func:`entry_to_json` is the stored format.)"""
    policy = entry.policy
    return {
        "domain": entry.domain,
        "txt_id": entry.txt_id,
        "txt_error": entry.txt_error.to_json() if entry.txt_error else None,
        "id": entry.record_id,
        "mode": str(policy.mode) if policy is not None else None,
        "mx": [str(p) for p in policy.mx] if policy is not None else [],
        "max_age": policy.max_age if policy is not None else None,
        "policy_text": entry.raw_text if policy is not None else None,
        "fetched_at": utc_text(entry.fetched_at),
        "expires_at": utc_text(entry.expires_at),
        "checked_at": utc_text(entry.checked_at),
        "recheck_at": utc_text(entry.recheck_at),
        "failed_id": entry.failed_id,
        "failed_at": utc_text(entry.failed_at),
        "failures": entry.failures,
        "failure": entry.failure.to_json() if entry.failure else None,
        "result_type": str(entry.failure_type) if entry.failure_type else None,
    }


def entry_from_json(data: dict[str, Any]) -> CacheEntry:
    """Inverse of :func:`entry_to_json`. The policy is re-parsed from its stored text."""
    raw = data.get("raw_text")
    return CacheEntry(
        domain=data["domain"],
        checked_at=float(data["checked_at"]),
        recheck_at=float(data["recheck_at"]),
        txt_id=data.get("txt_id"),
        txt_error=_notice(data.get("txt_error")),
        record_id=data.get("record_id"),
        policy=read_policy(raw) if raw is not None else None,
        raw_text=raw,
        fetched_at=data.get("fetched_at"),
        failed_id=data.get("failed_id"),
        failed_at=data.get("failed_at"),
        failures=int(data.get("failures", 0)),
        failure=_notice(data.get("failure")),
        failure_type=ResultType.parse(data["failure_type"]) if data.get("failure_type") else None,
    )


def entry_to_bytes(entry: CacheEntry) -> bytes:
    return orjson.dumps(entry_to_json(entry))


def entry_from_bytes(data: bytes | str) -> CacheEntry:
    loaded = orjson.loads(data)
    if not isinstance(loaded, dict):
        raise ValueError("a cache entry must be a JSON object")
    return entry_from_json(loaded)


def decode_entry(data: bytes | str, *, domain: str, cache_url: str) -> CacheEntry | None:
    """The stored entry of ``domain``, or None (with a warning) if it cannot be used.

    A value that is not a well-formed entry for ``domain`` (garbage, a truncated write, a
    policy text this version no longer accepts) is a cache miss: the resolver looks the
    domain up again and overwrites it, instead of failing every lookup of that domain.
    """
    try:
        entry = entry_from_bytes(data)
    except (ValueError, KeyError, TypeError, AttributeError, MtastsError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    else:
        if entry.domain == domain:
            return entry
        reason = f"it holds the entry of {entry.domain!r}"
    log.warning(
        "policy cache %s: the stored entry for %s is unreadable (%s); treating it as absent",
        cache_url,
        domain,
        reason,
    )
    return None
