"""Postfix socketmap requests and the TLS policy replies we give (pure: request -> reply).

Protocol (Postfix socketmap_table(5)): the client sends the netstring
``<name> <key>``; the server answers one netstring ``<status> <data>`` where status is
``OK`` (data = the table value), ``NOTFOUND`` (data empty), ``TEMP``/``TIMEOUT``/``PERM``
(data = a reason). For ``smtp_tls_policy_maps`` the key is the next-hop destination and
the value a TLS policy: a security level followed by ``name=value`` attributes
(postconf(5) smtp_tls_policy_maps; TLSRPT_README for the Postfix 3.10 attributes).

Nothing that came from the network (the key, or a policy's ``mx`` values, or its lines)
reaches Postfix unless it passed a check here that it cannot add attributes: host names
are re-validated as lower-case LDH names, a policy line that Postfix would not carry
verbatim is percent-encoded (:func:`encode_policy_line`), and the reason of an error
reply is ours, never the peer's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mtasts.errors import DomainNameError, MtastsError
from mtasts.names import MxPattern, normalize_domain
from mtasts.postfix.mxpolicy import SAFE_HOST, MxSet, exact_match_names
from mtasts.postfix.netstring import encode
from mtasts.settings.schema import setting
from mtasts.sts.lookup import LookupStatus
from mtasts.sts.policy import Mode
from mtasts.tlsrpt.policyline import encode_policy_line


class SocketmapError(MtastsError):
    """A request that is framed correctly but is not ``<name> <key>``."""

    default_code = "socketmap.request"
    default_rfc = "socketmap_table(5)"


class Status(StrEnum):
    """The reply status words of socketmap_table(5)."""

    OK = "OK"
    NOTFOUND = "NOTFOUND"
    TEMP = "TEMP"
    TIMEOUT = "TIMEOUT"
    PERM = "PERM"


class DaneLevel(StrEnum):
    """What to answer instead of ``secure`` when the MX hosts have DNSSEC-validated TLSA.

    Only ``dane-only``: Postfix's ``dane`` level falls back to opportunistic TLS (or
    clear text) for MX hosts without usable TLSA, weaker than the ``secure`` it would
    replace (RFC 8461 §2 lets DANE win, not lose the protection MTA-STS gave).
    """

    DANE_ONLY = "dane-only"  # Postfix must use DANE; MX hosts without usable TLSA fail

    @classmethod
    def _missing_(cls, value: object) -> DaneLevel:
        if value == "dane":
            raise ValueError(
                "dane_level 'dane' lets Postfix fall back to unauthenticated or clear-text "
                "TLS for MX hosts without usable TLSA, weaker than the MTA-STS policy it "
                "replaces (RFC 8461 §2); the daemon answers 'dane-only': remove the setting"
            )
        raise ValueError(f"dane_level must be 'dane-only', not {value!r}")


# --- structural views of what the resolver returns (mtasts.sts.lookup / .policy) ----------


class PolicyLike(Protocol):
    @property
    def mode(self) -> Mode: ...
    @property
    def mx(self) -> Sequence[MxPattern]: ...
    @property
    def raw_lines(self) -> Sequence[str]: ...


class LookupLike(Protocol):
    @property
    def domain(self) -> str: ...
    @property
    def status(self) -> LookupStatus: ...
    @property
    def policy(self) -> PolicyLike | None: ...


# --- requests ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One socketmap query: the map ``name`` (last field of the map spec) and the ``key``."""

    name: str
    key: str


