"""Every row's nearest rows in embedding space (cosine on unit vectors): exact up to a size, approximate beyond.

One kNN graph for everything that asks "which rows are close to this one" about the whole map at once
(UMAP's precomputed graph, the neighbours column, the trust layer, near-duplicates, placing new rows);
a single row's neighbours are search.nearest_neighbors."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np

from .progress import ProgressFn, no_progress

# Exact (blocked matrix products) up to this many rows: 100k x 256 dims took about a minute here;
# beyond, pynndescent's approximate graph (what UMAP builds too).
EXACT_MAX_ROWS = 100_000
# Rows per block of the exact products: a block of scores against every row stays near this size.
BLOCK_BYTES = 128 * 2**20
# A row's top k is looked for among its scores at least the k-th best of this many of its columns.
TOPK_SAMPLE = 2048


@dataclass
class KnnGraph:
    """Each row's k nearest other rows, nearest first, and their distances (n, k; cosine: 1 - similarity),
    whether they are exact, and the searcher that finds the nearest rows of new points among these."""

    indices: np.ndarray
    distances: np.ndarray
    exact: bool
    searcher: object | None = None
    seconds: float = 0.0

    @property
    def k(self) -> int:
        """Neighbours per row."""
        return int(self.indices.shape[1])

    @property
    def similarities(self) -> np.ndarray:
        """Cosine similarities of the neighbours (1 - distance)."""
        return (1.0 - self.distances).astype(np.float32)

    def query(self, x: np.ndarray, *, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest graph rows of each row of ``x``: (indices, distances), nearest first."""
        k = min(int(k), len(self.indices))
        indices, distances = self.searcher.query(np.ascontiguousarray(x, dtype=np.float32), k=k)
        return np.asarray(indices, dtype=np.int64), np.asarray(distances, dtype=np.float32)

    def umap_knn(self, n_neighbors: int) -> tuple[np.ndarray, np.ndarray, object | None]:
        """umap-learn's ``precomputed_knn``: each row itself first (distance 0), then its n_neighbors - 1
        nearest; fresh arrays (UMAP marks disconnected neighbours in place), the pynndescent index when
        approximate (exact graphs have none: UMAP's transform is then unavailable, `placement` needs none)."""
        n = len(self.indices)
        rows = np.arange(n, dtype=np.int64)[:, None]
        indices = np.hstack([rows, self.indices[:, : n_neighbors - 1]])
        distances = np.hstack([np.zeros((n, 1), dtype=np.float32), self.distances[:, : n_neighbors - 1]])
        return indices, distances.astype(np.float32), None if self.exact else self.searcher


