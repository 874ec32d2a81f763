"""Refinement, the second half of a progressive build: a fast map's rows embedded by the transformer
in chunks, in stages: first the titles (a table with a title column; search by meaning reads them while
the map stays as drawn), then the whole text, the map laid out again starting from its current layout.

Each chunk's vectors go into the workspace's embedding cache as soon as they exist, so a refinement
that is killed, interrupted or crashes loses one chunk at most: the next run finds the rest in the
cache. The fast map stays as it is until the refined one is saved whole over it (Workspace.save), and
the map is found by its ``map_id``, so a map renamed meanwhile gets its refinement under the new name
and a map deleted (or rebuilt) meanwhile is left alone.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from .cluster import ClusterConfig
from .corpus import TEXT
from .embed import EmbeddingCache, embed_cached
from .embedders import DEFAULT_BATCH_SIZE, Embedder, load_embedder
from .embedders.base import l2_normalise
from .embedders.tfidf import is_corpus_model, load_corpus_embedder
from .errors import InputError, MapChangedError, ModelError
from .limits import Limits
from .map_clusters import LEVEL_COLUMNS, clustered
from .map_files import save_map
from .pipeline import FAST_STAGE, FULL_STAGE, REFINE_PENDING, TITLES_STAGE
from .progress import ProgressFn, no_progress
from .project import ProjectionConfig, project
from .store import SavedMap, Workspace
from .texts import column_texts

try:
    import fcntl
except ImportError:  # Windows: two processes could then refine one map at once (harmless, only wasted)
    fcntl = None

log = logging.getLogger(__name__)

REFINE_DONE = "done"
REFINE_FAILED = "failed"
# What refine_map returns besides "done": the map is untouched in each case.
STOPPED = "stopped"  # should_stop said so; the refinement is still pending and resumes from the cache
GONE = "gone"  # the map was deleted, or rebuilt under its name, during the refinement
NOT_PENDING = "not pending"  # nothing to refine (done already, by this or another process)
BUSY = "busy"  # another process is refining this map right now
# Rows per chunk: a kill loses at most this much work (about half a minute of MiniLM on 2 cores).
DEFAULT_CHUNK_ROWS = 256
# A renamed cluster label moves to the new cluster whose rows overlap its rows this much (Jaccard).
LABEL_MATCH = 0.5
# A refinement whose save meets another save it cannot merge is redone on the latest version this often.
REFINE_SAVE_TRIES = 3
# The refined layout's start, as the manifest records it.
LAYOUT_START = "the fast map's layout"
# The refined map is laid out from the transformer's vectors joined with the fast map's own layout input at this
# weight (unit rows joined: a pair's cosine is the transformer's plus weight² times the fast map's, over 1 + weight²).
# The transformer reads the first REFINE_MAX_TOKENS tokens of each text, TF-IDF every word of it: on 10k arXiv
# papers the joined input's mean 2D 10-NN over three UMAP seeds was 0.649 (weight 0.7; 0.652 at 0.5) against 0.637
# for the fp32 128-token vectors alone and 0.655 for the quality mode's 256-token ones; on 2,500 papers 0.634
# (0.629 at 0.5) against 0.622 and 0.639 (docs/benchmarks.md, "refine-stages"). Search reads the transformer's
# vectors alone.
FAST_LAYOUT_WEIGHT = 0.7
# Told each time a stage is saved: its name (pipeline.TITLES_STAGE, FULL_STAGE) and the map's new version.
StageFn = Callable[[str, SavedMap], None]


@dataclass
class RefineResult:
    """How a refinement ended: its state, the saved map when it is done, and what it measured."""

    state: str
    map_id: str
    name: str | None
    saved: SavedMap | None = None
    seconds: float = 0.0
    rows: int = 0
    n_cached: int = 0
    displacement: dict = field(default_factory=dict)
    message: str = ""


# What search reads at each stage, in the words the sidebar, the results and the CLI use.
SEARCH_READS = {
    FAST_STAGE: "words (the fast map's TF-IDF), until the transformer has read the rows",
    TITLES_STAGE: "meaning, on the titles (the transformer is reading the rest)",
    FULL_STAGE: "meaning, on the whole text",
}


def search_stage(section) -> str | None:
    """The stage a map's search is on (pipeline.FAST_STAGE, TITLES_STAGE, FULL_STAGE), from its refinement
    section (a RefinementSection); None for a map built without one."""
    if section.state is None:
        return None
    if section.state == REFINE_DONE:
        return FULL_STAGE
    return section.stage or FAST_STAGE


def vector_texts(saved: SavedMap) -> list[str]:
    """The text each row's vector was made from: its title while search is on the titles (the whole text
    where a row has none, as the refinement embeds it), else the map's text."""
    texts = saved.texts()
    column = saved.meta.refinement.title_column
    if search_stage(saved.meta.refinement) != TITLES_STAGE or column not in saved.points.columns:
        return texts
    titles = column_texts(saved.points, column, max_chars=Limits.from_env().max_text_chars)
    return [title or text for title, text in zip(titles, texts, strict=True)]