def parse_request(payload: bytes) -> Request:
    """Split a netstring payload ``<name> <key>`` (socketmap_table(5) "Protocol")."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise SocketmapError("socketmap request is not UTF-8") from None
    name, sep, key = text.partition(" ")
    if not sep or not name or not key:
        raise SocketmapError(
            f"socketmap request {text[:64]!r} is not '<name> <key>'; "
            "point smtp_tls_policy_maps at socketmap:inet:HOST:PORT:NAME"
        )
    return Request(name, key)


def format_request(request: Request) -> bytes:
    """Inverse of :func:`parse_request`, framed: what Postfix sends."""
    return encode(f"{request.name} {request.key}".encode())


def policy_domain_for_key(key: str) -> str | None:
    """The Policy Domain to look up for a next-hop key, or ``None`` for "no policy".

    - ``.example.com``: Postfix's parent-domain walk after a NOTFOUND; RFC 8461 §3.4
      forbids applying a parent's policy to a subdomain, so never.
    - ``[host]``, ``[host]:port``, ``[192.0.2.1]``: a bracketed next hop has no MX lookup,
      so it has no Policy Domain (RFC 8461 §3.4 covers address literals; for a bracketed
      host name it is silent: we answer no policy, as an operator who pinned the host
      has chosen its TLS level in Postfix).
    - ``example.com:587``: an unbracketed next hop with a port still gets its MX looked
      up; the domain is ``example.com``.
    - an IP address: no policy. Keys arrive in the recipient's case (Postfix does not
      fold them): ``Example.COM`` is ``example.com``.
    """
    key = key.strip()
    if not key or key.startswith(".") or key.startswith("["):
        return None
    host = key
    if host.count(":") == 1:
        host, _, port = host.partition(":")
        if not (port.isascii() and port.isdigit()):
            return None
    # an all-digit last label is an IPv4 address (no top-level domain is all digits,
    # RFC 3696 §2), in DNS form too ("192.0.2.1."); an IPv6 address has ':' and fails
    # the name check below
    if host.removesuffix(".").rpartition(".")[2].isdigit():
        return None
    try:
        return normalize_domain(host)
    except DomainNameError:
        return None


# --- replies ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    status: Status
    data: str = ""

    def encode(self) -> bytes:
        """The netstring Postfix reads; ``NOTFOUND`` keeps its trailing space."""
        return encode(f"{self.status} {self.data}".encode())


NOTFOUND = Reply(Status.NOTFOUND)
#: the longest reply payload Postfix reads (dict_sockmap.c DEF_MAX_REPLY, socketmap_table(5))
MAX_REPLY = 100_000


@dataclass(frozen=True, slots=True)
class ReplyOptions:
    """Per-zone rendering switches (a zone = one socketmap name: the last field of the
    map spec, socketmap:inet:127.0.0.1:8461:NAME)."""

    servername: bool = setting(
        True, doc="servername=hostname (Postfix >= 3.4); false for older Postfix"
    )
    tlsrpt: bool = setting(
        False, doc="Postfix 3.10 TLSRPT attributes (needed by 3.10.5's MX check)"
    )
    strict_testing: bool = setting(
        False, doc="enforce 'testing' policies too (not RFC 8461 §5: for test zones)"
    )
    dane_level: DaneLevel = setting(
        DaneLevel.DANE_ONLY, doc="what DANE-capable MX hosts get; only dane-only"
    )
    #: render ``*.d`` as Postfix's ``.d`` (any depth) instead of the exact names of the
    #: current MX hosts; an explicit opt-in (docs/postfix.md "Wildcards")
    match_patterns: bool = setting(
        False, doc="render '*.d' as Postfix's '.d' (any depth) instead of exact MX names"
    )
    #: ``protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1`` for Postfix < 3.6, which does not
    #: know ``>=TLSv1.2``; implied by ``servername = false`` (Postfix < 3.4)
    legacy_protocols: bool = setting(
        False, doc="protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1 for Postfix < 3.6"
    )

    @property
    def protocols(self) -> str:
        """The ``protocols=`` attribute every secure and DANE answer carries."""
        if self.legacy_protocols or not self.servername:
            return LEGACY_PROTOCOLS
        return PROTOCOLS


#: TLS 1.2 or later, whatever OpenSSL's build defaults allow (RFC 8461 §4.2 requires TLS
#: 1.2 or later, RFC 8996 deprecates 1.0/1.1); Postfix >= 3.6 syntax
PROTOCOLS = "protocols=>=TLSv1.2"
LEGACY_PROTOCOLS = "protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1"

_SAFE_HOST = SAFE_HOST


def match_item(pattern: MxPattern) -> str:
    """The ``match=`` item for one ``mx`` pattern in the pattern rendering.

    RFC 8461 §4.1: ``*.example.com`` matches exactly one left-most label. Postfix's
    ``match=.example.com`` matches a certificate name in any subdomain of example.com, of
    any depth (tls_verify.c), and a Postfix TLS policy cannot say "exactly one label".
    So this rendering is used only where Postfix checks the MX *host* itself (>= 3.10.5,
    from the ``mx_host_pattern`` attributes, tlsrpt on) or by explicit opt-in
    (``match_patterns``); the default is :func:`mtasts.postfix.mxpolicy.exact_match_names`.
    """
    host = pattern.domain
    if not _SAFE_HOST.fullmatch(host) or len(host) > 253:
        raise SocketmapError(f"mx pattern {str(pattern)!r} is not a host name Postfix can match")
    return "." + host if pattern.wildcard else host


def enforced(lookup: LookupLike, options: ReplyOptions) -> bool:
    """Whether Postfix must get ``secure`` (or ``dane-only``) for this lookup: a policy
    applies and its mode is ``enforce``, or ``testing`` with ``strict_testing`` (RFC 8461
    §5: a testing policy never makes delivery fail, unless the operator asked)."""
    policy = lookup.policy
    if lookup.status is not LookupStatus.STS or policy is None:
        return False
    return policy.mode is Mode.ENFORCE or (policy.mode is Mode.TESTING and options.strict_testing)


def render(
    lookup: LookupLike,
    options: ReplyOptions = ReplyOptions(),
    *,
    dane: bool = False,
    mx: MxSet | None = None,
) -> Reply:
    """The reply for one lookup.

    - status ``undetermined`` (nothing known, DNS failed): ``TEMP``; Postfix defers and
      retries, which is safer than downgrading a domain whose policy we could not read.
    - an ``enforce`` policy (or ``testing`` with ``strict_testing``): ``OK secure
      match=... [servername=hostname] protocols=... [TLSRPT attributes]``, or ``dane-only
      protocols=...`` when ``dane`` says an MX host publishes usable DNSSEC-validated
      TLSA (RFC 8461 §2: MTA-STS must not override DANE). ``match=`` holds the exact
      names of the current MX hosts ``mx`` (default: ``lookup.current_mx`` when the
      source attached it) that the policy names, plus its exact names.
    - anything else (testing, none, no policy, failed fetch with nothing cached; RFC 8461
      §5 and §3.3): ``NOTFOUND``, so Postfix applies its own default level.
    """
    if lookup.status is LookupStatus.UNDETERMINED:
        return Reply(Status.TEMP, "MTA-STS policy could not be determined; try again later")
    policy = lookup.policy
    if policy is None or not enforced(lookup, options):
        return NOTFOUND
    if dane:
        return Reply(Status.OK, f"{DaneLevel.DANE_ONLY} {options.protocols}")
    exact: Sequence[str] | None = None
    if mx is None:
        mx = getattr(lookup, "current_mx", None)
        exact = getattr(lookup, "exact_names", None)  # computed by the source already
    return _secure(lookup.domain, policy, options, mx, exact)


def match_names(
    policy: PolicyLike,
    options: ReplyOptions,
    mx: MxSet | None,
    exact: Sequence[str] | None = None,
) -> Sequence[str]:
    """The ``match=`` items: patterns (tlsrpt, or opted in) or exact names (default)."""
    if options.tlsrpt or options.match_patterns:
        return list(dict.fromkeys(match_item(p) for p in policy.mx))
    if exact is not None:
        return exact
    return exact_match_names(policy.mx, mx)[0]


def _secure(
    domain: str,
    policy: PolicyLike,
    options: ReplyOptions,
    mx: MxSet | None,
    exact: Sequence[str] | None = None,
) -> Reply:
    if not policy.mx:  # an enforce policy needs mx (RFC 8461 §3.2); never send "match="
        return Reply(Status.TEMP, "MTA-STS enforce policy without mx patterns")
    try:
        items = match_names(policy, options, mx, exact)
    except SocketmapError as exc:
        return Reply(Status.TEMP, f"unusable MTA-STS policy for this domain ({exc.code})")
    parts = ["secure", "match=" + ":".join(items)]
    if options.servername:
        parts.append("servername=hostname")
    parts.append(options.protocols)
    data = " ".join(parts)
    if len(data.encode()) > MAX_REPLY - 3:  # cannot happen under the 64 KiB policy cap
        return Reply(Status.TEMP, "MTA-STS policy has more mx patterns than Postfix can read")
    if options.tlsrpt:
        # Postfix reads at most MAX_REPLY bytes and defers the mail on a longer reply. A
        # valid policy (64 KiB) can exceed it with its lines repeated as attributes: drop
        # the policy_string items (report text) first, then all TLSRPT attributes (the
        # answer of Postfix < 3.10.5: the certificate is still held to match=).
        attributes = tlsrpt_attributes(domain, policy)
        room = MAX_REPLY - len(f"{Status.OK} {data}".encode())
        for candidate in (attributes, [a for a in attributes if not a.startswith("{")]):
            extra = " " + " ".join(candidate)
            if len(extra.encode()) <= room:
                return Reply(Status.OK, data + extra)
    return Reply(Status.OK, data)


def tlsrpt_attributes(domain: str, policy: PolicyLike) -> list[str]:
    """Postfix 3.10 TLSRPT attributes for an STS policy (TLSRPT_README, "MTA-STS Support").

    ``policy_string`` items are the policy's own lines (RFC 8460 §4.4: "the string
    representation of the policy"), not a re-rendering, every one of them: a line
    Postfix would not pass on verbatim is sent encoded (:func:`encode_policy_line`).
    """
    safe_domain = domain if _SAFE_HOST.fullmatch(domain) else None
    out = ["policy_type=sts"]
    if safe_domain:
        out.append(f"policy_domain={safe_domain}")
    for pattern in policy.mx:
        if _SAFE_HOST.fullmatch(pattern.domain):
            out.append(f"mx_host_pattern={pattern}")
    for line in policy.raw_lines:
        if line.strip():  # a blank line is no policy field (RFC 8461 §3.2)
            out.append(f"{{ policy_string = {encode_policy_line(line)} }}")
    return out
