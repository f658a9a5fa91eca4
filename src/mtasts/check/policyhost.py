"""Checks of the policy host ``mta-sts.<domain>`` and of the policy it serves.

RFC 8461 §3.3: HTTPS with a certificate valid for the policy host, status 200 with no
redirect followed, a complete policy within about a minute and 64 KB; §3.2: media type
``text/plain`` and the policy grammar (the model's ``lint_policy``).

Pure: no I/O, no clock (``now`` is an argument).
"""

from __future__ import annotations

from datetime import datetime

from mtasts.check.certs import check_tls
from mtasts.check.evidence import Lookup, PolicyResponse
from mtasts.check.finding import EvidenceValue, Finding, Severity
from mtasts.sts.policy import Policy, lint_policy

FETCH_RFC = "RFC 8461 §3.3"
POLICY_RFC = "RFC 8461 §3.2"
SLOW_SECONDS = 10.0  # senders are advised a 60 s budget; some (Postfix resolver) use 4 s
CACHE_WARN_SECONDS = 86400  # a CDN that keeps the policy longer delays every update
# Notices the policy linter emits as warnings that the checker reports as information:
# testing and none are legitimate, documented stages (RFC 8461 §5, §8.3), not faults a
# monitoring system should keep raising.
_INFORMATIONAL = frozenset({"policy.mode.testing", "policy.mode.none"})


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    kind, *params = value.split(";")
    parsed: dict[str, str] = {}
    for param in params:
        name, _, val = param.partition("=")
        parsed[name.strip().lower()] = val.strip().strip('"').lower()
    return kind.strip().lower(), parsed


def _fetch_failure(resp: PolicyResponse) -> Finding | None:
    if resp.address_outcome in (Lookup.NXDOMAIN, Lookup.NODATA):
        return Finding.of(
            "policy-host.dns",
            Severity.CRITICAL,
            f"{resp.host} has no address record: senders cannot fetch the policy. Publish "
            f"an A (and AAAA) record, or a CNAME, for {resp.host}.",
            FETCH_RFC,
            host=resp.host,
            outcome=resp.address_outcome.value,
        )
    if resp.address_outcome in (Lookup.TIMEOUT, Lookup.SERVFAIL):
        return Finding.of(
            "policy-host.dns-error",
            Severity.UNKNOWN,
            f"the address lookup of {resp.host} failed ({resp.address_outcome.value}); "
            "check the domain's name servers.",
            FETCH_RFC,
            host=resp.host,
        )
    if resp.error_kind == "tls" and resp.tls is not None:
        return None  # reported by check_tls
    if resp.error:
        fid = {"timeout": "policy-host.timeout", "http": "policy-host.http"}.get(
            resp.error_kind, "policy-host.connect"
        )
        return Finding.of(
            fid,
            Severity.CRITICAL,
            f"fetching {resp.url} failed: {resp.error}",
            FETCH_RFC,
            url=resp.url,
            addresses=resp.addresses,
            error=resp.error,
        )
    return None


