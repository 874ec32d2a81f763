"""Exports of a saved map: CSV safe for spreadsheets, exact Parquet, BibTeX and RIS, clusters by name."""

from __future__ import annotations

import io
from collections.abc import Iterable

import pandas as pd

from .map_clusters import cluster_id_columns, named_points

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value):
    """Prefix a string that a spreadsheet would read as a formula with an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def export_points(saved, row_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """The map's rows (or those of ``row_ids``, in the map's order) as exported: each cluster column
    holds the cluster's label ("Unclustered" for -1) and a ``<column>_id`` column after it the id, for
    joining back to the map; the stored points are untouched."""
    points, named = saved.points, named_points(saved)
    for column in cluster_id_columns(saved):
        id_column = f"{column}_id"
        # A user's own column of that name wins: the label column still names the cluster.
        if id_column not in named.columns:
            named.insert(named.columns.get_loc(column) + 1, id_column, points[column].to_numpy())
    if row_ids is not None:
        named = named[points["row_id"].isin(list(row_ids)).to_numpy()]
    return named.reset_index(drop=True)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV (with BOM, so Excel detects it) with formula-like text cells neutralised."""
    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(neutralise_formula)
    # Column names come from the user's file too, and the header row is a row of cells.
    safe.columns = [neutralise_formula(str(col)) for col in safe.columns]
    return safe.to_csv(index=False).encode("utf-8-sig")


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Parquet with every value exact."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def to_bibtex_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 BibTeX: a bibliography's own entries, or entries built from the title, authors, year, DOI...
    columns of any other table."""
    from .bibliography import to_bibtex

    return to_bibtex(frame).encode("utf-8")


def to_ris_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 RIS: a RIS file's own entries, or entries built from the columns of any other table."""
    from .bibliography import to_ris

    return to_ris(frame).encode("utf-8")


def to_html_bytes(saved, *, color_by: str | None = None) -> bytes:
    """The map as one self-contained offline HTML page (explorer.html_export.to_html)."""
    from .html_export import to_html

    return to_html(saved, color_by=color_by)
