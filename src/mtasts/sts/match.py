"""Does a certificate name the host? RFC 8461 §3.3 and §4.2 on top of RFC 6125 §6.4.

MTA-STS narrows RFC 6125 (see checklist IMP-6125-a..f, E-49):

- only DNS-IDs (SAN dNSName) count; the CN is never consulted, so callers pass SANs;
- names compare case-insensitively, as A-labels, ignoring one trailing dot;
- ``*`` is allowed only as the complete left-most label and matches exactly one label.
  RFC 6125 §6.4.3 lets clients match partial-label wildcards (``m*.example.com``);
  RFC 8461 §3.3 forbids them for the policy host and §4.2 defers to RFC 6125 for the MX.
  We reject them for both, as RFC 9525 (which obsoletes RFC 6125) does;
- a wildcard over a single label (``*.com``) matches nothing: no CA may issue one and
  RFC 8461 §3.3 names it as invalid for the policy host.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtasts.errors import DomainNameError
from mtasts.names import normalize_domain


def _canonical(name: str) -> str | None:
    try:
        return normalize_domain(name)
    except DomainNameError:
        return None


def _dns_name_matches(host: str, dns_name: str) -> bool:
    """Whether one presented DNS-ID ``dns_name`` names the canonical ``host``."""
    # SAN dNSName is an IA5String (RFC 5280 §4.2.1.6); anything else is not a DNS-ID.
    if not dns_name.isascii():
        return False
    if dns_name.startswith("*."):
        suffix = _canonical(dns_name[2:])
        if suffix is None or "." not in suffix:
            return False
        first, _, rest = host.partition(".")
        return bool(first) and rest == suffix
    return "*" not in dns_name and _canonical(dns_name) == host


def certificate_matches(host: str, dns_names: Sequence[str]) -> bool:
    """Whether a certificate with SAN DNS-IDs ``dns_names`` is valid for ``host``.

    ``host`` is the MX host name (or the policy host ``mta-sts.<domain>``) as found in
    DNS: any case, optional trailing dot, U-labels allowed. An invalid ``host`` or an
    empty list matches nothing. ``*.example.com`` matches ``mx.example.com`` but neither
    ``example.com`` nor ``a.b.example.com``.
    """
    canonical = _canonical(host)
    if canonical is None:
        return False
    return any(_dns_name_matches(canonical, name) for name in dns_names)
