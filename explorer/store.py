"""Step 5, store: saved maps as folders in a workspace, written atomically, exactly as given (it computes nothing:
the files besides points and vectors come ready-made from explorer.map_files), and read back without writing."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import InputError, MapChangedError, MapNotFoundError
from .home import explorer_home
from .index_file import VectorIndex, file_source, write_index
from .label_file import write_labels
from .manifest import DEFAULT_KIND, Manifest
from .points_file import NEIGHBORS_COLUMN, POINTS_FILE, read_points, write_points
from .thumbnails import THUMBNAILS_FILE, read_thumbnail_table, write_thumbnail_table

if TYPE_CHECKING:
    import pyarrow as pa

try:
    import fcntl
except ImportError:  # Windows: the lock below then covers the threads of one process only
    fcntl = None

log = logging.getLogger(__name__)

EMBEDDINGS_FILE = "embeddings.npy"
MANIFEST_FILE = "manifest.json"
_TMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"
_UUID_LEN = 32
# The app and the CLI share a workspace: a fresh temp folder may be another process's save in
# progress, so only folders older than this are taken for the leftovers of a crash.
STALE_TMP_SECONDS = 3600
LOCK_FILE = "maps.lock"
# Small edits that read a map, change a column and save it (screening decisions) take turns on this lock.
EDIT_LOCK_FILE = "edits.lock"
# A name being built: a folder holding only this file (its owner's pid), replaced by the map's save.
RESERVED_FILE = ".reserved"
# Each save's id in the manifest ("version" is the software's); maps saved before it are version "0".
VERSION_KEY = "map_version"
# Manifest keys every save writes for itself: never a conflict between two saves.
_OWN_KEYS = ("name", "saved", VERSION_KEY)
# Vectors take part in a merge as one more column of the map, under this key.
_VECTORS = "(vectors)"
# A map read while saves land is read again, this often at most, until one version is read whole.
OPEN_TRIES = 20
_THREAD_LOCK = threading.Lock()
_EDIT_THREAD_LOCK = threading.Lock()


# A folder name holds at most 255 bytes, and while a save swaps folders the store names the old one
# ".trash-<uuid><name>": so a name, suffix included, is capped in UTF-8 bytes as well as in characters
# (90 CJK characters are 270 bytes).
NAME_MAX_CHARS = 100
NAME_MAX_BYTES = 255 - len(_TRASH_PREFIX) - _UUID_LEN
# unique_name and the curation's versions try this many suffixes at most ("name (2)" … "name (999)").
MAX_NAME_TRIES = 999


def _cut(text: str, chars: int, max_bytes: int) -> str:
    """``text`` cut to at most ``chars`` characters and ``max_bytes`` UTF-8 bytes, whole characters only."""
    return text[:chars].encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def sanitise_map_name(name: str) -> str:
    """A map name safe as one folder name: no separators, no leading dots, no `..`, short enough."""
    cleaned = re.sub(r"[^\w\- .()]+", "_", str(name or ""), flags=re.UNICODE)
    cleaned = re.sub(r"\.{2,}", "_", cleaned)
    cleaned = _cut(cleaned.strip(" ._-"), NAME_MAX_CHARS, NAME_MAX_BYTES).strip()
    if not cleaned:
        raise InputError(f"'{name}' cannot be used as a map name. Use letters, digits, spaces, - or _.")
    return cleaned


def suffixed_name(base: str, suffix: str) -> str:
    """``base`` + ``suffix`` (" (2)", " (v3)"), the base cut so that the whole stays within the caps:
    cutting the suffix off again would name the map it is meant to differ from."""
    room_chars = NAME_MAX_CHARS - len(suffix)
    room_bytes = NAME_MAX_BYTES - len(suffix.encode("utf-8"))
    return sanitise_map_name(_cut(sanitise_map_name(base), room_chars, room_bytes).rstrip() + suffix)


@dataclass(frozen=True, eq=False)
class MapFiles:
    """What a save writes besides points and vectors, made by explorer.map_files: the store computes none."""

    neighbors: pa.Array | None = None
    index: VectorIndex | None = None
    # labels.parquet's rows (label_file.label_table); None: the map has no clusters, and no file.
    labels: pd.DataFrame | None = None

    @property
    def empty(self) -> bool:
        """Whether there is nothing besides points and vectors to write."""
        return self.neighbors is None and self.index is None and self.labels is None


class StaleFiles(MapChangedError):
    """A save landed on a newer version whose merge changed what its files derive from: ``merged`` (points,
    vectors, manifest) is to be saved again on ``theirs`` with files derived for it (map_files.save_map)."""

    def __init__(self, merged: tuple[pd.DataFrame, np.ndarray, dict], theirs: SavedMap):
        super().__init__(f"'{theirs.name}' changed meanwhile: its files are derived again")
        self.merged, self.theirs = merged, theirs


@dataclass
class SavedMap:
    """A map on disk: points (original columns + row_id, x, y, embedded), embeddings, manifest."""

    path: Path
    manifest: dict
    points: pd.DataFrame
    embeddings: np.ndarray
    # The array `embeddings` was when its search index (or None) was found (vector_index.search_index).
    index_cache: tuple[np.ndarray, VectorIndex | None] | None = field(default=None, init=False, repr=False,
                                                                      compare=False)
    index_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    # The typed view of `manifest` and the dict it was read from (read again when the dict is replaced).
    _meta: tuple[dict, Manifest] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def meta(self) -> Manifest:
        """The manifest typed (explorer.manifest): what readers use; ``manifest`` stays the dict writers build on."""
        if self._meta is None or self._meta[0] is not self.manifest:
            self._meta = (self.manifest, Manifest.from_dict(self.manifest))
        return self._meta[1]

    @property
    def name(self) -> str:
        """The map's name (its folder name)."""
        return self.path.name

    @property
    def embeddings_file(self) -> Path:
        """The file the map's vectors are saved in."""
        return self.path / EMBEDDINGS_FILE

    @property
    def kind(self) -> str:
        """What the map's rows are: "text" or "images"."""
        return self.meta.kind

    @property
    def version(self) -> str:
        """Which save of the map this is (a save derived from it names it as its ``base``); "0" for old maps."""
        return str(self.meta.map_version or "0")

    @property
    def stamp(self) -> str:
        """When the map was last saved (its manifest's mtime): a cache key part, so a rebuilt map is never stale."""
        return manifest_stamp(self.path)

    @property
    def has_thumbnails(self) -> bool:
        """Whether the map stores a thumbnail per row (image maps do)."""
        return (self.path / THUMBNAILS_FILE).is_file()

    def thumbnails(self, row_ids: Iterable[int] | None = None) -> dict[int, bytes]:
        """Thumbnail bytes by row_id: all of them, or only those of ``row_ids``."""
        if not self.has_thumbnails:
            raise InputError(f"The map '{self.name}' has no thumbnails: it is not an image map, or it "
                             "was saved by an older version. Build it again from the images.")
        return read_thumbnail_table(self.path / THUMBNAILS_FILE, row_ids)

    @property
    def coords(self) -> np.ndarray:
        """x, y as an (n, 2) float32 array (NaN for rows that were not embedded)."""
        return self.points[["x", "y"]].to_numpy(dtype=np.float32, na_value=np.nan)

    @property
    def embedded(self) -> np.ndarray:
        """Boolean mask of rows that have an embedding."""
        return self.points["embedded"].to_numpy(dtype=bool)

    def texts(self, *, arrow: bool = False) -> Sequence[str]:
        """The text embedded for each row, rebuilt from the manifest's columns or template (with ``arrow``,
        as a TextColumn: no Python string per row held for the whole map)."""
        from .texts import compose_texts

        selection = compose_texts(
            self.points,
            columns=self.meta.text_columns,
            template=self.meta.template,
            max_chars=10**9,
            arrow=arrow,
        )
        return selection.texts


