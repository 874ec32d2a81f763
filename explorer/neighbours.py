"""Every row's nearest rows in embedding space (cosine on unit vectors): exact up to a size, approximate beyond.

One kNN graph for everything that asks "which rows are close to this one" about the whole map at once
(the trust layer, near-duplicates); a single row's neighbours are search.nearest_neighbors."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .progress import ProgressFn, no_progress

# Exact (blocked matrix products) up to this many rows: 100k x 256 dims took about a minute here;
# beyond, pynndescent's approximate graph (what UMAP builds too).
EXACT_MAX_ROWS = 100_000
# Rows per block of the exact products: a block of scores against every row stays near this size.
BLOCK_BYTES = 128 * 2**20


@dataclass
class KnnGraph:
    """Each row's k nearest other rows, nearest first, and their cosine similarities (n, k)."""

    indices: np.ndarray
    similarities: np.ndarray
    exact: bool
    seconds: float

    @property
    def k(self) -> int:
        """Neighbours per row."""
        return int(self.indices.shape[1])


def knn_graph(
    vectors: np.ndarray,
    *,
    k: int,
    exact_max_rows: int = EXACT_MAX_ROWS,
    seed: int = 42,
    progress: ProgressFn = no_progress,
) -> KnnGraph:
    """The k nearest other rows of every row by cosine similarity (rows are L2-normalised vectors).

    Exact up to ``exact_max_rows`` rows (ties broken by row order), pynndescent beyond. Fewer than
    k + 1 rows give k = n - 1."""
    started = time.perf_counter()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(x)
    k = max(0, min(int(k), n - 1))
    if k == 0:
        empty = np.zeros((n, 0), dtype=np.int64)
        return KnnGraph(empty, empty.astype(np.float32), True, time.perf_counter() - started)
    if n <= exact_max_rows:
        indices, similarities = _exact(x, k, progress=progress)
        exact = True
    else:
        indices, similarities = _approximate(x, k, seed=seed, progress=progress)
        exact = False
    return KnnGraph(indices, similarities, exact, time.perf_counter() - started)


def _exact(x: np.ndarray, k: int, *, progress: ProgressFn) -> tuple[np.ndarray, np.ndarray]:
    return nearest_rows(x, x, k=k, skip_self=True, progress=progress)


def nearest_rows(
    queries: np.ndarray,
    reference: np.ndarray,
    *,
    k: int,
    skip_self: bool = False,
    progress: ProgressFn = no_progress,
) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of ``reference`` most similar to each query (exact, blocked), best first: indices and
    cosine similarities (m, k). ``skip_self``: the queries are the reference's own rows, each not its
    own neighbour. Equal scores go by row order, so the answer is the same on every run."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    reference = np.ascontiguousarray(reference, dtype=np.float32)
    m = len(queries)
    k = max(0, min(int(k), len(reference) - int(skip_self)))
    indices = np.empty((m, k), dtype=np.int64)
    similarities = np.empty((m, k), dtype=np.float32)
    if k == 0:
        return indices, similarities
    step = block_rows(len(reference))
    for start in range(0, m, step):
        stop = min(m, start + step)
        block = queries[start:stop] @ reference.T
        if skip_self:
            block[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        scores = np.take_along_axis(block, top, axis=1)
        order = np.lexsort((top, -scores), axis=1)
        indices[start:stop] = np.take_along_axis(top, order, axis=1)
        similarities[start:stop] = np.take_along_axis(scores, order, axis=1)
        progress("neighbours", stop / m, f"Nearest neighbours of {stop:,} of {m:,} rows")
    return indices, similarities


def block_rows(n: int) -> int:
    """How many rows to score against ``n`` rows at once (BLOCK_BYTES of float32 scores)."""
    return int(max(16, min(n, BLOCK_BYTES // (4 * max(n, 1)))))


def _approximate(x: np.ndarray, k: int, *, seed: int, progress: ProgressFn) -> tuple[np.ndarray, np.ndarray]:
    from .project import knn_graph as umap_graph

    progress("neighbours", 0.0, f"Approximate nearest neighbours of {len(x):,} rows")
    # The graph UMAP builds (pynndescent, numba's cache on), asked for one more: each row comes first.
    graph = umap_graph(x, n_neighbors=k + 1, metric="cosine", seed=seed, exact=False)
    found, distances = graph.indices, graph.distances
    drop = found == np.arange(len(x))[:, None]
    drop[~drop.any(axis=1), -1] = True  # a row not among its own neighbours loses its farthest instead
    keep = np.argsort(drop, axis=1, kind="stable")[:, :k]
    indices = np.take_along_axis(found, keep, axis=1).astype(np.int64)
    similarities = (1.0 - np.take_along_axis(distances, keep, axis=1)).astype(np.float32)
    progress("neighbours", 1.0, f"Approximate nearest neighbours of {len(x):,} rows")
    return indices, similarities
