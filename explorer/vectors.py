"""Your own vectors and layout: a table's column of numeric lists (or an .npy beside it) kept instead of
embedding, and x/y columns kept instead of UMAP. Bad shapes get one clear message, never a crash."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

# Vectors shorter than this are rather a mistake (a year, an id) than an embedding.
MIN_DIMENSION = 2


@dataclass
class GivenVectors:
    """Unit vectors row-aligned with the table (zeros where a row has none) and which rows have one."""

    vectors: np.ndarray
    present: np.ndarray
    source: str

    @property
    def dimension(self) -> int:
        """Numbers per vector."""
        return int(self.vectors.shape[1])


def read_vectors(frame: pd.DataFrame, source: str | Path, *, base: Path | None = None) -> GivenVectors:
    """The vectors named by ``source``: a column of ``frame`` holding lists or arrays of numbers (or
    JSON text of them, as CSV stores them), or an .npy file of shape (rows, dimension)."""
    name = str(source)
    if name in frame.columns:
        return _from_column(frame[name], name)
    path = Path(name) if base is None or Path(name).is_absolute() else base / name
    if name.endswith(".npy"):
        if not path.is_file():
            raise InputError(f"No vector file {name}: give a column of the table or an .npy file that exists.")
        try:
            array = np.load(path, allow_pickle=False, mmap_mode="r")
        except ValueError as exc:
            raise InputError(f"{path.name} is not a plain .npy array of numbers: {exc}.") from exc
        if array.ndim != 2 or len(array) != len(frame):
            raise InputError(f"{path.name} holds an array of shape {tuple(array.shape)}; it must be "
                             f"({len(frame):,} rows, dimension) to match the table's {len(frame):,} rows.")
        return _checked(np.asarray(array, dtype=np.float64), np.ones(len(frame), dtype=bool), path.name)
    known = ", ".join(map(str, frame.columns[:20]))
    raise InputError(f"No column named '{name}' for the vectors (and it is not an .npy file). Columns: {known}.")


def read_layout(frame: pd.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """The given 2D layout (n, 2) from columns ``x`` and ``y``, and which rows have both coordinates."""
    for column in (x, y):
        if column not in frame.columns:
            known = ", ".join(map(str, frame.columns[:20]))
            raise InputError(f"No column named '{column}' for the layout. Columns: {known}.")
    coords = np.column_stack([pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64) for c in (x, y)])
    present = np.isfinite(coords).all(axis=1)
    bad = ~present & (frame[x].notna() | frame[y].notna()).to_numpy()
    if bad.any():
        raise InputError(f"{int(bad.sum()):,} rows have an '{x}' or '{y}' that is not a finite number (row "
                         f"{int(np.flatnonzero(bad)[0]) + 1} first): fix them, or leave both empty to leave a row "
                         "off the map.")
    if not present.any():
        raise InputError(f"No row has both '{x}' and '{y}': there is no layout to keep.")
    return coords.astype(np.float32), present


def _from_column(column: pd.Series, name: str) -> GivenVectors:
    rows, lengths = [], set()
    present = np.zeros(len(column), dtype=bool)
    for i, value in enumerate(column.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            rows.append(None)
            continue
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InputError(f"Row {i + 1} of '{name}' is not a list of numbers: {value[:40]!r}.") from exc
        try:
            vector = np.asarray(value, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InputError(f"Row {i + 1} of '{name}' is not a list of numbers.") from exc
        lengths.add(len(vector))
        if len(lengths) > 1:
            raise InputError(f"The vectors in '{name}' have different lengths ({', '.join(map(str, sorted(lengths)))}; "
                             f"row {i + 1} differs from the rows before it): every row needs the same dimension.")
        rows.append(vector)
        present[i] = True
    if not present.any():
        raise InputError(f"The column '{name}' holds no vectors.")
    dimension = lengths.pop()
    array = np.zeros((len(column), dimension), dtype=np.float64)
    for i in np.flatnonzero(present):
        array[i] = rows[i]
    return _checked(array, present, name)


def _checked(array: np.ndarray, present: np.ndarray, name: str) -> GivenVectors:
    """Unit vectors, after refusing what cannot be one: too few numbers, NaN or infinity, all zeros."""
    if array.shape[1] < MIN_DIMENSION:
        raise InputError(f"The vectors in '{name}' have {array.shape[1]} number(s) each; an embedding has at least "
                         f"{MIN_DIMENSION}.")
    finite = np.isfinite(array).all(axis=1)
    if not finite[present].all():
        row = int(np.flatnonzero(present & ~finite)[0])
        raise InputError(f"Row {row + 1} of '{name}' holds NaN or infinite numbers: every vector must be finite.")
    norms = np.linalg.norm(array, axis=1)
    zero = present & (norms == 0)
    if zero.any():
        raise InputError(f"Row {int(np.flatnonzero(zero)[0]) + 1} of '{name}' is all zeros: it has no direction "
                         "to compare by.")
    vectors = np.zeros(array.shape, dtype=np.float32)
    vectors[present] = (array[present] / norms[present, None]).astype(np.float32)
    return GivenVectors(vectors=vectors, present=present, source=name)
