"""Step 2, embed: a corpus in, one unit vector per embedded row out, reusing what the cache holds.

Vectors are cached on disk by the model's id and the content hash of each text or image, so a rebuild
with a few new rows embeds only those, and a row that occurs twice is embedded once."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cache_files import cache_folder, set_aside
from .corpus import IMAGES, Corpus
from .embedders.base import DEFAULT_BATCH_SIZE, Embedder
from .hashing import text_hash
from .images import DEFAULT_MAX_SIDE
from .progress import ProgressFn, no_progress
from .texts import TextColumn, pick_texts

log = logging.getLogger(__name__)


# SQLite's result codes (the low byte) that say the file is fine but cannot be used now: another process
# holds it (BUSY, LOCKED), no memory, a read-only or full disk, an I/O error. The build goes on without
# the cache. Any other failure (not a database, malformed, a folder or an unreadable file in its place,
# another table) is a damaged cache: it is moved aside and a fresh one started.
_UNUSABLE_NOW = {3, 5, 6, 7, 8, 9, 10, 13}
_COLUMNS = ["model", "hash", "vector"]


class _WrongSchema(sqlite3.DatabaseError):
    """The file is a database, but its `vectors` table is not this cache's."""


class EmbeddingCache:
    """A SQLite table of (model, text hash) → float32 vector; safe for several processes, and disposable:
    a damaged file is moved aside and a fresh one started, a busy one left out, each said in ``notes``."""

    # How long a read or write waits for another process's write before the build goes on without the cache.
    busy_seconds: float = 30.0

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.notes: list[str] = []
        self._unusable = False
        self._run(_create_table, None)

    def _run(self, operation, default):
        """``operation(db)`` in one transaction, or ``default`` once the cache is left out of this build."""
        for attempt in range(2):
            if self._unusable:
                return default
            try:
                note = cache_folder(self.path.parent)
                self.notes += [note] if note else []
                with contextlib.closing(self._connect()) as db, db:
                    if attempt:  # a fresh file, the damaged one moved aside: it needs its table first
                        _create_table(db)
                    return operation(db)
            except sqlite3.Error as exc:
                code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
                if code in _UNUSABLE_NOW or attempt or not os.path.lexists(self.path):
                    self._leave_out(exc)
                else:
                    self._set_aside(exc)
            except OSError as exc:
                self._leave_out(exc)
        return default

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self.busy_seconds)
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error:
            db.close()  # closed before the file is moved aside
            raise
        return db

    def _set_aside(self, reason: Exception) -> None:
        try:
            self.notes.append(set_aside(self.path, "embedding cache", reason, companions=("-wal", "-shm")))
        except OSError as exc:
            self._leave_out(exc)

    def _leave_out(self, reason: Exception) -> None:
        why = " ".join(str(reason).split())[:120]
        self.notes.append(f"The embedding cache {self.path} could not be used ({why}): this build embeds without "
                          "it.")
        log.warning(self.notes[-1])
        self._unusable = True

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes`` (a blob that is no float32 vector is left out: embedded again)."""
        def read(db: sqlite3.Connection) -> dict[str, np.ndarray]:
            found: dict[str, np.ndarray] = {}
            for start in range(0, len(hashes), 900):  # SQLite's limit on bound parameters
                chunk = list(hashes[start : start + 900])
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({marks})",
                    [model_id, *chunk],
                )
                for key, blob in rows:
                    if isinstance(blob, bytes) and blob and len(blob) % 4 == 0:
                        found[key] = np.frombuffer(blob, dtype=np.float32)
            return found

        return self._run(read, {})

    def put_many(self, model_id: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors under their text hashes."""
        rows = [(model_id, h, np.ascontiguousarray(v, dtype=np.float32).tobytes())
                for h, v in zip(hashes, vectors, strict=True)]
        self._run(lambda db: db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows), None)