@dataclass
class MapInfo:
    """One line of the workspace listing."""

    name: str
    path: Path
    rows: int
    embedded_rows: int
    model_id: str
    created: str
    extra: dict = field(default_factory=dict)


class Workspace:
    """The folder of saved maps; every write lands whole or not at all."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else explorer_home()
        self.maps_dir = self.root / "maps"
        self.maps_dir.mkdir(parents=True, exist_ok=True)
        self._recover()

    @property
    def cache_path(self) -> Path:
        """Where the embedding cache of this workspace lives."""
        return self.root / "cache" / "embeddings.sqlite"

    @property
    def projection_cache_dir(self) -> Path:
        """Where layouts are kept by the hash of their embeddings and settings (see project.project)."""
        return self.root / "cache" / "projections"

    def map_path(self, name: str) -> Path:
        """The folder a map of this name has (or would have)."""
        return self.maps_dir / sanitise_map_name(name)

    def exists(self, name: str) -> bool:
        """Whether a saved map has this name."""
        return (self.map_path(name) / MANIFEST_FILE).is_file()

    def unique_name(self, name: str) -> str:
        """``name``, or ``name (2)``, ``name (3)``… whichever is free (neither a map nor reserved) now."""
        candidate = next((c for c in numbered_names(name) if not self.map_path(c).exists()), None)
        if candidate is None:
            raise InputError(_all_taken(name))
        return candidate

    def reserve_name(self, name: str, *, candidates: Iterable[str] | None = None) -> str:
        """Claim the first free name of ``candidates`` (by default ``name``, ``name (2)``…) for a map about
        to be built: its placeholder folder, not listed as a map, is replaced by the save or removed by
        release_name. Atomic, so two builds started at once never get one name."""
        names = list(candidates) if candidates is not None else list(numbered_names(name))
        with self._swap_lock():
            for candidate in names:
                path = self.map_path(candidate)
                if not path.exists():
                    path.mkdir()
                    (path / RESERVED_FILE).write_text(str(os.getpid()), encoding="utf-8")
                    return path.name
        if candidates is None:
            raise InputError(_all_taken(name))
        if len(names) == 1:
            raise InputError(f"A map named '{sanitise_map_name(names[0])}' already exists. Choose another name.")
        raise InputError(f"The {len(names)} names tried for a new version of '{name}' are all taken. Name it yourself.")

    def release_name(self, name: str) -> None:
        """Remove the placeholder of a reserved name, unless a map was saved under it meanwhile."""
        with self._swap_lock():
            path = self.map_path(name)
            if (path / RESERVED_FILE).is_file() and not (path / MANIFEST_FILE).is_file():
                shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def reserved(self, name: str, *, candidates: Iterable[str] | None = None):
        """reserve_name for the length of a build: yields the name, released when the build saved nothing."""
        claimed = self.reserve_name(name, candidates=candidates)
        try:
            yield claimed
        finally:
            self.release_name(claimed)

    def save(
        self,
        name: str,
        *,
        points: pd.DataFrame,
        embeddings: np.ndarray,
        manifest: dict,
        files: MapFiles | None = None,
        thumbnails: Sequence[bytes] | Mapping[int, bytes] | None = None,
        thumbnails_from: SavedMap | None = None,
        base: SavedMap | None = None,
    ) -> SavedMap:
        """Write a map atomically, exactly as given: into a temporary folder first, then swapped into place.

        ``files`` are what is stored besides points and vectors (neighbours column, search index, labels
        table), made by explorer.map_files (operations save through map_files.save_map); without them
        the map has none. A ``neighbors`` column of ``points`` is never written as a column of its own.

        ``base`` is the saved map this one was derived from: the save goes to wherever that map is now
        (found by its ``map_id``, so a rename is followed), and when another save landed there since,
        what the two changed is merged (merged_save) or MapChangedError is raised and nothing is written.
        When the merge changes what ``files`` derive from (rows, vectors, clusters), StaleFiles hands the
        merged map back to be derived and saved again. Without ``base`` the map is written as given,
        over any map of that name.

        ``thumbnails`` are one per row (row-aligned) or by row_id. Without them the thumbnails of the
        saved rows are kept: those of ``thumbnails_from`` (a map this one derives from), else those of
        the map being replaced, so re-saving an image map never loses its pictures."""
        final = self.map_path(name)
        files = files or MapFiles()
        tmp, saved = self._written(final, points, embeddings, manifest, files, thumbnails, thumbnails_from)
        try:
            with self._swap_lock():
                if base is not None:
                    current = self._locate(base, final)
                    if current != final or _version_of(current) != base.version:
                        # Another save (or a rename) landed since ``base`` was read: written again, merged.
                        shutil.rmtree(tmp, ignore_errors=True)
                        theirs = self.open(current.name, mmap=True)
                        merged = merged_save(base, (points, embeddings, manifest), theirs)
                        if not files.empty and not _same_sources(merged, (points, embeddings, manifest)):
                            raise StaleFiles(merged, theirs)
                        final = current
                        tmp, saved = self._written(final, *merged, files, thumbnails, thumbnails_from)
                self._swap_in(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return saved

    def _written(self, final: Path, points: pd.DataFrame, embeddings: np.ndarray, manifest: dict,
                 files: MapFiles, thumbnails, thumbnails_from: SavedMap | None) -> tuple[Path, SavedMap]:
        """The map written whole into a fresh temporary folder, to be swapped in as ``final``."""
        manifest = {**manifest, "name": final.name, "saved": datetime.now(UTC).isoformat(timespec="seconds"),
                    VERSION_KEY: uuid.uuid4().hex}
        row_ids = points["row_id"].to_numpy()
        if NEIGHBORS_COLUMN in points.columns:
            points = points.drop(columns=[NEIGHBORS_COLUMN])
        if thumbnails is None and manifest.get("kind") == "images":
            thumbnails = self._kept_thumbnails(thumbnails_from.path if thumbnails_from else final, row_ids)
        tmp = self.maps_dir / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            write_points(points, tmp / POINTS_FILE, files.neighbors)
            self._write_vectors(embeddings, tmp / EMBEDDINGS_FILE)
            index = files.index
            if index is not None:
                # It names the file it matches, so a search finds it without building one.
                index = dataclasses.replace(index, source=file_source(tmp / EMBEDDINGS_FILE))
                write_index(index, tmp)
            if thumbnails is not None:
                write_thumbnail_table(tmp / THUMBNAILS_FILE, row_ids, thumbnails)
            write_labels(tmp, files.labels)
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
            _fsync_tree(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        saved = SavedMap(path=final, manifest=manifest, points=points, embeddings=embeddings)
        saved.index_cache = (embeddings, index)
        return tmp, saved

    def _write_vectors(self, embeddings: np.ndarray, target: Path) -> None:
        """embeddings.npy: a hard link to the saved file the array maps unchanged (a decision or a rename
        rewrites the points, not 150 MB of vectors at 100k rows), else written."""
        if _maps_whole_file(embeddings, self.maps_dir):
            with contextlib.suppress(OSError):  # another file system, or links not allowed: written below
                os.link(embeddings.filename, target)
                return
        np.save(target, np.ascontiguousarray(embeddings, dtype=np.float32))

    def _locate(self, base: SavedMap, final: Path) -> Path:
        """Where the map ``base`` was read from is now (called under the swap lock): ``final`` or the
        folder its ``map_id`` moved to; MapChangedError when it was deleted or rebuilt meanwhile."""
        map_id = base.manifest.get("map_id")
        folders = [final, base.path, *sorted(self.maps_dir.iterdir())] if map_id else [final]
        for folder in folders:
            with contextlib.suppress(OSError, ValueError):
                if folder.parent == self.maps_dir and not folder.name.startswith(".") and \
                        _read_manifest(folder / MANIFEST_FILE).get("map_id") == map_id:
                    return folder
        raise MapChangedError(f"The map '{base.name}' was deleted, rebuilt or grown while this was being done: "
                              "nothing was saved. Open the map again and redo it there.")

    @staticmethod
    def _kept_thumbnails(source: Path, row_ids: np.ndarray) -> dict[int, bytes] | None:
        """The thumbnails of ``row_ids`` in the map folder ``source``, when it has one for each."""
        if not (source / THUMBNAILS_FILE).is_file():
            return None
        found = read_thumbnail_table(source / THUMBNAILS_FILE, row_ids)
        if len(found) < len(row_ids):
            log.warning("%s has thumbnails for %d of %d rows: none kept", source.name, len(found), len(row_ids))
            return None
        return found

    @contextlib.contextmanager
    def edits(self):
        """Small read-change-save edits (a decision) take turns under this lock, across threads and
        processes, so many people editing one map at once do not keep redoing each other's work; other
        saves (a refinement, trust) do not take it and merge as usual."""
        with _EDIT_THREAD_LOCK, open(self.root / EDIT_LOCK_FILE, "a+") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield

    @contextlib.contextmanager
    def _swap_lock(self):
        """Saves swap folders and recovery repairs them under one lock, across threads and processes:
        otherwise a Workspace() made in the middle of a save takes its trash for a crash's leftover."""
        with _THREAD_LOCK, open(self.root / LOCK_FILE, "a+") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes, or its process dies
            yield

    def _swap_in(self, tmp: Path, final: Path) -> None:
        """Put ``tmp`` in place of ``final`` (called under the swap lock)."""
        if final.exists():
            trash = self.maps_dir / f"{_TRASH_PREFIX}{uuid.uuid4().hex}{final.name}"
            os.rename(final, trash)
            try:
                os.rename(tmp, final)
            except BaseException:
                # Put the previous version back now rather than at the next Workspace().
                os.rename(trash, final)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(self.maps_dir)

    def _recover(self) -> None:
        """Finish or undo a save that a crash interrupted."""
        with self._swap_lock():
            for entry in self.maps_dir.iterdir():
                if entry.name.startswith(_TRASH_PREFIX):
                    original = self.maps_dir / entry.name[len(_TRASH_PREFIX) + _UUID_LEN :]
                    if original.exists():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        log.warning("restoring %s after an interrupted save", original.name)
                        os.rename(entry, original)
                elif entry.name.startswith(_TMP_PREFIX) and _age_seconds(entry) > STALE_TMP_SECONDS:
                    shutil.rmtree(entry, ignore_errors=True)
                elif _abandoned_reservation(entry):
                    shutil.rmtree(entry, ignore_errors=True)

    def read_manifest(self, name: str) -> dict:
        """A saved map's manifest alone, without reading its points or vectors."""
        path = self.map_path(name)
        if not (path / MANIFEST_FILE).is_file():
            known = ", ".join(m.name for m in self.list()[:10]) or "none yet"
            raise MapNotFoundError(f"No saved map named '{name}'. Saved maps: {known}.")
        return _read_manifest(path / MANIFEST_FILE)

    def stamp(self, name: str) -> str:
        """When the map ``name`` was last saved (see SavedMap.stamp)."""
        return manifest_stamp(self.map_path(name))

    def open(self, name: str, *, mmap: bool = False) -> SavedMap:
        """Load a saved map by name: one version of it whole, though saves and renames land meanwhile."""
        path = self.map_path(name)
        for attempt in range(OPEN_TRIES):
            manifest = self.read_manifest(name)
            try:
                points = read_points(path / POINTS_FILE)
                embeddings = np.load(path / EMBEDDINGS_FILE, mmap_mode="r" if mmap else None)
                if _version_of(path) == str(manifest.get(VERSION_KEY) or "0"):
                    break
            except (OSError, ValueError):
                # A save swapped the folder mid-read (Parquet opens its file more than once) or a rename
                # moved it: read again; a file that stays unreadable is damage, reported as it is.
                if attempt == OPEN_TRIES - 1:
                    raise
                time.sleep(0.01)
        else:
            raise MapNotFoundError(f"The map '{name}' kept changing while it was read (renamed or saved again): "
                                   "open it again.")
        return SavedMap(path=path, manifest=manifest, points=points, embeddings=embeddings)

    def list(self) -> list[MapInfo]:
        """Saved maps, newest first."""
        infos = []
        for entry in self.maps_dir.iterdir():
            manifest_file = entry / MANIFEST_FILE
            if entry.name.startswith(".") or not manifest_file.is_file():
                continue
            try:
                manifest = _read_manifest(manifest_file)
            except (OSError, json.JSONDecodeError):
                log.warning("skipping unreadable map %s", entry)
                continue
            infos.append(
                MapInfo(
                    name=entry.name,
                    path=entry,
                    rows=int(manifest.get("rows", 0)),
                    embedded_rows=int(manifest.get("embedded_rows", 0)),
                    model_id=str(manifest.get("model_id", "")),
                    created=str(manifest.get("created", "")),
                    extra=manifest,
                )
            )
        return sorted(infos, key=lambda m: m.created, reverse=True)

    def rename(self, old: str, new: str) -> str:
        """Rename a map; returns the new (sanitised) name. Under the swap lock, so a save in progress
        lands under the new name (it follows the map_id) and never brings the old name back."""
        with self._swap_lock():
            source = self.map_path(old)
            if not (source / MANIFEST_FILE).is_file():
                raise MapNotFoundError(f"No saved map named '{old}'.")
            target = self.map_path(new)
            if target.exists():
                raise InputError(f"A map named '{target.name}' already exists. Choose another name.")
            os.rename(source, target)
            manifest_file = target / MANIFEST_FILE
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
            manifest.update({"name": target.name, VERSION_KEY: uuid.uuid4().hex})
            _atomic_write_text(manifest_file, json.dumps(manifest, indent=2, default=str))
            return target.name

    def update_manifest(self, name: str, changes: dict, *, base: SavedMap | None = None,
                        labels: pd.DataFrame | None = None) -> dict:
        """Merge ``changes`` into a map's manifest, atomically, under the swap lock. With ``base`` (the
        map the changes were made from) a rename is followed, and a key another save changed since is
        a MapChangedError rather than overwritten. Changed ``clusters`` come with their ``labels`` table
        (label_file.label_table of the changed manifest), written as labels.parquet."""
        with self._swap_lock():
            final = self.map_path(name)
            folder = self._locate(base, final) if base is not None else final
            manifest_file = folder / MANIFEST_FILE
            if not manifest_file.is_file():
                raise MapNotFoundError(f"No saved map named '{name}'.")
            current = _read_manifest(manifest_file)
            if base is not None and current.get(VERSION_KEY, "0") != base.version:
                manifest = _merged_manifest(base.manifest, {**base.manifest, **changes}, current, folder.name)
            else:
                manifest = {**current, **changes}
            manifest.update({"name": folder.name, VERSION_KEY: uuid.uuid4().hex})
            if "clusters" in changes:  # before the manifest, whose new stamp tells readers to look again
                if not _same_json(manifest.get("clusters"), changes["clusters"]):
                    # Another save changed the clusters since ``base``: the labels given are not theirs.
                    raise MapChangedError(f"The clusters of '{folder.name}' changed meanwhile: nothing was saved. "
                                          "Open it again and redo this on the latest version.")
                write_labels(folder, labels)
            _atomic_write_text(manifest_file, json.dumps(manifest, indent=2, default=str))
            return manifest

    def delete(self, name: str) -> None:
        """Delete a saved map (moved aside first, so a crash never leaves half a map)."""
        with self._swap_lock():
            path = self.map_path(name)
            if not (path / MANIFEST_FILE).is_file():
                raise MapNotFoundError(f"No saved map named '{name}'.")
            doomed = self.maps_dir / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
            os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def numbered_names(name: str) -> Iterator[str]:
    """``name``, then ``name (2)``, ``name (3)``… up to MAX_NAME_TRIES, each within the name caps."""
    base = sanitise_map_name(name)
    yield base
    for n in range(2, MAX_NAME_TRIES + 1):
        yield suffixed_name(base, f" ({n})")


