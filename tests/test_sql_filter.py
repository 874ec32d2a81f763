"""The SQL condition filter: what it keeps, and the one line it refuses everything else with."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from explorer.errors import InputError
from explorer.sql_filter import SQL_SECONDS, condition_columns, sql_mask, sql_rows


@pytest.fixture
def points() -> pd.DataFrame:
    return pd.DataFrame({"row_id": [10, 11, 12, 13, 14, 15], "title": ["a;b", "B", "c", "d", "e", "f"],
                         "year": [2018, 2019, 2020, 2021, 2022, None], "venue": ["NeurIPS", "ICML"] * 3,
                         "x": np.zeros(6), "y": np.zeros(6)})


def refused(points: pd.DataFrame, condition: str) -> str:
    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        sql_mask(points, condition)
    assert time.perf_counter() - started < 2.0
    message = str(caught.value)
    assert "\n" not in message and message.startswith("The SQL condition '")
    return message


def test_a_condition_keeps_the_rows_it_holds_for(points):
    assert sql_mask(points, "year >= 2020 AND venue = 'NeurIPS'").tolist() == [False, False, True, False, True, False]
    assert sql_mask(points, "title = 'a;b'").tolist() == [True] + [False] * 5, "a ';' inside a string is text"
    assert sql_mask(points, "year > (SELECT min(year) FROM points) -- the earliest out").sum() == 4
    assert sql_mask(points, "year IS NULL").tolist() == [False] * 5 + [True]
    assert not sql_mask(points, "year > 2100").any()
    assert sql_mask(points, "  ").all(), "no condition, no filter"
    assert sql_rows(points, "title ILIKE 'b'")["row_id"].tolist() == [11]


def test_the_columns_a_condition_names(points):
    assert condition_columns(points, "venue = 'ICML' AND YEAR > 1 OR title = 'x'") == ["title", "year", "venue"]


@pytest.mark.parametrize("condition, says", [
    ("row_id IN (SELECT row_id FROM read_csv('/etc/passwd'))", "reads something other than the map's table"),
    ("1=1) UNION SELECT 1 FROM glob('/*') WHERE (1=1", "reads something other than the map's table"),
    ("row_id IN (SELECT row_id FROM main.points)", "reads something other than the map's table"),
    ("row_id IN (SELECT range FROM range(1000000000000))", "reads something other than the map's table"),
    ("1=1; DROP TABLE points", "is not valid SQL"),
    ("1=1 /* x */ ); DROP TABLE points; SELECT 1 WHERE (1", "is not one condition"),
    ("length(repeat('x', 2000000000)) > 0", "uses repeat()"),
    ("length(bitstring('1', 2000000000)) > 0", "uses bitstring()"),
    ("pg_sleep(5) IS NULL", "uses pg_sleep()"),
    ("year >", "is not valid SQL"),
    ("nope > 1", 'Referenced column "nope" not found'),
    ("getenv('HOME') = ''", "getenv does not exist"),
    ("x" * 2_001, "is 2,001 characters long"),
    ("[" * 900 + "1" + "]" * 900 + " IS NOT NULL", "is nested too deeply"),
])
def test_anything_else_is_refused_in_one_line(points, condition, says):
    assert says in refused(points, condition)


def test_a_huge_cross_join_hits_the_time_limit(points):
    tables = ", ".join(f"points p{i}" for i in range(14))
    message = refused(points, f"row_id IN (SELECT p0.row_id FROM {tables})")
    assert f"took too long (over {SQL_SECONDS:g} s)" in message


def test_importing_the_filter_does_not_load_duckdb():
    import subprocess
    import sys

    code = "import sys, explorer, explorer.sql_filter; assert 'duckdb' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
