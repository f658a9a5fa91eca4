"""Layers of raw values -> typed sections, remembering where each value came from (pure).

A layer (the file, the environment, the command line) is first *collected*: each key
is checked against the section's dataclass and coerced, into ``{key: (value, origin)}``;
an unknown key or a bad value is a :class:`~mtasts.errors.ConfigError` naming the
origin (``file:line``, the variable, the option), the key and what is expected. Later
layers overwrite earlier ones key by key; :func:`assemble` then builds the frozen
dataclasses, defaults filling the rest, and the dataclass's own ``__post_init__`` checks
what involves several keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mtasts.errors import ConfigError
from mtasts.settings.coerce import Invalid, coerce, parse_inline
from mtasts.settings.schema import (
    Field,
    Key,
    dotted,
    entry_type,
    env_name,
    fields_of,
    keys_of,
    static_keys,
)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value came from: ``default``, ``file`` (``path:line``), ``environment``
    (the variable) or ``option`` (the command line)."""

    kind: str
    where: str = ""

    def __str__(self) -> str:
        if self.kind == "file":
            return self.where
        if self.kind == "environment":
            return f"environment {self.where}"
        if self.kind == "option":
            return f"option {self.where}" if self.where else "command line"
        return self.where or "default"


DEFAULT = Origin("default")


def fixed(origin: Origin) -> Callable[[Key], Origin]:
    """The same origin for every key (a variable, an option)."""

    def origin_of(_key: Key) -> Origin:
        return origin

    return origin_of


@dataclass(slots=True)
class Layers:
    """Values collected so far: ``values`` per key, ``tables`` per named entry."""

    values: dict[Key, tuple[Any, Origin]] = dataclasses.field(default_factory=dict)
    tables: dict[Key, Origin] = dataclasses.field(default_factory=dict)


def _shown(value: Any, f: Field | None) -> str:
    return "'***'" if f is not None and f.meta.secret else repr(value)


def invalid(origin: Origin, key: Key, value: Any, reason: str, f: Field | None) -> ConfigError:
    return ConfigError(
        f"{origin}: {dotted(key)} = {_shown(value, f)}: {reason}",
        code="config.invalid",
    )


def unknown(origin: Origin, key: Key, cls: type, is_table: bool) -> ConfigError:
    known = ", ".join(f.name for f in keys_of(cls))
    where = f" in [{dotted(key[:-1])}]" if len(key) > 1 else ""
    what = f"section [{dotted(key)}]" if is_table else f"setting {key[-1]!r}{where}"
    return ConfigError(f"{origin}: unknown {what}; known: {known}", code="config.unknown-key")


def collect(
    cls: type,
    table: Mapping[str, Any],
    prefix: Key,
    origin_of: Callable[[Key], Origin],
    into: Layers,
    *,
    text: bool = False,
) -> None:
    """Check ``table`` (the keys of section ``cls`` at ``prefix``) into ``into``."""
    by_name = {f.name: f for f in keys_of(cls)}
    for name, value in table.items():
        key = (*prefix, name)
        f = by_name.get(name)
        if f is None:
            raise unknown(origin_of(key), key, cls, isinstance(value, Mapping))
        kind = f.kind
        if kind == "table":
            if not isinstance(value, Mapping):
                raise invalid(origin_of(key), key, value, "expected a table", f)
            into.tables.setdefault(key, origin_of(key))  # where a check across keys points
            collect(f.type, value, key, origin_of, into, text=text)
        elif kind == "tables":
            if text and isinstance(value, str):
                try:
                    value = parse_inline(value, "a table of tables like { name = { key = 1 } }")
                except Invalid as exc:
                    raise invalid(origin_of(key), key, value, exc.reason, f) from None
            entry = entry_type(f.type)
            if not isinstance(value, Mapping) or entry is None:
                raise invalid(origin_of(key), key, value, "expected a table of tables", f)
            for entry_name, sub in value.items():
                sub_key = (*key, str(entry_name))
                if not isinstance(sub, Mapping):
                    raise invalid(origin_of(sub_key), sub_key, sub, "expected a table", f)
                into.tables[sub_key] = origin_of(sub_key)
                collect(entry, sub, sub_key, origin_of, into, text=text)
        else:
            try:
                into.values[key] = (coerce(f.type, value, f.meta, text=text), origin_of(key))
            except Invalid as exc:
                raise invalid(origin_of(key), key, value, exc.reason, f) from None