def _all_taken(name: str) -> str:
    return (f"'{sanitise_map_name(name)}' and its {MAX_NAME_TRIES - 1} numbered copies are all taken. "
            "Choose another name.")


def merged_save(base: SavedMap, mine: tuple[pd.DataFrame, np.ndarray, dict],
                theirs: SavedMap) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """A save derived from ``base`` (its points, vectors and manifest: ``mine``) replayed on ``theirs``,
    a newer save of the same map: each column (the vectors as one more) and each manifest key is taken
    from the side that changed it since ``base``. MapChangedError when both changed the same one, or
    when one side changed the rows and the other anything else (its columns would not line up)."""
    points, vectors, manifest = mine
    old, ours, other = (_columns(base.points, base.embeddings), _columns(points, vectors),
                        _columns(theirs.points, theirs.embeddings))
    columns, conflicts = _three_way(old, ours, other, _same_values)
    if _changed(old, ours) and _changed(old, other) and not _same_values(ours.get("row_id"), other.get("row_id")):
        conflicts.append("the rows")
    merged_manifest = _merged_manifest(base.manifest, manifest, theirs.manifest, theirs.name, conflicts)
    vectors = columns.pop(_VECTORS)
    return pd.DataFrame({k: v.reset_index(drop=True) for k, v in columns.items()}), vectors, merged_manifest


