"""The MTA-STS policy file ``/.well-known/mta-sts.txt`` (RFC 8461 §3.2): parse, lint, format.

Grammar (RFC 8461 §3.2 with erratum 6253; ``%s`` = case-sensitive)::

    sts-policy-record      = sts-policy-field *WSP
                             *(sts-policy-term sts-policy-field *WSP) [sts-policy-term]
    sts-policy-field       = sts-policy-version / sts-policy-mode / sts-policy-max-age
                           / sts-policy-mx / sts-policy-extension
    sts-policy-field-delim = ":" *WSP
    sts-policy-version     = %s"version" sts-policy-field-delim %s"STSv1"
    sts-policy-mode        = %s"mode" sts-policy-field-delim
                             (%s"testing" / %s"enforce" / %s"none")
    sts-policy-mx          = %s"mx" sts-policy-field-delim ["*."] Domain
    sts-policy-max-age     = %s"max_age" sts-policy-field-delim 1*10DIGIT
    sts-policy-extension   = sts-policy-ext-name sts-policy-field-delim sts-policy-ext-value
    sts-policy-ext-name    = sts-policy-alphanum *31(sts-policy-alphanum / "_" / "-" / ".")
    sts-policy-term        = LF / CRLF
    sts-policy-ext-value   = sts-policy-vchar [*(%x20 / sts-policy-vchar) sts-policy-vchar]
    sts-policy-vchar       = %x21-7E / UTF8-2 / UTF8-3 / UTF8-4

Decisions where the RFC leaves room (checklist §8 items 2-4, E-27..E-39):

- Strict, as the grammar says: blank lines (also trailing ones), ``#`` comment lines, a
  UTF-8 BOM, leading whitespace, whitespace before ``:``, a bare CR and a trailing dot
  in ``mx`` are errors. Trailing whitespace, a missing final newline and a mix of LF and
  CRLF are allowed (lint warns about the first and last).
- Duplicates (§3.2, SHALL): for every field but ``mx`` the first occurrence counts, valid
  or not; later ones are ignored with a warning, but must still be well-formed fields.
  So ``mode: enforce`` then ``mode: bogus`` is enforce; ``mode: bogus`` then
  ``mode: enforce`` is invalid (E-35). Every ``mx`` line counts.
- ``max_age`` above 31557600 is capped to 31557600 with a warning (erratum 7282, E-38).

Two readings (issue 16, "fail safe, not fail open"): :func:`lint_policy` and
:func:`parse_policy` are strict, for ``lint`` and ``check``. :func:`read_policy` is the
sender's reading: a sender that drops an enforce policy over a harmless deviation
downgrades the domain to opportunistic TLS, so it accepts the deviations below, which
peers accept and whose acceptance cannot widen what the policy allows, and returns each
as a warning (``Policy.repairs``, like the TLS-RPT reader's repairs):

- blank lines (also whitespace-only ones), anywhere, and ``#`` comment lines: skipped;
  they carry no field, so skipping them changes no value;
- an ``mx`` value ending in the root dot: the same name without it;
- an ``mx`` value whose last label is all digits (``192.0.2.1``): a valid RFC 5321
  Domain that no MX host name can be, so it is kept in ``Policy.unmatchable_mx`` and
  matches nothing (never an IP address); an enforce policy of only such values defers
  every MX rather than falling back to no policy.

Everything else stays an error in both readings (docs/coverage/sts-model.md, decision
11, says why for each).

Pure: no I/O.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from enum import StrEnum

from mtasts.errors import DomainNameError, Linted, Notice, PolicyError
from mtasts.names import MxPattern, normalize_domain

VERSION = "STSv1"
MAX_AGE_LIMIT = 31557600  # RFC 8461 §3.2: "maximum value of 31557600" (one year)
# RFC 8461 §3.2: max_age is "expected ... to be in the range of weeks or greater".
MAX_AGE_RECOMMENDED = 604800
_RFC = "RFC 8461 §3.2"
_WSP = " \t"
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_MAX_AGE = re.compile(r"[0-9]{1,10}")
_KNOWN = ("version", "mode", "max_age", "mx")


class Mode(StrEnum):
    """The policy mode (RFC 8461 §5)."""

    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


_MODES = {m.value: m for m in Mode}


@dataclass(frozen=True, slots=True)
class Policy:
    """A valid STSv1 policy. ``raw_lines`` are the lines as served (for TLS-RPT).

    ``unmatchable_mx`` holds ``mx`` values a sender accepted (:func:`read_policy`) that no
    MX host name can match (an all-digit last label); ``repairs`` says what the sender's
    reading tolerated. Both are empty for a policy that strictly follows RFC 8461 §3.2.
    """

    mode: Mode
    mx: tuple[MxPattern, ...]
    max_age: int
    extensions: tuple[tuple[str, str], ...] = ()
    version: str = VERSION
    raw_lines: tuple[str, ...] = field(default=(), compare=False)
    unmatchable_mx: tuple[str, ...] = ()
    repairs: tuple[Notice, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.version != VERSION:
            raise PolicyError(_version_message(self.version), code="policy.version.invalid")
        if not isinstance(self.mode, Mode):
            raise PolicyError(_mode_message(str(self.mode)), code="policy.mode.invalid")
        if type(self.max_age) is not int or not 0 <= self.max_age <= MAX_AGE_LIMIT:
            raise PolicyError(
                f"max_age {self.max_age!r} is not 0 to {MAX_AGE_LIMIT}",
                code="policy.max_age.invalid",
            )
        if not all(isinstance(p, MxPattern) for p in self.mx):
            raise PolicyError("mx must hold MxPattern values", code="policy.mx.invalid")
        if not all(isinstance(v, str) for v in self.unmatchable_mx):
            raise PolicyError("unmatchable_mx must hold strings", code="policy.mx.invalid")
        if self.mode is not Mode.NONE and not self.mx and not self.unmatchable_mx:
            raise PolicyError(_MX_MISSING, code="policy.mx.missing")
        names = [name for name, _ in self.extensions]
        for name, value in self.extensions:
            problem = _extension_problem(name, value)
            if problem is None and (name in _KNOWN or names.count(name) > 1):
                problem = f"extension name {name!r} is reserved or repeated"
            if problem is not None:
                raise PolicyError(problem, code="policy.extension.invalid")

    def matches_mx(self, host: str) -> bool:
        """Whether MX host ``host`` matches one of the ``mx`` patterns (RFC 8461 §4.1).

        ``unmatchable_mx`` values match nothing.
        """
        return any(pattern.matches(host) for pattern in self.mx)


_MX_MISSING = (
    "the policy has no mx line: list every MX host (one 'mx:' line each) unless mode is none"
)


def _version_message(value: str) -> str:
    return f"version {value!r} is not supported: write 'version: STSv1' (case-sensitive)"


def _mode_message(value: str) -> str:
    return f"mode {value!r} is not valid: write enforce, testing or none (lower case)"


def _extension_problem(name: str, value: str) -> str | None:
    """Why ``name: value`` is not a well-formed sts-policy-extension, or None."""
    if not _KEY.fullmatch(name):
        return f"{name!r} is not a valid field name (letters, digits, '_', '-', '.'; max 32)"
    if not value:
        return f"field {name!r} has an empty value"
    if value[0] == " " or value[-1] == " ":
        return f"the value of {name!r} starts or ends with a space"
    for char in value:
        code = ord(char)
        if not (
            char == " " or 0x21 <= code <= 0x7E or (code >= 0x80 and not 0xD800 <= code < 0xE000)
        ):
            return f"the value of {name!r} contains the control character {char!r}"
    return None


def _split_lines(text: str) -> tuple[list[str], set[str]]:
    """Lines without terminators (LF or CRLF; the final one optional), and the kinds seen."""
    pieces = text.split("\n")
    last = pieces.pop()  # what follows the final LF: "" when the file ends with one
    lines: list[str] = []
    kinds: set[str] = set()
    for piece in pieces:
        crlf = piece.endswith("\r")
        lines.append(piece[:-1] if crlf else piece)
        kinds.add("CRLF" if crlf else "LF")
    if last:
        lines.append(last)
    return lines, kinds


def _hint_bad_key(line: str, key: str, colon: bool) -> str:
    """Name what is wrong with a line that is not ``key: value``."""
    if line[:1] in _WSP:
        return "starts with whitespace: remove it"
    if line.startswith("#"):
        return "is a comment: policy files cannot hold comments"
    if not colon:
        return "is not of the form 'key: value'"
    if key.rstrip(_WSP) != key:
        return "has whitespace before ':': write 'key: value'"
    return f"does not start with a valid key ({key[:40]!r})"


def lint_policy(text: str, *, tolerant: bool = False) -> Linted[Policy]:
    """Check a policy file's text against RFC 8461 §3.2 and report every problem; never raises.

    ``tolerant`` is the sender's reading (:func:`read_policy`): the deviations listed in
    the module's docstring become warnings, also kept in ``Policy.repairs``.
    """
    errors: list[Notice] = []
    warnings: list[Notice] = []
    repairs: list[Notice] = []

    def error(code: str, message: str) -> None:
        errors.append(Notice(code, message, _RFC))

    def warn(code: str, message: str) -> None:
        warnings.append(Notice(code, message, _RFC))

    def repair(code: str, message: str) -> None:
        notice = Notice(code, f"{message}; accepted for sending, but fix it", _RFC)
        repairs.append(notice)
        warnings.append(notice)

    if text.startswith("\ufeff"):
        error("policy.bom", "the file starts with a byte-order mark (BOM): save it without one")
        text = text[1:]
    if not text.strip():
        error("policy.empty", "the policy file is empty")
        return Linted(None, tuple(errors), tuple(warnings))
    lines, kinds = _split_lines(text)
    if len(kinds) > 1:
        warn("policy.line-ending", "the file mixes LF and CRLF line endings (allowed)")
    seen: dict[str, int] = {}
    version: str | None = None
    mode: Mode | None = None
    max_age: int | None = None
    mx: list[MxPattern] = []
    unmatchable: list[str] = []
    extensions: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=1):
        where = f"line {number}"
        if not line:
            if tolerant:
                repair("policy.blank-line", f"{where} is blank")
            else:
                error("policy.blank-line", f"{where} is blank: remove blank lines")
            continue
        if "\r" in line:
            error("policy.line-ending", f"{where} has a bare CR: end lines with LF or CRLF")
            continue
        if tolerant and not line.strip(_WSP):
            repair("policy.blank-line", f"{where} holds only whitespace")
            continue
        if tolerant and line.startswith("#"):
            repair("policy.comment", f"{where} is a comment; policy files cannot hold comments")
            continue
        key, colon, rest = line.partition(":")
        if not colon or not _KEY.fullmatch(key):
            error("policy.syntax", f"{where} {_hint_bad_key(line, key, bool(colon))}")
            continue
        value = rest.lstrip(_WSP).rstrip(_WSP)
        if value != rest.lstrip(_WSP):
            warn("policy.whitespace", f"{where} has trailing whitespace (allowed)")
        if key in seen and key != "mx":
            # RFC 8461 §3.2: the first occurrence wins; a repeat still has to be well-formed.
            problem = _extension_problem(key, value)
            if problem:
                error("policy.syntax", f"{where}: {problem}")
            else:
                warn("policy.duplicate", f"{where}: {key!r} repeats line {seen[key]}; ignored")
            continue
        seen.setdefault(key, number)
        if key == "version":
            version = value
            if value != VERSION:
                error("policy.version.invalid", f"{where}: {_version_message(value)}")
        elif key == "mode":
            if value in _MODES:
                mode = _MODES[value]
            else:
                error("policy.mode.invalid", f"{where}: {_mode_message(value)}")
        elif key == "max_age":
            if not _MAX_AGE.fullmatch(value):
                error(
                    "policy.max_age.invalid",
                    f"{where}: max_age {value!r} is not valid: write a whole number of "
                    "seconds, 1 to 10 digits, e.g. max_age: 1209600 (two weeks)",
                )
            elif int(value) > MAX_AGE_LIMIT:
                max_age = MAX_AGE_LIMIT
                warn(
                    "policy.max_age.capped",
                    f"{where}: max_age {value} is above the maximum {MAX_AGE_LIMIT} "
                    f"(one year); senders use {MAX_AGE_LIMIT}",
                )
            else:
                max_age = int(value)
        elif key == "mx":
            try:
                mx.append(MxPattern.parse(value))
            except PolicyError as exc:
                tolerated = _tolerated_mx(value) if tolerant else None
                if tolerated is None:
                    error(exc.code, f"{where}: {exc.message}")
                    continue
                kept, code, why = tolerated
                repair(code, f"{where}: mx {value!r} {why}")
                if isinstance(kept, MxPattern):
                    mx.append(kept)
                else:
                    unmatchable.append(kept)
        else:
            problem = _extension_problem(key, value)
            if problem:
                error("policy.extension.invalid", f"{where}: {problem}")
            else:
                extensions.append((key, value))
                warn("policy.extension", f"{where}: {_extension_hint(key)}")
    for key, code in (("version", "version"), ("mode", "mode"), ("max_age", "max_age")):
        if key not in seen:
            error(f"policy.{code}.missing", f"the policy has no '{key}:' line; add one")
    if mode is not None and mode is not Mode.NONE and "mx" not in seen:
        error("policy.mx.missing", _MX_MISSING)
    if errors or version is None or mode is None or max_age is None:
        return Linted(None, tuple(errors), tuple(warnings))
    policy = Policy(
        mode,
        tuple(mx),
        max_age,
        tuple(extensions),
        version,
        # interned: most lines ("version: STSv1", "mode: enforce", a provider's mx and
        # max_age lines) repeat across the domains of a large cache (docs/benchmarks.md)
        tuple(sys.intern(line) for line in lines),
        tuple(unmatchable),
        tuple(repairs),
    )
    return Linted(policy, (), tuple(warnings) + _advice(policy))


def _tolerated_mx(value: str) -> tuple[MxPattern | str, str, str] | None:
    """What the sender's reading makes of an ``mx`` value the strict grammar refuses.

    ``(pattern or unmatchable name, repair code, what was done)``, or None when the value
    stays an error. RFC 8461 §3.2 leaves no room here; we accept two forms that peers
    accept and that cannot widen the policy: the root dot (``mx.example.com.`` is the
    same name) and an all-digit last label (``192.0.2.1``, a valid RFC 5321 Domain that
    no MX host name can be: it is kept, and matches nothing, never an IP address).
    """
    text = value[:-1] if value.endswith(".") and not value.endswith("..") else value
    dotted = text != value
    star = "*." if text.startswith("*.") else ""
    try:
        name = normalize_domain(text.removeprefix(star)) if text.isascii() else None
    except DomainNameError:
        name = None
    if name is None:
        return None
    if name.rsplit(".", 1)[-1].isdigit():
        return star + name, "policy.mx.numeric", "has an all-digit last label: it matches no MX"
    if dotted:
        pattern = MxPattern(name, bool(star))
        return pattern, "policy.mx.trailing-dot", "ends in a dot: read without it"
    return None


def _extension_hint(key: str) -> str:
    for known in _KNOWN:
        if key.lower().replace("-", "_") == known:
            return f"unknown field {key!r} is ignored; did you mean {known!r} (case-sensitive)?"
    return f"unknown field {key!r} is ignored by senders"


def _advice(policy: Policy) -> tuple[Notice, ...]:
    """Warnings about a valid policy: legal, but probably not what the administrator wants."""
    out: list[Notice] = []
    if policy.mode is Mode.TESTING:
        out.append(
            Notice(
                "policy.mode.testing",
                "mode testing: senders report TLS failures "
                "but still deliver; switch to enforce once reports are clean",
                "RFC 8461 §5",
            )
        )
    elif policy.mode is Mode.NONE:
        out.append(
            Notice(
                "policy.mode.none",
                "mode none: senders act as if the domain had no policy",
                "RFC 8461 §5",
            )
        )
    if policy.mode is not Mode.NONE and policy.max_age < MAX_AGE_RECOMMENDED:
        out.append(
            Notice(
                "policy.max_age.short",
                f"max_age {policy.max_age} is under one "
                "week: a short lifetime lets an attacker who blocks the policy fetch "
                "downgrade delivery soon; use weeks (e.g. 1209600) or more",
                _RFC,
            )
        )
    seen: set[MxPattern] = set()
    # A literal is covered by "*.<suffix>" when it is one label plus <suffix> (§4.1); a set
    # lookup keeps this linear, as a 64 KiB policy can hold thousands of mx lines.
    wildcard_suffixes = {p.domain for p in policy.mx if p.wildcard}
    for pattern in policy.mx:
        if pattern in seen:
            out.append(Notice("policy.mx.duplicate", f"mx {pattern} is listed twice", _RFC))
        seen.add(pattern)
        if pattern.wildcard and "." not in pattern.domain:
            out.append(
                Notice(
                    "policy.mx.broad",
                    f"mx {pattern} allows any host under a "
                    "top-level domain; name your own domain's hosts",
                    "RFC 8461 §10.4",
                )
            )
        elif not pattern.wildcard and pattern.domain.partition(".")[2] in wildcard_suffixes:
            out.append(
                Notice(
                    "policy.mx.redundant",
                    f"mx {pattern} is already covered by a wildcard pattern",
                    "RFC 8461 §4.1",
                )
            )
    return tuple(out)


def parse_policy(text: str) -> Policy:
    """Parse a policy file's text (RFC 8461 §3.2); raise the first error of :func:`lint_policy`."""
    linted = lint_policy(text)
    if linted.errors:
        first = linted.errors[0]
        raise PolicyError(first.message, code=first.code, rfc=first.rfc)
    assert linted.value is not None
    return linted.value


