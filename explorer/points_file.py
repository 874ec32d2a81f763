"""points.parquet: a map's rows, and the ``neighbors`` column as Embedding Atlas reads it (per row
``{"ids", "distances"}``).

The neighbours are computed by explorer.neighbor_column, or given with the table
(``build_map(neighbors=)``, kept as they came), and written by the store beside the user's columns, so
`embedding-atlas points.parquet --neighbors neighbors` shows the same nearest rows the app does; they
are left out of `SavedMap.points`, which the app reads for everything else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

POINTS_FILE = "points.parquet"
NEIGHBORS_COLUMN = "neighbors"
NEIGHBOR_TYPE = pa.struct([("ids", pa.list_(pa.int64())), ("distances", pa.list_(pa.float32()))])


def given_neighbors(values: pd.Series) -> pa.Array:
    """The neighbours a table brought (dicts or None per row) as the column's type."""
    return pa.array(values.tolist(), type=NEIGHBOR_TYPE)


def kept_neighbors(folder: Path, row_ids: np.ndarray) -> pa.Array | None:
    """The neighbours column of the map saved in ``folder`` when it has the same rows (the caller knows
    whether its vectors are the same: explorer.map_files)."""
    path = folder / POINTS_FILE
    if not path.is_file() or NEIGHBORS_COLUMN not in pq.read_schema(path).names:
        return None
    old = pq.read_table(path, columns=["row_id", NEIGHBORS_COLUMN])
    if not np.array_equal(old.column("row_id").to_numpy(), np.asarray(row_ids)):
        return None
    return old.column(NEIGHBORS_COLUMN).combine_chunks()


def write_points(points: pd.DataFrame, path: Path, neighbors: pa.Array | None) -> None:
    """points.parquet: the map's columns, and the neighbours when there are any."""
    if neighbors is None:
        points.to_parquet(path, index=False)
        return
    table = pa.Table.from_pandas(points, preserve_index=False)
    pq.write_table(table.append_column(NEIGHBORS_COLUMN, neighbors), path)


def read_points(path: Path) -> pd.DataFrame:
    """points.parquet without the neighbours (`read_neighbor_lists` reads those)."""
    names = pq.read_schema(path).names
    columns = [c for c in names if c != NEIGHBORS_COLUMN] if NEIGHBORS_COLUMN in names else None
    return pd.read_parquet(path, columns=columns)


def read_neighbor_lists(path: Path) -> list | None:
    """The neighbours column of points.parquet (a dict or None per row), or None when it has none."""
    if NEIGHBORS_COLUMN not in pq.read_schema(path).names:
        return None
    return pq.read_table(path, columns=[NEIGHBORS_COLUMN]).column(NEIGHBORS_COLUMN).to_pylist()