def _merged_manifest(base: dict, mine: dict, theirs: dict, name: str, conflicts: Sequence[str] = ()) -> dict:
    """``mine`` with the keys only ``theirs`` changed since ``base``; MapChangedError on any conflict."""
    def own(manifest: dict) -> dict:
        return {k: v for k, v in manifest.items() if k not in _OWN_KEYS}

    merged, clashes = _three_way(own(base), own(mine), own(theirs), _same_json)
    clashes = [*conflicts, *clashes]
    if clashes:
        raise MapChangedError(f"'{name}' was changed by someone else meanwhile ({', '.join(clashes[:6])} on both "
                              "sides): nothing was saved. Open it again and redo this on the latest version.")
    return merged


def _three_way(base: dict, mine: dict, theirs: dict, same) -> tuple[dict, list[str]]:
    """``mine`` with what ``theirs`` changed since ``base`` (added, changed or removed entries), and the
    entries both changed differently (left as mine)."""
    merged, conflicts = dict(mine), []
    for key in dict.fromkeys([*mine, *theirs, *base]):
        ours, other, was = mine.get(key, _ABSENT), theirs.get(key, _ABSENT), base.get(key, _ABSENT)
        if same(other, was) or same(ours, other):
            continue
        if not same(ours, was):
            conflicts.append(str(key))
        elif other is _ABSENT:
            merged.pop(key, None)
        else:
            merged[key] = other
    return merged, conflicts
