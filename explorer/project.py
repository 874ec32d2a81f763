"""Step 3, project: embeddings to 2D coordinates with UMAP (default) or PCA."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np

log = logging.getLogger(__name__)

METHODS = ("umap", "pca")
# Below this many rows UMAP's graph is too small to be meaningful (and its spectral init fails).
MIN_ROWS_FOR_UMAP = 10
WARM_UP_ROWS = 4_200


@dataclass(frozen=True)
class ProjectionConfig:
    """How to lay out the map; the seed makes the same input give the same map."""

    method: str = "umap"
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    seed: int = 42

    def to_dict(self) -> dict:
        """Plain dict for the manifest."""
        return asdict(self)


@dataclass
class Projection:
    """2D float32 coordinates, row-aligned with the embeddings given."""

    coords: np.ndarray
    method: str
    config: ProjectionConfig
    seconds: float
    reducer: object | None = None


def project(embeddings: np.ndarray, *, config: ProjectionConfig | None = None) -> Projection:
    """Lay out embeddings in 2D; tiny or degenerate inputs get a valid layout, not an exception."""
    config = config or ProjectionConfig()
    if config.method not in METHODS:
        raise ValueError(f"Unknown projection method '{config.method}'; choose one of {', '.join(METHODS)}.")
    started = time.perf_counter()
    x = np.asarray(embeddings, dtype=np.float32)
    n = len(x)
    reducer = None
    if n == 0:
        coords, method = np.zeros((0, 2), dtype=np.float32), config.method
    elif n == 1 or _spread(x) < 1e-6:
        coords, method = np.zeros((n, 2), dtype=np.float32), "constant"
    elif config.method == "pca" or n < MIN_ROWS_FOR_UMAP:
        coords, method = project_pca(x, seed=config.seed), "pca"
    else:
        coords, reducer = project_umap(x, config=config)
        method = "umap"
    return Projection(
        coords=coords.astype(np.float32),
        method=method,
        config=config,
        seconds=time.perf_counter() - started,
        reducer=reducer,
    )


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
    x: np.ndarray, *, config: ProjectionConfig, n_components: int = 2
) -> tuple[np.ndarray, object]:
    """UMAP with the configured neighbours, distance and seed; returns coordinates and the fitted reducer."""
    import umap

    n_neighbors = max(2, min(config.n_neighbors, len(x) - 1))
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=n_neighbors,
        min_dist=config.min_dist,
        metric=config.metric,
        random_state=config.seed,
        # A fixed random_state makes UMAP single-threaded anyway; saying so silences its warning.
        n_jobs=1,
    )
    coords = reducer.fit_transform(x)
    return np.asarray(coords, dtype=np.float32), reducer


def warm_up_umap() -> float:
    """Fit a tiny UMAP so numba compiles its kernels now rather than in the user's first build."""
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    # Above 4,096 rows UMAP switches to pynndescent, whose kernels compile separately: cover both.
    for rows in (64, WARM_UP_ROWS):
        project_umap(rng.normal(size=(rows, 8)).astype(np.float32), config=ProjectionConfig())
    seconds = time.perf_counter() - started
    log.info("UMAP warmed up in %.1f s", seconds)
    return seconds