def refinement_of(manifest: dict) -> dict:
    """A manifest's refinement section ({} for a map that never had one)."""
    return manifest.get("refinement") or {}


def pending_refinements(workspace: Workspace, *, automatic_only: bool = False) -> list[str]:
    """The names of the maps whose refinement is pending, oldest first (the order to resume them in);
    ``automatic_only`` leaves out those that start only when asked (too long for this CPU)."""
    infos = [m for m in workspace.list() if refinement_of(m.extra).get("state") == REFINE_PENDING
             and (not automatic_only or refinement_of(m.extra).get("automatic", True))]
    # Created is in whole seconds: the save stamp orders the maps built within one second. A map renamed or
    # deleted since the listing has no stamp: it is left for the next look.
    stamped = []
    for info in infos:
        with contextlib.suppress(OSError):
            stamped.append((info.created, int(workspace.stamp(info.name)), info.name))
    return [name for _created, _stamp, name in sorted(stamped)]


def find_map(workspace: Workspace, map_id: str, *, hint: str | None = None) -> str | None:
    """The name of the map with this ``map_id`` (``hint`` is tried first), or None when none has it."""
    if hint and workspace.exists(hint):
        with contextlib.suppress(OSError, ValueError):
            if workspace.read_manifest(hint).get("map_id") == map_id:
                return hint
    for info in workspace.list():
        if info.extra.get("map_id") == map_id:
            return info.name
    return None


def layout_displacement(before: np.ndarray, after: np.ndarray) -> dict:
    """How far points moved between two layouts of the same rows, as the map shows them: each layout
    scaled to fill the same square (what the app's zoom-to-fit does), movement as a share of its diagonal."""
    def fitted(coords: np.ndarray) -> np.ndarray:
        low, high = coords.min(axis=0), coords.max(axis=0)
        return (coords - low) / np.where(high > low, high - low, 1.0)

    if len(before) == 0:
        return {"median": 0.0, "p90": 0.0, "max": 0.0, "rows": 0}
    moved = np.linalg.norm(fitted(after) - fitted(before), axis=1) / np.sqrt(2.0)
    return {"median": round(float(np.median(moved)), 4), "p90": round(float(np.quantile(moved, 0.9)), 4),
            "max": round(float(moved.max()), 4), "rows": int(len(moved))}


