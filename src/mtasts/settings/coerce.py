"""One conversion for every setting, chosen by the field's annotation (pure: no I/O).

:func:`coerce` checks a value read from TOML (typed already) or, with ``text=True``, a
string from the environment or a command-line option, and returns it as the field's
type, or raises :class:`Invalid` saying what was expected. Supported annotations:

=====================  ======================================  ===========================
annotation             in the file                             in the environment
=====================  ======================================  ===========================
``str``                a string                                as is
``int`` / ``float``    a number (not true/false)               ``5``, ``2.5``
``bool``               true / false                            true/false/yes/no/on/off/1/0
``Path``               a non-empty string                      as is
an ``Enum``            one of its values                       the same
a class with           a string (``HOST:PORT``, ``0666``),     the same
``parse(text)``        handed to ``parse``
``X | None``           as ``X``; ``""`` means unset            ``""`` is not set
``tuple[X, ...]``,     an array (even of one value)            ``a,b`` or a TOML array
``list``, ``frozenset``
``Mapping[str, X]``    a table                                 a TOML inline table
=====================  ======================================  ===========================

Bounds (:class:`~mtasts.settings.schema.Meta` ``minimum``/``maximum``/``above``) are
checked here too.
"""

from __future__ import annotations

import enum
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtasts.errors import ConfigError
from mtasts.settings.schema import Meta, optional_of

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class Invalid(ValueError):
    """The value does not fit; ``reason`` says why (``expected a number > 0``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _want(words: str) -> Invalid:
    return Invalid(f"expected {words}")


def coerce(tp: Any, value: Any, meta: Meta = Meta(), *, text: bool = False) -> Any:  # noqa: B008
    """``value`` as annotation ``tp``; ``text``: it may be a string to parse."""
    inner = optional_of(tp)
    if inner is not None:
        if value is None or value == "":
            return None
        return coerce(inner, value, meta, text=text)
    if tp is Any:
        return value
    out = _convert(tp, value, meta, text)
    _bounds(out, meta)
    return out


def expected(tp: Any, meta: Meta = Meta()) -> str:  # noqa: B008
    """Words for what ``tp`` accepts, for errors and the docs."""
    inner = optional_of(tp)
    if inner is not None:
        return f'{expected(inner, meta)}, or "" for none'
    words = _words(tp)
    bounds = []
    if meta.above is not None:
        bounds.append(f"> {_number(meta.above)}")
    if meta.minimum is not None:
        bounds.append(f">= {_number(meta.minimum)}")
    if meta.maximum is not None:
        bounds.append(f"<= {_number(meta.maximum)}")
    return f"{words} {' and '.join(bounds)}" if bounds else words


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


def _words(tp: Any) -> str:
    if tp is bool:
        return "true or false"
    if tp is int:
        return "a whole number"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is Path:
        return "a file path"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if isinstance(tp, type) and hasattr(tp, "parse"):
        describe = getattr(tp, "expected", None)
        return str(describe()) if callable(describe) else f"a {tp.__name__}"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (tuple, list, frozenset, set) and args:
        return f"a list of {_plural(_words(args[0]))}"
    if origin in (dict, Mapping, typing.Mapping) and len(args) == 2:
        return f"a table of name = {_words(args[1])}"
    return getattr(tp, "__name__", str(tp))


def _plural(words: str) -> str:
    for article in ("a ", "an "):
        if words.startswith(article):
            return words[len(article) :].replace("number", "numbers").replace("string", "strings")
    return words


def _convert(tp: Any, value: Any, meta: Meta, text: bool) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        if text and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _want("true or false")
    if tp is int or tp is float:
        if isinstance(value, bool):
            raise _want(expected(tp, meta))
        if isinstance(value, int) or (tp is float and isinstance(value, float)):
            return tp(value)
        if text and isinstance(value, str):
            try:
                return tp(value.strip())
            except ValueError:
                pass
        raise _want(expected(tp, meta))
    if tp is str:
        if isinstance(value, str):
            return value
        raise _want("a string")
    if tp is Path:
        if isinstance(value, Path):
            return value
        if isinstance(value, str) and value:
            return Path(value)
        raise _want("a file path")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError as exc:
            why = str(exc)
            if why.startswith(f"{value!r} is not a valid"):
                raise _want(_words(tp)) from None
            raise Invalid(why) from None  # the enum's own explanation (_missing_)
    if isinstance(tp, type) and hasattr(tp, "parse"):
        if isinstance(value, tp):
            return value
        if issubclass(tp, int) and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # unix_mode = 660 as written (the digits are octal)
        if not isinstance(value, str):
            raise _want(_words(tp))
        try:
            return tp.parse(value)
        except (ValueError, ConfigError) as exc:  # the parser's own words
            raise Invalid(str(exc) or f"expected {_words(tp)}") from None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (tuple, list, frozenset, set):
        return _sequence(origin, args, value, meta, text)
    if origin in (dict, Mapping, typing.Mapping) and len(args) == 2:
        if text and isinstance(value, str):
            value = parse_inline(value, "a table like { name = value }")
        if not isinstance(value, Mapping):
            raise _want(_words(tp))
        return {str(k): coerce(args[1], v, text=text) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        raise Invalid(f"unsupported setting type {tp}")  # only X | None is (schema bug)
    raise Invalid(f"unsupported setting type {tp}")


def _sequence(origin: Any, args: tuple[Any, ...], value: Any, meta: Meta, text: bool) -> Any:
    item = args[0] if args else Any
    if text and isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            value = parse_inline(stripped, 'a list like ["a", "b"]')
        else:
            value = [part.strip() for part in stripped.split(",") if part.strip()]
    if not isinstance(value, list | tuple | frozenset | set):
        if not text:  # in the file a list is an array, even of one
            raise _want(f'a list of {_plural(_words(item))}, e.g. ["..."] even for one')
        value = [value]
    items = []
    for position, element in enumerate(value):
        try:
            items.append(coerce(item, element, text=text))
        except Invalid as exc:
            raise Invalid(f"item {position + 1}: {exc.reason}") from None
    if origin is list:
        return items
    if origin in (frozenset, set):
        return frozenset(items)
    return tuple(items)


def parse_inline(text: str, what: str) -> Any:
    """A TOML value written inline (an array or an inline table), for the environment."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        raise _want(what) from None


def _bounds(value: Any, meta: Meta) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    if (
        (meta.above is not None and not value > meta.above)
        or (meta.minimum is not None and value < meta.minimum)
        or (meta.maximum is not None and value > meta.maximum)
    ):
        raise _want(expected(type(value), meta))