def check_policy_response(
    resp: PolicyResponse, now: datetime
) -> tuple[list[Finding], Policy | None]:
    """All policy-host findings, and the policy when one valid policy was served."""
    failure = _fetch_failure(resp)
    if failure is not None:
        return [failure], None
    out: list[Finding] = []
    if resp.tls is not None:
        out += check_tls(resp.tls, resp.host, now, area="policy-host", rfc=FETCH_RFC)
        if resp.error_kind == "tls":
            return out, None
    base: dict[str, EvidenceValue] = {"url": resp.url, "status": resp.status}
    if 300 <= resp.status < 400:
        location = ", ".join(resp.header_values("location")) or "(no Location)"
        out.append(
            Finding.of(
                "policy-host.redirect",
                Severity.CRITICAL,
                f"{resp.url} answers {resp.status} redirecting to {location}; senders never "
                "follow redirects. Serve the policy itself at this URL.",
                FETCH_RFC,
                location=location,
                **base,
            )
        )
        return out, None
    if resp.status != 200:
        out.append(
            Finding.of(
                "policy-host.status",
                Severity.CRITICAL,
                f"{resp.url} answers HTTP {resp.status}; senders only accept 200.",
                FETCH_RFC,
                **base,
            )
        )
        return out, None
    out += _check_headers(resp)
    if resp.truncated:
        out.append(
            Finding.of(
                "policy-host.size",
                Severity.CRITICAL,
                f"{resp.url} sends more than {len(resp.body)} bytes; senders stop reading at "
                "64 KB. A policy is a few lines.",
                FETCH_RFC,
                received=len(resp.body),
                **base,
            )
        )
        return out, None
    if resp.elapsed > SLOW_SECONDS:
        out.append(
            Finding.of(
                "policy-host.slow",
                Severity.WARNING,
                f"{resp.url} took {resp.elapsed:.1f} s; some senders give up after 4 s.",
                FETCH_RFC,
                seconds=round(resp.elapsed, 1),
                **base,
            )
        )
    findings, policy = check_policy_text(resp.body)
    return out + findings, policy


def _check_headers(resp: PolicyResponse) -> list[Finding]:
    out: list[Finding] = []
    types = resp.header_values("content-type")
    if len(types) != 1 or _media_type(types[0])[0] != "text/plain":
        shown = " and ".join(types) if types else "none"
        out.append(
            Finding.of(
                "policy-host.content-type",
                Severity.CRITICAL,
                f"{resp.url} is served with Content-Type {shown}; senders (Postfix's resolver "
                "among them) reject anything but one text/plain. Configure "
                "'Content-Type: text/plain; charset=utf-8'.",
                POLICY_RFC,
                content_type=types,
            )
        )
    else:
        charset = _media_type(types[0])[1].get("charset")
        if charset not in (None, "utf-8", "us-ascii"):
            out.append(
                Finding.of(
                    "policy-host.charset",
                    Severity.WARNING,
                    f"charset={charset} is ignored by senders, who read the policy as UTF-8; "
                    "use charset=utf-8.",
                    POLICY_RFC,
                    content_type=types,
                )
            )
    for value in resp.header_values("cache-control"):
        for directive in value.split(","):
            name, _, arg = directive.strip().partition("=")
            stale = arg.isdigit() and int(arg) > CACHE_WARN_SECONDS
            if name.lower() in ("max-age", "s-maxage") and stale:
                out.append(
                    Finding.of(
                        "policy-host.caching",
                        Severity.WARNING,
                        f"Cache-Control {value!r} lets a proxy or CDN serve an old policy "
                        "for over a day after you change it; RFC 8461 §8.2 suggests "
                        "max-age=60.",
                        "RFC 8461 §8.2",
                        cache_control=value,
                    )
                )
                return out
    return out


def check_policy_text(body: bytes) -> tuple[list[Finding], Policy | None]:
    """The policy grammar (RFC 8461 §3.2) on the served bytes."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [
            Finding.of(
                "policy.encoding",
                Severity.CRITICAL,
                f"the policy is not UTF-8 text (byte {exc.start}); save it as plain UTF-8.",
                POLICY_RFC,
                body=body[:200].decode("latin-1"),
            )
        ], None
    linted = lint_policy(text)
    shown = text[:2000]
    out = [
        Finding.of(n.code, Severity.CRITICAL, n.message, n.rfc, policy=shown) for n in linted.errors
    ]
    for notice in linted.warnings:
        severity = Severity.OK if notice.code in _INFORMATIONAL else Severity.WARNING
        out.append(Finding.of(notice.code, severity, notice.message, notice.rfc, policy=shown))
    if linted.valid and linted.value is not None:
        policy = linted.value
        out.append(
            Finding.of(
                "policy.valid",
                Severity.OK,
                f"the policy is valid: mode {policy.mode.value}, max_age {policy.max_age}, "
                f"mx {', '.join(str(p) for p in policy.mx) or '(none)'}",
                POLICY_RFC,
                policy=shown,
            )
        )
        return out, policy
    return out, None