def collect_environment(cls: type, prefix: Key, environ: Mapping[str, str], into: Layers) -> None:
    """The ``MTASTS_<SECTION>_<KEY>`` variables (and each field's aliases) of section ``cls``.

    Empty variables count as not set. A table of named tables (``[daemon.zones]``) is set
    as a whole, written as a TOML inline table.
    """
    for key, f in static_keys(cls, prefix):
        for name in (env_name(key), *f.meta.env):
            value = environ.get(name)
            if value:
                origin = Origin("environment", name)
                parent, leaf = _parent(cls, key[len(prefix) :])
                collect(parent, {leaf: value}, key[:-1], fixed(origin), into, text=True)
                break


def _parent(cls: type, relative: Key) -> tuple[type, str]:
    """The dataclass that holds the last part of ``relative`` (a key below ``cls``)."""
    for part in relative[:-1]:
        cls = next(f.type for f in keys_of(cls) if f.name == part and f.kind == "table")
    return cls, relative[-1]


def assemble(cls: type, layers: Layers, prefix: Key, base: Any = None) -> Any:
    """The instance of ``cls`` at ``prefix`` from ``layers``; defaults (or ``base``'s
    values) for keys not given."""
    changes: dict[str, Any] = {}
    for f in fields_of(cls):
        key = (*prefix, f.name)
        if f.meta.internal:
            continue
        if f.meta.flatten and f.kind == "table":  # its keys are this table's
            sub_base = getattr(base, f.name) if base is not None else None
            changes[f.name] = assemble(f.type, layers, prefix, sub_base)
        elif f.kind == "table":
            sub_base = getattr(base, f.name) if base is not None else None
            changes[f.name] = assemble(f.type, layers, key, sub_base)
        elif f.kind == "tables":
            names = _entries(layers, key)
            if names:
                entry = entry_type(f.type)
                inherited = changes.get(f.meta.inherit) if f.meta.inherit else None
                changes[f.name] = {
                    n: assemble(entry, layers, (*key, n), inherited)  # type: ignore[arg-type]
                    for n in names
                }
        elif key in layers.values:
            changes[f.name] = layers.values[key][0]
    try:
        return dataclasses.replace(base, **changes) if base is not None else cls(**changes)
    except (ValueError, TypeError, ConfigError) as exc:
        origin = _first_origin(layers, prefix)
        where = f"[{dotted(prefix)}]" if prefix else "top level"
        message = exc.message if isinstance(exc, ConfigError) else str(exc)
        raise ConfigError(f"{origin}: {where}: {message}", code="config.invalid") from None


def _entries(layers: Layers, key: Key) -> list[str]:
    size = len(key)
    seen: dict[str, None] = {}
    for k in (*layers.tables, *layers.values):
        if len(k) > size and k[:size] == key:
            seen[k[size]] = None
    return list(seen)


def _first_origin(layers: Layers, prefix: Key) -> Origin:
    """Where a table's cross-key check points: its header, else its first value."""
    if prefix in layers.tables:
        return layers.tables[prefix]
    size = len(prefix)
    for k, (_, origin) in layers.values.items():
        if k[:size] == prefix:
            return origin
    for k, origin in layers.tables.items():
        if k[:size] == prefix:
            return origin
    return DEFAULT


def build_section(
    cls: type, table: Mapping[str, Any], prefix: Key, source: str = "", base: Any = None
) -> Any:
    """One section from one table (no environment) over ``base`` (default: the class's
    defaults): for code that holds a table (component parsers, tests)."""
    layers = Layers()
    origin = Origin("file", source) if source else Origin("table", f"[{dotted(prefix)}]")
    collect(cls, table, prefix, fixed(origin), layers)
    return assemble(cls, layers, prefix, base)
