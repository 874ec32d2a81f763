"""Place new points (added rows, a search query) on a map that already exists, without moving it.

One rule for every point placed rather than laid out by UMAP (a big map's rows beyond UMAP's sample
too: project.place_rows): the per-axis median of the map positions of its nearest laid-out rows in
embedding space (project.median_positions). When those neighbours sit in two regions, a mean would
put the point in the empty space between them, which reads as a finding and is not; the median puts
it in the larger group (measured against UMAP's transform in project.place_rows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .neighbours import nearest_rows
from .progress import ProgressFn, no_progress
from .project import PLACE_NEIGHBORS, median_positions


@dataclass
class Placement:
    """Where new rows go (n, 2), their best similarity to any laid-out row, and those neighbours."""

    coords: np.ndarray
    best_similarity: np.ndarray
    neighbours: np.ndarray


def place_rows(
    vectors: np.ndarray,
    *,
    reference_vectors: np.ndarray,
    reference_coords: np.ndarray,
    k: int = PLACE_NEIGHBORS,
    progress: ProgressFn = no_progress,
) -> Placement:
    """Positions for ``vectors`` (unit rows) on the layout ``reference_coords`` of ``reference_vectors``,
    found by an exact search of the laid-out rows."""
    indices, similarities = nearest_rows(vectors, reference_vectors, k=k, progress=progress)
    if indices.shape[1] == 0:
        nothing = np.full(len(vectors), np.nan, dtype=np.float32)
        return Placement(np.full((len(vectors), 2), np.nan, dtype=np.float32), nothing, indices)
    coords = median_positions(np.asarray(reference_coords, dtype=np.float32), indices)
    return Placement(coords=coords, best_similarity=similarities[:, 0], neighbours=indices)


def place_query(coords: np.ndarray, hits: np.ndarray, *, k: int = PLACE_NEIGHBORS) -> np.ndarray:
    """Where a search query goes on the map: placed as an added row would be, from its ``k`` best hits
    (row positions, best first) that are drawn; NaN when none is."""
    coords = np.asarray(coords, dtype=np.float32)
    hits = np.asarray(hits, dtype=np.int64)
    hits = hits[np.isfinite(coords[hits]).all(axis=1)][:k] if len(hits) else hits
    if len(hits) == 0:
        return np.array([np.nan, np.nan], dtype=np.float32)
    return median_positions(coords, hits[None])[0]
