"""executemany's parameters taken straight from the rows are exactly what SQLAlchemy's
``construct_params`` gives, for every table the stores insert into, on both dialects;
a statement the shortcut cannot serve (a bound value not in the rows) still works."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Integer, LargeBinary, String, insert
from sqlalchemy.dialects import postgresql, sqlite

from mtasts.store.engine import _many_params, _params
from mtasts.store.received_schema import (
    arrivals,
    raw_inputs,
    report_failures,
    report_policies,
    reports,
)
from mtasts.store.schema import metadata

_SAMPLE: dict[type, Any] = {Integer: 7, String: "x\x00y", LargeBinary: b"\x1f\x8b"}


def _row(table: Any) -> dict[str, Any]:
    out = {}
    for col in table.c:
        if col is table.autoincrement_column:
            continue  # the database numbers it
        out[col.name] = next((v for t, v in _SAMPLE.items() if isinstance(col.type, t)), 1)
    return out


@pytest.mark.parametrize(
    "dialect",
    [sqlite.dialect(paramstyle="qmark"), postgresql.dialect(paramstyle="numeric_dollar")],  # type: ignore[no-untyped-call]
    ids=["sqlite", "postgresql"],
)
@pytest.mark.parametrize(
    "table",
    [raw_inputs, reports, report_policies, report_failures, arrivals, *metadata.sorted_tables],
    ids=lambda t: t.name,
)
def test_rows_give_the_parameters_sqlalchemy_would(dialect: Any, table: Any) -> None:
    rows = [_row(table), {**_row(table)}]
    compiled = insert(table).compile(dialect=dialect, column_keys=list(rows[0]))
    assert [list(p) for p in _many_params(compiled, rows)] == [_params(compiled, r) for r in rows]


def test_a_bound_value_that_is_no_row_key_goes_through_sqlalchemy() -> None:
    stmt = insert(raw_inputs).values(size=3)
    compiled = stmt.compile(dialect=sqlite.dialect(paramstyle="qmark"), column_keys=["sha256"])
    rows = [{"sha256": "a"}, {"sha256": "b"}]
    assert [list(p) for p in _many_params(compiled, rows)] == [_params(compiled, r) for r in rows]


def test_one_bound_column_gives_one_value_a_row() -> None:
    compiled = insert(raw_inputs).compile(
        dialect=sqlite.dialect(paramstyle="qmark"), column_keys=["sha256"]
    )
    rows = [{"sha256": "a"}, {"sha256": "b"}]
    assert [list(p) for p in _many_params(compiled, rows)] == [["a"], ["b"]]