def read_policy(text: str) -> Policy:
    """The sender's reading of a policy file (RFC 8461 §3.2, tolerant; see the module).

    Raises PolicyError for what even a sender cannot use; what it tolerated is in the
    policy's ``repairs``. ``lint`` and ``check`` use the strict :func:`lint_policy`.
    """
    linted = lint_policy(text, tolerant=True)
    if linted.errors:
        first = linted.errors[0]
        raise PolicyError(first.message, code=first.code, rfc=first.rfc)
    assert linted.value is not None
    return linted.value


def format_policy(policy: Policy, *, newline: str = "\r\n") -> str:
    """The policy file for ``policy``: version, mode, mx lines, max_age, then extensions.

    RFC 8461 §3.2's prose says "CRLF-separated" and its ABNF allows LF or CRLF (erratum
    6253); we write CRLF, with a final terminator, so strict readers of either accept it.
    """
    lines = [
        f"version: {policy.version}",
        f"mode: {policy.mode.value}",
        *(f"mx: {pattern}" for pattern in policy.mx),
        *(f"mx: {name}" for name in policy.unmatchable_mx),
        f"max_age: {policy.max_age}",
        *(f"{name}: {value}" for name, value in policy.extensions),
    ]
    return "".join(line + newline for line in lines)


def policy_to_json(policy: Policy) -> dict[str, object]:
    """``{"version", "mode", "mx": [...], "max_age", "extensions": {...}}`` for ``--json``."""
    out: dict[str, object] = {
        "version": policy.version,
        "mode": policy.mode.value,
        "mx": [str(pattern) for pattern in policy.mx],
        "max_age": policy.max_age,
        "extensions": dict(policy.extensions),
    }
    if policy.unmatchable_mx:  # only a sender's reading has them (read_policy)
        out["unmatchable_mx"] = list(policy.unmatchable_mx)
    return out