def _create_table(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vector BLOB, "
               "PRIMARY KEY (model, hash)) WITHOUT ROWID")
    columns = [row[1] for row in db.execute("PRAGMA table_info(vectors)")]
    if columns != _COLUMNS:
        raise _WrongSchema(f"its table 'vectors' has the columns {', '.join(columns) or 'none'}")


@dataclass
class EmbeddingResult:
    """Row-aligned vectors and how many came from the cache."""

    vectors: np.ndarray
    model_id: str
    n_cached: int
    n_computed: int
    seconds: float
    notes: list[str] = field(default_factory=list)  # what happened to the cache, for the build's notes


def embed_cached(
    embedder: Embedder,
    source: Corpus | Sequence[str],
    *,
    cache: EmbeddingCache | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressFn = no_progress,
) -> EmbeddingResult:
    """One vector per embedded row of a corpus (or per text of a list), reusing cached vectors and
    embedding each distinct new text or image once."""
    started = time.perf_counter()
    images = isinstance(source, Corpus) and source.kind == IMAGES
    if isinstance(source, Corpus):
        items = source.items(max_side=getattr(embedder, "image_side", DEFAULT_MAX_SIDE)) if images else source.items()
        hashes = source.item_hashes()
    else:
        items, hashes = list(source), [text_hash(t) for t in source]
    noun = "images" if images else "texts"
    # Text and image vectors of one CLIP model share a model id; the suffix keeps their keys apart.
    key = f"{embedder.model_id}#image" if images else embedder.model_id
    first: dict[str, int] = {}
    for i, digest in enumerate(hashes):
        first.setdefault(digest, i)
    known = _fitting(cache.get_many(key, list(first)), embedder.dimension) if cache else {}
    todo = [h for h in first if h not in known]
    if todo:
        if known:
            progress("embed", 0.0, f"{len(known):,} {noun} from the cache; embedding {len(todo):,} new")
        # Every text new and distinct: the texts as they are (in Arrow for a corpus), not a list of them.
        every = isinstance(items, TextColumn) and len(todo) == len(items)
        pending = items if every else pick_texts(items, [first[h] for h in todo])
        embed = embedder.embed_images if images else embedder.embed
        fresh = embed(pending, batch_size=batch_size, progress=progress)
        if cache:
            cache.put_many(key, todo, fresh)
        if len(todo) < len(hashes):
            known.update(zip(todo, fresh, strict=True))
    progress("embed", 1.0, f"{len(hashes):,} / {len(hashes):,} {'images' if images else 'rows'}")
    if todo and len(todo) == len(hashes):
        # Every row new and distinct, in order: the embedder's array is the result (no second copy, 1 GB at 1M).
        vectors = np.asarray(fresh, dtype=np.float32)
    else:
        vectors = _aligned(hashes, known, dimension=embedder.dimension)
    new = set(todo)
    n_cached = sum(1 for h in hashes if h not in new)
    log.info("embedded %d %s (%d cached) with %s", len(hashes), noun, n_cached, embedder.model_id)
    return EmbeddingResult(vectors=vectors, model_id=embedder.model_id, n_cached=n_cached,
                           n_computed=len(todo), seconds=time.perf_counter() - started,
                           notes=list(cache.notes) if cache else [])


def _fitting(known: dict[str, np.ndarray], dimension: int) -> dict[str, np.ndarray]:
    """The cached vectors fit to use: finite, and of the embedder's length (of the most common length while a
    transformer that has not loaded yet says 0); the others are embedded again and replaced."""
    lengths = Counter(len(v) for v in known.values())
    length = dimension or (lengths.most_common(1)[0][0] if lengths else 0)
    return {h: v for h, v in known.items() if len(v) == length and np.isfinite(v).all()}


def _aligned(hashes: list[str], known: dict[str, np.ndarray], *, dimension: int) -> np.ndarray:
    """One row per hash, in order, from the vectors known by hash (duplicates share one vector)."""
    dim = next(iter(known.values())).shape[0] if known else dimension
    vectors = np.zeros((len(hashes), dim), dtype=np.float32)
    for i, digest in enumerate(hashes):
        vectors[i] = known[digest]
    return vectors