_ABSENT = object()


def _columns(points: pd.DataFrame, vectors: np.ndarray) -> dict:
    """A map's columns by name, the vectors among them."""
    return {**{c: points[c] for c in points.columns if c != NEIGHBORS_COLUMN}, _VECTORS: vectors}


def _changed(base: dict, side: dict) -> bool:
    """Whether any column of ``side`` differs from ``base``."""
    return any(not _same_values(side.get(k, _ABSENT), base.get(k, _ABSENT)) for k in {*base, *side})


def _same_values(a, b) -> bool:
    """Whether two columns (Series or arrays; _ABSENT for none) hold the same values."""
    if a is b:
        return True
    if a is _ABSENT or b is _ABSENT or a is None or b is None or len(a) != len(b):
        return False
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        return a.dtype == b.dtype and a.reset_index(drop=True).equals(b.reset_index(drop=True))
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


def _same_json(a, b) -> bool:
    """Whether two manifest values are the same as saved (tuples and lists alike; _ABSENT for none)."""
    if a is _ABSENT or b is _ABSENT:
        return a is b
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _same_sources(merged: tuple, mine: tuple) -> bool:
    """Whether a merged save kept what the files of the save it merged derive from: its rows, which are
    drawn, its vectors, given neighbours and clusters."""
    (points, vectors, manifest), (my_points, my_vectors, my_manifest) = merged, mine
    return (all(_same_values(points.get(c, _ABSENT), my_points.get(c, _ABSENT))
                for c in ("row_id", "embedded", NEIGHBORS_COLUMN))
            and _same_values(vectors, my_vectors)
            and _same_json(manifest.get("clusters", _ABSENT), my_manifest.get("clusters", _ABSENT)))


