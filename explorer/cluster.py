"""Step 4a, cluster: group a map's points, coarse, fine and (on big maps) finest, each finer level
linked to the coarser one by the members they share."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .errors import InputError
from .neighbours import KnnGraph
from .project import MIN_ROWS_FOR_UMAP, ProjectionConfig, project_umap, sample_indices, spread

log = logging.getLogger(__name__)

CLUSTER_METHODS = ("hdbscan", "kmeans")
SPACES = ("umap5", "2d")
LEVELS = ("coarse", "fine", "finest")
UNCLUSTERED = -1
# Smallest group worth a name on the map; below twice this many rows nothing is clustered.
MIN_CLUSTER_SIZE = 5
# Derived HDBSCAN sizes: a coarse cluster holds at least 2% of the rows, a fine one 0.5%.
COARSE_FRACTION = 1 / 50
FINE_FRACTION = 1 / 200
# From this many rows a third level (0.1% of the rows, at least 5) gives a zoomed-in map labels to show.
FINEST_MIN_ROWS = 5_000
FINEST_FRACTION = 1 / 1000
# HDBSCAN's "excess of mass" can crown one blob holding most of a map whose topics overlap (on the
# arXiv 2,500 file two UMAP seeds in three gave one cluster of 79%); a cap of half the rows makes it
# look at that blob's children instead, and leaves maps with a few genuinely big groups alone.
MAX_CLUSTER_FRACTION = 1 / 2
# Few core neighbours keep HDBSCAN from calling a third of a loose map "noise".
MAX_MIN_SAMPLES = 5
# A fine KMeans level splits each coarse cluster about this many ways.
KMEANS_FINE_FACTOR = 3
MAX_DERIVED_K = 30
LARGE_MAP_ROWS = 20_000
# Above this many rows the clusters are found on a seeded sample of the points and every other point
# joins the cluster of its nearest sample point in the clustering space (unclustered if that one is):
# HDBSCAN's cost grows faster than the rows (100k 2D points: ~80 s for three levels), a
# nearest-neighbour lookup of the rest a few seconds at a million.
CLUSTER_SAMPLE_ROWS = 50_000


@dataclass(frozen=True)
class ClusterConfig:
    """How to cluster a map; None sizes come from the row count, the seed fixes random steps."""

    method: str = "hdbscan"
    k: int | None = None
    min_cluster_size: int | None = None
    # Up to three levels; the third ("finest") only on maps of FINEST_MIN_ROWS rows or more.
    levels: int = 3
    space: str = "umap5"
    n_components: int = 5
    # More neighbours than the 2D layout's: clusters follow broad topics, not local detail.
    n_neighbors: int = 30
    seed: int = 42

    def to_dict(self) -> dict:
        """Plain dict for the manifest."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ClusterConfig:
        """The config a manifest recorded (unknown keys ignored, so older manifests still load)."""
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class ClusterLevel:
    """One level: a label per point (-1 = unclustered), ids by size, each with a 2D centre, and
    (below the coarse level) each cluster's parent in the level above (see `link_levels`)."""

    name: str
    labels: np.ndarray
    centres: np.ndarray
    params: dict = field(default_factory=dict)
    parents: list[dict] | None = None

    @property
    def n_clusters(self) -> int:
        """How many clusters (the unclustered points are not one)."""
        return len(self.centres)

    @property
    def sizes(self) -> np.ndarray:
        """Points per cluster, indexed by cluster id (largest first)."""
        return np.bincount(self.labels[self.labels >= 0], minlength=self.n_clusters)

    @property
    def n_unclustered(self) -> int:
        """How many points belong to no cluster."""
        return int((self.labels == UNCLUSTERED).sum())


@dataclass
class Clustering:
    """The levels found (coarse first), the space they were found in, and how long it took."""

    levels: dict[str, ClusterLevel]
    config: ClusterConfig
    space: str
    seconds: float
    notes: list[str] = field(default_factory=list)


