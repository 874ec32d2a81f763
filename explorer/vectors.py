"""Your own vectors and layout: a table's column of numeric lists (or an .npy beside it) kept instead of
embedding, and x/y columns kept instead of UMAP. Bad shapes get one clear message, never a crash."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
    coords = np.column_stack([_coordinates(frame[c]) for c in (x, y)])
    present = np.isfinite(coords).all(axis=1)
    bad = ~present & (frame[x].notna() | frame[y].notna()).to_numpy()
    if bad.any():
        raise InputError(f"{int(bad.sum()):,} rows have an '{x}' or '{y}' that is not a finite number (row "
                         f"{int(np.flatnonzero(bad)[0]) + 1} first): fix them, or leave both empty to leave a row "
                         "off the map.")
    if not present.any():
        raise InputError(f"No row has both '{x}' and '{y}': there is no layout to keep.")
    # The map keeps 32-bit coordinates: 1e300 is finite here and would be stored as infinity.
    huge = present & (np.abs(coords) > np.finfo(np.float32).max).any(axis=1)
    if huge.any():
        raise InputError(f"{int(huge.sum()):,} rows have an '{x}' or '{y}' beyond ±3.4e38, the largest coordinate "
                         f"a map keeps (row {int(np.flatnonzero(huge)[0]) + 1} first): scale the layout down.")
    return coords.astype(np.float32), present


def _coordinates(column: pd.Series) -> np.ndarray:
    """A layout column as float64, NaN where a cell is not a number."""
    try:
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    except OverflowError:  # an integer past float64's range (JSON allows 10**400): infinite, so refused
        column = column.map(lambda v: np.inf if isinstance(v, int) and abs(v) >= 2**1024 else v)
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


def _missing(value) -> bool:
    """An empty cell: None, NaN or blank text."""
    return value is None or (isinstance(value, float) and np.isnan(value)) or (isinstance(value, str)
                                                                              and not value.strip())


def _cell(value):
    """A cell as a Python value: lists and structs come as JSON text from CSV, JSON and the loader's
    Parquet reader, or as numpy arrays from a DataFrame (json.JSONDecodeError for text that is not JSON)."""
    if isinstance(value, str):
        return json.loads(value)
    return value.tolist() if isinstance(value, np.ndarray) else value


def _from_column(column: pd.Series, name: str) -> GivenVectors:
    rows, lengths = [], set()
    present = np.zeros(len(column), dtype=bool)
    for i, value in enumerate(column.tolist()):
        if _missing(value):
            rows.append(None)
            continue
        try:
            value = _cell(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"Row {i + 1} of '{name}' is not a list of numbers: {value[:40]!r}.") from exc
        except RecursionError as exc:  # JSON text nested thousands deep: its parser runs out of stack
            raise InputError(f"Row {i + 1} of '{name}' is nested too deeply to be a list of numbers.") from exc
        try:
            vector = np.asarray(value, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InputError(f"Row {i + 1} of '{name}' is not a list of numbers.") from exc
        except OverflowError as exc:  # an integer of hundreds of digits, as JSON allows
            raise InputError(f"Row {i + 1} of '{name}' holds a number too large for a vector (over 1.8e308).") from exc
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
    # Each row is divided by its largest magnitude before its norm is taken: the norm of [1e200]*3 overflows
    # to inf (the vector would come out as zeros) and that of [1e-320]*3 underflows to 0 (refused as zeros).
    largest = np.maximum(array.max(axis=1, initial=0.0), -array.min(axis=1, initial=0.0))
    zero = present & (largest == 0)
    if zero.any():
        raise InputError(f"Row {int(np.flatnonzero(zero)[0]) + 1} of '{name}' is all zeros: it has no direction "
                         "to compare by.")
    scaled = array[present] / largest[present, None]
    vectors = np.zeros(array.shape, dtype=np.float32)
    vectors[present] = (scaled / np.linalg.norm(scaled, axis=1, keepdims=True)).astype(np.float32)
    return GivenVectors(vectors=vectors, present=present, source=name)


# The model id of a map that keeps vectors nobody here can make again: no query can be embedded into them.
GIVEN_MODEL_PREFIX = "given:"


@dataclass
class GivenInputs:
    """What a table brings instead of being computed: vectors, a 2D layout, neighbour lists; and the
    columns that held vectors or neighbours (dropped from the saved table, which stores them its own way)."""

    vectors: GivenVectors | None = None
    layout: np.ndarray | None = None
    layout_present: np.ndarray | None = None
    layout_columns: tuple[str, str] | None = None
    neighbors: list | None = None
    neighbors_column: str | None = None
    consumed: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The manifest's record of what was given."""
        return {"vectors": self.vectors.source if self.vectors is not None else None,
                "dimension": self.vectors.dimension if self.vectors is not None else None,
                "layout": list(self.layout_columns) if self.layout_columns else None,
                "neighbors": self.neighbors_column}