def _maps_whole_file(array: np.ndarray, maps_dir: Path) -> bool:
    """Whether ``array`` is a read-only float32 memory map of a whole .npy file of a saved map (as
    `Workspace.open(mmap=True)` gives), so its file can be linked rather than copied."""
    if not isinstance(array, np.memmap) or array.flags.writeable or not array.flags.c_contiguous:
        return False
    source = Path(str(array.filename or ""))
    try:
        if source.parent.parent != maps_dir or array.dtype != np.dtype("<f4"):
            return False
        with open(source, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            formats = np.lib.format
            read_header = formats.read_array_header_1_0 if version == (1, 0) else formats.read_array_header_2_0
            shape, fortran, dtype = read_header(handle)
            header = handle.tell()
        # The same shape, from the file's first value to its last: the whole file, not a view of part of it.
        return (tuple(shape) == array.shape and not fortran and dtype == array.dtype and array.offset == header
                and source.stat().st_size == header + array.nbytes)
    except (OSError, ValueError):
        return False


def _version_of(folder: Path) -> str:
    """The version of the map saved in ``folder``."""
    return str(_read_manifest(folder / MANIFEST_FILE).get(VERSION_KEY) or "0")


def _abandoned_reservation(folder: Path) -> bool:
    """Whether ``folder`` is a reserved name whose build died: old, and its process gone."""
    marker = folder / RESERVED_FILE
    if not marker.is_file() or (folder / MANIFEST_FILE).exists() or _age_seconds(marker) <= STALE_TMP_SECONDS:
        return False
    try:
        os.kill(int(marker.read_text(encoding="utf-8")), 0)
    except (ProcessLookupError, ValueError):
        return True
    except OSError:  # alive, another user's
        return False
    return False  # still building (a build of 1M rows takes hours)


def manifest_stamp(map_path: Path) -> str:
    """The mtime of a map folder's manifest, which every save and every manifest update rewrites."""
    return str((Path(map_path) / MANIFEST_FILE).stat().st_mtime_ns)


def _read_manifest(path: Path) -> dict:
    """A manifest as saved, with the fields older versions did not write filled in (the one place that knows)."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.setdefault("kind", DEFAULT_KIND)
    return manifest


def _age_seconds(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:  # another process finished with it meanwhile
        return 0.0


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_tree(folder: Path) -> None:
    for item in folder.iterdir():
        with open(item, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
