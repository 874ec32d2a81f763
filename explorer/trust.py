"""Where the map misleads: how far each point's 2D neighbourhood agrees with its embedding-space one.

A point's trust is the share of its ``k_map`` nearest points on the map that are also among its
``k_space`` nearest rows in embedding space: 1 where the map's neighbourhood is a true one, 0 where
the points around it on the map are, in the embedding, strangers. The map-wide mean is a local form
of the trustworthiness of Venna & Kaski (which weighs the intruders by rank)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .map_files import save_map
from .neighbours import KnnGraph, knn_graph
from .progress import ProgressFn, no_progress
from .store import SavedMap, Workspace

K_MAP = 10
K_SPACE = 30
CHUNK_ROWS = 65_536
TRUST_COLUMN = "trust"
# Builds measure trust up to this many rows (3 s at 12k; at 100k the exact kNN took 125 s on 2 busy
# cores, docs/benchmarks.md); bigger maps measure it when asked (`explorer trust`, the app's button).
BUILD_MAX_ROWS = 20_000
# The exact kNN's cost per pair of rows, measured at 100k (125 s).
SECONDS_PER_PAIR = 1.25e-8


@dataclass
class Trust:
    """Each row's trust in [0, 1] (NaN for rows without an embedding) and how it was measured."""

    scores: np.ndarray
    k_map: int
    k_space: int
    exact: bool
    seconds: float

    @property
    def overall(self) -> float:
        """The mean trust of the map's points."""
        finite = self.scores[np.isfinite(self.scores)]
        return float(finite.mean()) if len(finite) else float("nan")


def trust_scores(
    embeddings: np.ndarray,
    coords: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    k_map: int = K_MAP,
    k_space: int = K_SPACE,
    graph: KnnGraph | None = None,
    progress: ProgressFn = no_progress,
) -> Trust:
    """Trust of every row whose ``valid`` is true (all rows by default), from the embedding-space kNN
    graph (``graph``, computed when not given, over the valid rows) and the 2D neighbours on the map."""
    started = time.perf_counter()
    n = len(coords)
    valid = np.ones(n, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    rows = np.flatnonzero(valid)
    scores = np.full(n, np.nan, dtype=np.float32)
    k_map = max(0, min(k_map, len(rows) - 1))
    if k_map == 0:
        return Trust(scores, k_map, k_space, True, time.perf_counter() - started)
    if graph is None:
        graph = knn_graph(np.asarray(embeddings)[rows], k=k_space, progress=progress)
    space = graph.indices
    progress("trust", 0.0, "Comparing neighbourhoods on the map and in the embedding")
    on_map = map_neighbours(np.asarray(coords, dtype=np.float64)[rows], k=k_map)
    agree = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), CHUNK_ROWS):
        stop = min(len(rows), start + CHUNK_ROWS)
        shared = (on_map[start:stop, :, None] == space[start:stop, None, :]).any(axis=2)
        agree[start:stop] = shared.mean(axis=1)
    scores[rows] = agree
    progress("trust", 1.0, f"Trust of {len(rows):,} points")
    return Trust(scores, k_map, graph.k, graph.exact, time.perf_counter() - started)


def map_neighbours(coords: np.ndarray, *, k: int) -> np.ndarray:
    """Each point's k nearest other points on the map (n, k), nearest first (a k-d tree: 2D is cheap)."""
    from sklearn.neighbors import NearestNeighbors

    found = NearestNeighbors(n_neighbors=k + 1, algorithm="kd_tree").fit(coords).kneighbors(return_distance=False)
    return found[:, :k].astype(np.int64)


def far_on_map(coords: np.ndarray, row: int, others: np.ndarray, *, k: int = K_SPACE) -> np.ndarray:
    """Which of ``others`` (say, ``row``'s nearest rows in embedding space) sit far from it on the map:
    farther than its ``k``-th nearest point there, so the map does not show them as its neighbours."""
    coords = np.asarray(coords, dtype=np.float64)
    distances = np.linalg.norm(coords - coords[row], axis=1)
    distances[row] = np.inf
    finite = distances[np.isfinite(distances)]
    if len(finite) <= k:
        return np.zeros(len(others), dtype=bool)
    radius = np.partition(finite, k - 1)[k - 1]
    return distances[np.asarray(others, dtype=np.int64)] > radius


def add_trust(saved: SavedMap, *, workspace: Workspace | None = None, progress: ProgressFn = no_progress) -> SavedMap:
    """Measure a saved map's trust and save it again with a ``trust`` column and a manifest summary
    (merged into any newer save of the map: its vectors, model and refinement stay as they are)."""
    workspace = workspace or Workspace(saved.path.parent.parent)
    points, manifest = with_trust(saved.points, saved.embeddings, saved.manifest, progress=progress)
    return save_map(workspace, saved.name, points=points, embeddings=saved.embeddings, manifest=manifest, base=saved)


def with_trust(points: pd.DataFrame, embeddings: np.ndarray, manifest: dict, *,
               progress: ProgressFn = no_progress) -> tuple[pd.DataFrame, dict]:
    """A map (saved or not yet) with its trust measured: the ``trust`` column, and the manifest's summary."""
    coords = points[["x", "y"]].to_numpy(dtype=np.float32, na_value=np.nan)
    trust = trust_scores(embeddings, coords, valid=points["embedded"].to_numpy(dtype=bool), progress=progress)
    summary = {"overall": round(trust.overall, 4), "k_map": trust.k_map, "k_space": trust.k_space,
               "exact": trust.exact, "seconds": round(trust.seconds, 3)}
    return points.assign(**{TRUST_COLUMN: trust.scores}), {**manifest, "trust": summary}


def trust_summary(saved: SavedMap) -> str | None:
    """One line on how far the map can be trusted, or None when it was never measured."""
    summary = saved.meta.trust
    if not summary:
        return None
    return (f"Trust {summary.overall:.2f}: on average {summary.overall * 100:.0f} % of a point's "
            f"{summary.k_map} nearest points on the map are among its {summary.k_space} nearest in the "
            "embedding" + ("" if summary.exact is not False else " (approximate neighbours)") + ".")


def trust_seconds_estimate(rows: int) -> float | None:
    """About how long measuring trust takes here (the exact kNN compares every pair); None beyond the
    exact size, where pynndescent's time was not measured."""
    from .neighbours import EXACT_MAX_ROWS

    return rows * rows * SECONDS_PER_PAIR if rows <= EXACT_MAX_ROWS else None
