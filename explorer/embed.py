"""Step 2, embed: a corpus in, one unit vector per embedded row out, reusing what the cache holds.

Vectors are cached on disk by the model's id and the content hash of each text or image, so a rebuild
with a few new rows embeds only those, and a row that occurs twice is embedded once."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .corpus import IMAGES, Corpus
from .embedders.base import DEFAULT_BATCH_SIZE, Embedder
from .hashing import text_hash
from .images import DEFAULT_MAX_SIDE
from .progress import ProgressFn, no_progress

log = logging.getLogger(__name__)


class EmbeddingCache:
    """A SQLite table of (model, text hash) → float32 vector; safe for several processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vector BLOB, "
                "PRIMARY KEY (model, hash)) WITHOUT ROWID"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes``."""
        found: dict[str, np.ndarray] = {}
        with self._connect() as db:
            for start in range(0, len(hashes), 900):  # SQLite's limit on bound parameters
                chunk = list(hashes[start : start + 900])
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({marks})",
                    [model_id, *chunk],
                )
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model_id: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors under their text hashes."""
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                [
                    (model_id, h, np.ascontiguousarray(v, dtype=np.float32).tobytes())
                    for h, v in zip(hashes, vectors, strict=True)
                ],
            )


@dataclass
class EmbeddingResult:
    """Row-aligned vectors and how many came from the cache."""

    vectors: np.ndarray
    model_id: str
    n_cached: int
    n_computed: int
    seconds: float


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
    known = cache.get_many(key, list(first)) if cache else {}
    todo = [h for h in first if h not in known]
    if todo:
        if known:
            progress("embed", 0.0, f"{len(known):,} {noun} from the cache; embedding {len(todo):,} new")
        pending = [items[first[h]] for h in todo]
        embed = embedder.embed_images if images else embedder.embed
        fresh = embed(pending, batch_size=batch_size, progress=progress)
        if cache:
            cache.put_many(key, todo, fresh)
        known.update(zip(todo, fresh, strict=True))
    progress("embed", 1.0, f"{len(hashes):,} / {len(hashes):,} {'images' if images else 'rows'}")
    vectors = _aligned(hashes, known, dimension=embedder.dimension)
    new = set(todo)
    n_cached = sum(1 for h in hashes if h not in new)
    log.info("embedded %d %s (%d cached) with %s", len(hashes), noun, n_cached, embedder.model_id)
    return EmbeddingResult(vectors=vectors, model_id=embedder.model_id, n_cached=n_cached,
                           n_computed=len(todo), seconds=time.perf_counter() - started)


def _aligned(hashes: list[str], known: dict[str, np.ndarray], *, dimension: int) -> np.ndarray:
    """One row per hash, in order, from the vectors known by hash (duplicates share one vector)."""
    dim = next(iter(known.values())).shape[0] if known else dimension
    vectors = np.zeros((len(hashes), dim), dtype=np.float32)
    for i, digest in enumerate(hashes):
        vectors[i] = known[digest]
    return vectors
