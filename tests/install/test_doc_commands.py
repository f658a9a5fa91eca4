"""Every command and Python example in README.md and docs/ names things that exist.

Issue 10: "every code block in the README and docs/ is run by a test or by make demo".
The toml blocks are loaded as settings (tests/settings/test_doc_snippets.py) and the
main.cf blocks by postconf (test_postfix_snippets.py). The shell blocks talk to real
domains, systemd and /etc, so here each ``mtasts ...`` line in a ``sh``/``console``
block is parsed by the real command tree, as the shell would pass it: the subcommands,
options and argument count must be accepted. Values are not checked (a placeholder such as
``/var/lib/mtasts/x.db`` need not exist on this machine). Each ``python`` block must
compile (top-level ``await`` allowed) and every ``from mtasts... import NAME`` in it must
name something that exists. Each ``json`` block must be JSON.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shlex
import textwrap
from pathlib import Path

import click
import pytest

from mtasts.cli.main import cli

ROOT = Path(__file__).parents[2]
FENCE = re.compile(r"^( *)```(\w+)\n(.*?)^\1```", re.S | re.M)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(kinds: set[str]) -> list[tuple[str, str]]:
    out = []
    for md in DOCS:
        text = md.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(2) in kinds:
                line = text[: match.start()].count("\n") + 1
                out.append((f"{md.relative_to(ROOT)}:{line}", textwrap.dedent(match.group(3))))
    return out


def _command_lines(block: str) -> list[list[str]]:
    """The ``mtasts`` invocations of a shell block, as argv lists (continuations joined,
    prompts, comments, environment assignments and pipes dropped)."""
    joined = re.sub(r"\\\n", " ", block)
    out = []
    for raw in joined.splitlines():
        line = raw.strip().removeprefix("$ ").removeprefix("# ")
        # a command after `sudo`, `sudo -u mtasts`, `exec` or `VAR=value`
        words = shlex.split(line, comments=True) if line else []
        while words and (
            words[0] in {"sudo", "exec", "env"} or "=" in words[0] or words[0].startswith("-")
        ):
            words = words[3:] if words[:2] == ["sudo", "-u"] else words[1:]
        if not words or words[0] != "mtasts":
            continue
        argv = []
        for word in words[1:]:
            if word in {"|", "||", "&&", ";", ">", ">>", "<", "2>&1", "&"}:
                break
            if word.startswith((">", "2>", "<")):
                break
            # `[--json]`, `[--since DAY]`: an optional part, shown here as given
            argv.append(word.removeprefix("[").removesuffix("]") if word != "[]" else word)
        if argv:  # a bare `mtasts` (help, or completion with _MTASTS_COMPLETE) is not parsed
            out.append(argv)
    return out


SHELL = [
    (where, argv) for where, block in _blocks({"sh", "console"}) for argv in _command_lines(block)
]


def test_the_docs_show_commands() -> None:
    assert len(SHELL) >= 35


@pytest.fixture(autouse=True)
def _paths_are_placeholders(monkeypatch: pytest.MonkeyPatch) -> None:
    """A documented path (/etc/mtasts/..., /var/lib/mtasts/...) need not exist here."""

    def as_given(self: object, value: object, *_: object) -> object:
        return value

    monkeypatch.setattr(click.Path, "convert", as_given)
    monkeypatch.setattr(click.File, "convert", as_given)


def _parse(argv: list[str]) -> None:
    """Resolve ``argv`` down the command tree and parse each level's options and
    arguments, as click does before running anything (paths are taken as given)."""
    command: click.Command = cli
    ctx: click.Context | None = None
    args = list(argv)
    name = "mtasts"
    while True:
        if "--help" in args or "--version" in args:
            return  # eager: they print and exit; existence of the command was resolved
        ctx = command.make_context(name, args, parent=ctx)
        if not isinstance(command, click.Group):
            return
        rest = [*ctx._protected_args, *ctx.args]  # click 8.2+: the name
        if not rest:
            return
        found, sub, args = command.resolve_command(ctx, rest)
        assert sub is not None, f"no command {rest[0]!r}"
        name, command = found or rest[0], sub


@pytest.mark.parametrize(("where", "argv"), SHELL, ids=[f"{w}:{a[:2]}" for w, a in SHELL])
def test_documented_command_parses(where: str, argv: list[str]) -> None:
    try:
        _parse(argv)
    except click.UsageError as exc:
        pytest.fail(f"{where}: mtasts {shlex.join(argv)}: {exc.format_message()}")


PYTHON = _blocks({"python"})


@pytest.mark.parametrize(("where", "text"), PYTHON, ids=[w for w, _ in PYTHON])
def test_python_example_compiles_and_its_imports_exist(where: str, text: str) -> None:
    tree = compile(text, where, "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    assert isinstance(tree, ast.Module)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mtasts"):
            module = importlib.import_module(str(node.module))
            for alias in node.names:
                if not hasattr(module, alias.name):
                    importlib.import_module(f"{node.module}.{alias.name}")  # a submodule
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mtasts"):
                    importlib.import_module(alias.name)


JSON = _blocks({"json"})


@pytest.mark.parametrize(("where", "text"), JSON, ids=[w for w, _ in JSON])
def test_json_example_is_json(where: str, text: str) -> None:
    json.loads(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["tlsrpt", "no-such-command"],
        ["query", "--no-such-option", "example.com"],
        ["lint", "policy", "a.txt", "b.txt", "c.txt"],
        ["--no-such-root-option", "query", "example.com"],
    ],
)
def test_the_check_itself_refuses_what_does_not_exist(argv: list[str]) -> None:
    with pytest.raises(click.UsageError):
        _parse(argv)


def test_shell_lines_are_read_as_the_shell_passes_them() -> None:
    block = (
        "# a comment\n$ sudo -u mtasts mtasts tlsrpt send \\\n    --json | jq .\n"
        "MTASTS_CONFIG=x mtasts query [--json] example.com > out\n"
        "_MTASTS_COMPLETE=bash_source mtasts > f\necho mtasts\n"
    )
    assert _command_lines(block) == [
        ["tlsrpt", "send", "--json"],
        ["query", "--json", "example.com"],
    ]
