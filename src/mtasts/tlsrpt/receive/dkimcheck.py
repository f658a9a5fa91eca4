"""DKIM verification of report e-mail (RFC 8460 §3, §5.3) with dkimpy.

I/O: the key record (``selector._domainkey.domain`` TXT) is looked up through the
project's resolver (:class:`mtasts.net.dns.DnsClient`, so ``MTASTS_NAMESERVER`` and the
lab apply), then dkimpy checks the signature against it. Keys are cached a few minutes:
a day's reports from one sender share one key.

RFC 8460 §3 leaves alignment open; like mox we count a pass only when d= is the From
domain or a parent of it (``aligned``), and dkimpy's ``tlsrpt`` mode hashes the whole
body whatever ``l=`` says and accepts key records with ``s=*``, ``email`` or ``tlsrpt``.
"""

from __future__ import annotations

import asyncio
from email.utils import getaddresses

import dkim
import dkim.util

from mtasts.clock import Clock, monotonic
from mtasts.errors import DnsError
from mtasts.net.dns import DnsClient
from mtasts.tlsrpt.receive.decide import NO_DKIM, DkimResult, DkimVerdict

MAX_SIGNATURES = 5  # signatures tried per message (a message can carry any number)
KEY_TTL = 300.0  # seconds a looked-up key record is reused
OFF_LOOP = 256 * 1024  # messages above this are parsed and hashed in a thread
_MAX_KEYS = 1024


def from_domain(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The domain of the (first) From address."""
    for name, value in headers:
        if name.lower() == b"from":
            text = value.decode("utf-8", "replace")
            for _, addr in getaddresses([text]):
                if "@" in addr:
                    return addr.rpartition("@")[2].strip().rstrip(".").lower() or None
            return None
    return None


def aligned(signing_domain: str, author_domain: str | None) -> bool:
    """d= is the author's domain or a parent of it (organisational alignment without a
    public-suffix list: a parent, never a sibling; a bare TLD never counts)."""
    if not author_domain or "." not in signing_domain:
        return False
    d = signing_domain.lower().rstrip(".")
    return author_domain == d or author_domain.endswith("." + d)


def _tags(checker: dkim.DKIM, idx: int) -> tuple[str | None, str | None]:
    """d= and s= of a signature dkimpy refused (expired, malformed), when readable."""
    values = [v for n, v in checker.headers if n.lower() == b"dkim-signature"]
    try:
        tags = dkim.util.parse_tag_value(values[idx])
    except Exception:  # a signature too malformed to name its domain
        return None, None
    d, s = tags.get(b"d"), tags.get(b"s")
    return (
        d.decode("ascii", "replace").lower() if d else None,
        s.decode("ascii", "replace") if s else None,
    )


class DkimChecker:
    """Verifies the DKIM signatures of report e-mail; one per receiver."""

    def __init__(self, dns: DnsClient, *, clock: Clock = monotonic, ttl: float = KEY_TTL) -> None:
        self.dns = dns
        self.clock = clock
        self.ttl = ttl
        self._keys: dict[str, tuple[float, bytes | None]] = {}

    async def _key(self, name: str) -> bytes | None:
        now = self.clock()
        hit = self._keys.get(name)
        if hit is not None and hit[0] > now:
            return hit[1]
        answer = await self.dns.txt(name)
        record: bytes | None = None
        if answer.exists and answer.records:
            first = next((r for r in answer.records if r.startswith("v=DKIM1")), answer.records[0])
            record = first.encode("ascii", "replace")
        if len(self._keys) >= _MAX_KEYS:
            self._keys.clear()
        self._keys[name] = (now + self.ttl, record)
        return record

    async def verify(self, raw: bytes) -> DkimVerdict:
        """The best verdict over the message's first signatures: an aligned pass, else a
        pass, else a DNS failure (temperror), else the first failure; ``none`` unsigned."""
        try:
            if len(raw) > OFF_LOOP:
                checker = await asyncio.to_thread(dkim.DKIM, raw, tlsrpt=True, minkey=1024)
            else:
                checker = dkim.DKIM(raw, tlsrpt=True, minkey=1024)
        except Exception as exc:  # dkimpy raises several types for a bad message
            return DkimVerdict(DkimResult.FAIL, reason=f"the message cannot be parsed: {exc}")
        count = sum(1 for n, _ in checker.headers if n.lower() == b"dkim-signature")
        if not count:
            return NO_DKIM
        author = from_domain(checker.headers)
        verdicts = [
            await self._one(checker, idx, author) for idx in range(min(count, MAX_SIGNATURES))
        ]

        def rank(v: DkimVerdict) -> int:
            if v.result is DkimResult.PASS:
                return 0 if v.aligned else 1
            return 2 if v.result is DkimResult.TEMPERROR else 3

        return min(verdicts, key=rank)

    async def _one(self, checker: dkim.DKIM, idx: int, author: str | None) -> DkimVerdict:
        try:
            prep = checker.verify_headerprep(idx)
        except dkim.DKIMException as exc:
            d, s = _tags(checker, idx)
            return DkimVerdict(DkimResult.FAIL, d, s, f"bad DKIM-Signature: {exc}"[:300])
        if not prep:
            return NO_DKIM
        sig = prep[0]
        domain = sig[b"d"].decode("ascii", "replace").lower()
        selector = sig[b"s"].decode("ascii", "replace")
        name = f"{selector}._domainkey.{domain}."
        try:
            record = await self._key(name)
        except DnsError as exc:
            return DkimVerdict(DkimResult.TEMPERROR, domain, selector, exc.message[:300])
        if record is None:
            return DkimVerdict(
                DkimResult.FAIL, domain, selector, f"no DKIM key record at {name}"[:300]
            )

        def dnsfunc(_name: bytes, timeout: float = 5) -> bytes:
            return record

        try:
            if len(checker.body) > OFF_LOOP:  # hashing a large body off the event loop
                ok = await asyncio.to_thread(checker.verify, idx, dnsfunc=dnsfunc)
            else:
                ok = checker.verify(idx, dnsfunc=dnsfunc)
        except dkim.DKIMException as exc:
            return DkimVerdict(DkimResult.FAIL, domain, selector, str(exc)[:300])
        except Exception as exc:  # a malformed key or signature dkimpy does not wrap
            return DkimVerdict(
                DkimResult.FAIL, domain, selector, f"{type(exc).__name__}: {exc}"[:300]
            )
        if not ok:
            return DkimVerdict(DkimResult.FAIL, domain, selector, "the signature does not verify")
        return DkimVerdict(DkimResult.PASS, domain, selector, None, aligned(domain, author))
