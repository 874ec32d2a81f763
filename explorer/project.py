"""Step 3, project: embeddings to 2D coordinates with UMAP (default) or PCA."""

from __future__ import annotations

import contextlib
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
from .hashing import blocks_hash, bytes_hash, combined_hash
from .neighbours import KnnGraph, enable_umap_cache, knn_graph
from .placement import place_rows
from .progress import ProgressFn, no_progress
from .row_view import RowView, row_blocks

log = logging.getLogger(__name__)

METHODS = ("umap", "pca")
# Below this many rows UMAP's graph is too small to be meaningful (and its spectral init fails).
MIN_ROWS_FOR_UMAP = 10
# Up to this many rows UMAP's neighbour graph is exact (`neighbours.knn_graph`'s blocked products), passed
# to UMAP as ``precomputed_knn``. Below 4,096 rows UMAP would otherwise compute every distance through a
# numba metric inside scikit-learn's pairwise_distances, compiled anew in every process (11.6 s of a
# 14.5 s layout of 2,500 abstracts); up to 20k rows the exact graph took 2-7 s here where
# pynndescent's costs ~8 s of compiling in every fresh process (see `enable_umap_cache`) before it
# starts. Above, the n^2 product grows too dear and pynndescent's approximate graph is used.
EXACT_KNN_ROWS = 20_000
# Above this many rows UMAP is fitted on a seeded sample and the other rows are placed near their
# nearest sample rows (`placement.place_rows`), which bounds memory and time. Not below: on 100k rows x 256
# dims a full fit took 49 s and 1.8 GB.
SAMPLE_ROWS = 150_000
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


def project(
    embeddings: np.ndarray | RowView,
    *,
    config: ProjectionConfig | None = None,
    cache_dir: str | Path | None = None,
    init: np.ndarray | None = None,
    knn: KnnGraph | None = None,
    progress: ProgressFn = no_progress,
) -> Projection:
    """Lay out embeddings in 2D; tiny or degenerate inputs get a valid layout, not an exception.

    With ``cache_dir`` a layout is kept by the hash of the embeddings and the configuration, so the
    same vectors with the same settings are laid out once (the reducer is not kept). ``init`` (n, 2),
    row-aligned, starts UMAP from an existing layout (UMAP rescales it), so a re-layout of the same
    rows moves them as little as the new vectors allow; PCA ignores it. ``knn``, the build's graph of these
    rows (`neighbours.knn_graph`), is UMAP's when it has enough neighbours (see `fit_umap`). A `RowView` of
    more than ``config.sample_rows`` rows is read a block at a time, never whole."""
    config = config or ProjectionConfig()
    if config.method not in METHODS:
        raise ValueError(f"Unknown projection method '{config.method}'; choose one of {', '.join(METHODS)}.")
    started = time.perf_counter()
    x = _rows_to_read(embeddings, config)
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
    elif n == 1 or spread(x) < 1e-6:
        coords, method = np.zeros((n, 2), dtype=np.float32), "constant"
    elif config.method == "pca" or n < MIN_ROWS_FOR_UMAP:
        coords, method = project_pca(np.asarray(x), seed=config.seed), "pca"
    else:
        fit = fit_umap(x, config=config, init=init, knn=knn, progress=progress)
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


def _rows_to_read(x: np.ndarray | RowView, config: ProjectionConfig) -> np.ndarray | RowView:
    """The layout input as it is read: a view kept as a view where UMAP is fitted on a sample and the other
    rows are placed a block at a time (256 MB not held at 1M rows of 64 floats), else one float32 array."""
    if isinstance(x, RowView) and config.method == "umap" and len(x) > config.sample_rows:
        return x
    return np.ascontiguousarray(x, dtype=np.float32)


def _cache_file(cache_dir: str | Path, x: np.ndarray | RowView, config: ProjectionConfig,
                init: np.ndarray | None = None) -> Path:
    """The cache entry of a layout: one recipe over the vectors' bytes and shape, the settings, UMAP's
    version and the starting layout when there is one (another start gives another layout)."""
    from importlib.metadata import version

    # The rows' bytes a block at a time, not a bytes copy of them (256 MB at 1M rows of 64 floats); the same
    # digest as of the whole array's buffer.
    parts = [blocks_hash(block.data for _, block in row_blocks(x)), str(tuple(x.shape)),
             json.dumps(config.to_dict(), sort_keys=True), version("umap-learn"), LAYOUT_RECIPE]
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