def read_given(
    frame: pd.DataFrame,
    *,
    vectors: str | Path | None = None,
    x: str | None = None,
    y: str | None = None,
    neighbors: str | None = None,
    base: Path | None = None,
) -> GivenInputs:
    """Read the given vectors (a column or an .npy), layout (``x`` and ``y`` together) and neighbours
    (Embedding Atlas' ``{"ids": [...], "distances": [...]}`` per row, ids being row numbers from 0) of a table."""
    if (x is None) != (y is None):
        raise InputError("A layout needs both coordinates: give --x and --y together.")
    given = GivenInputs()
    consumed: list[str] = []
    if vectors is not None:
        column = column_of(frame, str(vectors)) if not str(vectors).endswith(".npy") else None
        given.vectors = read_vectors(frame, column or vectors, base=base)
        consumed += [column] if column else []
    if x is not None:
        columns = (column_of(frame, x), column_of(frame, y))
        given.layout, given.layout_present = read_layout(frame, *columns)
        given.layout_columns = columns
    if neighbors is not None:
        column = column_of(frame, neighbors)
        given.neighbors, given.neighbors_column = read_neighbors(frame, column), column
        consumed.append(column)
    given.consumed = tuple(c for c in dict.fromkeys(consumed) if c in frame.columns)
    return given


def column_of(frame: pd.DataFrame, name: str) -> str:
    """The table's column ``name``, also when the reader renamed it (a user's x, y or row_id becomes
    x_original...: the map uses those names itself)."""
    if name in frame.columns:
        return name
    renamed = f"{name}_original"
    return renamed if renamed in frame.columns else name


def read_neighbors(frame: pd.DataFrame, column: str) -> list:
    """Per row, a ``{"ids": [...], "distances": [...]}`` dict (or None), checked: ids are row numbers."""
    if column not in frame.columns:
        known = ", ".join(map(str, frame.columns[:20]))
        raise InputError(f"No column named '{column}' for the neighbours. Columns: {known}.")
    n, rows = len(frame), []
    for i, value in enumerate(frame[column].tolist()):
        if _missing(value):
            rows.append(None)
            continue
        try:
            value = _cell(value)
            ids = [int(v) for v in value["ids"]]
            distances = [float(v) for v in value.get("distances", [np.nan] * len(ids))]
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
            raise InputError(f"Row {i + 1} of '{column}' is not neighbours as Embedding Atlas writes them: "
                             '{"ids": [row numbers], "distances": [numbers]}.') from exc
        if len(distances) != len(ids):
            raise InputError(f"Row {i + 1} of '{column}' has {len(ids)} ids but {len(distances)} distances.")
        if any(not 0 <= j < n for j in ids):
            raise InputError(f"Row {i + 1} of '{column}' names a neighbour outside the table's {n:,} rows "
                             "(ids are row numbers, counted from 0).")
        rows.append({"ids": ids, "distances": distances})
    return rows


@dataclass
class OfferedColumns:
    """The columns of a table that could bring its own vectors, a layout or neighbours (the upload form's
    choices), judged by their first values."""

    vectors: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    neighbors: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        """Whether there is anything to offer: a layout takes two numeric columns."""
        return bool(self.vectors or self.neighbors or len(self.numeric) >= 2)

    @property
    def likely(self) -> bool:
        """Whether the table looks made for it (vectors, neighbours, or columns named like a layout's x and
        y), rather than merely having two numbers, such as a year and a count."""
        names = {str(c).lower().removesuffix("_original") for c in self.numeric}
        pairs = any(n.endswith("x") and n[:-1] + "y" in names for n in names)
        return bool(self.vectors or self.neighbors or pairs)


def offered_columns(frame: pd.DataFrame, *, sample: int = 5) -> OfferedColumns:
    """The table's columns of numeric lists, of numbers, and of Embedding Atlas neighbours."""
    found = OfferedColumns()
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            if values.notna().any():
                found.numeric.append(column)
            continue
        cells = [_parsed_or_none(v) for v in values.head(50).tolist() if not _missing(v)][:sample]
        if cells and all(_is_vector(v) for v in cells):
            found.vectors.append(column)
        elif cells and all(isinstance(v, dict) and isinstance(v.get("ids"), list) for v in cells):
            found.neighbors.append(column)
    return found


def _parsed_or_none(value):
    try:
        return _cell(value) if not isinstance(value, str) or value.lstrip().startswith(("[", "{")) else value
    except (json.JSONDecodeError, RecursionError):
        return None


def _is_vector(value) -> bool:
    """A flat list of numbers long enough to be an embedding (not bools, not nested)."""
    return (isinstance(value, list) and len(value) >= MIN_DIMENSION
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
