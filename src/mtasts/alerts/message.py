"""The notification of one transition, as every channel sends it.

Pure. A :class:`Message` is built when the transition is stored (so a notification sent
hours later, after the relay came back, still says what was true then) and kept as JSON
in the outbox; e-mail renders :meth:`Message.subject` and :meth:`Message.text`, the
webhook posts :meth:`Message.to_json`, Apprise gets the title and text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from mtasts.alerts.model import Condition, Event, OpenCondition

#: the webhook body's ``schema`` field: a consumer can tell versions apart
SCHEMA = "mtasts.alert/1"


def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Message:
    event: Event
    key: str
    kind: str
    domain: str
    subject_: str
    severity: str
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    first_seen: int | None = None
    last_seen: int | None = None
    resolved_at: int | None = None
    condition_pk: int | None = None

    @classmethod
    def raised(cls, condition: Condition, *, source: str, now: int, pk: int) -> Message:
        return cls._of(Event.RAISED, condition, source, now, now, None, pk)

    @classmethod
    def resolved(cls, open_: OpenCondition, *, now: int) -> Message:
        return cls._of(
            Event.RESOLVED,
            open_.condition,
            open_.source,
            open_.first_seen,
            open_.last_seen,
            now,
            open_.pk,
        )

    @classmethod
    def test(cls, *, now: int, source: str = "mtasts alerts test") -> Message:
        return cls(
            Event.TEST,
            "test",
            "test",
            "",
            "",
            "info",
            "Test notification from mtasts: this channel works.",
            {},
            source,
            now,
            now,
        )

    @classmethod
    def _of(
        cls,
        event: Event,
        c: Condition,
        source: str,
        first: int,
        last: int,
        resolved: int | None,
        pk: int,
    ) -> Message:
        return cls(
            event,
            c.key,
            c.kind,
            c.domain,
            c.subject,
            str(c.severity),
            c.summary,
            dict(c.details),
            source,
            first,
            last,
            resolved,
            pk,
        )

    def subject(self) -> str:
        """One line: an e-mail subject, an Apprise title."""
        where = f" {self.domain}" if self.domain else ""
        if self.event is Event.TEST:
            return "[mtasts] test notification"
        if self.event is Event.RESOLVED:
            return f"[mtasts] RESOLVED{where}: {self.summary}"
        return f"[mtasts] {self.severity.upper()}{where}: {self.summary}"

    def text(self) -> str:
        """The plain-text body."""
        if self.event is Event.TEST:
            return (
                f"{self.summary}\n\nSent at {_iso(self.first_seen)} by {self.source}.\n"
                "Alerts raised by the rules or by mtasts monitor arrive here.\n"
            )
        lines = [self.summary, ""]
        state = "resolved" if self.event is Event.RESOLVED else "raised"
        lines.append(f"Condition: {self.key} ({state})")
        if self.domain:
            lines.append(f"Domain:    {self.domain}")
        lines.append(f"Severity:  {self.severity}")
        lines.append(f"Source:    {self.source}")
        lines.append(f"First seen: {_iso(self.first_seen)}")
        if self.event is Event.RESOLVED:
            lines.append(f"Last seen:  {_iso(self.last_seen)}")
            lines.append(f"Resolved:   {_iso(self.resolved_at)}")
        if self.details:
            lines += ["", "Details:"]
            body = orjson.dumps(
                dict(self.details), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
            )
            lines += ["  " + line for line in body.decode().splitlines()]
        if self.event is Event.RAISED:
            lines += ["", "You will get one more message when this condition clears."]
        return "\n".join(lines) + "\n"

    def _fields(self) -> dict[str, Any]:
        return {
            "event": str(self.event),
            "key": self.key,
            "kind": self.kind,
            "domain": self.domain,
            "subject": self.subject_,
            "severity": self.severity,
            "summary": self.summary,
            "details": dict(self.details),
            "source": self.source,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "resolved_at": self.resolved_at,
            "condition_pk": self.condition_pk,
        }

    def to_json(self) -> dict[str, Any]:
        """The webhook body: times as ISO 8601 UTC, the rendered title and text."""
        out: dict[str, Any] = {"schema": SCHEMA, **self._fields()}
        for name in ("first_seen", "last_seen", "resolved_at"):
            out[name] = _iso(out[name])
        out["condition_id"] = out.pop("condition_pk")
        out["title"] = self.subject()
        out["text"] = self.text()
        return out

    def dumps(self) -> str:
        """What the outbox stores (:meth:`loads` reads it back)."""
        return orjson.dumps(self._fields(), option=orjson.OPT_NON_STR_KEYS).decode()

    @classmethod
    def loads(cls, text: str) -> Message:
        d = orjson.loads(text)
        return cls(
            Event(d["event"]),
            d["key"],
            d["kind"],
            d["domain"],
            d["subject"],
            d["severity"],
            d["summary"],
            d["details"],
            d["source"],
            d["first_seen"],
            d["last_seen"],
            d["resolved_at"],
            d["condition_pk"],
        )