@dataclass
class ExactSearch:
    """Exact cosine search of reference rows (made unit length) by blocked matrix products."""

    reference: np.ndarray

    def query(self, x: np.ndarray, *, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest reference rows of each row of ``x``: (indices, cosine distances)."""
        indices, similarities = nearest_rows(unit_rows(x), self.reference, k=k)
        return indices, (1.0 - similarities).clip(0.0, 2.0).astype(np.float32)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` as float32 rows of length 1 (zero rows stay zero), divided as scikit-learn's ``normalize`` does:
    UMAP's exact graph was scikit-learn's cosine until one graph served all, and UMAP's layout moves with
    a distance's last bit, so the same vectors and seed still give the same map."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        return x
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    norms[norms < 10 * np.finfo(norms.dtype).eps] = 1.0
    return x / norms[:, None]


def knn_graph(
    vectors: np.ndarray,
    *,
    k: int,
    exact_max_rows: int = EXACT_MAX_ROWS,
    seed: int = 42,
    progress: ProgressFn = no_progress,
) -> KnnGraph:
    """The k nearest other rows of every row by cosine distance, with a searcher for new points.

    Exact up to ``exact_max_rows`` rows (ties broken by row order), pynndescent beyond (UMAP's own
    call). Fewer than k + 1 rows give k = n - 1."""
    started = time.perf_counter()
    x = unit_rows(vectors)
    n = len(x)
    k = max(0, min(int(k), n - 1))
    if k == 0:
        empty = np.zeros((n, 0), dtype=np.int64)
        return KnnGraph(empty, empty.astype(np.float32), True, ExactSearch(x), time.perf_counter() - started)
    if n <= exact_max_rows:
        indices, similarities = nearest_rows(x, x, k=k, skip_self=True, progress=progress)
        distances = (1.0 - similarities).clip(0.0, 2.0).astype(np.float32)
        return KnnGraph(indices, distances, True, ExactSearch(x), time.perf_counter() - started)
    indices, distances, searcher = _approximate(x, k, seed=seed, progress=progress)
    return KnnGraph(indices, distances, False, searcher, time.perf_counter() - started)


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
        indices[start:stop], similarities[start:stop] = _top_k(block, k)
        progress("neighbours", stop / m, f"Nearest neighbours of {stop:,} of {m:,} rows")
    return indices, similarities


def _top_k(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k highest scores and their columns, best first, equal scores by lowest column (so a graph
    of more neighbours begins with the graph of fewer, and UMAP fed either lays out alike).

    Only the scores at least a row's k-th best among TOPK_SAMPLE evenly spread columns can be in its top k
    (that k-th best is at most the row's own): those few candidates are sorted, not the whole row (an
    argpartition of every score was two thirds of a 10,000-row graph's time)."""
    rows, n = block.shape
    sample = block[:, :: max(1, n // max(TOPK_SAMPLE, 2 * k + 2))]
    floor = -np.partition(-sample, k - 1, axis=1)[:, k - 1]
    candidate = block >= floor[:, None]
    # Many equal scores (a map of repeated rows) leave much of a row a candidate: such a row is sorted alone,
    # as a whole-row stable sort is cheaper than sorting its candidates among the block's.
    few = candidate.sum(axis=1) <= n // 8 + k
    indices = np.empty((rows, k), dtype=np.int64)
    scores = np.empty((rows, k), dtype=block.dtype)
    kept = np.flatnonzero(few)
    row, column = np.nonzero(candidate[kept])
    found = block[kept[row], column]
    order = np.lexsort((column, -found, row))
    # Every row has at least k candidates (its sample's k best), in a run of its own.
    counts = np.bincount(row, minlength=len(kept))
    first = np.cumsum(counts) - counts
    picked = order[first[:, None] + np.arange(k)]
    indices[kept], scores[kept] = column[picked], found[picked]
    for many in np.flatnonzero(~few):
        best = np.argsort(-block[many], kind="stable")[:k]
        indices[many], scores[many] = best, block[many, best]
    return indices, scores


def block_rows(n: int) -> int:
    """How many rows to score against ``n`` rows at once (BLOCK_BYTES of float32 scores)."""
    return int(max(16, min(n, BLOCK_BYTES // (4 * max(n, 1)))))


def _approximate(x: np.ndarray, k: int, *, seed: int, progress: ProgressFn) -> tuple[np.ndarray, np.ndarray, object]:
    from umap.umap_ import nearest_neighbors

    progress("neighbours", 0.0, f"Approximate nearest neighbours of {len(x):,} rows")
    enable_umap_cache()
    # UMAP's own call (angular trees, as UMAP.fit picks them for cosine), asked for one more: each row
    # comes first.
    found, distances, searcher = nearest_neighbors(
        x, k + 1, "cosine", {}, True, np.random.RandomState(seed),
        low_memory=True, use_pynndescent=True, n_jobs=1, verbose=False,
    )
    found = np.asarray(found, dtype=np.int64)
    drop = found == np.arange(len(x))[:, None]
    drop[~drop.any(axis=1), -1] = True  # a row not among its own neighbours loses its farthest instead
    keep = np.argsort(drop, axis=1, kind="stable")[:, :k]
    indices = np.take_along_axis(found, keep, axis=1)
    distances = np.maximum(np.take_along_axis(np.asarray(distances, dtype=np.float32), keep, axis=1), 0.0)
    progress("neighbours", 1.0, f"Approximate nearest neighbours of {len(x):,} rows")
    return indices, distances.astype(np.float32), searcher


# The modules whose numba kernels umap-learn and pynndescent compile without numba's disk cache (all of
# UMAP's own, pynndescent's parallel ones): every fresh process compiled them again, ~9 s for a UMAP
# of any size and ~20 s more for pynndescent's graph. With the cache a process loads them in well
# under a second; only the two that take the metric as a global stay uncacheable (numba refuses
# them), ~8 s of pynndescent's graph on a fresh process, which maps of EXACT_KNN_ROWS or fewer skip.
_KERNEL_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.spectral", "pynndescent.pynndescent_",
                   "pynndescent.utils", "pynndescent.distances", "pynndescent.kernels", "pynndescent.rp_trees",
                   "pynndescent.search")
_UNCACHEABLE = ("nn_descent", "nn_descent_internal")


@functools.cache
def enable_umap_cache() -> int:
    """Turn on numba's disk cache (beside the packages' sources, else numba's user cache directory, or
    $NUMBA_CACHE_DIR) for UMAP's and pynndescent's kernels that lack it, once per process and before
    they first compile; returns how many were turned on."""
    import importlib

    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    enabled = 0
    for name in _KERNEL_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a module a later release renames or drops
            continue
        for attribute in vars(module).values():
            if (isinstance(attribute, CPUDispatcher) and attribute.__module__ == name
                    and attribute.__name__ not in _UNCACHEABLE and isinstance(attribute._cache, NullCache)):
                attribute.enable_caching()
                enabled += 1
    return enabled