def config_for_rows(rows: int) -> ClusterConfig:
    """The default clustering for a map of ``rows`` rows: on a 5-D UMAP, or on the 2D map above
    LARGE_MAP_ROWS, where the extra UMAP would cost minutes and over a gigabyte (ARI is no worse in 2D,
    docs/benchmarks.md)."""
    return ClusterConfig(space="2d") if rows > LARGE_MAP_ROWS else ClusterConfig()


def cluster_map(
    embeddings: np.ndarray | None, coords: np.ndarray, *, config: ClusterConfig | None = None,
    knn: KnnGraph | None = None, sample_rows: int = CLUSTER_SAMPLE_ROWS,
) -> Clustering:
    """Cluster row-aligned embeddings (or the 2D coordinates) into up to three levels.

    ``knn``, the build's neighbour graph of these embeddings (e.g. `Projection.knn`), spares the
    feature-space UMAP a graph of its own when it has enough neighbours. Above ``sample_rows`` points
    the levels are found on a seeded sample and assigned to the rest by nearest neighbour."""
    config = config or ClusterConfig()
    _validate(config)
    started = time.perf_counter()
    coords = np.asarray(coords, dtype=np.float32)
    n = len(coords)
    notes: list[str] = []
    if n < 2 * MIN_CLUSTER_SIZE or spread(coords) < 1e-6:
        notes.append(
            f"{n:,} point(s) are too few or too alike to form clusters: all are unclustered."
        )
        empty = _level("coarse", np.full(n, UNCLUSTERED), coords, {})
        return Clustering({"coarse": empty}, config, "none", time.perf_counter() - started, notes)

    sample = sample_indices(n, sample_rows, seed=config.seed) if n > sample_rows else None
    fit_embeddings = embeddings if sample is None or embeddings is None else np.asarray(embeddings)[sample]
    fit_coords = coords if sample is None else coords[sample]
    space, features = _feature_space(fit_embeddings, fit_coords, config=config,
                                     knn=knn if sample is None else None)
    if space != config.space:
        notes.append(
            f"Clustered on the 2D layout: {n:,} rows are too few for a "
            f"{config.n_components}-D UMAP."
        )
    if sample is not None:
        notes.append(f"Clusters found on a sample of {len(sample):,} of the {n:,} points; every other "
                     "point joins the cluster of its nearest sample point.")
        # By the 2D map, also when the sample's features are a UMAP of the sample alone (the other
        # rows have none): on big maps the clusters are found in 2D anyway (config_for_rows).
        nearest = nearest_sample_rows(coords, fit_coords)
    fit = _fit_hdbscan if config.method == "hdbscan" else _fit_kmeans
    levels: dict[str, ClusterLevel] = {}
    sample_labels: dict[str, np.ndarray] = {}
    for name, params in _level_params(len(features), config).items():
        above = list(levels.values())[-1] if levels else None
        if name == "finest" and config.method == "hdbscan":
            raw = _fit_hdbscan_within(features, sample_labels[above.name], **params)
        else:
            raw = fit(features, **params, seed=config.seed)
        sample_labels[name] = raw
        level = _level(name, raw if sample is None else raw[nearest], coords, params)
        # A finer level that finds no more groups than the one above would only repeat it.
        if above is not None and level.n_clusters <= above.n_clusters:
            log.info("%s level dropped: %d clusters, no more than %s", name, level.n_clusters, above.name)
            break
        if above is not None:
            level.parents = link_levels(level.labels, above.labels)
        levels[name] = level
    seconds = time.perf_counter() - started
    log.info(
        "clustered %d points: %s in %.1f s",
        n,
        ", ".join(f"{k} {v.n_clusters}" for k, v in levels.items()),
        seconds,
    )
    return Clustering(levels, config, space, seconds, notes)