def spread(x: np.ndarray, *, chunk_rows: int = 65_536) -> float:
    """The largest difference of any value from the first row's, a chunk of rows at a time (two whole-array
    temporaries were 512 MB at 1M rows of 64 floats)."""
    return max((float(np.abs(block - x[0]).max()) for _, block in row_blocks(x, chunk_rows)), default=0.0)


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
    x: np.ndarray | RowView, *, config: ProjectionConfig, n_components: int = 2, init: np.ndarray | None = None,
    knn: KnnGraph | None = None, progress: ProgressFn = no_progress,
) -> UmapFit:
    """UMAP fitted on every row, or above ``config.sample_rows`` on a seeded sample with the other rows
    placed by `placement.place_rows`. ``init`` (row-aligned) replaces the spectral start; ``knn``, a graph
    of these same rows with at least ``config.n_neighbors - 1`` neighbours besides each row, is used instead
    of a new one (one graph for every UMAP of a build)."""
    import umap
    from threadpoolctl import threadpool_limits

    enable_umap_cache()
    x = _rows_to_read(x, config)
    n_neighbors = max(2, min(config.n_neighbors, len(x) - 1))
    sampled = len(x) > config.sample_rows
    fitted_rows = sample_indices(len(x), config.sample_rows, seed=config.seed) if sampled else np.arange(len(x))
    fit_x = x[fitted_rows] if sampled else x
    # One BLAS thread (UMAP's own loops are numba's): on two shared cores OpenBLAS's second thread
    # slowed the spectral start so much that a 12k-row layout took 7 s instead of 4.6 s.
    with threadpool_limits(limits=1, user_api="blas"):
        usable = knn is not None and not sampled and len(knn.indices) == len(x) and knn.k >= n_neighbors - 1
        graph = knn if usable else umap_graph(fit_x, n_neighbors=n_neighbors, metric=config.metric, seed=config.seed)
        reducer = umap.UMAP(
            n_components=n_components,
            n_neighbors=n_neighbors,
            min_dist=config.min_dist,
            metric=config.metric,
            random_state=config.seed,
            # A fixed random_state makes UMAP single-threaded anyway; saying so silences its warning.
            n_jobs=1,
            # Fresh arrays: UMAP marks disconnected neighbours in place, and the graph may serve another UMAP.
            precomputed_knn=graph.umap_knn(n_neighbors),
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
        coords[rest] = place_rows(x, searcher=graph.searcher, reference_coords=fitted, rows=rest,
                                  progress=progress).coords
    return UmapFit(coords=coords, reducer=reducer, knn=graph, fitted_rows=fitted_rows)


def umap_graph(x: np.ndarray, *, n_neighbors: int, metric: str = "cosine", seed: int = 42,
               exact_max_rows: int = EXACT_KNN_ROWS) -> KnnGraph:
    """The graph a UMAP of ``n_neighbors`` (itself included) needs: `neighbours.knn_graph`, exact up to
    EXACT_KNN_ROWS rows; another metric than cosine gets UMAP's own pynndescent graph."""
    if metric != "cosine":
        return _other_metric_graph(x, n_neighbors=n_neighbors, metric=metric, seed=seed)
    return knn_graph(x, k=n_neighbors - 1, exact_max_rows=exact_max_rows, seed=seed)


def _other_metric_graph(x: np.ndarray, *, n_neighbors: int, metric: str, seed: int) -> KnnGraph:
    from umap.umap_ import nearest_neighbors

    enable_umap_cache()
    found, distances, searcher = nearest_neighbors(
        x, n_neighbors, metric, {}, metric in ANGULAR_METRICS, np.random.RandomState(seed),
        low_memory=True, use_pynndescent=True, n_jobs=1, verbose=False,
    )
    # Itself first, as UMAP returns it: the graph keeps the others.
    return KnnGraph(np.asarray(found, dtype=np.int64)[:, 1:], np.asarray(distances, dtype=np.float32)[:, 1:],
                    False, searcher)


ANGULAR_METRICS = ("cosine", "correlation", "dice", "jaccard", "hellinger")


def sample_indices(n: int, sample_rows: int, *, seed: int) -> np.ndarray:
    """The sorted positions of the rows UMAP is fitted on: a uniform sample fixed by the seed."""
    return np.sort(np.random.default_rng(seed).choice(n, size=min(n, sample_rows), replace=False))


@contextlib.contextmanager
def _quiet_precomputed_warning():
    # An exact graph has no pynndescent index, so UMAP warns that its transform is unavailable:
    # the layout places new rows with `placement.place_rows`, which needs none.
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
    graph = knn_graph(rng.normal(size=(300, 8)).astype(np.float32), k=14, exact_max_rows=0)
    graph.query(rng.normal(size=(64, 8)).astype(np.float32), k=15)
    seconds = time.perf_counter() - started
    log.info("UMAP warmed up in %.1f s", seconds)
    return seconds