def refine_map(
    name: str,
    *,
    workspace: Workspace | None = None,
    model: str | Embedder | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressFn = no_progress,
    should_stop: Callable[[], bool] | None = None,
    on_stage: StageFn | None = None,
) -> RefineResult:
    """Refine a pending map in stages, each saved as the map's next version and told to ``on_stage``: the
    titles embedded by the transformer (or ``model``) when the map has a title column (the map as drawn,
    searched by meaning on them), then the whole text, laid out again from the map as it was, re-clustered
    when it had clusters.

    Stops cleanly between chunks when ``should_stop()`` is true (the map stays pending); returns "gone"
    when the map was deleted meanwhile. A map whose refinement failed before is tried again."""
    workspace = workspace or Workspace()
    started = time.perf_counter()
    saved = workspace.open(name, mmap=True)  # its old vectors are never read
    section = refinement_of(saved.manifest)
    map_id = str(saved.meta.map_id or "")
    if section.get("state") not in (REFINE_PENDING, REFINE_FAILED):
        return RefineResult(NOT_PENDING, map_id, saved.name, message=f"'{saved.name}' has no refinement pending.")
    if saved.kind != TEXT or not map_id:
        raise InputError(f"'{saved.name}' cannot be refined: only text maps built by this version can.")
    stop = should_stop or (lambda: False)
    with _refining(workspace, map_id) as free:
        if not free:
            return RefineResult(BUSY, map_id, saved.name, message=f"'{saved.name}' is being refined by another "
                                "process.")
        try:
            return _refine(saved, section, workspace=workspace, model=model, chunk_rows=chunk_rows,
                           batch_size=batch_size, progress=progress, stop=stop, started=started,
                           on_stage=on_stage or (lambda stage, saved: None))
        except Exception as exc:  # Ctrl-C is no failure: the refinement stays pending
            _mark_failed(workspace, map_id, saved.name, exc)
            raise


