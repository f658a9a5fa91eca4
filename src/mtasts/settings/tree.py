"""Read the settings tree: defaults < mtasts.toml < ``MTASTS_*`` environment < options.

The file is the ``--config`` option (any command; :func:`use_file`), else
``$MTASTS_CONFIG``, else ``/etc/mtasts/mtasts.toml`` when it exists. Every registered
section (:mod:`mtasts.settings.registry`) is checked, whichever command runs: a mistake
anywhere in the file is one :class:`~mtasts.errors.ConfigError` naming file, line, key
and what is expected; a table that no section registered is unknown, as is any key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mtasts.errors import ConfigError
from mtasts.settings.build import (
    DEFAULT,
    Layers,
    Origin,
    _parent,
    assemble,
    collect,
    collect_environment,
    fixed,
)
from mtasts.settings.locate import key_lines, line_of
from mtasts.settings.registry import section_classes, section_name
from mtasts.settings.schema import Key

T = TypeVar("T")

DEFAULT_PATH = Path("/etc/mtasts/mtasts.toml")
ENV_FILE = "MTASTS_CONFIG"

_cli_file: list[Path | None] = [None]


def use_file(path: Path | None) -> None:
    """The root command's ``--config``: read this file in this process (None: forget)."""
    _cli_file[0] = path
    _cache.clear()


def config_path(path: Path | str | None, environ: Mapping[str, str]) -> Path | None:
    """The file to read: ``path``, else ``--config``, else ``$MTASTS_CONFIG``, else the
    default when it exists."""
    if path is not None:
        return Path(path)
    if _cli_file[0] is not None:
        return _cli_file[0]
    if environ.get(ENV_FILE):
        return Path(environ[ENV_FILE])
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def read_text(file: Path) -> tuple[str, dict[str, Any]]:
    """The text of ``file`` and its TOML document; a ConfigError when unreadable or bad."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the configuration file {file}: {exc}", code="config.unreadable"
        ) from exc
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "(at line 3, column 7)": keep it, it is the line number asked for
        raise ConfigError(f"{file} is not valid TOML: {exc}", code="config.syntax") from exc


@dataclass(frozen=True, slots=True)
class Tree:
    """Every section, typed, and where each value came from."""

    file: Path | None
    sections: Mapping[str, Any]
    origins: Mapping[Key, Origin] = field(default_factory=dict)

    def section(self, cls: type[T]) -> T:
        value = self.sections[section_name(cls)]
        assert isinstance(value, cls)
        return value

    def origin(self, key: Key) -> Origin:
        return self.origins.get(key, DEFAULT)


def _file_layer(file: Path, layers: Layers, classes: dict[str, type]) -> None:
    text, data = read_text(file)
    lines = key_lines(text)

    def origin_of(key: Key) -> Origin:
        line = line_of(lines, key)
        return Origin("file", f"{file}:{line}" if line else str(file))

    root = classes[""]
    root_keys = {f.name for f in _fields(root)}
    for name, value in data.items():
        if name in classes and name:
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"{origin_of((name,))}: {name} must be a table: write [{name}]",
                    code="config.invalid",
                )
            layers.tables.setdefault((name,), origin_of((name,)))
            collect(classes[name], value, (name,), origin_of, layers)
        elif name in root_keys:
            collect(root, {name: value}, (), origin_of, layers)
        else:
            what = f"section [{name}]" if isinstance(value, Mapping) else f"setting {name!r}"
            known = sorted((root_keys | set(classes)) - {""})
            raise ConfigError(
                f"{origin_of((name,))}: unknown {what}; known: {', '.join(known)}",
                code="config.unknown-key",
            )


def _fields(cls: type) -> Any:
    from mtasts.settings.schema import fields_of

    return fields_of(cls)


def split_key(key: str | Key, classes: Mapping[str, type]) -> tuple[type, Key, Key]:
    """A dotted key -> (its section's class, the section's prefix, the key in full)."""
    parts = tuple(key.split(".")) if isinstance(key, str) else key
    if len(parts) > 1 and parts[0] in classes and parts[0]:
        return classes[parts[0]], (parts[0],), parts
    return classes[""], (), parts


def load(
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    option_names: Mapping[str, str] | None = None,
) -> Tree:
    """Read the tree: the file, then ``environ`` (default: the process's), then
    ``overrides`` (dotted keys such as ``"tlsrpt.organization"``; None values are not
    given). ``option_names`` maps an override's key to the option that set it."""
    env = os.environ if environ is None else environ
    classes = section_classes()
    layers = Layers()
    file = config_path(path, env)
    if file is not None:
        _file_layer(file, layers, classes)
    for name, cls in classes.items():
        collect_environment(cls, (name,) if name else (), env, layers)
    _option_layer(overrides or {}, option_names or {}, classes, layers)
    sections = {
        name: assemble(cls, layers, (name,) if name else ()) for name, cls in classes.items()
    }
    origins = {key: origin for key, (_, origin) in layers.values.items()}
    return Tree(file, sections, origins)


def _option_layer(
    overrides: Mapping[str, Any],
    option_names: Mapping[str, str],
    classes: Mapping[str, type],
    layers: Layers,
) -> None:
    """Command-line values (dotted keys; None: not given) into ``layers``."""
    for dotted_key, value in overrides.items():
        if value is None:
            continue
        cls, prefix, key = split_key(dotted_key, classes)
        origin = Origin("option", option_names.get(str(dotted_key), ""))
        try:
            parent, leaf = _parent(cls, key[len(prefix) :])
        except StopIteration:
            raise ConfigError(
                f"unknown setting {dotted_key!r}", code="config.unknown-key"
            ) from None
        collect(parent, {leaf: value}, key[:-1], fixed(origin), layers, text=True)


def with_options(
    section: T,
    overrides: Mapping[str, Any],
    option_names: Mapping[str, str] | None = None,
) -> T:
    """``section`` (a registered section's value that came from elsewhere than the file,
    e.g. the daemon's ``--pmsr-config``) with ``overrides`` on top, checked and typed as
    :func:`load` does them (dotted keys from the top, such as ``"daemon.listen"``)."""
    classes = section_classes()
    name = section_name(type(section))
    prefix: Key = (name,) if name else ()
    layers = Layers()
    mine = {k: v for k, v in overrides.items() if split_key(k, classes)[1] == prefix}
    _option_layer(mine, option_names or {}, classes, layers)
    value = assemble(type(section), layers, prefix, section)
    assert isinstance(value, type(section))
    return value


_cache: dict[tuple[Any, ...], Tree] = {}


def current() -> Tree:
    """The tree of this process, read once (again only if the file or the ``MTASTS_*``
    environment changed, as in tests)."""
    file = config_path(None, os.environ)
    stamp: tuple[Any, ...] = ()
    if file is not None:
        try:
            info = file.stat()
            stamp = (info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = ("missing",)
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("MTASTS_")))
    classes = tuple(id(cls) for cls in section_classes().values())
    key = (file, stamp, env, classes)
    tree = _cache.get(key)
    if tree is None:
        tree = load()
        _cache.clear()
        _cache[key] = tree
    return tree
