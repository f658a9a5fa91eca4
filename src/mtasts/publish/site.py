"""The policy host's behaviour as a pure function: request line + Host -> response.

RFC 8461 §3.2/§3.3: a sender fetches ``https://mta-sts.<domain>/.well-known/mta-sts.txt``,
wants status 200 and media type ``text/plain``, follows no redirect and uses no HTTP
caching. So this site never redirects, answers 404 for a host or path it does not serve,
and labels the policy ``text/plain; charset=utf-8``.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mtasts.errors import ConfigError
from mtasts.rfcnames import WELL_KNOWN_PATH, domain_of_policy_host
from mtasts.sts.policy import lint_policy

# RFC 8461 §3.2: media type text/plain; charset utf-8 is the one the RFC names besides ascii.
CONTENT_TYPE = "text/plain; charset=utf-8"
# RFC 8461 §8.2 suggests max-age=60 for reverse proxies in front of multi-domain endpoints;
# senders ignore HTTP caching (§3.3), so this only bounds how stale a proxy/CDN copy can be.
CACHE_CONTROL = "max-age=60"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Site:
    """The policies served, keyed by Policy Domain (A-label, lower case, no trailing dot)."""

    policies: Mapping[str, bytes] = field(default_factory=dict)


def check_policy_file(data: bytes, source: str) -> None:
    """Refuse a policy file that does not lint (RFC 8461 §3.2, read strictly).

    Raises :class:`ConfigError` naming ``source``, the first error and its code, so the
    policy host refuses to start, or keeps its old policies on reload, rather than serve
    a file senders would reject (they then act as if there were no policy). Warnings
    (e.g. a short ``max_age``) do not refuse the file: ``mtasts lint policy`` shows them.
    """
    # We publish, so we read strictly: a sender's tolerance (trailing blank lines, ...)
    # is no reason to serve a file the RFC does not allow.
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source} is not a valid MTA-STS policy: byte {exc.start} is not UTF-8 text "
            "[policy.encoding]",
            code="serve.policy-invalid",
            rfc="RFC 8461 §3.2",
        ) from None
    linted = lint_policy(text)
    if not linted.errors:
        return
    first = linted.errors[0]
    more = len(linted.errors) - 1
    also = f"; {more} more problem(s): run `mtasts lint policy {source}`" if more else ""
    raise ConfigError(
        f"{source} is not a valid MTA-STS policy: {first.message} [{first.code}]{also}",
        code="serve.policy-invalid",
        rfc=first.rfc or "RFC 8461 §3.2",
    )


def policy_domain_of_host(host_header: str) -> str | None:
    """``Host: MTA-STS.Example.com.:8443`` -> ``example.com``; None when not a policy host."""
    host = host_header.strip().lower()
    if host.startswith("["):  # an IPv6 literal is never a policy host
        return None
    host = host.rsplit(":", 1)[0] if ":" in host else host
    host = host.rstrip(".")
    return domain_of_policy_host(host)


def _plain(
    status: int, reason: str, text: str, extra: tuple[tuple[str, str], ...] = ()
) -> Response:
    body = text.encode()
    headers = (
        ("Content-Type", CONTENT_TYPE),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        *extra,
    )
    return Response(status, reason, headers, body)


def respond(site: Site, method: str, target: str, host_header: str | None) -> Response:
    """Answer one request. HEAD gets the GET headers with an empty body."""
    if method not in ("GET", "HEAD"):
        return _plain(405, "Method Not Allowed", "only GET and HEAD\n", (("Allow", "GET, HEAD"),))
    path = target.split("?", 1)[0]
    domain = policy_domain_of_host(host_header) if host_header else None
    if path != WELL_KNOWN_PATH or domain is None or domain not in site.policies:
        return _plain(404, "Not Found", "no MTA-STS policy here\n")
    body = site.policies[domain]
    headers = (
        ("Content-Type", CONTENT_TYPE),
        ("Content-Length", str(len(body))),
        ("Cache-Control", CACHE_CONTROL),
        ("X-Content-Type-Options", "nosniff"),
    )
    return Response(200, "OK", headers, b"" if method == "HEAD" else body)


def render(response: Response) -> bytes:
    """The HTTP/1.1 wire form; every response closes the connection."""
    lines = [f"HTTP/1.1 {response.status} {response.reason}"]
    lines += [f"{k}: {v}" for k, v in response.headers]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body
