"""``mtasts lint KIND INPUT``: check a record, a policy or a report against the RFCs.

A domain administrator runs it before publishing a record or a policy, and to read a
report they received. The command only reads the input, calls the pure parser for KIND
and renders the resulting :class:`~mtasts.errors.Linted` value.

Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error (click's own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

import click
import orjson
from rich.markup import escape

from mtasts.cli.render import console, print_json
from mtasts.errors import Linted, Notice

KINDS = ("sts-record", "policy", "tlsrpt-record", "report")
# The largest input lint reads: a policy is capped at 64 KiB by fetchers (RFC 8461 §3.3
# leaves the cap to us), records at 64 KiB by DNS itself; a report can be a large e-mail.
MAX_TEXT_INPUT = 64 * 1024
MAX_REPORT_INPUT = 32 * 1024 * 1024


def _decode_text(data: bytes, kind: str) -> tuple[str | None, Notice | None]:
    """The input as text: records are US-ASCII but we decode UTF-8 so the parser names the
    offending character; undecodable bytes are an error of their own."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, Notice(
            f"{kind}.encoding",
            f"the input is not valid UTF-8 (byte {exc.start}): save it as plain text",
            "RFC 8461 §3.2" if kind == "policy" else "",
        )


def _strip_one_newline(text: str) -> str:
    """For the two record kinds a single trailing newline (LF or CRLF) is ignored."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def _lint_text(data: bytes, kind: str) -> tuple[Linted[Any], Callable[[Any], object]]:
    from mtasts.sts.policy import lint_policy, policy_to_json
    from mtasts.sts.record import lint_sts_record, sts_record_to_json
    from mtasts.tlsrpt.record import lint_tlsrpt_record, tlsrpt_record_to_json

    text, problem = _decode_text(data, kind)
    if text is None:
        assert problem is not None
        return Linted(value=None, errors=(problem,)), lambda v: v
    if kind == "sts-record":
        return lint_sts_record(_strip_one_newline(text)), sts_record_to_json
    if kind == "tlsrpt-record":
        return lint_tlsrpt_record(_strip_one_newline(text)), tlsrpt_record_to_json
    return lint_policy(text), policy_to_json


def lint_input(kind: str, data: bytes) -> dict[str, Any]:
    """Lint ``data`` as ``kind`` and return the ``--json`` object."""
    limit = MAX_REPORT_INPUT if kind == "report" else MAX_TEXT_INPUT
    if len(data) > limit:
        linted: Linted[Any] = Linted(
            value=None,
            errors=(
                Notice(
                    f"{kind}.too-large",
                    f"the input is {len(data)} bytes; a {kind} cannot exceed {limit} bytes",
                ),
            ),
        )
        to_json: Callable[[Any], object] = lambda v: v  # noqa: E731
    elif kind == "report":
        from mtasts.tlsrpt.report import read_report, report_to_json

        linted, to_json = read_report(data, max_bytes=MAX_REPORT_INPUT), report_to_json
    else:
        linted, to_json = _lint_text(data, kind)
    return {
        "valid": linted.valid,
        "errors": [n.to_json() for n in linted.errors],
        "warnings": [n.to_json() for n in linted.warnings],
        "value": to_json(linted.value) if linted.valid else None,
    }


def _render(kind: str, result: dict[str, Any]) -> None:
    out = console()
    verdict = "[green]valid[/green]" if result["valid"] else "[red]invalid[/red]"
    out.print(f"{kind}: {verdict}")
    for level, colour in (("errors", "red"), ("warnings", "yellow")):
        for notice in result[level]:
            rfc = f" [dim]({notice['rfc']})[/dim]" if notice.get("rfc") else ""
            label = level[:-1]
            out.print(
                f"  [{colour}]{label}[/{colour}] [bold]{notice['code']}[/bold]: "
                f"{escape(notice['message'])}{rfc}",  # the message quotes the input
                highlight=False,
            )
    if result["value"] is not None:
        out.print_json(orjson.dumps(result["value"]).decode())


@click.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("source", metavar="INPUT", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def lint(kind: str, source: BinaryIO, as_json: bool) -> None:
    """Check INPUT (a file path, or - for standard input) as a KIND.

    \b
    KIND is one of:
      sts-record     the _mta-sts TXT record (RFC 8461 §3.1)
      policy         the policy file /.well-known/mta-sts.txt (RFC 8461 §3.2)
      tlsrpt-record  the _smtp._tls TXT record (RFC 8460 §3)
      report         a TLS-RPT report: JSON, gzip, or a whole report e-mail (RFC 8460 §4)

    Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error.
    """
    data = source.read(MAX_REPORT_INPUT + 1)
    result = lint_input(kind, data)
    if as_json:
        print_json(result)
    else:
        _render(kind, result)
    raise SystemExit(0 if result["valid"] else 1)
