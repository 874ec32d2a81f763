"""Near-duplicates: groups of rows whose vectors are almost the same (cosine at or above a threshold).

Exact up to neighbours.EXACT_MAX_ROWS rows (every pair is compared, in blocks); beyond, only the pairs
in the approximate kNN graph are, so a pair the graph misses is missed here too (said in the result)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .neighbours import EXACT_MAX_ROWS, block_rows, knn_graph
from .progress import ProgressFn, no_progress

THRESHOLD = 0.95
# Beyond the exact size, each row is compared with this many approximate neighbours.
APPROXIMATE_K = 15


@dataclass
class Duplicates:
    """Groups of row positions (each sorted, biggest group first) and how they were found."""

    groups: list[np.ndarray] = field(default_factory=list)
    threshold: float = THRESHOLD
    exact: bool = True
    seconds: float = 0.0

    @property
    def n_rows(self) -> int:
        """Rows that belong to some group."""
        return int(sum(len(g) for g in self.groups))

    def extra_rows(self) -> np.ndarray:
        """Every group's rows but its first: what removing the duplicates would drop."""
        if not self.groups:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate([g[1:] for g in self.groups]))


def near_duplicates(
    vectors: np.ndarray,
    *,
    threshold: float = THRESHOLD,
    valid: np.ndarray | None = None,
    exact_max_rows: int = EXACT_MAX_ROWS,
    progress: ProgressFn = no_progress,
) -> Duplicates:
    """Rows linked by a cosine similarity ≥ ``threshold``, grouped transitively (connected components)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"The similarity threshold must lie in [-1, 1], not {threshold}.")
    started = time.perf_counter()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    rows = np.flatnonzero(np.ones(len(x), dtype=bool) if valid is None else np.asarray(valid, dtype=bool))
    x = x[rows]
    n = len(x)
    if n <= exact_max_rows:
        left, right = _pairs_exact(x, threshold, progress=progress)
        exact = True
    else:
        graph = knn_graph(x, k=APPROXIMATE_K, exact_max_rows=exact_max_rows, progress=progress)
        hit = (graph.distances <= np.float32(1.0 - threshold)) & (graph.indices >= 0)  # cosine distance
        left, right = np.nonzero(hit)[0], graph.indices[hit]
        exact = False
    if len(left) == 0:
        return Duplicates([], threshold, exact, time.perf_counter() - started)
    links = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, component = connected_components(links, directed=False)
    sizes = np.bincount(component)
    grouped = np.flatnonzero(sizes[component] > 1)
    order = np.lexsort((grouped, component[grouped]))
    members = grouped[order]
    cuts = np.flatnonzero(np.diff(component[members])) + 1
    groups = [rows[g] for g in np.split(members, cuts)]
    groups.sort(key=lambda g: (-len(g), int(g[0])))
    return Duplicates(groups, threshold, exact, time.perf_counter() - started)


def _pairs_exact(x: np.ndarray, threshold: float, *, progress: ProgressFn) -> tuple[np.ndarray, np.ndarray]:
    """Every pair i < j with similarity ≥ threshold, comparing blocks of rows with the rows after them."""
    n = len(x)
    left, right = [], []
    step = block_rows(n)
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = x[start:stop] @ x[start:].T
        i, j = np.nonzero(block >= threshold)
        j = j + start
        keep = j > i + start
        left.append(i[keep] + start)
        right.append(j[keep])
        progress("duplicates", stop / n, f"Compared {stop:,} of {n:,} rows")
    return np.concatenate(left), np.concatenate(right)
