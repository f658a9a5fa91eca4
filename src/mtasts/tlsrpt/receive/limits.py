"""What the network intake lets in, decided without I/O (pure).

The servers (``http.py``, ``mail.py``) ask these small values what to do with one
request: which media type it declared, which secret path it used, whether its client is
over its rate or its concurrency, and which status answers an ingest outcome. Time comes
in as an argument (seconds, any monotonic origin); every table is bounded, so a flood of
distinct clients cannot grow memory without bound.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

# RFC 8460 §5.4 (and §6.4, §6.5): the two media types a POSTed report may have.
MEDIA_GZIP = "application/tlsrpt+gzip"
MEDIA_JSON = "application/tlsrpt+json"


def media_type(content_type: str | None) -> str | None:
    """The RFC 8460 media type a Content-Type header names, or None for any other.

    Parameters (``; charset=utf-8``) and case are ignored (RFC 9110 §8.3.1); a missing
    header is not a report (RFC 8460 §5.4: the sender sets one of the two).
    """
    if not content_type:
        return None
    base = content_type.split(";", 1)[0].strip().lower()
    return base if base in (MEDIA_GZIP, MEDIA_JSON) else None


# --- secret paths -----------------------------------------------------------------------


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True, slots=True)
class SecretPaths:
    """Per-domain secret path segments: the domain publishes
    ``rua=https://host/tlsrpt/<secret>``, and only POSTs to that path are taken as its.

    RFC 8460 §5.4 gives https intake no authentication; the unguessable URI is the
    credential, so it is compared in constant time: every configured secret is compared
    (fixed-length SHA-256 digests, :func:`hmac.compare_digest`), whichever matches.
    """

    digests: tuple[tuple[bytes, str], ...] = ()

    @classmethod
    def from_mapping(cls, secrets: Mapping[str, str]) -> SecretPaths:
        """``{domain: secret}`` -> SecretPaths."""
        return cls(tuple((_digest(secret), domain) for domain, secret in secrets.items()))

    def __bool__(self) -> bool:
        return bool(self.digests)

    def domain_for(self, given: str) -> str | None:
        """The domain whose secret ``given`` is, or None."""
        probe = _digest(given)
        found: str | None = None
        for digest, domain in self.digests:
            if hmac.compare_digest(probe, digest):
                found = domain
        return found


# --- per-client rate and concurrency ------------------------------------------------------


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


@dataclass(slots=True)
class RateLimiter:
    """A token bucket per client: ``rate`` requests a second, bursts of ``burst``.

    At most ``max_clients`` buckets are kept (least recently seen dropped first): a
    forgotten client starts again with a full bucket, which only ever lets more in, and
    memory stays bounded however many addresses send. ``rate <= 0`` disables the limit.
    """

    rate: float
    burst: float
    max_clients: int = 10_000
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict)

    def allow(self, client: str, now: float) -> bool:
        """Takes one token for ``client`` at time ``now``; False when it has none left."""
        if self.rate <= 0:
            return True
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[client] = bucket
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def retry_after(self, client: str) -> int:
        """Whole seconds until ``client`` has a token again (at least 1)."""
        bucket = self._buckets.get(client)
        if bucket is None or self.rate <= 0:
            return 1
        return max(1, int((1.0 - bucket.tokens) / self.rate + 0.999))

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(slots=True)
class ClientSlots:
    """Requests in progress per client, at most ``per_client`` each (0: no limit).

    Only clients with a request in progress have an entry, so the table is bounded by
    the server's own concurrency limit.
    """

    per_client: int
    _busy: dict[str, int] = field(default_factory=dict)

    def acquire(self, client: str) -> bool:
        count = self._busy.get(client, 0)
        if self.per_client and count >= self.per_client:
            return False
        self._busy[client] = count + 1
        return True

    def release(self, client: str) -> None:
        count = self._busy.get(client, 0) - 1
        if count > 0:
            self._busy[client] = count
        else:
            self._busy.pop(client, None)

    def __len__(self) -> int:
        return len(self._busy)


# --- answers ---------------------------------------------------------------------------

#: reason_code of a refused report -> HTTP status. Anything not listed is 400.
REFUSED_STATUS = {
    "too-large": 413,  # past a size bound (compressed or decompressed)
    "not-our-domain": 403,  # no policy domain of ours (other_domains = "refuse")
}


def http_status(disposition: str, reason_code: str | None) -> int:
    """The HTTP status that answers an ingest outcome (RFC 8460 §5.4: 2xx = received).

    ``disposition`` is the outcome's name (STORED, DUPLICATE, QUARANTINED, REFUSED).
    A duplicate is a success (the sender must not retry what we have); a quarantined
    report is kept, so it is 202 Accepted; a refusal is a 4xx the sender must not retry.
    """
    name = disposition.upper()
    if name == "STORED":
        return 200
    if name == "DUPLICATE":
        return 200
    if name == "QUARANTINED":
        return 202
    return REFUSED_STATUS.get(reason_code or "", 400)


def smtp_reply(disposition: str, reason_code: str | None, reason: str | None) -> str:
    """The SMTP/LMTP reply for an ingest outcome (RFC 5321 §4.2, enhanced codes RFC 3463).

    Stored, duplicate and quarantined mail is taken (250: the report is kept or already
    was); what can never be a report is refused for good (5xx, so the MTA bounces it
    instead of retrying for days).
    """
    name = disposition.upper()
    if name == "STORED":
        return "250 2.0.0 report stored"
    if name == "DUPLICATE":
        return "250 2.0.0 report already stored (duplicate)"
    if name == "QUARANTINED":
        return "250 2.0.0 report quarantined for review"
    text = one_line(reason or reason_code or "not a TLS report")
    if reason_code == "too-large":
        return f"552 5.3.4 {text}"
    return f"554 5.6.0 {text}"


def one_line(text: str, limit: int = 400) -> str:
    """``text`` as one printable reply line (no CR/LF, bounded): it is sent to the peer."""
    flat = " ".join(text.split())
    flat = "".join(c if c.isprintable() else "?" for c in flat)
    return flat[:limit] or "-"
