"""A saved map's clusters: compute and store (columns + manifest), read back by id or by name, rename."""

from __future__ import annotations

import copy
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .bibliography import year_values
from .cluster import UNCLUSTERED, ClusterConfig, Clustering, cluster_map, link_levels
from .errors import InputError
from .label_file import label_rows, label_table
from .labels import ClusterLabel, label_by_category, label_levels, unique_labels
from .map_files import save_map
from .progress import ProgressFn, no_progress
from .store import SavedMap, Workspace
from .texts import title_column

log = logging.getLogger(__name__)

# The points.parquet column of each level.
LEVEL_COLUMNS = {"coarse": "cluster", "fine": "cluster_fine", "finest": "cluster_finest"}
UNCLUSTERED_LABEL = "Unclustered"
# The column of labelled_points that names each point's cluster.
CLUSTER_LABEL_COLUMN = "cluster label"
# Two clusters of neighbouring levels are one group shown twice (one rename names both) when each
# holds this share of the other's rows; with the same automatic label, half is enough.
SAME_GROUP_SHARE = 0.9
SAME_LABEL_SHARE = 0.5
# A cluster card: its most central papers, and the top values of these columns where the map has them.
CARD_CENTRAL = 5
CARD_TOP_VALUES = 3
YEAR_COLUMNS = ("year", "publication_year", "date", "listing_date", "published")
VALUE_COLUMNS = ("venue", "journal", "booktitle", "conference", "publisher", "primary_category", "category", "field",
                 "authors", "author")
# Author lists are split into people; other columns count whole values.
_AUTHOR_SPLIT = re.compile(r"\s*;\s*|\s+and\s+")


def add_clusters(
    saved: SavedMap,
    *,
    config: ClusterConfig | None = None,
    workspace: Workspace | None = None,
    progress: ProgressFn = no_progress,
) -> SavedMap:
    """Cluster and label a saved map; save it again (once) with cluster columns and manifest labels."""
    workspace = workspace or Workspace(saved.path.parent.parent)
    points, manifest = clustered(saved.points, saved.embeddings, saved.manifest, config=config or ClusterConfig(),
                                 progress=progress)
    # The store keeps the thumbnails of an image map across the save.
    return save_map(workspace, saved.name, points=points, embeddings=saved.embeddings, manifest=manifest, base=saved)


def clustered(points: pd.DataFrame, embeddings: np.ndarray, manifest: dict, *, config: ClusterConfig,
              progress: ProgressFn = no_progress) -> tuple[pd.DataFrame, dict]:
    """A map (saved or not yet) clustered and labelled: its points with the cluster columns, and its
    manifest with the clusters section (nothing saved)."""
    draft = SavedMap(path=Path(manifest.get("name") or "."), manifest=manifest, points=points, embeddings=embeddings)
    points, section = clustered_columns(draft, config=config, progress=progress)
    progress("cluster", 1.0, ", ".join(f"{len(v['clusters'])} {k} clusters" for k, v in section["levels"].items()))
    return points, {**manifest, "clusters": section}