def _refine(saved: SavedMap, section: dict, *, workspace: Workspace, model, chunk_rows: int, batch_size: int,
            progress: ProgressFn, stop: Callable[[], bool], started: float, on_stage: StageFn) -> RefineResult:
    map_id = saved.meta.map_id
    # The build recorded the model and the length the refinement reads (modes.REFINE_MAX_TOKENS).
    embedder = load_embedder(model if model is not None else section.get("model"), kind=TEXT,
                             max_seq_length=None if model is not None else section.get("max_seq_length"))
    embedded = saved.embedded
    # The text the build embedded: cut where compose_texts cuts, so the cache keys are the quality mode's.
    cut = Limits.from_env().max_text_chars
    texts = [t[:cut] for t, keep in zip(saved.texts(), embedded, strict=True) if keep]
    total = len(texts)
    cache = EmbeddingCache(workspace.cache_path) if embedder.cacheable else None
    seconds: dict[str, float] = {}
    titles_cached = 0
    # Read before the titles' stage replaces the fast map's vectors.
    fast_layout = _fast_layout_input(saved, section, embedded, texts, workspace=workspace)
    embed = functools.partial(_embed_chunks, embedder, cache=cache, chunk_rows=chunk_rows, batch_size=batch_size,
                              progress=progress, stop=stop)

    def stopped() -> RefineResult:
        return RefineResult(STOPPED, map_id, saved.name, seconds=time.perf_counter() - started, rows=total,
                            message=f"Stopped; `explorer refine \"{saved.name}\"` resumes where it stopped.")

    progress("embed", 0.0, f"Loading the model {embedder.model_id}")
    changes = {"model_id": embedder.model_id, "model": embedder.spec, "model_hash": embedder.model_hash,
               "dimension": embedder.dimension}
    title_column = section.get("title_column")
    if (section.get("stage") or FAST_STAGE) == FAST_STAGE and title_column in saved.points.columns:
        # Titles first: search by meaning on them within seconds, while the whole text is read.
        titles = column_texts(saved.points[embedded], title_column, max_chars=cut)
        titles = [title or text for title, text in zip(titles, texts, strict=True)]  # no title: the whole text
        embedded_titles = embed(titles, stage=TITLES_STAGE)
        if embedded_titles is None:
            return stopped()
        titles_cached = embedded_titles[1]
        seconds[TITLES_STAGE] = time.perf_counter() - started
        section = {**section, "stage": TITLES_STAGE, "seconds": {TITLES_STAGE: round(seconds[TITLES_STAGE], 3)}}
        saved = _on_latest(workspace, map_id, saved, lambda latest: _save_stage(
            latest, workspace, embedded=embedded, vectors=embedded_titles[0], coords=None,
            changes=changes, section=section, progress=progress))
        if isinstance(saved, RefineResult):
            return saved
        on_stage(TITLES_STAGE, saved)
        progress("embed", 0.0, f"Search by meaning reads the titles; now the whole text of {total:,} rows")
        if stop():
            return stopped()

    mark = time.perf_counter()
    embedded_texts = embed(texts, stage="embed")
    if embedded_texts is None or stop():
        return stopped()
    vectors, n_cached = embedded_texts[0], embedded_texts[1] + titles_cached
    seconds["embed"] = time.perf_counter() - mark

    mark = time.perf_counter()
    config = ProjectionConfig.from_dict(saved.meta.projection.to_dict())
    before = saved.coords[embedded]
    progress("project", 0.0, f"Laying out {total:,} points again with {config.method.upper()}, from the current map")
    layout_input = joined_layout_input(np.asarray(embedder.layout_vectors(vectors)), fast_layout)
    # Started from the map as drawn, so points move as little as the new vectors allow. Laying out afresh and
    # turning the result onto the fast map (Procrustes) was measured against this on 2.5k and 10k arXiv papers:
    # the same 2D 10-NN (0.619 / 0.637 against 0.620 / 0.640) with more movement (12-13 % against 11-12 %).
    layout = project(layout_input, config=config, cache_dir=workspace.projection_cache_dir,
                     init=before if np.isfinite(before).all() and total else None)
    coords = layout.coords
    displacement = layout_displacement(before, coords)
    seconds["project"] = time.perf_counter() - mark
    progress("project", 1.0, f"Median point moved {displacement['median']:.1%} of the map's size")
    if stop():
        return stopped()

    progress("save", 0.0, "Saving the refined map")
    refined = {**section, "state": REFINE_DONE, "stage": FULL_STAGE, "model": embedder.spec,
               "model_id": embedder.model_id, "displacement": displacement, "rows": total, "n_cached": n_cached}
    refined.pop("error", None)
    changes = {**changes, "dimension": int(vectors.shape[1]),
               "projection": {**config.to_dict(), "method_used": layout.method,
                              "input_dimension": int(layout_input.shape[1]),
                              "init": LAYOUT_START,
                              "joined": None if fast_layout is None else {"model_id": section.get("from_model"),
                                                                          "weight": FAST_LAYOUT_WEIGHT}}}
    result = _on_latest(workspace, map_id, saved, lambda latest: _save_stage(
        latest, workspace, embedded=embedded, vectors=vectors, coords=coords, changes=changes,
        section={**refined, "seconds": {**(section.get("seconds") or {}), **seconds}}, started=started,
        progress=progress))
    if isinstance(result, RefineResult):
        return result
    total_seconds = time.perf_counter() - started
    progress("save", 1.0, f"Refined '{result.name}' in {total_seconds:.0f} s")
    log.info("refined %s with %s in %.1f s (median displacement %.3f)", result.name, embedder.model_id,
             total_seconds, displacement["median"])
    on_stage(FULL_STAGE, result)
    return RefineResult(REFINE_DONE, map_id, result.name, saved=result, seconds=total_seconds, rows=total,
                        n_cached=n_cached, displacement=displacement,
                        message=f"'{result.name}' now uses {embedder.model_id}: search by meaning, neighbours and "
                        "clusters come from its vectors.")


def _fast_layout_input(saved: SavedMap, section: dict, embedded: np.ndarray, texts: list[str], *,
                       workspace: Workspace) -> np.ndarray | None:
    """The fast map's layout input of the rows refined: from the map's vectors while it still holds the fast
    model's, else from the texts through the fast model kept in the workspace; None without one (then the
    transformer's vectors are laid out alone)."""
    fast_model = section.get("from_model")
    if not is_corpus_model(fast_model):
        return None
    try:
        fast = load_corpus_embedder(fast_model, workspace_root=workspace.root)
    except (ModelError, OSError, ValueError) as exc:
        log.warning("the fast model %s is gone (%s): the refined map is laid out from the transformer alone",
                    fast_model, exc)
        return None
    vectors = saved.embeddings[embedded] if saved.meta.model_id == fast_model else fast.embed(texts)
    return np.asarray(fast.layout_vectors(vectors))


