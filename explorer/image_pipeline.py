"""build_image_map: read images → embed → project → save with thumbnails, like build_map for text."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .cache import EmbeddingCache
from .embed import DEFAULT_BATCH_SIZE
from .errors import InputError
from .image_embed import SEMANTIC, ImageEmbedder, embed_image_set, load_image_embedder
from .images import IMAGE_COLUMNS, ImageLimits, ImageSet, describe_skipped, read_images
from .pipeline import BuildResult, assemble_points
from .progress import ProgressFn, no_progress
from .project import ProjectionConfig, project
from .store import Workspace
from .thumbnails import THUMBNAIL_FORMAT, save_thumbnails

log = logging.getLogger(__name__)

IMAGE_KIND = "images"
# The manifest lists at most this many skipped files; the count is always exact.
MAX_SKIPPED_LISTED = 1_000


@dataclass
class ImageBuildResult(BuildResult):
    """A BuildResult plus what only image builds have: the skipped files and the text-search mode."""

    skipped: list[tuple[str, str]] = field(default_factory=list)
    text_search: str = SEMANTIC
    text_search_reason: str = ""


def text_search_reason(embedder: ImageEmbedder) -> str:
    """One sentence on how text queries will search a map built with this embedder."""
    if embedder.text_search == SEMANTIC:
        return "Text search uses CLIP: text queries and images share one embedding space."
    return getattr(embedder, "fallback_reason", "") or (
        "This map was built with the offline pixel embedder, which cannot read text: text search "
        "matches words in file names and labels instead."
    )


def build_image_map(
    source: ImageSet | str | Path | bytes | list,
    *,
    name: str | None = None,
    model: str | ImageEmbedder | None = None,
    fallback: bool = False,
    projection: ProjectionConfig | None = None,
    workspace: Workspace | None = None,
    use_cache: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    limits: ImageLimits | None = None,
    progress: ProgressFn = no_progress,
) -> ImageBuildResult:
    """Build and save an image map from an ImageSet or anything `read_images` takes; ``model`` is a
    CLIP name or folder (default clip-ViT-B-32), "pixels", or an embedder; with ``fallback`` a CLIP
    model that cannot be loaded gives way to the pixel embedder (said in the notes)."""
    workspace = workspace or Workspace()
    projection = projection or ProjectionConfig()
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    progress("load", 0.0, "Reading the images")
    images = source if isinstance(source, ImageSet) else read_images(source, limits=limits,
                                                                      progress=progress)
    if len(images) == 0:
        reasons = describe_skipped(images.skipped) or "it holds no files"
        raise InputError(f"{images.source_name}: no readable image was found: {reasons}.")
    seconds["load"] = time.perf_counter() - started
    progress("load", 1.0, f"{len(images):,} images, {len(images.skipped):,} skipped")

    started = time.perf_counter()
    embedder = load_image_embedder(model, fallback=fallback)
    reason = text_search_reason(embedder)
    notes = [*([reason] if getattr(embedder, "fallback_reason", "") else []), *images.notes]
    progress("embed", 0.0, f"Embedding with {embedder.model_id}")
    cache = EmbeddingCache(workspace.cache_path) if use_cache else None
    embedded = embed_image_set(embedder, images, cache=cache, batch_size=batch_size, progress=progress)
    seconds["embed"] = time.perf_counter() - started

    started = time.perf_counter()
    progress("project", 0.0, f"Projecting {len(images):,} images with {projection.method.upper()}")
    layout = project(embedded.vectors, config=projection)
    seconds["project"] = time.perf_counter() - started
    progress("project", 1.0, f"Layout by {layout.method.upper()}")

    started = time.perf_counter()
    progress("save", 0.0, "Saving the map and its thumbnails")
    points, vectors = assemble_points(images.frame, np.ones(len(images), dtype=bool), embedded.vectors,
                                      layout.coords)
    map_name = name or Path(images.source_name.split(" + ")[0]).stem or "images"
    manifest = {
        "name": map_name,
        "kind": IMAGE_KIND,
        "rows": int(len(points)),
        "embedded_rows": int(len(points)),
        # What keyword search reads and what SavedMap.texts() shows for each image.
        "text_columns": _keyword_columns(images),
        "template": None,
        "model_id": embedded.model_id,
        # The spec that loads this embedder again, for searching: a CLIP name or folder, or "pixels".
        "model": getattr(embedder, "model_name", embedded.model_id),
        "model_hash": getattr(embedder, "model_hash", ""),
        "dimension": int(vectors.shape[1]),
        "text_search": embedder.text_search,
        "text_search_reason": reason,
        "images": {
            "path_column": images.path_column,
            "label_column": "label" if "label" in images.frame.columns else None,
            "thumbnail_format": THUMBNAIL_FORMAT.lower(),
            "skipped_count": len(images.skipped),
            "skipped": [list(item) for item in images.skipped[:MAX_SKIPPED_LISTED]],
        },
        "projection": {**projection.to_dict(), "method_used": layout.method},
        "source": {"name": images.source_name, "format": images.format, "sha256": images.content_hash},
        "notes": notes,
        "seconds": seconds,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": __version__,
    }
    saved = workspace.save(map_name, points=points, embeddings=vectors, manifest=manifest)
    save_thumbnails(saved, images.thumbnails)
    seconds["save"] = time.perf_counter() - started
    progress("save", 1.0, f"Saved as '{saved.name}'")
    log.info("built image map %s: %d images with %s", saved.name, len(points), embedded.model_id)
    return ImageBuildResult(saved=saved, seconds=seconds, notes=notes, n_cached=embedded.n_cached,
                            skipped=images.skipped, text_search=embedder.text_search,
                            text_search_reason=reason)


def _keyword_columns(images: ImageSet) -> list[str]:
    """The image's name, its label, and any text columns a table brought along (captions, tags)."""
    frame = images.frame
    columns = [images.path_column, *(["label"] if "label" in frame.columns else [])]
    columns += [c for c in frame.columns if c not in IMAGE_COLUMNS
                and (pd.api.types.is_string_dtype(frame[c]) or frame[c].dtype == object)]
    return list(dict.fromkeys(columns))
