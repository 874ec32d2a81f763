"""A map's cluster labels as a table (labels.parquet beside points.parquet), read from its manifest.

The manifest holds the clusters (ids, labels, renames, centres); this module lays them out for a
zoomable map and writes them in the schema Embedding Atlas' ``--labels`` reads (x, y, text, integer
level with 0 the coarsest, priority), so a saved map opens there and in DuckDB with its labels."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

LABELS_FILE = "labels.parquet"
COLUMNS = ["x", "y", "text", "level", "priority", "cluster_id", "size"]


def label_rows(manifest: dict) -> pd.DataFrame:
    """Every level's cluster labels: x, y, text, level (its name), priority, cluster_id, size.

    Coarser levels outrank finer ones and, within a level, bigger clusters outrank smaller ones
    (priority in [0, n_levels), higher shows first: coarse in [n-1, n), the finest in [0, 1)). A finer
    cluster whose label is its parent's (the same group, or a rename of both) is left out: it would only
    repeat that label. Empty when the map has no clusters."""
    levels = (manifest.get("clusters") or {}).get("levels") or {}
    frames = []
    above: dict[int, str] = {}
    for rank, (level, section) in enumerate(levels.items()):
        clusters = [c for c in section["clusters"] if above.get(_parent_id(c), None) != c["label"]]
        above = {c["id"]: c["label"] for c in section["clusters"]}
        if not clusters:
            continue
        sizes = np.array([c["size"] for c in clusters], dtype=np.int64)
        frames.append(pd.DataFrame({
            "x": [float(c["centre"][0]) for c in clusters], "y": [float(c["centre"][1]) for c in clusters],
            "text": [str(c["label"]) for c in clusters], "level": level,
            # The size share stays below 1, so no cluster of a level reaches the level above.
            "priority": (len(levels) - 1 - rank) + sizes / (sizes.sum() + 1.0),
            "cluster_id": np.array([c["id"] for c in clusters], dtype=np.int64), "size": sizes,
        }))
    if not frames:
        return pd.DataFrame({column: [] for column in COLUMNS})
    return pd.concat(frames, ignore_index=True).sort_values(
        ["priority", "cluster_id"], ascending=[False, True], ignore_index=True, kind="stable")


def label_table(manifest: dict) -> pd.DataFrame | None:
    """labels.parquet's rows: ``label_rows`` with the level as a number (0 the coarsest, as Embedding
    Atlas reads it) and its name in ``level_name``; None when the map has no clusters."""
    rows = label_rows(manifest)
    if not len(rows):
        return None
    order = {name: i for i, name in enumerate((manifest.get("clusters") or {}).get("levels") or {})}
    return rows.assign(level_name=rows["level"], level=rows["level"].map(order).astype("int32"))


def write_labels(folder: str | Path, table: pd.DataFrame | None) -> Path | None:
    """Write ``table`` (label_table's) as ``folder``/labels.parquet, atomically; None removes the file."""
    path = Path(folder) / LABELS_FILE
    if table is None:
        path.unlink(missing_ok=True)
        return None
    staging = path.with_name(f".{path.stem}.{os.getpid()}.{time.time_ns()}.parquet")
    table.to_parquet(staging, index=False)
    os.replace(staging, path)  # a reader sees the old file or the new one, never half of one
    return path


def _parent_id(cluster: dict) -> int | None:
    return (cluster.get("parent") or {}).get("id")
