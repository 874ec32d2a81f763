"""Step 4's copy for big maps: compressed codes that propose candidates, which search re-ranks exactly.

Up to EXACT_ROWS rows every search scores every row. Above it a search first scans a 4-bit product-
quantised copy of the vectors (faiss' PQ fast scan: 32 bytes a row for 256 dimensions, against 1 KiB of
float32) for 500 candidates, and `search.search_similar` scores those exactly from the float32
embeddings, taking more candidates while a row left out could still reach the hits. On 1M fast-mode
arXiv vectors and 2 cores a search takes about 5 ms where the exact float32 product takes 50-70 ms, and
recall@10 against the exact search is 0.998 (benchmarks/search_scale.py). The codes are kept in the
map folder (explorer.index_file) with a fingerprint of the vectors they were built from, and are never used for
vectors they do not match.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

import numpy as np

from .index_file import VectorIndex, file_source, fingerprint, padded, read_index, write_index

log = logging.getLogger(__name__)

# Maps this big or smaller are searched exactly: at 100k rows the full product takes ~4 ms here.
EXACT_ROWS = 100_000
# Dimensions per 4-bit sub-quantiser. 4 gave recall@10 0.9995 with 500 candidates on 1M arXiv vectors;
# 2 (twice the codes) measured the same recall in twice the scan time.
DIMS_PER_CODE = 4
# The product quantiser is trained on this many rows, then every row is encoded.
TRAIN_ROWS = 50_000
# How high a row's exact score can be given its code's score, measured at build time over the
# MARGIN_HITS best candidates of MARGIN_QUERIES rows used as queries: the codes' scores shrink towards 0
# (on arXiv vectors a row's own 1.0 scores about 0.75), so the exact score is fitted as a line of the
# code's score, and the margin is the largest difference above that line seen (0.21 on 300k arXiv rows,
# where the plain differences reach 0.29; the 0.999 quantile, 0.15, let 1 query in 10 lose a hit on a
# diffuse synthetic set).
MARGIN_QUERIES = 64
MARGIN_HITS = 1_000
MARGIN_QUANTILE = 1.0
# faiss' thread count is global: two builds at once must not leave it at one (see _one_thread).
_THREADS_LOCK = threading.Lock()


def faiss_available() -> bool:
    """Whether faiss can be imported here (without it big maps are searched exactly)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def needs_index(rows: int) -> bool:
    """Whether a map of ``rows`` rows is searched through a VectorIndex rather than exactly."""
    return rows > EXACT_ROWS and faiss_available()


