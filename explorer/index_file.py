"""search_index.npz: the product-quantised codes of a big map's vectors (a `VectorIndex`), kept in the
map folder with a fingerprint of the vectors and the embeddings file they were built from.

explorer.vector_index builds the codes and searches through them; the store writes them (atomically)
and `read_index` reads them back only for the very vectors they were built from."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .hashing import combined_hash

log = logging.getLogger(__name__)

INDEX_FILE = "search_index.npz"
# Rows whose values the fingerprint hashes, evenly spaced, plus the array's shape: a refinement or any
# rebuild changes every row, and the file's size and mtime catch an embeddings.npy written in place.
FINGERPRINT_ROWS = 256
_FORMAT = 2


@dataclass
class VectorIndex:
    """Product-quantised codes of a map's vectors that propose the candidates of a search."""

    index: object
    rows: int
    dimension: int
    fingerprint: str
    source: dict
    # A row's exact score is at most slope * its code's score + intercept + margin (as far as measured).
    margin: float
    slope: float = 1.0
    intercept: float = 0.0
    build_seconds: float = 0.0

    @property
    def nbytes(self) -> int:
        """Size of the codes in memory."""
        return int(self.index.sa_code_size()) * self.rows

    def candidates(self, query_vector: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``count`` rows whose codes score highest against ``query_vector``, best first, and
        those scores."""
        query = padded(np.asarray(query_vector, dtype=np.float32).reshape(1, -1), self.index.d)
        scores, found = self.index.search(query, int(min(count, self.rows)))
        keep = found[0] >= 0
        return found[0][keep].astype(np.int64), scores[0][keep]

    def highest_exact(self, code_score: float) -> float:
        """How high the exact score of a row whose code scores ``code_score`` can be (see
        vector_index.MARGIN_QUANTILE)."""
        return self.slope * float(code_score) + self.intercept + self.margin


def fingerprint(embeddings: np.ndarray) -> str:
    """A cheap identity of a vector array: its shape and FINGERPRINT_ROWS evenly spaced rows."""
    rows = np.unique(np.linspace(0, max(len(embeddings) - 1, 0), FINGERPRINT_ROWS).astype(np.int64))
    sample = np.ascontiguousarray(np.asarray(embeddings[rows], dtype=np.float32)) if len(embeddings) else b""
    return combined_hash([f"{tuple(embeddings.shape)}", bytes(sample).hex()])


def file_source(embeddings_file: Path) -> dict:
    """What a VectorIndex remembers of the embeddings file it was built from: its size and mtime."""
    stat = Path(embeddings_file).stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def write_index(index: VectorIndex, folder: Path) -> Path:
    """Write ``index`` to ``folder``/INDEX_FILE atomically (a temporary file, then a rename)."""
    import faiss

    meta = {"format": _FORMAT, "rows": index.rows, "dimension": index.dimension,
            "fingerprint": index.fingerprint, "source": index.source, "margin": index.margin,
            "slope": index.slope, "intercept": index.intercept, "build_seconds": index.build_seconds}
    target = Path(folder) / INDEX_FILE
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            np.savez(handle, codes=faiss.serialize_index(index.index),
                     meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return target


def read_index(folder: Path, embeddings: np.ndarray, *, embeddings_file: Path | None = None) -> VectorIndex | None:
    """The index kept in ``folder`` if it was built from exactly these vectors (and this file); else None."""
    import faiss

    path = Path(folder) / INDEX_FILE
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(bytes(stored["meta"]).decode("utf-8"))
            if meta.get("format") != _FORMAT or meta.get("fingerprint") != fingerprint(embeddings):
                return None
            if embeddings_file is not None and meta.get("source") != file_source(embeddings_file):
                return None
            codes = stored["codes"]
    except (OSError, ValueError, KeyError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.warning("ignoring an unreadable search index %s (%s)", path, exc)
        return None
    index = faiss.deserialize_index(codes)
    return VectorIndex(index=index, rows=int(meta["rows"]), dimension=int(meta["dimension"]),
                       fingerprint=meta["fingerprint"], source=meta["source"], margin=float(meta["margin"]),
                       slope=float(meta["slope"]), intercept=float(meta["intercept"]),
                       build_seconds=float(meta.get("build_seconds", 0.0)))


def padded(vectors: np.ndarray, width: int) -> np.ndarray:
    """``vectors`` with zero columns added up to ``width`` (the sub-quantisers need equal slices)."""
    if vectors.shape[1] == width:
        return np.ascontiguousarray(vectors)
    out = np.zeros((len(vectors), width), dtype=np.float32)
    out[:, : vectors.shape[1]] = vectors
    return out
