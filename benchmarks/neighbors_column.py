"""What the ``neighbors`` column of points.parquet costs at save: the exact 15-NN of every row
(`neighbor_column.computed_neighbors`) and a whole save (`map_files.save_map`) with and without it.

    .venv/bin/python benchmarks/neighbors_column.py [--rows 5000 12000 20000] [--dims 256 384]

The vectors are random unit vectors (the exact kNN's cost depends on rows and dimensions, not on
what the vectors hold); 256 is the fast mode's dimension, 384 all-MiniLM-L6-v2's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from metrics import peak_rss_mb


def unit_vectors(rows: int, dims: int, *, seed: int = 0) -> np.ndarray:
    """``rows`` random float32 unit vectors."""
    vectors = np.random.default_rng(seed).standard_normal((rows, dims)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def points(rows: int) -> pd.DataFrame:
    """A map's points table: row ids, a short title, x and y."""
    rng = np.random.default_rng(1)
    return pd.DataFrame({"row_id": np.arange(rows), "title": [f"paper {i}" for i in range(rows)],
                         "x": rng.random(rows, dtype=np.float32), "y": rng.random(rows, dtype=np.float32),
                         "embedded": True})


def save_seconds(vectors: np.ndarray, *, with_neighbors: bool) -> float:
    """One `Workspace.save` of a fresh map, with the neighbours column or (over the limit) without."""
    from explorer import Workspace, neighbor_column
    from explorer.map_files import save_map

    limit = neighbor_column.NEIGHBORS_MAX_ROWS
    neighbor_column.NEIGHBORS_MAX_ROWS = len(vectors) if with_neighbors else 0
    try:
        with tempfile.TemporaryDirectory() as home:
            started = time.perf_counter()
            save_map(Workspace(Path(home)), "bench", points=points(len(vectors)), embeddings=vectors,
                     manifest={"rows": len(vectors), "embedded_rows": len(vectors), "dimension": vectors.shape[1]})
            return time.perf_counter() - started
    finally:
        neighbor_column.NEIGHBORS_MAX_ROWS = limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000, 12_000, 20_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[256, 384])
    args = parser.parse_args()
    from explorer.neighbor_column import computed_neighbors

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| Rows | Dims | 15-NN column s | save with it s | save without it s |")
    print("|---|---|---|---|---|")
    for rows in args.rows:
        for dims in args.dims:
            vectors = unit_vectors(rows, dims)
            started = time.perf_counter()
            column = computed_neighbors(vectors, np.ones(rows, dtype=bool), np.arange(rows))
            knn_s = time.perf_counter() - started
            assert column is not None and len(column) == rows
            with_s = save_seconds(vectors, with_neighbors=True)
            without_s = save_seconds(vectors, with_neighbors=False)
            print(f"| {rows:,} | {dims} | {knn_s:.2f} | {with_s:.2f} | {without_s:.2f} |", flush=True)
    print(f"peak RSS: {peak_rss_mb():.0f} MB; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
