"""The shape of a settings section, read from its frozen dataclass (pure: no I/O).

A section is a frozen dataclass whose fields are its keys. Each field's annotation gives
its type (coerced by :mod:`mtasts.settings.coerce`); its default is the default; its
``metadata`` (written with :func:`setting`) adds the words for docs/configuration.md,
bounds, secrecy and extra environment variable names. A field whose type is itself a
dataclass is a sub-table (``[daemon.default_zone]``); a ``Mapping[str, Dataclass]`` is a
table of named sub-tables (``[daemon.zones.NAME]``); everything else is one key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

#: A key's place in the tree: ("daemon", "zones", "strict", "tlsrpt"); top-level keys
#: (the resolver's) are one element long.
Key = tuple[str, ...]

ENV_PREFIX = "MTASTS_"


@dataclass(frozen=True, slots=True)
class Meta:
    """What a field's ``metadata`` says beyond its type and default."""

    doc: str = ""
    secret: bool = False
    #: inclusive lower / upper bound of a number
    minimum: float | None = None
    maximum: float | None = None
    #: exclusive lower bound (``above=0``: a positive number)
    above: float | None = None
    #: more environment variable names, besides the rule's, kept for compatibility
    env: tuple[str, ...] = ()
    #: a ``Mapping[str, Dataclass]`` whose entries start from this sibling field's value
    #: (``zones`` inherit ``default_zone``) instead of the dataclass's defaults
    inherit: str = ""
    #: what the example file shows for it when the default is not a good example
    example: str = ""
    #: a dataclass field whose keys sit in this table, not a sub-table (a section made
    #: of the settings of two parts of one component)
    flatten: bool = False
    #: not a key: filled in by the program (e.g. from another section)
    internal: bool = False


def setting(
    default: Any = dataclasses.MISSING,
    *,
    doc: str = "",
    secret: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    env: tuple[str, ...] = (),
    inherit: str = "",
    example: str = "",
    flatten: bool = False,
    internal: bool = False,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field of a settings section (its default plus :class:`Meta`)."""
    meta = Meta(doc, secret, minimum, maximum, above, env, inherit, example, flatten, internal)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"mtasts": meta})
    return dataclasses.field(default=default, metadata={"mtasts": meta})


@dataclass(frozen=True, slots=True)
class Field:
    """One key of a section, its annotation resolved."""

    name: str
    type: Any
    meta: Meta
    default: Any  # dataclasses.MISSING when required (sections should not have those)

    @property
    def kind(self) -> str:
        """``table`` (a sub-dataclass), ``tables`` (named sub-dataclasses) or ``value``."""
        if is_section(self.type):
            return "table"
        if entry_type(self.type) is not None:
            return "tables"
        return "value"


def is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def entry_type(tp: Any) -> type | None:
    """``V`` when ``tp`` is ``Mapping[str, V]`` / ``dict[str, V]`` with a dataclass ``V``."""
    origin = typing.get_origin(tp)
    if origin in (dict, Mapping, typing.Mapping):
        args = typing.get_args(tp)
        if len(args) == 2 and is_section(args[1]):
            return typing.cast(type, args[1])
    return None


def optional_of(tp: Any) -> Any | None:
    """``X`` when ``tp`` is ``X | None``, else None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


@cache
def fields_of(cls: type) -> tuple[Field, ...]:
    """The keys of section ``cls`` in declaration order, annotations resolved."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("mtasts", Meta())
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        out.append(Field(f.name, hints[f.name], meta, default))
    return tuple(out)


@cache
def keys_of(cls: type) -> tuple[Field, ...]:
    """The keys of the table ``cls`` describes: its fields less the internal ones, with
    the keys of ``flatten`` fields in their place."""
    out: list[Field] = []
    for f in fields_of(cls):
        if f.meta.internal:
            continue
        if f.meta.flatten and f.kind == "table":
            out.extend(keys_of(f.type))
        else:
            out.append(f)
    return tuple(out)


def section_doc(cls: type) -> str:
    """The first paragraph of the dataclass's docstring (dataclass's own is skipped)."""
    doc = cls.__doc__ or ""
    if doc.startswith(cls.__name__ + "("):
        return ""
    first = doc.strip().split("\n\n")[0]
    return " ".join(first.split()).replace("``", "`")


def env_name(key: Key) -> str:
    """The rule: ``MTASTS_`` + the key's parts joined by ``_``, upper case.

    ``[daemon.default_zone] tlsrpt`` -> ``MTASTS_DAEMON_DEFAULT_ZONE_TLSRPT``; a top-level
    key has no section part (``nameserver`` -> ``MTASTS_NAMESERVER``).
    """
    return ENV_PREFIX + "_".join(part.upper().replace("-", "_") for part in key)


def dotted(key: Key) -> str:
    """``("daemon", "zones", "a.b")`` -> ``daemon.zones."a.b"`` (TOML's quoting)."""
    return ".".join(p if p and all(c.isalnum() or c in "_-" for c in p) else f'"{p}"' for p in key)


def static_keys(cls: type, prefix: Key = ()) -> list[tuple[Key, Field]]:
    """Every key reachable without naming an entry: values and ``tables`` fields
    (the latter set as a whole from the environment), through sub-tables."""
    out: list[tuple[Key, Field]] = []
    for f in keys_of(cls):
        if f.kind == "table":
            out.extend(static_keys(f.type, (*prefix, f.name)))
        else:
            out.append(((*prefix, f.name), f))
    return out