def clustered_columns(saved: SavedMap, *, config: ClusterConfig, progress: ProgressFn = no_progress
                      ) -> tuple[pd.DataFrame, dict]:
    """A map's points with its cluster columns, and the manifest's clusters section (nothing saved)."""
    embedded = saved.embedded
    progress("cluster", 0.0, f"Clustering {int(embedded.sum()):,} points")
    vectors = np.asarray(saved.embeddings)
    # Every row embedded (a table's usual case): the vectors as they are, not a masked copy (1 GB at 1M rows).
    clustering = cluster_map(
        vectors if embedded.all() else vectors[embedded], saved.coords[embedded], config=config
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
    return points, _manifest_section(clustering, labels, label_seconds=label_seconds)


def _label_levels(
    saved: SavedMap, levels: dict[str, np.ndarray]
) -> dict[str, dict[int, ClusterLabel]]:
    """Labels from the texts' distinctive terms; an image map's label column wins where set."""
    embedded = saved.embedded
    # In Arrow: the labels read a sample of the texts, so a million of them are never Python strings at once.
    labels = label_levels(saved.texts(arrow=True).filter(embedded), levels)
    column = saved.meta.images.label_column
    if column and column in saved.points:
        values = saved.points[column][embedded].tolist()
        for name, cluster_ids in levels.items():
            labels[name] = unique_labels({**labels[name], **label_by_category(values, cluster_ids)})
    return labels


def _manifest_section(
    clustering: Clustering, labels: dict[str, dict[int, ClusterLabel]], *, label_seconds: float
) -> dict:
    levels = {}
    for name, level in clustering.levels.items():
        clusters = []
        for cid in range(level.n_clusters):
            label = labels[name][cid]
            cluster = {
                **label.to_dict(),
                "auto_label": label.label,
                "renamed": False,
                "centre": [float(v) for v in level.centres[cid]],
            }
            if level.parents is not None:
                cluster["parent"] = level.parents[cid]
            clusters.append(cluster)
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
    return list(saved.meta.cluster_levels)


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
    """Every level's cluster labels for a zoomable map: x, y, text, level, priority, cluster_id, size
    (label_file.label_rows; labels.parquet holds the same rows with numbered levels)."""
    return label_rows(saved.manifest)


def named_points(saved: SavedMap) -> pd.DataFrame:
    """The map's points with each level's cluster id column holding the cluster's label instead
    ("Unclustered" for -1), under the same column names: what people read in details and exports."""
    return saved.points.assign(
        **{cluster_column(saved, level): point_labels(saved, level) for level in cluster_levels(saved)}
    )


def point_labels(saved: SavedMap, level: str = "coarse") -> pd.Series:
    """Each point's cluster label ("Unclustered" for noise), row-aligned with the points."""
    section = _level_section(saved.manifest, saved.name, level)
    names = pd.Series({int(c["id"]): c["label"] for c in section["clusters"]}, dtype="string")
    ids = saved.points[section["column"]].astype("int64")
    # A lookup by id for the whole column at once: exports name every row of 100,000-row maps.
    return ids.map(names).astype("string").fillna(UNCLUSTERED_LABEL).rename(f"{section['column']}_label")


def rename_cluster(
    workspace: Workspace, map_name: str, level: str, cluster_id: int, new_label: str
) -> dict:
    """Give a cluster the user's label, kept in the manifest, at every level where the same group
    shows (`same_group`); an empty label restores each one's automatic label. Returns the manifest."""
    saved = workspace.open(map_name, mmap=True)
    # A copy: the map as read stays the base the store compares the change with.
    manifest = copy.deepcopy(saved.manifest)
    section = _level_section(manifest, map_name, level)
    if not any(c["id"] == int(cluster_id) for c in section["clusters"]):
        known = ", ".join(str(c["id"]) for c in section["clusters"][:20])
        raise InputError(
            f"The {level} level of '{map_name}' has no cluster {cluster_id}. Its clusters: {known}."
        )
    new_label = " ".join(str(new_label or "").split())
    levels = manifest["clusters"]["levels"]
    for name, cid in same_group(saved, level, int(cluster_id)):
        cluster = next(c for c in levels[name]["clusters"] if c["id"] == cid)
        cluster["label"] = new_label or cluster["auto_label"]
        cluster["renamed"] = bool(new_label) and new_label != cluster["auto_label"]
        log.info("renamed %s cluster %s of %s to %r", name, cid, map_name, cluster["label"])
    return workspace.update_manifest(map_name, {"clusters": manifest["clusters"]}, base=saved,
                                     labels=label_table(manifest))


def same_group(saved: SavedMap, level: str, cluster_id: int) -> list[tuple[str, int]]:
    """The (level, id) of every cluster that is the given one shown at another level, itself first:
    neighbouring levels' clusters that each hold SAME_GROUP_SHARE of the other's rows (or
    SAME_LABEL_SHARE with the same automatic label), followed from level to level."""
    levels = cluster_levels(saved)
    sections = {name: _level_section(saved.manifest, saved.name, name) for name in levels}
    edges: dict[tuple[str, int], set[tuple[str, int]]] = {}
    for upper, lower in zip(levels, levels[1:], strict=False):
        auto = {c["id"]: c.get("auto_label") for c in sections[upper]["clusters"]}
        for cluster, link in zip(sections[lower]["clusters"], _links(saved, upper, lower), strict=True):
            overlap = min(link["share"], link["cover"])
            same_auto = cluster.get("auto_label") == auto.get(link["id"])
            if link["id"] >= 0 and (overlap >= SAME_GROUP_SHARE or (same_auto and overlap >= SAME_LABEL_SHARE)):
                a, b = (upper, int(link["id"])), (lower, int(cluster["id"]))
                edges.setdefault(a, set()).add(b)
                edges.setdefault(b, set()).add(a)
    found, todo = [(level, cluster_id)], [(level, cluster_id)]
    while todo:
        for other in sorted(edges.get(todo.pop(), ())):
            if other not in found:
                found.append(other)
                todo.append(other)
    return found


def _links(saved: SavedMap, upper: str, lower: str) -> list[dict]:
    """Each ``lower`` cluster's parent at ``upper`` as recorded when clustering; computed from the
    points for maps clustered before links were recorded."""
    clusters = _level_section(saved.manifest, saved.name, lower)["clusters"]
    if all("parent" in c for c in clusters):
        return [c["parent"] for c in clusters]
    ids = link_levels(saved.points[cluster_column(saved, lower)].to_numpy(),
                      saved.points[cluster_column(saved, upper)].to_numpy())
    return [ids[c["id"]] for c in clusters]


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


@dataclass
class ClusterCard:
    """What a cluster is about, without opening its papers one by one."""

    level: str
    id: int
    label: str
    size: int
    central: list[tuple[int, str]]
    terms: list[tuple[str, int]]
    years: dict[int, int] = field(default_factory=dict)
    top_values: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    trust: float | None = None

    @property
    def year_span(self) -> tuple[int, int] | None:
        """The first and last year of its papers, when the map has years."""
        return (min(self.years), max(self.years)) if self.years else None


def cluster_cards(saved: SavedMap, level: str | int = 0) -> list[ClusterCard]:
    """A card per cluster of ``level`` (a name or 0 for the coarsest), largest first: its 3–5 most central
    papers (nearest the cluster's mean vector), distinctive terms with how many of its papers use each,
    its years, the top values of venue- and author-like columns, and the mean trust of its points."""
    levels = cluster_levels(saved)
    if isinstance(level, int):
        if not 0 <= level < len(levels):
            raise InputError(f"The map '{saved.name}' has {len(levels)} cluster levels: level {level} does not exist.")
        level = levels[level]
    section = _level_section(saved.manifest, saved.name, level)
    points = saved.points
    ids = points[section["column"]].to_numpy()
    texts = pd.Series(saved.texts(), dtype="string").str.lower().fillna("")
    title = title_column(points, saved.meta.text_columns or [])
    names = points[title].astype("string").fillna("") if title else texts
    year_column = next((c for c in YEAR_COLUMNS if c in points.columns), None)
    years = year_values(points[year_column]) if year_column else None
    value_columns = [c for c in VALUE_COLUMNS if c in points.columns]
    trust = points["trust"].to_numpy(dtype=float) if "trust" in points.columns else None
    embedded = saved.embedded
    cards = []
    for cluster in section["clusters"]:
        rows = np.flatnonzero((ids == cluster["id"]) & embedded)
        vectors = np.asarray(saved.embeddings[rows], dtype=np.float32)
        centre = vectors.mean(axis=0) if len(rows) else None
        nearest = rows[np.argsort(-(vectors @ centre), kind="stable")[:CARD_CENTRAL]] if len(rows) else rows
        inside = texts.iloc[rows]
        terms = [(term, int(inside.str.contains(rf"\b{re.escape(term.lower())}", regex=True).sum()))
                 for term, _ in cluster["terms"]]
        card = ClusterCard(
            level=level, id=int(cluster["id"]), label=cluster["label"], size=int(cluster["size"]),
            central=[(int(points["row_id"].iloc[i]), str(names.iloc[i])) for i in nearest], terms=terms,
            trust=float(np.nanmean(trust[rows])) if trust is not None and len(rows) else None)
        if years is not None:
            counts = years.iloc[rows].dropna().value_counts().sort_index()
            card.years = {int(y): int(n) for y, n in counts.items()}
        for column in value_columns:
            values = points[column].iloc[rows].astype("string").dropna()
            if column in ("authors", "author"):
                values = values.str.split(_AUTHOR_SPLIT).explode().str.strip()
            top = values[values != ""].value_counts().head(CARD_TOP_VALUES)
            card.top_values[column] = [(str(v), int(n)) for v, n in top.items()]
        cards.append(card)
    return sorted(cards, key=lambda c: (-c.size, c.id))
