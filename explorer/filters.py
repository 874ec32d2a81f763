"""Filters of a map view (keyword, regular expression, categories) and row look-ups, free of any UI."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError


def keyword_mask(texts: Sequence[str], pattern: str, *, regex: bool = False) -> np.ndarray:
    """Rows whose text contains ``pattern`` (case-insensitive substring, or a regular expression)."""
    if not pattern:
        return np.ones(len(texts), dtype=bool)
    if regex:
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise InputError(f"The filter '{pattern}' is not a valid regular expression: {exc}.") from exc
        return np.fromiter((bool(compiled.search(t)) for t in texts), dtype=bool, count=len(texts))
    needle = pattern.casefold()
    return np.fromiter((needle in t.casefold() for t in texts), dtype=bool, count=len(texts))


def category_mask(points: pd.DataFrame, filters: Mapping[str, Iterable]) -> np.ndarray:
    """Rows whose value in each filtered column is among the chosen values (no choice = no filter)."""
    mask = np.ones(len(points), dtype=bool)
    for column, values in filters.items():
        values = list(values)
        if values and column in points.columns:
            mask &= points[column].astype("string").fillna("(missing)").isin([str(v) for v in values]).to_numpy()
    return mask


SAMPLE_ROWS = 5_000


def filterable_columns(points: pd.DataFrame, *, max_values: int = 50) -> list[str]:
    """Columns that hold categories: few distinct values, each shared by several rows."""
    skip = {"row_id", "x", "y", "embedded"}
    columns = []
    for col in points.columns:
        if col in skip:
            continue
        # A sample with too many values rules a column out without hashing every long abstract.
        if points[col].head(SAMPLE_ROWS).nunique(dropna=True) > max_values:
            continue
        distinct = points[col].nunique(dropna=True)
        if 1 < distinct <= max_values and distinct <= 0.5 * points[col].notna().sum():
            columns.append(col)
    return columns


def positions_of(points: pd.DataFrame, row_ids: Iterable[int]) -> np.ndarray:
    """Positions in ``points`` of the given row ids (unknown ids dropped)."""
    index = pd.Index(points["row_id"])
    pos = index.get_indexer(list(row_ids))
    return pos[pos >= 0]


def display_columns(points: pd.DataFrame) -> list[str]:
    """The user's own columns, in order (without the map's bookkeeping columns)."""
    return [c for c in points.columns if c not in ("x", "y", "embedded")]
