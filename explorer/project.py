"""Step 3, project: embeddings to 2D coordinates with UMAP (default) or PCA."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .cache_files import cache_folder, set_aside
from .hashing import bytes_hash, combined_hash
from .progress import ProgressFn, no_progress

log = logging.getLogger(__name__)

METHODS = ("umap", "pca")
# Below this many rows UMAP's graph is too small to be meaningful (and its spectral init fails).
MIN_ROWS_FOR_UMAP = 10
# Up to this many rows the neighbour graph is exact, a brute-force product by scikit-learn, passed to
# UMAP as ``precomputed_knn``. Below 4,096 rows UMAP would otherwise compute every distance through a
# numba metric inside scikit-learn's pairwise_distances, compiled anew in every process (11.6 s of a
# 14.5 s layout of 2,500 abstracts); up to 20k rows the exact graph took 2-7 s here where
# pynndescent's costs ~8 s of compiling in every fresh process (see `enable_umap_cache`) before it
# starts. Above, the n^2 product grows too dear and pynndescent's approximate graph is used.
EXACT_KNN_ROWS = 20_000
# Above this many rows UMAP is fitted on a seeded sample and the other rows are placed near their
# nearest sample rows (`place_rows`), which bounds memory and time. Not below: on 100k rows x 256
# dims a full fit took 49 s and 1.8 GB.
SAMPLE_ROWS = 150_000
# Rows placed per step (one progress report each): a few MB of neighbours at a time.
PLACE_CHUNK_ROWS = 20_000
# The nearest sample rows whose positions place a new row (see `place_rows`).
PLACE_NEIGHBORS = 10
# The layout recipe, part of the projection cache's key: another way of finding neighbours or of
# placing the rows outside the sample gives another layout.
LAYOUT_RECIPE = "exact-knn-20000;place-median-10"


@dataclass(frozen=True)
class ProjectionConfig:
    """How to lay out the map; the seed makes the same input give the same map."""

    method: str = "umap"
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    seed: int = 42
    sample_rows: int = SAMPLE_ROWS

    def to_dict(self) -> dict:
        """Plain dict for the manifest."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ProjectionConfig:
        """The settings a manifest recorded (its notes such as method_used ignored)."""
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Projection:
    """2D float32 coordinates, row-aligned with the embeddings given."""

    coords: np.ndarray
    method: str
    config: ProjectionConfig
    seconds: float
    reducer: object | None = None
    # The neighbour graph of the rows UMAP was fitted on (every row, or the sample) and their
    # positions: what `place_rows` needs to lay out more rows later, without UMAP's transform.
    knn: KnnGraph | None = None
    fitted_rows: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)  # a damaged cache entry moved aside, for the build's notes


