"""Step 3, project: embeddings to 2D coordinates with UMAP (default) or PCA."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .hashing import bytes_hash, combined_hash

log = logging.getLogger(__name__)

METHODS = ("umap", "pca")
# Below this many rows UMAP's graph is too small to be meaningful (and its spectral init fails).
MIN_ROWS_FOR_UMAP = 10
WARM_UP_ROWS = 4_200
# Above this many rows UMAP is fitted on a seeded sample and the other rows are placed with
# ``transform``, which bounds memory. Not below: on 100k rows x 256 dims a full fit took 49 s and
# 1.8 GB, while a 30k-row fit + transform of 70k took 102 s and placed the rest worse (10-NN 0.81
# vs 0.99 on that set), because UMAP's transform is slow per row.
SAMPLE_ROWS = 150_000


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


def project(
    embeddings: np.ndarray,
    *,
    config: ProjectionConfig | None = None,
    cache_dir: str | Path | None = None,
    init: np.ndarray | None = None,
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
    if cached is not None and cached.is_file():
        with np.load(cached, allow_pickle=False) as stored:
            coords, method = stored["coords"], str(stored["method"])
        log.info("layout of %d rows from the projection cache", len(coords))
        return Projection(coords=coords, method=method, config=config, seconds=time.perf_counter() - started)
    n = len(x)
    reducer = None
    if n == 0:
        coords, method = np.zeros((0, 2), dtype=np.float32), config.method
    elif n == 1 or _spread(x) < 1e-6:
        coords, method = np.zeros((n, 2), dtype=np.float32), "constant"
    elif config.method == "pca" or n < MIN_ROWS_FOR_UMAP:
        coords, method = project_pca(x, seed=config.seed), "pca"
    else:
        coords, reducer = project_umap(x, config=config, init=init)
        method = "umap"
    coords = coords.astype(np.float32)
    if cached is not None:
        _store(cached, coords, method)
    return Projection(
        coords=coords,
        method=method,
        config=config,
        seconds=time.perf_counter() - started,
        reducer=reducer,
    )


def _cache_file(cache_dir: str | Path, x: np.ndarray, config: ProjectionConfig,
                init: np.ndarray | None = None) -> Path:
    """The cache entry of a layout: one recipe over the vectors' bytes and shape, the settings, UMAP's
    version and the starting layout when there is one (another start gives another layout)."""
    from importlib.metadata import version

    parts = [bytes_hash(x.tobytes()), str(x.shape), json.dumps(config.to_dict(), sort_keys=True),
             version("umap-learn")]
    if init is not None:
        parts.append("init:" + bytes_hash(init.tobytes()))
    key = combined_hash(parts)
    return Path(cache_dir) / f"{key}.npz"


def _store(path: Path, coords: np.ndarray, method: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{time.time_ns()}.npz")
    np.savez(tmp, coords=coords, method=np.array(method))
    tmp.replace(path)  # atomic: a reader sees the whole entry or none


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
    x: np.ndarray, *, config: ProjectionConfig, n_components: int = 2, init: np.ndarray | None = None
) -> tuple[np.ndarray, object]:
    """UMAP with the configured neighbours, distance and seed; returns coordinates and the fitted reducer.

    Above ``config.sample_rows`` rows the reducer is fitted on a seeded sample and places the rest
    with ``transform``. ``init`` (row-aligned) replaces the spectral start."""
    import umap
    from threadpoolctl import threadpool_limits

    n_neighbors = max(2, min(config.n_neighbors, len(x) - 1))
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=n_neighbors,
        min_dist=config.min_dist,
        metric=config.metric,
        random_state=config.seed,
        # A fixed random_state makes UMAP single-threaded anyway; saying so silences its warning.
        n_jobs=1,
        **({} if init is None else {"init": init}),
    )
    # One BLAS thread (UMAP's own loops are numba's): on two shared cores OpenBLAS's second thread
    # slowed the spectral start so much that a 12k-row layout took 7 s instead of 4.6 s.
    with threadpool_limits(limits=1, user_api="blas"):
        if len(x) <= config.sample_rows:
            return np.asarray(reducer.fit_transform(x), dtype=np.float32), reducer
        sample = sample_indices(len(x), config.sample_rows, seed=config.seed)
        if init is not None:
            reducer.set_params(init=init[sample])
        coords = np.empty((len(x), n_components), dtype=np.float32)
        coords[sample] = reducer.fit_transform(x[sample])
        rest = np.setdiff1d(np.arange(len(x)), sample)
        log.info("UMAP fitted on %d of %d rows; placing the other %d with transform", len(sample), len(x),
                 len(rest))
        coords[rest] = reducer.transform(x[rest])
    return coords, reducer


def sample_indices(n: int, sample_rows: int, *, seed: int) -> np.ndarray:
    """The sorted positions of the rows UMAP is fitted on: a uniform sample fixed by the seed."""
    return np.sort(np.random.default_rng(seed).choice(n, size=min(n, sample_rows), replace=False))


def warm_up_umap() -> float:
    """Fit a tiny UMAP so numba compiles its kernels now rather than in the user's first build."""
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    # Above 4,096 rows UMAP switches to pynndescent, whose kernels compile separately: cover both.
    for rows in (64, WARM_UP_ROWS):
        _, reducer = project_umap(rng.normal(size=(rows, 8)).astype(np.float32), config=ProjectionConfig())
    # transform (used above SAMPLE_ROWS) compiles kernels of its own.
    reducer.transform(rng.normal(size=(64, 8)).astype(np.float32))
    seconds = time.perf_counter() - started
    log.info("UMAP warmed up in %.1f s", seconds)
    return seconds