def build_index(embeddings: np.ndarray, *, seed: int = 0, train_rows: int = TRAIN_ROWS,
                source: dict | None = None) -> VectorIndex:
    """Train a 4-bit product quantiser on a sample of ``embeddings`` and encode every row."""
    import faiss

    started = time.perf_counter()
    rows, dimension = embeddings.shape
    width = -(-dimension // DIMS_PER_CODE) * DIMS_PER_CODE
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(rows, size=min(rows, train_rows), replace=False))
    train = padded(np.asarray(embeddings[sample], dtype=np.float32), width)
    # Rows without text are zero vectors: they would only pull centroids towards the origin.
    train = train[np.abs(train).sum(axis=1) > 0]
    index = faiss.IndexPQFastScan(width, width // DIMS_PER_CODE, 4, faiss.METRIC_INNER_PRODUCT)
    index.pq.cp.seed = seed
    with _one_thread(faiss):
        index.train(train if len(train) else np.zeros((1, width), dtype=np.float32))
    # In chunks, so a memory-mapped map is never copied whole into memory.
    for start in range(0, rows, 100_000):
        index.add(padded(np.asarray(embeddings[start:start + 100_000], dtype=np.float32), width))
    slope, intercept, margin = _calibrate(index, embeddings, sample, rng)
    seconds = time.perf_counter() - started
    log.info("built the search index of %d rows in %.1f s (exact ≤ %.2f * code + %.2f + %.3f)", rows, seconds,
             slope, intercept, margin)
    return VectorIndex(index=index, rows=rows, dimension=dimension, fingerprint=fingerprint(embeddings),
                       source=source or {}, margin=margin, slope=slope, intercept=intercept, build_seconds=seconds)


def _calibrate(index, embeddings: np.ndarray, sample: np.ndarray,
               rng: np.random.Generator) -> tuple[float, float, float]:
    """The line from a code's score to the exact score, and the margin above it (see MARGIN_QUANTILE)."""
    chosen = sample[rng.choice(len(sample), size=min(MARGIN_QUERIES, len(sample)), replace=False)]
    queries = np.asarray(embeddings[chosen], dtype=np.float32)
    chosen, queries = chosen[np.abs(queries).sum(axis=1) > 0], queries[np.abs(queries).sum(axis=1) > 0]
    if not len(chosen):
        return 1.0, 0.0, 0.0
    approx, found = index.search(padded(queries, index.d), min(MARGIN_HITS, index.ntotal))
    codes, exact = [], []
    for row, query, scores, rows in zip(chosen, queries, approx, found, strict=True):
        # A row's own score is left out: neighbours of a row never rank the row itself.
        keep = (rows >= 0) & (rows != row)
        order = np.argsort(rows[keep])
        codes.append(scores[keep][order])
        exact.append(np.asarray(embeddings[np.sort(rows[keep])], dtype=np.float32) @ query)
    codes, exact = np.concatenate(codes), np.concatenate(exact)
    slope, intercept = np.polyfit(codes, exact, 1) if len(codes) > 1 and np.ptp(codes) > 0 else (1.0, 0.0)
    if not slope > 0:
        slope, intercept = 1.0, 0.0
    margin = float(np.quantile(exact - (slope * codes + intercept), MARGIN_QUANTILE))
    return float(slope), float(intercept), max(margin, 0.0)


def index_for(folder: Path, embeddings: np.ndarray, *, embeddings_file: Path | None = None) -> VectorIndex | None:
    """The search index of a map folder's vectors: read from the folder, else built (and kept there when
    ``embeddings`` are that folder's file); None for maps searched exactly."""
    if not needs_index(len(embeddings)):
        return None
    found = read_index(folder, embeddings, embeddings_file=embeddings_file)
    if found is not None:
        return found
    matches_file = _matches_file(embeddings, embeddings_file)
    try:
        index = build_index(embeddings, source=file_source(embeddings_file) if matches_file else {})
    except RuntimeError as exc:  # faiss' errors: searched exactly rather than not at all
        log.warning("searching %s exactly: its search index could not be built (%s)", folder, exc)
        return None
    if matches_file:
        try:
            write_index(index, folder)
        except OSError as exc:  # a read-only workspace: the index lives in memory only
            log.warning("could not keep the search index in %s (%s)", folder, exc)
    return index


def search_index(saved) -> VectorIndex | None:
    """The compressed copy a search of this big saved map (a store.SavedMap) scans first (None for maps
    searched exactly).

    Read from the map folder when it was built from these very vectors, else built (seconds at 1M rows)
    and kept there; kept on ``saved`` too, for as long as its ``embeddings`` are the same array."""
    with saved.index_lock:
        if saved.index_cache is None or saved.index_cache[0] is not saved.embeddings:
            index = index_for(saved.path, saved.embeddings, embeddings_file=saved.embeddings_file)
            saved.index_cache = (saved.embeddings, index)
        return saved.index_cache[1]


def _matches_file(embeddings: np.ndarray, embeddings_file: Path | None) -> bool:
    """Whether ``embeddings`` are the vectors of ``embeddings_file`` (only then may an index be kept beside it)."""
    if embeddings_file is None or not Path(embeddings_file).is_file():
        return False
    try:
        on_disk = np.load(embeddings_file, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return fingerprint(on_disk) == fingerprint(embeddings)


@contextlib.contextmanager
def _one_thread(faiss):
    """faiss with one OpenMP thread: its k-means on tiny sub-spaces took 1.6 s on 2 busy cores where one
    thread took 0.1 s (20k rows); the scans keep every thread."""
    with _THREADS_LOCK:
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            yield
        finally:
            faiss.omp_set_num_threads(threads)
