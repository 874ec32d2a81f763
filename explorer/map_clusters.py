"""A saved map's clusters: compute and store (columns + manifest), read back, rename."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from .cluster import UNCLUSTERED, ClusterConfig, Clustering, cluster_map
from .errors import InputError
from .labels import ClusterLabel, label_by_category, label_levels
from .progress import ProgressFn, no_progress
from .store import SavedMap, Workspace

log = logging.getLogger(__name__)

# The points.parquet column of each level.
LEVEL_COLUMNS = {"coarse": "cluster", "fine": "cluster_fine"}
UNCLUSTERED_LABEL = "Unclustered"
# The column of labelled_points that names each point's cluster.
CLUSTER_LABEL_COLUMN = "cluster label"


def add_clusters(
    saved: SavedMap,
    *,
    config: ClusterConfig | None = None,
    workspace: Workspace | None = None,
    progress: ProgressFn = no_progress,
) -> SavedMap:
    """Cluster and label a saved map; save it again with cluster columns and manifest labels."""
    config = config or ClusterConfig()
    workspace = workspace or Workspace(saved.path.parent.parent)
    embedded = saved.embedded
    progress("cluster", 0.0, f"Clustering {int(embedded.sum()):,} points")
    clustering = cluster_map(
        np.asarray(saved.embeddings)[embedded], saved.coords[embedded], config=config
    )
    progress("cluster", 0.6, "Labelling the clusters")
    started = time.perf_counter()
    labels = _label_levels(saved, {name: level.labels for name, level in clustering.levels.items()})
    label_seconds = time.perf_counter() - started

    points = saved.points.drop(columns=list(LEVEL_COLUMNS.values()), errors="ignore")
    for name, level in clustering.levels.items():
        column = np.full(len(points), UNCLUSTERED, dtype=np.int32)
        column[embedded] = level.labels
        points[LEVEL_COLUMNS[name]] = column
    section = _manifest_section(clustering, labels, label_seconds=label_seconds)
    # The store keeps the thumbnails of an image map across the save.
    updated = workspace.save(
        saved.name,
        points=points,
        embeddings=saved.embeddings,
        manifest={**saved.manifest, "clusters": section},
    )
    progress("cluster", 1.0, ", ".join(f"{len(v)} {k} clusters" for k, v in labels.items()))
    return updated


def _label_levels(
    saved: SavedMap, levels: dict[str, np.ndarray]
) -> dict[str, dict[int, ClusterLabel]]:
    """Labels from the texts' distinctive terms; an image map's label column wins where set."""
    embedded = saved.embedded
    texts = [t for t, keep in zip(saved.texts(), embedded, strict=True) if keep]
    labels = label_levels(texts, levels)
    column = (saved.manifest.get("images") or {}).get("label_column")
    if column and column in saved.points:
        values = saved.points[column][embedded].tolist()
        for name, cluster_ids in levels.items():
            labels[name].update(label_by_category(values, cluster_ids))
    return labels


def _manifest_section(
    clustering: Clustering, labels: dict[str, dict[int, ClusterLabel]], *, label_seconds: float
) -> dict:
    levels = {}
    for name, level in clustering.levels.items():
        clusters = []
        for cid in range(level.n_clusters):
            label = labels[name][cid]
            clusters.append(
                {
                    **label.to_dict(),
                    "auto_label": label.label,
                    "renamed": False,
                    "centre": [float(v) for v in level.centres[cid]],
                }
            )
        levels[name] = {
            "column": LEVEL_COLUMNS[name],
            "params": level.params,
            "unclustered": level.n_unclustered,
            "clusters": clusters,
        }
    return {
        "config": clustering.config.to_dict(),
        "space": clustering.space,
        "levels": levels,
        "notes": clustering.notes,
        "seconds": {"cluster": round(clustering.seconds, 3), "label": round(label_seconds, 3)},
    }


def cluster_levels(saved: SavedMap) -> list[str]:
    """The levels the map has clusters for, coarse first ([] when it was never clustered)."""
    return list(((saved.manifest.get("clusters") or {}).get("levels") or {}).keys())


def cluster_column(saved: SavedMap, level: str) -> str:
    """The points column holding each row's cluster id at ``level``."""
    return _level_section(saved.manifest, saved.name, level)["column"]


def cluster_id_columns(saved: SavedMap) -> list[str]:
    """Every points column of cluster ids (shown to people through their labels instead)."""
    return [cluster_column(saved, level) for level in cluster_levels(saved)]


