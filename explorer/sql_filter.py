"""A SQL condition over a map's table, run by DuckDB sealed off from files, extensions and settings."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd

from .errors import InputError

TABLE = "points"
MAX_CONDITION_CHARS = 2_000
SHOWN_CONDITION_CHARS = 80
# A condition (subqueries over the table included) gives up after this long: a cross join of the table with
# itself a dozen times is the easy way to ask for billions of rows.
SQL_SECONDS = 1.0
SQL_MEMORY = "256MB"
# The connection's settings, locked before the user's text runs: no file, URL or database outside this
# process can be read or written (read_csv, COPY, ATTACH, INSTALL...), no extension loaded, no setting changed.
_CONFIG = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_community_extensions": False,
    "threads": 1,
    "memory_limit": SQL_MEMORY,
    "max_temp_directory_size": "0B",
    "lock_configuration": True,
}
_ERROR_KIND = re.compile(r"^\w+ Error: ")
# Functions whose output size is an argument: DuckDB checks the interrupt between vectors, not inside one call, so
# repeat('x', 2000000000) ran 28 s and a list of range(100000000) 40 s past the time limit and beyond the memory limit.
# bitstring('1', 2000000000) took 3.7 s. A list of names DuckDB 2.0's catalogue gave for such functions.
_AMPLIFIERS = frozenset({"repeat", "range", "generate_series", "lpad", "rpad", "list_resize", "array_resize",
                         "printf", "format", "unnest", "bar", "repeat_row", "bitstring", "bitstring_agg",
                         "sleep_ms", "pg_sleep"})


def sql_mask(points: pd.DataFrame, condition: str) -> np.ndarray:
    """Rows of ``points`` for which the SQL condition holds (a NULL result counts as no); an empty
    condition keeps every row."""
    if not condition.strip():
        return np.ones(len(points), dtype=bool)
    matched = _matching_ids(points, condition)
    return points["row_id"].isin(matched).to_numpy()


def sql_rows(points: pd.DataFrame, condition: str) -> pd.DataFrame:
    """The rows of ``points`` for which the SQL condition holds, in the map's order."""
    return points[sql_mask(points, condition)]


def condition_columns(points: pd.DataFrame, condition: str) -> list[str]:
    """The table's columns the condition names, in the table's order."""
    # The WHERE clause only: the statement around it names row_id.
    where = _checked_tree(condition)["statements"][0]["node"]["where_clause"]
    named = {name.casefold() for node in _nodes(where) if node.get("class") == "COLUMN_REF"
             for name in node.get("column_names", [])[-1:]}
    return [c for c in points.columns if str(c).casefold() in named]


def _query(condition: str) -> str:
    # The parentheses keep the condition one expression: "a OR b" cannot escape into the statement around it.
    return f"SELECT row_id FROM {TABLE} WHERE (\n{condition}\n)"


def _connect():
    import duckdb

    return duckdb.connect(":memory:", config=_CONFIG)


def _checked_tree(condition: str) -> dict:
    """The parsed statement, once it is known to be one SELECT reading only the map's table."""
    import duckdb

    shown = _shown(condition)
    if len(condition) > MAX_CONDITION_CHARS:
        raise InputError(f"The SQL condition '{shown}' is {len(condition):,} characters long: a condition takes "
                         f"at most {MAX_CONDITION_CHARS:,}.")
    try:
        statements = duckdb.extract_statements(_query(condition))
    except duckdb.Error as exc:
        raise InputError(f"The SQL condition '{shown}' is not valid SQL: {_reason(exc)}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise InputError(f"The SQL condition '{shown}' is not one condition: a filter takes a condition such as "
                         "year >= 2020 AND venue = 'NeurIPS', without ';' or other statements.")
    with _connect() as connection:
        serialized = connection.execute("SELECT json_serialize_sql(?)", [_query(condition)]).fetchone()[0]
    try:
        tree = json.loads(serialized)
    except RecursionError:  # 900 nested list brackets parse in DuckDB but nest Python's JSON reader too deep
        raise InputError(f"The SQL condition '{shown}' is nested too deeply for a filter.") from None
    if tree.get("error"):
        raise InputError(f"The SQL condition '{shown}' is not valid SQL: {tree.get('error_message', '')}")
    for node in _nodes(tree):
        if str(node.get("function_name", "")).casefold() in _AMPLIFIERS:
            raise InputError(f"The SQL condition '{shown}' uses {node['function_name']}(), which a filter leaves out: "
                             "its result can be made large enough to hold the server.")
        kind = node.get("type")
        if kind == "TABLE_FUNCTION" or (kind == "BASE_TABLE" and (
                str(node.get("table_name", "")).casefold() != TABLE or node.get("schema_name")
                or node.get("catalog_name"))):
            raise InputError(f"The SQL condition '{shown}' reads something other than the map's table: a condition "
                             f"may use the columns of '{TABLE}' (and subqueries over it), nothing else.")
    return tree


def _nodes(tree) -> Iterator[dict]:
    """Every object of the parsed statement, depth first."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _matching_ids(points: pd.DataFrame, condition: str) -> list:
    import duckdb

    _checked_tree(condition)
    shown = _shown(condition)
    with _connect() as connection:
        # The already loaded table, scanned in place: nothing is read from disk.
        connection.register(TABLE, points)
        timer = threading.Timer(SQL_SECONDS, connection.interrupt)
        started = time.perf_counter()
        timer.start()
        try:
            rows = connection.execute(_query(condition)).fetchall()
        except duckdb.InterruptException:
            raise InputError(f"The SQL condition '{shown}' took too long (over {SQL_SECONDS:g} s) and was stopped: "
                             "filter with simpler conditions or fewer subqueries.") from None
        except duckdb.OutOfMemoryException:
            raise InputError(f"The SQL condition '{shown}' needs more memory than a filter may ({SQL_MEMORY}): "
                             "filter with simpler conditions or fewer subqueries.") from None
        except duckdb.Error as exc:
            if time.perf_counter() - started >= SQL_SECONDS and "interrupt" in str(exc).casefold():
                raise InputError(f"The SQL condition '{shown}' took too long (over {SQL_SECONDS:g} s) and was "
                                 "stopped.") from None
            raise InputError(f"The SQL condition '{shown}' cannot run on this map: {_reason(exc)}") from None
        finally:
            timer.cancel()
    return [row[0] for row in rows]


def _reason(exc: Exception) -> str:
    """DuckDB's first line without its kind (the lines after it echo our wrapper, not the user's text)."""
    first = str(exc).strip().split("\n", 1)[0]
    return _ERROR_KIND.sub("", first).rstrip(".!") + "."


def _shown(condition: str) -> str:
    flat = " ".join(condition.split())
    return flat if len(flat) <= SHOWN_CONDITION_CHARS else flat[: SHOWN_CONDITION_CHARS - 1] + "…"
