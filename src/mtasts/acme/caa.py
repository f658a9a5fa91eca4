"""CAA (RFC 8659): may the CA we use issue for a name? Checked before asking it, so a
refusal costs no rate limit and names the record to change.

Pure: the CAA RRsets found while climbing the tree come in; a verdict goes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: RFC 8659 §4.1: bit 0 (128) of the flags octet is the Issuer Critical Flag
CRITICAL = 128
_KNOWN_TAGS = frozenset({"issue", "issuewild", "iodef"})


@dataclass(frozen=True, slots=True)
class CaaRecord:
    flags: int
    tag: str
    value: str


@dataclass(frozen=True, slots=True)
class CaaVerdict:
    allowed: bool
    reason: str
    #: the name whose CAA RRset decided (None: no CAA record anywhere up the tree)
    at: str | None = None


def climb(name: str) -> tuple[str, ...]:
    """RFC 8659 §3: the name, then each parent, up to (not including) the root."""
    labels = name.rstrip(".").lower().split(".")
    return tuple(".".join(labels[i:]) for i in range(len(labels)))


def issuer_of(value: str) -> str:
    """RFC 8659 §4.2: ``issue`` value = [issuer-domain-name] [";" parameters]; the
    issuer in lower case, "" when the value forbids every CA (``;`` or empty)."""
    return value.split(";", 1)[0].strip().lower().rstrip(".")


def evaluate(
    name: str, rrset_at: str | None, records: Sequence[CaaRecord], issuers: Sequence[str]
) -> CaaVerdict:
    """The verdict from the relevant RRset (the first non-empty one climbing from
    ``name``, found at ``rrset_at``) for a CA known by ``issuers`` (its CAA domains)."""
    if not records or rrset_at is None:
        return CaaVerdict(True, f"no CAA record at {name} or above: any CA may issue")
    for record in records:
        if record.flags & CRITICAL and record.tag.lower() not in _KNOWN_TAGS:
            # §4.1: an unknown property marked critical forbids issuance
            return CaaVerdict(
                False,
                f"CAA at {rrset_at} has the unknown critical property {record.tag!r}; "
                "no CA may issue (remove it or clear its critical flag)",
                rrset_at,
            )
    issue = [issuer_of(r.value) for r in records if r.tag.lower() == "issue"]
    if not issue:
        # §4.2: a relevant RRset with no issue property does not restrict issuance
        return CaaVerdict(True, f"CAA at {rrset_at} has no issue property", rrset_at)
    named = sorted({i for i in issue if i})
    wanted = {i.lower().rstrip(".") for i in issuers}
    if not wanted:
        return CaaVerdict(
            False,
            f"CAA at {rrset_at} allows {', '.join(named) or 'no CA'}; the CA's CAA "
            "identity is unknown (set [acme] caa_identities)",
            rrset_at,
        )
    if wanted & set(named):
        return CaaVerdict(
            True, f"CAA at {rrset_at} allows {', '.join(sorted(wanted & set(named)))}", rrset_at
        )
    allowed = ", ".join(named) or "no CA"
    return CaaVerdict(
        False,
        f"CAA at {rrset_at} allows {allowed}, not {', '.join(sorted(wanted))}: add "
        f'{rrset_at}. CAA 0 issue "{sorted(wanted)[0]}"',
        rrset_at,
    )