def _validate(config: ClusterConfig) -> None:
    if config.method not in CLUSTER_METHODS:
        raise InputError(
            f"Unknown clustering method '{config.method}'; choose one of {', '.join(CLUSTER_METHODS)}."
        )
    if config.space not in SPACES:
        raise InputError(
            f"Unknown clustering space '{config.space}'; choose one of {', '.join(SPACES)}."
        )
    if config.levels not in (1, 2, 3):
        raise InputError(f"levels must be 1, 2 or 3, not {config.levels}.")
    if config.k is not None and config.k < 2:
        raise InputError(f"k must be at least 2, not {config.k}.")
    if config.min_cluster_size is not None and config.min_cluster_size < 2:
        raise InputError(f"min_cluster_size must be at least 2, not {config.min_cluster_size}.")


def nearest_sample_rows(points: np.ndarray, sample_points: np.ndarray) -> np.ndarray:
    """For each point, the position in ``sample_points`` of the nearest one (a k-d tree: 2D or few dims)."""
    from scipy.spatial import cKDTree

    _, nearest = cKDTree(np.asarray(sample_points, dtype=np.float64)).query(np.asarray(points, dtype=np.float64),
                                                                             k=1, workers=1)
    return np.asarray(nearest, dtype=np.int64)


def _feature_space(
    embeddings: np.ndarray | None, coords: np.ndarray, *, config: ClusterConfig, knn: KnnGraph | None = None
) -> tuple[str, np.ndarray]:
    """The points as the clusterer sees them: a low-dimensional UMAP, or the 2D map."""
    n = len(coords)
    if (
        config.space == "2d"
        or embeddings is None
        or n < max(MIN_ROWS_FOR_UMAP, config.n_components + 2)
    ):
        return "2d", coords
    # min_dist 0 packs each group tightly, which is what a density clusterer wants (UMAP's advice).
    umap_config = replace(
        ProjectionConfig(), n_neighbors=config.n_neighbors, min_dist=0.0, seed=config.seed
    )
    features, _ = project_umap(
        np.asarray(embeddings, dtype=np.float32),
        config=umap_config,
        n_components=config.n_components,
        knn=knn,
    )
    return config.space, features


def derived_min_cluster_size(n: int, *, fine: bool = False, level: str | None = None) -> int:
    """HDBSCAN's minimum cluster size for ``n`` rows: 2% (coarse), 0.5% (fine), 0.1% (finest), at least 5."""
    level = level or ("fine" if fine else "coarse")
    fraction = {"coarse": COARSE_FRACTION, "fine": FINE_FRACTION, "finest": FINEST_FRACTION}[level]
    return max(MIN_CLUSTER_SIZE, round(n * fraction))


def derived_k(n: int) -> int:
    """A KMeans k for ``n`` rows when none is given: about sqrt(n / 20), between 2 and 30."""
    return int(min(MAX_DERIVED_K, max(2, round(math.sqrt(n / 20)))))