def joined_layout_input(transformer: np.ndarray, fast: np.ndarray | None) -> np.ndarray:
    """The refined layout's input: the transformer's unit rows beside FAST_LAYOUT_WEIGHT times the fast
    map's, at unit length again (the transformer's alone without the fast map's)."""
    if fast is None:
        return transformer
    return l2_normalise(np.hstack([l2_normalise(transformer), FAST_LAYOUT_WEIGHT * l2_normalise(fast)]))


def _embed_chunks(embedder: Embedder, texts: list[str], *, stage: str, cache: EmbeddingCache | None,
                  chunk_rows: int, batch_size: int, progress: ProgressFn,
                  stop: Callable[[], bool]) -> tuple[np.ndarray, int] | None:
    """``texts`` embedded a chunk at a time (each chunk cached as it is done), reported as ``stage``; the
    vectors and how many came from the cache, or None when ``stop()`` said so between chunks."""
    chunks, n_cached, total = [], 0, len(texts)
    for start in range(0, total, max(1, chunk_rows)):
        if stop():
            return None
        chunk = texts[start:start + chunk_rows]
        part = embed_cached(embedder, chunk, cache=cache, batch_size=batch_size,
                            progress=_within(progress, stage, start, len(chunk), total))
        chunks.append(part.vectors)
        n_cached += part.n_cached
    vectors = np.vstack(chunks) if chunks else np.zeros((0, embedder.dimension), dtype=np.float32)
    return vectors, n_cached


def _on_latest(workspace: Workspace, map_id: str, saved: SavedMap,
               write: Callable[[SavedMap], SavedMap]) -> SavedMap | RefineResult:
    """``write`` applied to the map's latest version (what another save or a rename did meanwhile is kept),
    redone when another save lands first; a RefineResult instead when the map is gone or refined meanwhile."""
    current = saved.name
    for _ in range(REFINE_SAVE_TRIES):
        current = find_map(workspace, map_id, hint=current)
        if current is None:
            return _gone(map_id, saved.name, time.perf_counter())
        latest = workspace.open(current, mmap=True)
        if latest.meta.refinement.state not in (REFINE_PENDING, REFINE_FAILED):
            return RefineResult(NOT_PENDING, map_id, current, message=f"'{current}' was refined meanwhile.")
        if not np.array_equal(latest.points["row_id"].to_numpy(), saved.points["row_id"].to_numpy()):
            return _gone(map_id, saved.name, time.perf_counter())
        try:
            return write(latest)
        except MapChangedError as exc:
            log.info("%s changed during its refinement: redone on the latest version (%s)", current, exc)
    raise MapChangedError(f"'{current}' kept changing during its refinement: it was tried "
                          f"{REFINE_SAVE_TRIES} times. Run `explorer refine \"{current}\"` again.")