@dataclass
class KnnGraph:
    """Each fitted row's nearest fitted rows (itself first) and their distances, plus the index that
    finds the nearest fitted rows of new ones (scikit-learn's exact search, or pynndescent's)."""

    indices: np.ndarray
    distances: np.ndarray
    searcher: object
    metric: str

    @property
    def n_neighbors(self) -> int:
        """Neighbours per row (the graph serves any UMAP asking for as many or fewer)."""
        return int(self.indices.shape[1])

    @property
    def exact(self) -> bool:
        """Whether the neighbours are exact (brute force) rather than pynndescent's approximation."""
        return hasattr(self.searcher, "kneighbors")

    def query(self, x: np.ndarray, *, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest fitted rows of each row of ``x``: (indices, distances), nearest first."""
        k = min(k, len(self.indices))
        if self.exact:
            distances, indices = self.searcher.kneighbors(x, n_neighbors=k)
        else:
            indices, distances = self.searcher.query(x, k=k)
        return np.asarray(indices, dtype=np.int64), np.asarray(distances, dtype=np.float32)


def project(
    embeddings: np.ndarray,
    *,
    config: ProjectionConfig | None = None,
    cache_dir: str | Path | None = None,
    init: np.ndarray | None = None,
    progress: ProgressFn = no_progress,
) -> Projection:
    """Lay out embeddings in 2D; tiny or degenerate inputs get a valid layout, not an exception.

    With ``cache_dir`` a layout is kept by the hash of the embeddings and the configuration, so the
    same vectors with the same settings are laid out once (the reducer is not kept). ``init`` (n, 2),
    row-aligned, starts UMAP from an existing layout (UMAP rescales it), so a re-layout of the same
    rows moves them as little as the new vectors allow; PCA ignores it."""
    config = config or ProjectionConfig()
    if config.method not in METHODS:
        raise ValueError(f"Unknown projection method '{config.method}'; choose one of {', '.join(METHODS)}.")
    started = time.perf_counter()
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if init is not None:
        init = np.ascontiguousarray(init, dtype=np.float32)
        if init.shape != (len(x), 2) or not np.isfinite(init).all():
            raise ValueError(f"init must be {len(x)} finite (x, y) rows, row-aligned with the embeddings.")
    cached = _cache_file(cache_dir, x, config, init) if cache_dir is not None else None
    notes: list[str] = []
    found = _cached_layout(cached, len(x), notes) if cached is not None else None
    if found is not None:
        log.info("layout of %d rows from the projection cache", len(x))
        return Projection(coords=found[0], method=found[1], config=config, seconds=time.perf_counter() - started,
                          notes=notes)
    n = len(x)
    reducer = fit = None
    if n == 0:
        coords, method = np.zeros((0, 2), dtype=np.float32), config.method
    elif n == 1 or _spread(x) < 1e-6:
        coords, method = np.zeros((n, 2), dtype=np.float32), "constant"
    elif config.method == "pca" or n < MIN_ROWS_FOR_UMAP:
        coords, method = project_pca(x, seed=config.seed), "pca"
    else:
        fit = fit_umap(x, config=config, init=init, progress=progress)
        coords, reducer, method = fit.coords, fit.reducer, "umap"
    coords = coords.astype(np.float32)
    if cached is not None:
        _store(cached, coords, method, notes)
    return Projection(
        coords=coords,
        method=method,
        config=config,
        seconds=time.perf_counter() - started,
        reducer=reducer,
        knn=fit.knn if fit is not None else None,
        fitted_rows=fit.fitted_rows if fit is not None else None,
        notes=notes,
    )


def _cache_file(cache_dir: str | Path, x: np.ndarray, config: ProjectionConfig,
                init: np.ndarray | None = None) -> Path:
    """The cache entry of a layout: one recipe over the vectors' bytes and shape, the settings, UMAP's
    version and the starting layout when there is one (another start gives another layout)."""
    from importlib.metadata import version

    parts = [bytes_hash(x.tobytes()), str(x.shape), json.dumps(config.to_dict(), sort_keys=True),
             version("umap-learn"), LAYOUT_RECIPE]
    if init is not None:
        parts.append("init:" + bytes_hash(init.tobytes()))
    key = combined_hash(parts)
    return Path(cache_dir) / f"{key}.npz"


def _cached_layout(path: Path, n: int, notes: list[str]) -> tuple[np.ndarray, str] | None:
    """The layout a cache entry holds, or None; an entry that is not n finite (x, y) rows (bytes that are no
    .npz, a folder in its place, another shape) is moved aside: the cache is disposable, the layout is made again."""
    if not os.path.lexists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            coords, method = np.asarray(stored["coords"], dtype=np.float32), str(stored["method"])
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:  # what damaged files raise
        reason = f"not a layout this cache wrote: {type(exc).__name__}"
    else:
        if coords.shape == (n, 2) and np.isfinite(coords).all():
            return coords, method
        reason = (f"it holds coordinates of shape {coords.shape} for {n:,} rows" if coords.shape != (n, 2)
                  else "some of its coordinates are not finite")
    with contextlib.suppress(OSError):
        notes.append(set_aside(path, "projection cache entry", reason))
    return None


def _store(path: Path, coords: np.ndarray, method: str, notes: list[str]) -> None:
    """Keep a layout in the cache; a cache that cannot be written leaves the layout uncached, said in ``notes``."""
    tmp = path.with_name(f".{path.stem}.{time.time_ns()}.npz")
    try:
        note = cache_folder(path.parent)
        notes += [note] if note else []
        np.savez(tmp, coords=coords, method=np.array(method))
        tmp.replace(path)  # atomic: a reader sees the whole entry or none
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        notes.append(f"The layout could not be kept in the projection cache {path.parent} "
                     f"({' '.join(str(exc).split())[:120]}): the next build of these vectors lays them out again.")
        log.warning(notes[-1])


def _spread(x: np.ndarray) -> float:
    return float(np.abs(x - x[0]).max())


def project_pca(x: np.ndarray, *, seed: int = 42) -> np.ndarray:
    """The first two principal components (padded with zeros when there are fewer)."""
    from sklearn.decomposition import PCA

    k = min(2, x.shape[0], x.shape[1])
    coords = PCA(n_components=k, random_state=seed).fit_transform(x)
    if k < 2:
        coords = np.hstack([coords, np.zeros((len(coords), 2 - k))])
    return coords.astype(np.float32)


def project_umap(
    x: np.ndarray, *, config: ProjectionConfig, n_components: int = 2, init: np.ndarray | None = None,
    knn: KnnGraph | None = None, progress: ProgressFn = no_progress,
) -> tuple[np.ndarray, object]:
    """UMAP with the configured neighbours, distance and seed; returns coordinates and the fitted reducer
    (`fit_umap` also returns the neighbour graph, to reuse or to place more rows)."""
    fit = fit_umap(x, config=config, n_components=n_components, init=init, knn=knn, progress=progress)
    return fit.coords, fit.reducer


@dataclass
class UmapFit:
    """A UMAP layout: coordinates of every row, the reducer, the graph of the rows it was fitted on
    (all of them, or a sample) and their positions."""

    coords: np.ndarray
    reducer: object
    knn: KnnGraph
    fitted_rows: np.ndarray


def fit_umap(
    x: np.ndarray, *, config: ProjectionConfig, n_components: int = 2, init: np.ndarray | None = None,
    knn: KnnGraph | None = None, progress: ProgressFn = no_progress,
) -> UmapFit:
    """UMAP fitted on every row, or above ``config.sample_rows`` on a seeded sample with the other rows
    placed by `place_rows`. ``init`` (row-aligned) replaces the spectral start; ``knn``, a graph of
    these same rows with at least ``config.n_neighbors`` neighbours, is used instead of a new one (one
    graph for every UMAP of a build)."""
    import umap
    from threadpoolctl import threadpool_limits

    enable_umap_cache()
    x = np.ascontiguousarray(x, dtype=np.float32)
    n_neighbors = max(2, min(config.n_neighbors, len(x) - 1))
    sampled = len(x) > config.sample_rows
    fitted_rows = sample_indices(len(x), config.sample_rows, seed=config.seed) if sampled else np.arange(len(x))
    fit_x = x[fitted_rows] if sampled else x
    # One BLAS thread (UMAP's own loops are numba's): on two shared cores OpenBLAS's second thread
    # slowed the spectral start so much that a 12k-row layout took 7 s instead of 4.6 s.
    with threadpool_limits(limits=1, user_api="blas"):
        usable = knn is not None and not sampled and len(knn.indices) == len(x) and knn.n_neighbors >= n_neighbors
        graph = knn if usable else knn_graph(fit_x, n_neighbors=n_neighbors, metric=config.metric, seed=config.seed)
        reducer = umap.UMAP(
            n_components=n_components,
            n_neighbors=n_neighbors,
            min_dist=config.min_dist,
            metric=config.metric,
            random_state=config.seed,
            # A fixed random_state makes UMAP single-threaded anyway; saying so silences its warning.
            n_jobs=1,
            # Copies: UMAP marks disconnected neighbours in place, and the graph may serve another UMAP.
            precomputed_knn=(graph.indices[:, :n_neighbors].copy(), graph.distances[:, :n_neighbors].copy(),
                             None if graph.exact else graph.searcher),
            **({} if init is None else {"init": init[fitted_rows] if sampled else init}),
        )
        with _quiet_precomputed_warning():
            fitted = np.asarray(reducer.fit_transform(fit_x), dtype=np.float32)
        if not sampled:
            return UmapFit(coords=fitted, reducer=reducer, knn=graph, fitted_rows=fitted_rows)
        coords = np.empty((len(x), n_components), dtype=np.float32)
        coords[fitted_rows] = fitted
        rest = np.setdiff1d(np.arange(len(x)), fitted_rows)
        log.info("UMAP fitted on %d of %d rows; placing the other %d near their nearest sample rows",
                 len(fitted_rows), len(x), len(rest))
        coords[rest] = place_rows(x, graph, fitted, rows=rest, progress=progress)
    return UmapFit(coords=coords, reducer=reducer, knn=graph, fitted_rows=fitted_rows)


def knn_graph(x: np.ndarray, *, n_neighbors: int, metric: str = "cosine", seed: int = 42,
              exact: bool | None = None) -> KnnGraph:
    """The ``n_neighbors`` nearest rows of every row (itself first): exact (by default up to
    EXACT_KNN_ROWS rows), else pynndescent's approximation, as UMAP itself would compute it."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n_neighbors = max(1, min(n_neighbors, len(x)))
    if exact if exact is not None else len(x) <= EXACT_KNN_ROWS:
        from sklearn.neighbors import NearestNeighbors

        searcher = NearestNeighbors(n_neighbors=n_neighbors, metric=metric, algorithm="brute").fit(x)
        distances, indices = searcher.kneighbors(x)
        # Rounding can leave a row's distance to itself at -1e-7; UMAP's smoothing wants none below 0.
        distances = np.maximum(distances, 0.0)
    else:
        from umap.umap_ import nearest_neighbors

        enable_umap_cache()
        # UMAP's own call: angular trees for the angular metrics, as UMAP.fit would pick them.
        indices, distances, searcher = nearest_neighbors(
            x, n_neighbors, metric, {}, metric in ANGULAR_METRICS, np.random.RandomState(seed),
            low_memory=True, use_pynndescent=True, n_jobs=1, verbose=False,
        )
    return KnnGraph(indices=np.asarray(indices, dtype=np.int64), distances=np.asarray(distances, dtype=np.float32),
                    searcher=searcher, metric=metric)


ANGULAR_METRICS = ("cosine", "correlation", "dice", "jaccard", "hellinger")


def place_rows(
    x: np.ndarray, knn: KnnGraph, fitted_coords: np.ndarray, *, rows: np.ndarray | None = None,
    n_neighbors: int = PLACE_NEIGHBORS, chunk_rows: int = PLACE_CHUNK_ROWS, progress: ProgressFn = no_progress,
) -> np.ndarray:
    """New rows (``x``, or its ``rows``) laid out among the fitted ones: each at the per-axis median of
    the positions of its ``n_neighbors`` nearest fitted rows, found by ``knn``'s index; deterministic
    (with an exact graph whatever the chunks; pynndescent's search seeds each chunk alike).

    Measured against UMAP's ``transform`` (100k arXiv rows, 70k placed beside a 30k-row fit, the real
    papers' 2D 10-NN of the field / trustworthiness): the median of 10 gave 0.602 / 0.885 in 1.7 s,
    transform 0.602 / 0.889 in 23 s, a mean weighted as UMAP weighs neighbours (where transform starts
    before its epochs) 0.580 / 0.853: a row whose neighbours straddle two groups lands in the larger
    one, not in the empty space between them. It needs only the sample's graph and positions, so it
    works where transform cannot (an exact graph has no pynndescent index)."""
    fitted_coords = np.asarray(fitted_coords, dtype=np.float32)
    n = len(x) if rows is None else len(rows)
    out = np.empty((n, fitted_coords.shape[1]), dtype=np.float32)
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        # Only a chunk of the rows is copied at a time (all of them: 200 MB at 1M rows of 64 floats).
        part = x[start:stop] if rows is None else x[rows[start:stop]]
        indices, _ = knn.query(np.ascontiguousarray(part, dtype=np.float32), k=n_neighbors)
        out[start:stop] = median_positions(fitted_coords, indices)
        progress("project", stop / n, f"{stop:,} / {n:,} rows placed beside the sample")
    return out


def median_positions(coords: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Per row, the per-axis median of ``coords[indices]`` (missing neighbours, index -1, left out)."""
    picked = coords[np.maximum(indices, 0)].astype(np.float64)
    picked[indices < 0] = np.nan
    return np.nanmedian(picked, axis=1).astype(np.float32)


def sample_indices(n: int, sample_rows: int, *, seed: int) -> np.ndarray:
    """The sorted positions of the rows UMAP is fitted on: a uniform sample fixed by the seed."""
    return np.sort(np.random.default_rng(seed).choice(n, size=min(n, sample_rows), replace=False))


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


@contextlib.contextmanager
def _quiet_precomputed_warning():
    # An exact graph has no pynndescent index, so UMAP warns that its transform is unavailable:
    # the layout places new rows with `place_rows`, which needs none.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="precomputed_knn", category=UserWarning)
        yield


def warm_up_umap() -> float:
    """Load UMAP's and pynndescent's kernels (compiling them once, into numba's disk cache, on the first
    start after an install) now rather than in the user's first build."""
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    # UMAP's kernels (every layout), then pynndescent's graph and search, which only maps above
    # EXACT_KNN_ROWS rows use: its two uncacheable kernels compile here (~8 s), not in such a build.
    project_umap(rng.normal(size=(64, 8)).astype(np.float32), config=ProjectionConfig())
    graph = knn_graph(rng.normal(size=(300, 8)).astype(np.float32), n_neighbors=15, exact=False)
    graph.query(rng.normal(size=(64, 8)).astype(np.float32), k=15)
    seconds = time.perf_counter() - started
    log.info("UMAP warmed up in %.1f s", seconds)
    return seconds