def _level_params(n: int, config: ClusterConfig) -> dict[str, dict]:
    """Each level's parameters, coarse first; a finer level is only tried when it can differ from the
    one above, and the finest only from FINEST_MIN_ROWS rows."""
    wanted = min(config.levels, len(LEVELS) if n >= FINEST_MIN_ROWS else 2)
    kmeans = config.method == "kmeans"
    if kmeans:
        sizes = [min(config.k or derived_k(n), n // 2)]
        for _ in range(wanted - 1):
            sizes.append(min(sizes[-1] * KMEANS_FINE_FACTOR, n // MIN_CLUSTER_SIZE))
    else:
        sizes = [config.min_cluster_size or derived_min_cluster_size(n)]
        for name in LEVELS[1:wanted]:
            sizes.append(
                max(MIN_CLUSTER_SIZE, sizes[-1] // 4)
                if config.min_cluster_size
                else derived_min_cluster_size(n, level=name)
            )
    key = "k" if kmeans else "min_cluster_size"
    params: dict[str, dict] = {}
    previous = None
    for name, size in zip(LEVELS, sizes, strict=False):
        # A finer level asks for more clusters (KMeans) or smaller ones (HDBSCAN), or is not tried.
        if previous is not None and not (size > previous if kmeans else size < previous):
            break
        params[name] = {key: size}
        previous = size
    return params


def _fit_hdbscan(features: np.ndarray, *, min_cluster_size: int, seed: int) -> np.ndarray:
    """scikit-learn's HDBSCAN; deterministic, so the seed is unused."""
    from sklearn.cluster import HDBSCAN

    n = len(features)
    return HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min(min_cluster_size, MAX_MIN_SAMPLES),
        max_cluster_size=max(min_cluster_size, int(n * MAX_CLUSTER_FRACTION)),
        copy=True,
    ).fit_predict(features)


def _fit_hdbscan_within(features: np.ndarray, parents: np.ndarray, *, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN inside each parent cluster (a parent too small to split stays whole; unclustered rows
    stay so): the finest level nests in the fine one, and it is cheap. On 100,000 synthetic 2D rows two
    levels took 204 s, a third HDBSCAN of all rows 333 s in all, these fits 236 s (2 busy cores)."""
    from sklearn.cluster import HDBSCAN

    out = np.full(len(features), UNCLUSTERED, dtype=np.int64)
    next_id = 0
    for parent in range(int(parents.max(initial=-1)) + 1):
        members = np.flatnonzero(parents == parent)
        if len(members) < 2 * min_cluster_size:
            raw = np.zeros(len(members), dtype=np.int64)
        else:
            # One group that does not split is an answer here, not a failure: it stays one cluster.
            raw = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min(min_cluster_size, MAX_MIN_SAMPLES),
                          allow_single_cluster=True, copy=True).fit_predict(features[members])
        out[members] = np.where(raw >= 0, raw + next_id, UNCLUSTERED)
        next_id += int(raw.max(initial=-1)) + 1
    return out


def _fit_kmeans(features: np.ndarray, *, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, random_state=seed, n_init="auto").fit_predict(features)


def link_levels(child: np.ndarray, parent: np.ndarray) -> list[dict]:
    """For each cluster of ``child``: the ``parent`` cluster ("id") holding most of its rows (-1 when
    unclustered there), the share of its rows in that parent ("share") and the share of the parent's
    rows it holds ("cover"). A cluster with share and cover near 1 is its parent under another name."""
    child, parent = np.asarray(child), np.asarray(parent)
    links = []
    for cid in range(int(child.max(initial=-1)) + 1):
        above = parent[child == cid]
        ids, counts = np.unique(above, return_counts=True)
        best = int(ids[np.argmax(counts)])
        shared = int(counts.max())
        cover = shared / max(int((parent == best).sum()), 1) if best >= 0 else 0.0
        links.append({"id": best, "share": round(shared / len(above), 4), "cover": round(cover, 4)})
    return links


def _level(name: str, raw: np.ndarray, coords: np.ndarray, params: dict) -> ClusterLevel:
    """Renumber clusters largest first (ties by first appearance) and find each one's centre."""
    raw = np.asarray(raw, dtype=np.int64)
    ids, first, counts = np.unique(raw[raw >= 0], return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    mapping = np.full(max(int(raw.max(initial=-1)) + 1, 1), UNCLUSTERED, dtype=np.int32)
    mapping[ids[order]] = np.arange(len(ids), dtype=np.int32)
    labels = np.where(raw >= 0, mapping[np.maximum(raw, 0)], UNCLUSTERED).astype(np.int32)
    centres = np.array([_centre(coords[labels == c]) for c in range(len(ids))], dtype=np.float32)
    return ClusterLevel(name=name, labels=labels, centres=centres.reshape(-1, 2), params=params)


def _centre(points: np.ndarray) -> np.ndarray:
    # The member nearest the mean, not the mean itself: a curved cluster's mean can fall outside it.
    mean = points.mean(axis=0)
    return points[np.argmin(((points - mean) ** 2).sum(axis=1))]