def _save_stage(latest: SavedMap, workspace: Workspace, *, embedded: np.ndarray, vectors: np.ndarray,
                coords: np.ndarray | None, changes: dict, section: dict, progress: ProgressFn,
                started: float | None = None) -> SavedMap:
    """One stage's vectors put on ``latest`` and saved as its next version: with ``coords`` the new layout
    too (re-clustered when the map has clusters), without them the map as it is drawn, searched by the new
    vectors. MapChangedError when another save landed meanwhile that cannot be merged."""
    points = latest.points
    full = np.zeros((len(points), vectors.shape[1]), dtype=np.float32)
    full[embedded] = vectors
    manifest = {**latest.manifest, **changes}
    section = {**section, "from_model": section.get("from_model") or latest.meta.model_id}
    if coords is not None:
        points = points.drop(columns=list(LEVEL_COLUMNS.values()), errors="ignore").copy()
        full_coords = np.full((len(points), 2), np.nan, dtype=np.float32)
        full_coords[embedded] = coords
        points["x"], points["y"] = full_coords[:, 0], full_coords[:, 1]
        manifest.pop("clusters", None)
        if latest.meta.clusters:
            mark = time.perf_counter()
            points, manifest = _reclustered(latest, points, full, manifest, progress=progress)
            section["seconds"] = {**section.get("seconds", {}), "cluster": time.perf_counter() - mark}
            section["labels"] = manifest["clusters"].pop("carried", {})
    if started is not None:
        section["seconds"] = {k: round(v, 3) for k, v in
                              {**section.get("seconds", {}), "total": time.perf_counter() - started}.items()}
        section["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    manifest["refinement"] = section
    return save_map(workspace, latest.name, points=points, embeddings=full, manifest=manifest, base=latest)


def _within(progress: ProgressFn, stage: str, start: int, size: int, total: int) -> ProgressFn:
    """A chunk's own progress reports, as rows of the whole ``stage`` (titles, or the whole text)."""
    what = "titles" if stage == TITLES_STAGE else "rows"

    def report(step: str, fraction: float, message: str = "") -> None:
        if step == "embed" and total:
            done = start + int(size * max(0.0, min(1.0, fraction)))
            progress(stage, done / total, f"{done:,} / {total:,} {what}")
    return report


def _reclustered(latest: SavedMap, points, vectors: np.ndarray, manifest: dict, *, progress: ProgressFn):
    """The refined points and manifest clustered as the map was (its recorded config), with the labels the
    user renamed carried over to the new clusters that match them (nothing saved)."""
    config = ClusterConfig.from_dict(latest.meta.clusters.config or {})
    points, manifest = clustered(points, vectors, manifest, config=config, progress=progress)
    manifest["clusters"]["carried"] = _carry_renamed_labels(latest, points, manifest["clusters"])
    return points, manifest


def _carry_renamed_labels(old: SavedMap, new_points, section: dict) -> dict:
    """Give each new cluster the user's label of the old cluster whose rows it mostly holds (Jaccard ≥
    LABEL_MATCH); the counts of labels carried and dropped, for the manifest."""
    carried = dropped = 0
    old_levels = (old.manifest.get("clusters") or {}).get("levels") or {}
    for level, new_level in (section.get("levels") or {}).items():
        old_level = old_levels.get(level) or {}
        column = new_level["column"]
        renamed = [c for c in old_level.get("clusters", []) if c.get("renamed")]
        if not renamed or column not in old.points or column not in new_points:
            continue
        old_ids, new_ids = old.points[column].to_numpy(), new_points[column].to_numpy()
        for cluster in renamed:
            rows = old_ids == cluster["id"]
            best, score = None, 0.0
            for candidate in new_level["clusters"]:
                other = new_ids == candidate["id"]
                union = int((rows | other).sum())
                overlap = int((rows & other).sum()) / union if union else 0.0
                if overlap > score:
                    best, score = candidate, overlap
            if best is not None and score >= LABEL_MATCH and not best.get("renamed"):
                best["label"], best["renamed"] = cluster["label"], True
                carried += 1
            else:
                dropped += 1
    return {"carried": carried, "dropped": dropped}


def _gone(map_id: str, name: str, started: float) -> RefineResult:
    log.info("refinement of %s abandoned: the map was deleted or rebuilt", name)
    return RefineResult(GONE, map_id, None, seconds=time.perf_counter() - started,
                        message=f"'{name}' was deleted or rebuilt during its refinement; nothing was saved.")


def _mark_failed(workspace: Workspace, map_id: str, name: str, exc: BaseException) -> None:
    """Record a failed refinement in the map's manifest, so a restart does not retry it for ever
    (`explorer refine NAME` does, on request)."""
    with contextlib.suppress(Exception):
        current = find_map(workspace, map_id, hint=name)
        if current is not None:
            section = refinement_of(workspace.read_manifest(current))
            workspace.update_manifest(current, {"refinement": {**section, "state": REFINE_FAILED,
                                                               "error": " ".join(str(exc).split())[:500]}})


@contextlib.contextmanager
def _refining(workspace: Workspace, map_id: str):
    """Hold the map's refinement lock while refining; yields False when another process holds it."""
    if fcntl is None:
        yield True
        return
    lock_dir = workspace.root / "cache" / "refine-locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{map_id}.lock", "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True  # released when the file closes, or when its process dies
