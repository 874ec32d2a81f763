"""Place new points (added rows, a search query) on a map that already exists, without moving it.

A new point goes where its nearest laid-out rows in embedding space are, weighted by similarity, but
only among the neighbours that sit together on the map: when its neighbours are spread over two
regions, a plain weighted mean would put it in the empty space between them, which reads as a
finding and is not. So the point goes to the weighted mean of the neighbours around their weighted
medoid (the neighbour with the most similarity-weighted neighbours near it on the map)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .neighbours import nearest_rows
from .progress import ProgressFn, no_progress

K = 15
# A neighbour counts as "together" with the medoid within this many times the neighbours' median
# distance to it.
SPREAD = 1.5
CHUNK_ROWS = 16_384


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
    k: int = K,
    progress: ProgressFn = no_progress,
) -> Placement:
    """Positions for ``vectors`` (unit rows) on the layout ``reference_coords`` of ``reference_vectors``."""
    indices, similarities = nearest_rows(vectors, reference_vectors, k=k, progress=progress)
    coords = position_from_neighbours(np.asarray(reference_coords, dtype=np.float64)[indices], similarities)
    best = similarities[:, 0] if similarities.shape[1] else np.full(len(vectors), np.nan, dtype=np.float32)
    return Placement(coords=coords.astype(np.float32), best_similarity=best, neighbours=indices)


def position_from_neighbours(coords: np.ndarray, similarities: np.ndarray) -> np.ndarray:
    """Each point's position from its neighbours' map positions (m, k, 2) and similarities (m, k):
    the weighted mean of the neighbours near their weighted medoid."""
    coords = np.asarray(coords, dtype=np.float64)
    m, k = similarities.shape
    if k == 0:
        return np.full((m, 2), np.nan)
    # Squared, so that the closest neighbours dominate; never zero, so every neighbour still counts.
    weights = np.clip(np.asarray(similarities, dtype=np.float64), 1e-3, None) ** 2
    out = np.empty((m, 2))
    for start in range(0, m, CHUNK_ROWS):
        stop = min(m, start + CHUNK_ROWS)
        p, w = coords[start:stop], weights[start:stop]
        gaps = np.linalg.norm(p[:, :, None, :] - p[:, None, :, :], axis=3)  # (c, k, k)
        medoid = np.argmin((gaps * w[:, None, :]).sum(axis=2), axis=1)
        to_medoid = np.take_along_axis(gaps, medoid[:, None, None], axis=1)[:, 0, :]  # (c, k)
        radius = SPREAD * np.median(to_medoid, axis=1, keepdims=True)
        near = to_medoid <= np.maximum(radius, 1e-12)
        kept = w * near
        out[start:stop] = (p * kept[:, :, None]).sum(axis=1) / kept.sum(axis=1, keepdims=True)
    return out


def place_query(coords: np.ndarray, scores: np.ndarray, *, k: int = K) -> np.ndarray:
    """Where a search query goes on the map: placed as an added row would be, from the k rows it is most
    similar to (``scores`` for every row, NaN where a row has no vector); NaN when nothing scored."""
    coords = np.asarray(coords, dtype=np.float64)
    ranked = np.where(np.isfinite(scores) & np.isfinite(coords).all(axis=1), scores, -np.inf)
    k = min(k, int(np.isfinite(ranked).sum()))
    if k == 0:
        return np.array([np.nan, np.nan], dtype=np.float32)
    top = np.argpartition(-ranked, k - 1)[:k]
    top = top[np.argsort(-ranked[top], kind="stable")]
    return position_from_neighbours(coords[top][None], ranked[top][None])[0].astype(np.float32)
