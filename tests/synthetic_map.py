"""A synthetic saved map of any size: Gaussian blobs with a category column, for the points layer's tests and benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CATEGORIES = 12
DIMENSION = 16


def synthetic_points(rows: int, *, seed: int = 0) -> pd.DataFrame:
    """``rows`` points in Gaussian blobs of different sizes and spreads, a category per blob, a title per row."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(CATEGORIES, 2))
    spread = rng.uniform(0.4, 1.8, size=CATEGORIES)
    weights = rng.dirichlet(np.full(CATEGORIES, 2.0))
    blob = rng.choice(CATEGORIES, size=rows, p=weights)
    xy = centres[blob] + rng.normal(size=(rows, 2)) * spread[blob, None]
    names = np.array([f"field {chr(65 + i)}" for i in range(CATEGORIES)], dtype=object)
    return pd.DataFrame({
        "row_id": np.arange(rows, dtype=np.int64),
        "title": [f"Synthetic paper {i} of {names[b]}" for i, b in enumerate(blob)],
        "category": names[blob],
        "x": xy[:, 0].astype(np.float32), "y": xy[:, 1].astype(np.float32),
        "embedded": np.ones(rows, dtype=bool),
    })


def synthetic_map(home: Path, name: str, rows: int, *, seed: int = 0):
    """Save a synthetic map of ``rows`` points into the workspace at ``home``."""
    from explorer import Workspace

    points = synthetic_points(rows, seed=seed)
    vectors = np.random.default_rng(seed + 1).normal(size=(rows, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    manifest = {"kind": "text", "rows": rows, "embedded_rows": rows, "text_columns": ["title"], "template": None,
                "model_id": f"hashing-{DIMENSION}", "model": f"hashing-{DIMENSION}", "model_hash": "",
                "dimension": DIMENSION, "projection": {"method": "synthetic"}, "notes": [], "seconds": {},
                "source": {"name": "synthetic", "format": "dataframe", "sha256": "", "encoding": None}}
    return Workspace(home).save(name, points=points, embeddings=vectors, manifest=manifest)
