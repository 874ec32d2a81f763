"""Curation: a new version of a map without some rows, re-projected from the stored embeddings.

The new map keeps each remaining row's ``row_id`` from the map it came from, so a row can be traced
back (and rows can be compared across versions); its row_ids are therefore no longer 0..n-1.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import fields
from datetime import UTC, datetime

import numpy as np

from .cluster import ClusterConfig
from .errors import InputError
from .map_clusters import LEVEL_COLUMNS, clustered
from .map_files import save_map
from .progress import ProgressFn, no_progress
from .project import ProjectionConfig, project
from .store import MAX_NAME_TRIES, SavedMap, Workspace, suffixed_name

log = logging.getLogger(__name__)

_VERSION_SUFFIX = re.compile(r"^(?P<base>.*) \(v(?P<n>\d+)\)$")


def remove_and_reproject(
    workspace: Workspace,
    map_name: str,
    row_ids: Iterable[int],
    *,
    new_name: str | None = None,
    progress: ProgressFn = no_progress,
) -> SavedMap:
    """Save a new map without the rows ``row_ids``: same embeddings, a fresh layout, fresh
    clusters if the source had them (labels renamed in the source do not carry over: the clusters
    are new). The source map and its data are left untouched."""
    source = workspace.open(map_name)
    remove = np.isin(
        source.points["row_id"].to_numpy(), np.fromiter(map(int, row_ids), dtype=np.int64)
    )
    if not remove.any():
        raise InputError(
            f"None of the rows to remove is in the map '{source.name}': nothing to do."
        )
    return _reprojected(workspace, source, remove, new_name=new_name, progress=progress)


def relayout_map(
    workspace: Workspace, map_name: str, *, new_name: str | None = None, progress: ProgressFn = no_progress
) -> SavedMap:
    """Save a new version of the map with every row laid out afresh (after rows were added, say):
    same embeddings, a new layout and new clusters; the map itself is left untouched."""
    source = workspace.open(map_name)
    return _reprojected(workspace, source, np.zeros(len(source.points), dtype=bool), new_name=new_name,
                        progress=progress)


def _reprojected(workspace: Workspace, source: SavedMap, remove: np.ndarray, *, new_name: str | None,
                 progress: ProgressFn) -> SavedMap:
    """A new map of the source's rows but ``remove``, laid out and clustered again."""
    keep = ~remove
    kept_embedded = source.embedded[keep]
    if not kept_embedded.any():
        raise InputError(
            f"Removing {int(remove.sum()):,} rows would leave no point on the map "
            f"'{source.name}'. Keep at least one row."
        )
    with workspace.reserved(source.name, candidates=_new_names(source.name, new_name)) as name:
        return _laid_out_again(workspace, source, keep, name=name, progress=progress)


def _laid_out_again(workspace: Workspace, source: SavedMap, keep: np.ndarray, *, name: str,
                    progress: ProgressFn) -> SavedMap:
    """The source's rows ``keep`` laid out and clustered again, saved as the (reserved) map ``name``."""
    remove, kept_embedded = ~keep, source.embedded[keep]
    started = time.perf_counter()
    config = _projection_config(source.meta.projection.to_dict())
    vectors = np.asarray(source.embeddings)[keep]
    progress(
        "project",
        0.0,
        f"Projecting {int(kept_embedded.sum()):,} points with {config.method.upper()}",
    )
    layout = project(vectors[kept_embedded], config=config)
    progress("project", 1.0, f"Layout by {layout.method.upper()}")

    points = source.points[keep].drop(columns=list(LEVEL_COLUMNS.values()), errors="ignore")
    points = points.reset_index(drop=True)
    coords = np.full((len(points), 2), np.nan, dtype=np.float32)
    coords[kept_embedded] = layout.coords
    points["x"], points["y"] = coords[:, 0], coords[:, 1]
    manifest = {key: value for key, value in source.manifest.items() if key != "clusters"}
    manifest.update(
        {
            "rows": int(len(points)),
            "embedded_rows": int(kept_embedded.sum()),
            "projection": {**config.to_dict(), "method_used": layout.method},
            "parent": {
                "name": source.name,
                "rows": int(len(source.points)),
                "removed_rows": int(remove.sum()),
                "row_ids": "kept from the parent map",
            },
            "seconds": {"project": round(time.perf_counter() - started, 3)},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            # A map of its own: a refinement of the parent must never land on this copy.
            "map_id": uuid.uuid4().hex,
        }
    )
    if "clusters" in source.manifest:
        cluster_config = ClusterConfig.from_dict(source.meta.clusters.config or {})
        points, manifest = clustered(points, vectors, {**manifest, "name": name}, config=cluster_config,
                                     progress=progress)
    saved = save_map(workspace, name, points=points, embeddings=vectors, manifest=manifest, thumbnails_from=source)
    log.info("saved %s: %s without %d rows", saved.name, source.name, int(remove.sum()))
    return saved


def _projection_config(recorded: dict) -> ProjectionConfig:
    """The projection settings a manifest recorded (without the method_used note)."""
    names = {f.name for f in fields(ProjectionConfig)}
    return ProjectionConfig(**{k: v for k, v in recorded.items() if k in names})


def _new_names(source: str, new_name: str | None) -> list[str]:
    """The names the new map may take, first free wins: ``new_name``, else "<name> (vN)" after the
    source's version."""
    if new_name:
        return [new_name]
    match = _VERSION_SUFFIX.match(source)
    base, version = (match["base"], int(match["n"])) if match else (source, 1)
    return [suffixed_name(base, f" (v{n})") for n in range(version + 1, version + 1 + MAX_NAME_TRIES)]
