"""Optional SQL filters: a term only when its value is given, values always bound."""

from __future__ import annotations

import sqlite3

from fleet.store.filters import and_terms


def test_terms_are_kept_only_for_given_values_and_lists_expand():
    params: list = []
    sql = and_terms(params, ("agent = ?", None), ("kind IN (?)", ["a", "b"]), ("ts >= ?", 0.0), ("x IN (?)", []))
    assert sql == " AND kind IN (?,?) AND ts >= ?"
    assert params == ["a", "b", 0.0]


def test_values_are_bound_not_formatted():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (name TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("a",), ("x' OR '1'='1",)])
    params: list = []
    sql = "SELECT name FROM t WHERE 1" + and_terms(params, ("name IN (?)", ["x' OR '1'='1"]))
    assert conn.execute(sql, params).fetchall() == [("x' OR '1'='1",)]
