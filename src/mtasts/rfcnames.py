"""The fixed names and limits of MTA-STS (RFC 8461) and SMTP TLS Reporting (RFC 8460).

One place for the DNS labels, the policy host, the well-known path and the 64 KiB policy
cap, so that the resolver, the checker, the policy host, the generator, the ACME manager,
the report sender and the lab cannot drift apart. ``domain`` arguments are Policy Domains
in canonical form (:func:`mtasts.names.normalize_domain`); nothing here validates them.

Pure: no I/O.
"""

from __future__ import annotations

#: RFC 8461 §3.1: the TXT record lives at ``_mta-sts.<Policy Domain>``.
STS_RECORD_PREFIX = "_mta-sts."

#: RFC 8461 §3.2: the Policy Host is ``mta-sts.<Policy Domain>``.
POLICY_HOST_PREFIX = "mta-sts."

#: RFC 8461 §3.2 (a well-known URI, RFC 8615): the path of the policy file.
WELL_KNOWN_PATH = "/.well-known/mta-sts.txt"

#: RFC 8461 §3.3: senders MAY cap the policy body (suggested 64 KB, read as 64 KiB);
#: policy hosts SHOULD stay within it.
MAX_POLICY_BYTES = 64 * 1024

#: RFC 8460 §3: the TLS-RPT TXT record lives at ``_smtp._tls.<Policy Domain>``.
TLSRPT_RECORD_PREFIX = "_smtp._tls."


def sts_record_name(domain: str) -> str:
    """``example.com`` -> ``_mta-sts.example.com`` (RFC 8461 §3.1)."""
    return STS_RECORD_PREFIX + domain


def policy_host(domain: str) -> str:
    """``example.com`` -> ``mta-sts.example.com`` (RFC 8461 §3.2)."""
    return POLICY_HOST_PREFIX + domain


def policy_url(domain: str) -> str:
    """``example.com`` -> ``https://mta-sts.example.com/.well-known/mta-sts.txt`` (§3.2)."""
    return f"https://{policy_host(domain)}{WELL_KNOWN_PATH}"


def tlsrpt_record_name(domain: str) -> str:
    """``example.com`` -> ``_smtp._tls.example.com`` (RFC 8460 §3)."""
    return TLSRPT_RECORD_PREFIX + domain


def domain_of_policy_host(name: str) -> str | None:
    """``mta-sts.example.com`` -> ``example.com``; None when ``name`` is no policy host.

    The inverse of :func:`policy_host` (RFC 8461 §3.2). ``name`` is compared as given:
    callers fold case and drop a trailing dot first.
    """
    if not name.startswith(POLICY_HOST_PREFIX):
        return None
    return name[len(POLICY_HOST_PREFIX) :] or None
