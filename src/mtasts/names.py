"""Domain names as MTA-STS compares them, and the ``mx`` patterns of a policy.

Every name inside mtasts is in one canonical form: IDNA 2008 A-labels, lower case, no
trailing dot (RFC 8461 §3.2 "MX patterns ... Punycode", RFC 6125 §6.4.1-§6.4.2).

Pure: no I/O.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import idna

from mtasts.errors import DomainNameError, PolicyError

# RFC 5321 §4.1.2:  sub-domain = Let-dig [Ldh-str];  Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_MAX_LABEL = 63  # RFC 1035 §2.3.4 (octets)
_MAX_NAME = 253  # RFC 1035 §2.3.4: 255 octets on the wire = 253 characters in text form
_ACE_PREFIX = "xn--"  # RFC 5890 §2.3.2.1


def _fail(text: str, why: str) -> DomainNameError:
    return DomainNameError(f"{text!r} is not a valid domain name: {why}")


def _check_a_label(text: str, label: str) -> None:
    """An ``xn--`` label must be a valid IDNA 2008 A-label in canonical form (RFC 5891 §5.4)."""
    try:
        if idna.alabel(idna.decode(label)).decode("ascii") != label:
            raise _fail(text, f"label {label!r} is not a canonical IDNA A-label")
    except idna.IDNAError as exc:
        raise _fail(text, f"label {label!r} is not a valid IDNA A-label ({exc})") from None


def _u_label_to_a_label(text: str, label: str) -> str:
    try:
        return idna.alabel(label).decode("ascii")
    except idna.IDNAError as exc:
        raise _fail(text, f"label {label!r} cannot be converted to an A-label ({exc})") from None


def normalize_domain(text: str) -> str:
    """Return ``text`` as lower-case A-labels without a trailing dot, or raise DomainNameError.

    U-labels are converted (RFC 6125 §6.4.2); upper case is folded (§6.4.1); one trailing
    dot (the DNS root) is dropped. Each label must be an RFC 5321 §4.1.2 ``sub-domain``
    (letters, digits, inner hyphens; no underscore), at most 63 octets; the name at most
    253. ``xn--`` labels must be valid IDNA 2008 A-labels.
    """
    name = text[:-1] if text.endswith(".") else text
    if not name:
        raise _fail(text, "it is empty")
    if not name.isascii():
        # UTS #46 mapping (non-transitional): folds case and maps ideographic full stops.
        try:
            name = idna.uts46_remap(name, std3_rules=True, transitional=False)
        except idna.IDNAError as exc:
            raise _fail(text, f"it has characters IDNA does not allow ({exc})") from None
    labels = name.split(".")
    out: list[str] = []
    for raw in labels:
        if not raw:
            raise _fail(text, "it has an empty label (two dots in a row, or a leading dot)")
        label = raw.lower() if raw.isascii() else _u_label_to_a_label(text, raw)
        if len(label) > _MAX_LABEL:
            raise _fail(text, f"label {label[:20]!r}... is longer than 63 characters")
        if not _LDH_LABEL.fullmatch(label):
            if label.startswith("-") or label.endswith("-"):
                why = f"label {label!r} starts or ends with a hyphen"
            else:
                why = f"label {label!r} may only hold letters, digits and hyphens"
            raise _fail(text, why)
        if label.startswith(_ACE_PREFIX):
            _check_a_label(text, label)
        out.append(label)
    result = ".".join(out)
    if len(result) > _MAX_NAME:
        raise _fail(text, "it is longer than 253 characters")
    return result


def _mx_error(text: str, why: str) -> PolicyError:
    return PolicyError(
        f"mx value {text!r} is not a valid MX pattern: {why}. Write a host name "
        "(mx1.example.com), or *.example.com for any one label in front of example.com",
        code="policy.mx.invalid",
    )


@dataclass(frozen=True, slots=True)
class MxPattern:
    """One ``mx`` value of a policy: a host name, or ``*.`` and a suffix (RFC 8461 §3.2, §4.1).

    ``domain`` is canonical (lower-case A-labels, no trailing dot); for a wildcard it is
    the part after ``*.``.
    """

    domain: str
    wildcard: bool = False

    def __post_init__(self) -> None:
        try:
            canonical = normalize_domain(self.domain)
        except DomainNameError as exc:
            raise _mx_error(self.domain, exc.message) from None
        if canonical != self.domain:
            raise _mx_error(self.domain, f"write it in canonical form as {canonical!r}")
        # RFC 8461 §3.2 requires an RFC 5321 Domain, which all-digit labels satisfy; but a
        # top-level label is never all digits (RFC 3696 §2), so such a value is an IP
        # address in disguise. Postfix would then demand an IP match (postfix-tlspol #70).
        # We reject it.
        if self.domain.rsplit(".", 1)[-1].isdigit():
            raise _mx_error(self.domain, "it looks like an IP address; mx takes host names")

    @classmethod
    def parse(cls, text: str) -> MxPattern:
        """Parse one ``mx`` value strictly by RFC 8461 §3.2 or raise PolicyError.

        ABNF: ``sts-policy-mx-value = ["*."] Domain`` (RFC 5321 §4.1.2). Upper case is
        accepted and folded. U-labels are refused (RFC 8461 §3.2: MUST be A-labels).
        RFC 5321 ``Domain`` has no trailing dot; we refuse ``mail.example.com.`` rather
        than strip it, as a linter must (checklist E-39). ``*.com`` is valid syntax
        (lint warns); ``*``, ``*.*.x``, ``a.*.x``, ``*x.y``, ``m*.x`` are not.
        """
        if not text:
            raise _mx_error(text, "it is empty")
        if not text.isascii():
            hint = ""
            with contextlib.suppress(DomainNameError):
                star = "*." if text.startswith("*.") else ""
                hint = f" (as A-labels: {star + normalize_domain(text.removeprefix('*.'))!r})"
            raise _mx_error(text, "international names must be written as A-labels" + hint)
        wildcard = text.startswith("*.")
        rest = text[2:] if wildcard else text
        if "*" in rest:
            raise _mx_error(text, "'*' is only allowed as the whole left-most label")
        if rest.endswith("."):
            raise _mx_error(text, "remove the trailing dot")
        try:
            domain = normalize_domain(rest)
        except DomainNameError as exc:
            raise _mx_error(text, exc.message) from None
        return cls(domain, wildcard)

    def __str__(self) -> str:
        return f"*.{self.domain}" if self.wildcard else self.domain

    def matches(self, host: str) -> bool:
        """Whether MX host name ``host`` matches this pattern (RFC 8461 §4.1).

        ``host`` may be in DNS form (upper case, trailing dot) or use U-labels. A wildcard
        matches exactly one extra left-most label: ``*.example.com`` matches
        ``mx.example.com`` but neither ``example.com`` nor ``a.b.example.com``.
        A host that is not a valid domain name matches nothing.
        """
        try:
            name = normalize_domain(host)
        except DomainNameError:
            return False
        if not self.wildcard:
            return name == self.domain
        first, _, suffix = name.partition(".")
        return bool(first) and suffix == self.domain
