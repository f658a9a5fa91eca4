"""``mtasts config show|check|example`` and ``mtasts init``: the one settings file.

Exit codes: 0 done (check: the settings are valid); 1 ``check`` found a mistake (one
line naming file:line, key and what is expected) or a file that ``init`` will not
overwrite; 78 ``show`` cannot read the settings, ``init`` cannot write the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mtasts.cli.exitcodes import ExitCode
from mtasts.cli.render import fail, print_json
from mtasts.errors import ConfigError
from mtasts.settings.registry import section_classes
from mtasts.settings.render import example_file, json_value, leaves, masked, toml_value
from mtasts.settings.schema import Key, dotted
from mtasts.settings.tree import DEFAULT_PATH, Tree, config_path, load


@click.group("config")
def config() -> None:
    """Show, check or write mtasts.toml, the settings of every command.

    \b
    The file: mtasts --config FILE, else $MTASTS_CONFIG, else /etc/mtasts/mtasts.toml.
    Every key: docs/configuration.md. Exit codes: 0 done; 1 a configuration mistake.
    """


def _rows(tree: Tree) -> list[tuple[Key, dict[str, Any]]]:
    rows = []
    for key, f, value in leaves(section_classes(), tree.sections):
        origin = tree.origin(key)
        row = {"key": dotted(key), "value": masked(value, f), "origin": str(origin)}
        rows.append((key, {**row, "source": origin.kind}))
    return rows


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: file, settings.")
def show(as_json: bool) -> None:
    """Print the effective settings and where each came from (file:line, environment
    variable, option, default); secrets are shown as ***."""
    try:
        tree = load()
    except ConfigError as exc:
        fail(str(exc), code=ExitCode.CONFIG)
    rows = _rows(tree)
    if as_json:
        print_json(
            {
                "file": str(tree.file) if tree.file else None,
                "settings": [{**row, "value": json_value(row["value"])} for _, row in rows],
            }
        )
        return
    click.echo(f"# file: {tree.file or 'none (defaults and environment only)'}")
    table: Key = ()
    lines: list[tuple[str, str]] = []
    for key, row in rows:
        if key[:-1] != table:
            table = key[:-1]
            lines.append((f"\n[{dotted(table)}]", ""))
        lines.append((f"{key[-1]} = {toml_value(row['value'])}", row["origin"]))
    width = min(60, max(len(text) for text, origin in lines if origin))
    for text, origin in lines:
        click.echo(f"{text:<{width}}  # {origin}" if origin else text)


@config.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def check(file: Path | None) -> None:
    """Validate FILE (default: the file every command reads) with the MTASTS_* environment.

    Prints "FILE: ok" and exits 0, or prints the mistake (file:line, key, what is
    expected) and exits 1.
    """
    try:
        tree = load(file)
    except ConfigError as exc:
        fail(str(exc), code=ExitCode.FAILED)
    where = tree.file or "no configuration file (defaults and environment)"
    click.echo(f"{where}: ok ({len(section_classes())} sections)")


@config.command("example")
def example() -> None:
    """Print a commented mtasts.toml with every setting and its default."""
    click.echo(example_file(section_classes()), nl=False)


@click.command("init")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path | None, force: bool) -> None:
    """Write a commented mtasts.toml, every setting with its default.

    PATH defaults to the --config file, else $MTASTS_CONFIG, else
    /etc/mtasts/mtasts.toml. An existing file is kept unless --force.
    """
    import os

    target = path or config_path(None, os.environ) or DEFAULT_PATH
    if target.exists() and not force:
        fail(f"{target} exists; keep it, or pass --force", code=ExitCode.FAILED)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(example_file(section_classes()), encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}", code=ExitCode.CONFIG)
    click.echo(f"wrote {target}; edit it, then run: mtasts config check {target}")