def labelled_points(saved: SavedMap, level: str | None) -> pd.DataFrame:
    """The map's points plus, at ``level``, each point's cluster label in CLUSTER_LABEL_COLUMN (for
    colour, hover and filters); the points themselves when ``level`` is None."""
    if level is None:
        return saved.points
    return saved.points.assign(**{CLUSTER_LABEL_COLUMN: point_labels(saved, level)})


def cluster_table(saved: SavedMap, level: str = "coarse") -> pd.DataFrame:
    """One row per cluster, largest first: id, label, size, x, y (its centre), terms, renamed."""
    clusters = _level_section(saved.manifest, saved.name, level)["clusters"]
    table = pd.DataFrame(
        {
            "id": [c["id"] for c in clusters],
            "label": [c["label"] for c in clusters],
            "size": [c["size"] for c in clusters],
            "x": [c["centre"][0] for c in clusters],
            "y": [c["centre"][1] for c in clusters],
            "terms": [[t for t, _ in c["terms"]] for c in clusters],
            "renamed": [bool(c.get("renamed")) for c in clusters],
        }
    )
    return table.sort_values(["size", "id"], ascending=[False, True], ignore_index=True)


def label_layers(saved: SavedMap) -> pd.DataFrame:
    """Every level's cluster labels for a zoomable map: x, y, text, level, priority, cluster_id, size.

    Coarser levels come first and outrank finer ones; within a level bigger clusters outrank
    smaller ones (priority in [0, n_levels), higher shows first). The schema of Embedding Atlas'
    ``--labels`` (x, y, text, level, priority) plus the cluster's id and size; empty when the map
    has no clusters."""
    levels = cluster_levels(saved)
    frames = []
    for rank, level in enumerate(levels):
        table = cluster_table(saved, level)
        if table.empty:
            continue
        share = table["size"].to_numpy(dtype=float) / max(float(table["size"].sum()), 1.0)
        frames.append(pd.DataFrame({
            "x": table["x"].to_numpy(dtype=float), "y": table["y"].to_numpy(dtype=float),
            "text": table["label"].astype(str).to_numpy(), "level": level,
            "priority": (len(levels) - 1 - rank) + share,
            "cluster_id": table["id"].to_numpy(dtype=np.int64), "size": table["size"].to_numpy(dtype=np.int64),
        }))
    if not frames:
        return pd.DataFrame({"x": [], "y": [], "text": [], "level": [], "priority": [], "cluster_id": [], "size": []})
    return pd.concat(frames, ignore_index=True).sort_values("priority", ascending=False, ignore_index=True)


def point_labels(saved: SavedMap, level: str = "coarse") -> pd.Series:
    """Each point's cluster label ("Unclustered" for noise), row-aligned with the points."""
    section = _level_section(saved.manifest, saved.name, level)
    names = {c["id"]: c["label"] for c in section["clusters"]}
    ids = saved.points[section["column"]].to_numpy()
    return pd.Series(
        [names.get(int(i), UNCLUSTERED_LABEL) for i in ids],
        index=saved.points.index,
        dtype="string",
        name=f"{section['column']}_label",
    )


def rename_cluster(
    workspace: Workspace, map_name: str, level: str, cluster_id: int, new_label: str
) -> dict:
    """Give a cluster the user's label, kept in the manifest; an empty label restores the
    automatic one. Returns the updated manifest."""
    manifest = workspace.open(map_name, mmap=True).manifest
    section = _level_section(manifest, map_name, level)
    matches = [c for c in section["clusters"] if c["id"] == int(cluster_id)]
    if not matches:
        known = ", ".join(str(c["id"]) for c in section["clusters"][:20])
        raise InputError(
            f"The {level} level of '{map_name}' has no cluster {cluster_id}. Its clusters: {known}."
        )
    cluster = matches[0]
    new_label = " ".join(str(new_label or "").split())
    cluster["label"] = new_label or cluster["auto_label"]
    cluster["renamed"] = bool(new_label) and new_label != cluster["auto_label"]
    log.info("renamed %s cluster %s of %s to %r", level, cluster_id, map_name, cluster["label"])
    return workspace.update_manifest(map_name, {"clusters": manifest["clusters"]})


def _level_section(manifest: dict, map_name: str, level: str) -> dict:
    levels = (manifest.get("clusters") or {}).get("levels") or {}
    if not levels:
        raise InputError(
            f"The map '{map_name}' has no clusters yet. Build it with clusters, or run "
            f'`explorer clusters "{map_name}" --compute`.'
        )
    if level not in levels:
        raise InputError(
            f"The map '{map_name}' has no {level} clusters; it has: {', '.join(levels)}."
        )
    return levels[level]
