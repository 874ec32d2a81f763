"""Step 4, search: cosine scores of a query against every row, the top hits, and row neighbours.

Maps of up to vector_index.EXACT_ROWS rows are searched exactly. A bigger map's search scans its
compressed copy (`vector_index.search_index`) for candidates and scores those
exactly; the scores of every row are then computed only when asked for (`SearchResult.scores`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .embedders import TEXT, embedder_for
from .errors import InputError, ModelError
from .index_file import VectorIndex
from .vector_index import search_index

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 2_000
# How a search found its hits: the query embedded by the map's model, words matched, or an example image.
SEMANTIC, KEYWORD, EXAMPLE = "semantic", "keyword", "example"
# Letters and digits apart and underscores as separators, so "tabby_cat2.jpg" gives tabby, cat, 2, jpg.
_WORD = re.compile(r"[^\W\d_]+|\d+")
# A query word and its numeral match each other ("seven" finds the folder "7", "7" finds "seven.png"):
# image labels are often digits while people type the word.
_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
            "nineteen", "twenty"]
NUMBER_ALIASES = {**{w: str(i) for i, w in enumerate(_NUMBERS)}, **{str(i): w for i, w in enumerate(_NUMBERS)}}
# Candidates an index search re-ranks exactly, at first: at least MIN_CANDIDATES, CANDIDATES_PER_HIT per
# hit asked for. On 1M arXiv vectors the codes' first 500 held 99.95 % of the exact top-10 hits (200: 99.35 %).
MIN_CANDIDATES = 500
CANDIDATES_PER_HIT = 20
# When a row left out could still beat the hits (the highest exact score its code's score allows reaches
# the k-th exact score, or the threshold), the candidates grow by this factor; past MAX_CANDIDATE_SHARE of
# the rows (or two growths on a small map) every row is scored instead. At 25 % a query whose bound never
# closes (near-duplicate rows tiled from 2,500 MiniLM vectors to 200k) took 64 ms in the growth, three
# times the exact search.
CANDIDATE_GROWTH = 4
MAX_CANDIDATE_SHARE = 0.02
# Below this share of rows allowed by `valid`, the candidates would be mostly filtered away: search exactly.
MIN_VALID_SHARE = 0.5


@dataclass
class SearchResult:
    """The ranked hits with their scores, scores for every row (NaN where a row has no embedding), and
    how the hits were found."""

    indices: np.ndarray
    top_scores: np.ndarray
    # Computes `scores` on first use: a big map's search scores only its candidates.
    every_score: Callable[[], np.ndarray] = field(repr=False, compare=False)
    query: str = ""
    notes: list[str] = field(default_factory=list)
    mode: str = SEMANTIC
    reason: str = ""

    @cached_property
    def scores(self) -> np.ndarray:
        """The score of every row, NaN where a row has no embedding (exact at any map size)."""
        return self.every_score()

    @classmethod
    def of_scores(cls, scores: np.ndarray, indices: np.ndarray, **details) -> SearchResult:
        """A result whose every row's score is already known."""
        return cls(indices=indices, top_scores=scores[indices], every_score=lambda: scores, **details)


def clean_query(query: str) -> str:
    """A query fit to embed: stripped, not empty, cut to MAX_QUERY_CHARS."""
    query = (query or "").strip()
    if not query:
        raise InputError("The search query is empty. Type a few words to search for.")
    return query[:MAX_QUERY_CHARS]


def query_notes(query: str) -> list[str]:
    """What the user should know about how their query was searched (a long one is cut)."""
    length = len((query or "").strip())
    if length > MAX_QUERY_CHARS:
        return [f"The query was cut: only its first {MAX_QUERY_CHARS:,} of {length:,} characters were searched."]
    return []


def search_similar(
    embeddings: np.ndarray,
    query_vector: np.ndarray,
    *,
    k: int = 10,
    threshold: float | None = None,
    valid: np.ndarray | None = None,
    exclude: int | None = None,
    index: VectorIndex | None = None,
) -> SearchResult:
    """Rank rows by cosine similarity to a unit query vector; keep at most k at or above threshold.

    With ``index`` (a big map's `vector_index.search_index`) the candidates come from its codes and are
    ranked by their exact scores; rows are left out by ``valid`` and ``exclude`` as in the exact search,
    and the threshold applies to the exact scores. Without it, or when ``valid`` leaves less than
    MIN_VALID_SHARE of the rows, every row is scored."""
    query = np.asarray(query_vector, dtype=np.float32).reshape(-1)
    if index is not None and index.rows == len(embeddings):
        allowed = len(embeddings) if valid is None else int(np.count_nonzero(valid))
        if allowed >= MIN_VALID_SHARE * len(embeddings):
            found = _search_candidates(embeddings, query, index, k=k, threshold=threshold, valid=valid,
                                       exclude=exclude, allowed=allowed)
            if found is not None:
                return found
    scores = _every_score(embeddings, query, valid)
    ranked = np.where(np.isnan(scores), -np.inf, scores)
    if exclude is not None:
        ranked[exclude] = -np.inf
    k = max(0, min(k, int(np.isfinite(ranked).sum())))
    if k == 0:
        return SearchResult.of_scores(scores, np.zeros(0, dtype=np.int64))
    return _top_rows(scores, ranked, k, threshold)


def _top_rows(scores: np.ndarray, ranked: np.ndarray, k: int, threshold: float | None) -> SearchResult:
    """The k highest of ``ranked``, equal scores in row order: argpartition picks and orders ties
    differently across numpy versions and CPUs, and a search must give the same hits everywhere."""
    kth = ranked[np.argpartition(-ranked, k - 1)[k - 1]]
    above = np.flatnonzero(ranked > kth)
    top = np.concatenate([above, np.flatnonzero(ranked == kth)[: k - len(above)]])
    top = top[np.lexsort((top, -ranked[top]))]
    if threshold is not None:
        top = top[ranked[top] >= threshold]
    return SearchResult.of_scores(scores, top.astype(np.int64))


def _every_score(embeddings: np.ndarray, query: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    scores = (embeddings @ query).astype(np.float32)
    if valid is not None:
        scores[~valid] = np.nan
    return scores


def _search_candidates(embeddings: np.ndarray, query: np.ndarray, index: VectorIndex, *, k: int,
                       threshold: float | None, valid: np.ndarray | None, exclude: int | None,
                       allowed: int) -> SearchResult | None:
    """The top k of the index's candidates by exact score, with as many candidates as it takes for no
    row left out to reach the hits (`VectorIndex.highest_exact` of its code's score); None when that
    would take more than MAX_CANDIDATE_SHARE of the rows (then every row is scored)."""
    n = len(embeddings)
    k = max(0, min(k, allowed - (exclude is not None and (valid is None or bool(valid[exclude])))))
    if k == 0:
        return SearchResult(indices=np.zeros(0, dtype=np.int64), top_scores=np.zeros(0, dtype=np.float32),
                            every_score=lambda: _every_score(embeddings, query, valid))
    # More candidates when `valid` filters some away, so as many allowed ones are left to rank.
    count = int(max(MIN_CANDIDATES, CANDIDATES_PER_HIT * k) * n / max(allowed, 1)) + 1
    floor = -np.inf if threshold is None else threshold
    while True:
        rows, approx = index.candidates(query, count)
        every_row = len(rows) >= n
        rows = np.sort(rows)  # in file order: a memory-mapped map is read forward
        if valid is not None:
            rows = rows[valid[rows]]
        if exclude is not None:
            rows = rows[rows != exclude]
        exact = (np.asarray(embeddings[rows], dtype=np.float32) @ query).astype(np.float32)
        # Best first, ties in row order, as a stable sort of every row's scores would put them.
        order = np.lexsort((rows, -exact))[:k]
        kth = exact[order[-1]] if len(order) == k else -np.inf
        # Every row left out scores at most approx[-1] by its code.
        if every_row or (len(approx) and index.highest_exact(approx[-1]) < max(kth, floor)):
            break
        count *= CANDIDATE_GROWTH
        if count > max(MAX_CANDIDATE_SHARE * n, MIN_CANDIDATES * CANDIDATE_GROWTH**2):
            return None
    top, top_scores = rows[order], exact[order]
    if threshold is not None:
        keep = top_scores >= threshold
        top, top_scores = top[keep], top_scores[keep]
    return SearchResult(indices=top.astype(np.int64), top_scores=top_scores,
                        every_score=lambda: _every_score(embeddings, query, valid))


def nearest_neighbors(
    embeddings: np.ndarray, row: int, *, k: int = 10, valid: np.ndarray | None = None,
    index: VectorIndex | None = None,
) -> SearchResult:
    """The k rows closest to ``row`` in embedding space (the row itself excluded); ``index`` as in
    `search_similar`."""
    if not 0 <= row < len(embeddings):
        raise InputError(f"Row {row} does not exist; the map has {len(embeddings):,} rows.")
    if valid is not None and not valid[row]:
        # A row without text has a zero vector: every other row would tie at score 0.
        return SearchResult.of_scores(np.full(len(embeddings), np.nan, dtype=np.float32),
                                      np.zeros(0, dtype=np.int64))
    return search_similar(embeddings, np.asarray(embeddings[row]), k=k, valid=valid, exclude=row, index=index)


def embed_query(query: str, embedder) -> np.ndarray:
    """The unit vector of a cleaned query under ``embedder``."""
    return embedder.embed([clean_query(query)])[0]


def search_map(
    saved,
    query: str | None = None,
    *,
    image=None,
    embedder=None,
    k: int = 10,
    threshold: float | None = None,
    exclude: int | None = None,
) -> SearchResult:
    """Search a saved map of any kind: by a text ``query``, or by an example ``image`` (bytes or a PIL image).

    A text query is embedded by the map's own model when that model reads text; otherwise (an image map
    built with pixel features, or whose CLIP model cannot be loaded here) its words are matched in the
    file names, labels and text columns, and ``reason`` says why. Without ``embedder`` the map's own is
    loaded once and kept (`embedder_for`). ``exclude`` leaves out one row (an example picked from the map)."""
    if image is not None:
        return _search_by_example(saved, image, embedder=embedder, k=k, exclude=exclude)
    notes = query_notes(query)
    query = clean_query(query)
    text_search = saved.meta.text_search
    # An image map without CLIP, or a map of your own vectors whose model was not named: no query vector.
    if (saved.kind != TEXT and text_search != "clip") or text_search == KEYWORD:
        reason = saved.meta.text_search_reason or "This map has no text model."
        return _keyword(saved, query, k=k, reason=reason, notes=notes)
    try:
        embedder = embedder or embedder_for(saved)
        _check_model(saved, embedder)
        vector = embed_query(query, embedder)
    except ModelError as exc:
        if saved.kind == TEXT:
            raise
        reason = (f"The map's CLIP model could not be loaded ({exc}), so text search matches "
                  "words in file names and labels instead.")
        log.warning("%s", reason)
        return _keyword(saved, query, k=k, reason=reason, notes=notes)
    result = search_similar(saved.embeddings, vector, k=k, threshold=threshold, valid=saved.embedded,
                            exclude=exclude, index=search_index(saved))
    result.query, result.notes, result.mode = query, notes, SEMANTIC
    result.reason = saved.meta.text_search_reason or ""
    return result


def _check_model(saved, embedder) -> None:
    if embedder.model_id != saved.meta.model_id:
        raise InputError(
            f"This map was built with {saved.meta.model_id}; the query model is "
            f"{embedder.model_id}. Search with the map's own model."
        )


def _search_by_example(saved, image, *, embedder, k: int, exclude: int | None) -> SearchResult:
    """The rows nearest to an example image under the map's own image embedder."""
    from PIL import Image

    from .images import open_image, upright_rgb

    embedder = embedder or embedder_for(saved)
    _check_model(saved, embedder)
    if isinstance(image, Image.Image):
        picture = upright_rgb(image)
    else:
        picture = open_image(bytes(image), max_side=getattr(embedder, "image_side", None))
    vector = embedder.embed_images([picture])[0]
    result = search_similar(saved.embeddings, vector, k=k, valid=saved.embedded, exclude=exclude,
                            index=search_index(saved))
    result.mode, result.query = EXAMPLE, "example image"
    result.reason = f"Nearest images to the example under {embedder.model_id}."
    return result


def _keyword(saved, query: str, *, k: int, reason: str, notes: list[str]) -> SearchResult:
    result = keyword_search(saved, query, k=k)
    result.mode, result.reason, result.notes = KEYWORD, reason, notes
    return result


def keyword_search(saved, query: str, *, k: int = 10) -> SearchResult:
    """Rows scored by the share of the query's words found among their keyword text's words (0 to
    1); a word of 3+ letters also matches longer words it starts (cat → cats), a number word its
    numeral and back (seven ↔ 7); rows with no word in common are not ranked."""
    words = list(dict.fromkeys(_WORD.findall(clean_query(query).lower())))
    if not words:
        raise InputError("The search query has no letters or digits to match. Type a word.")
    scores = np.array([_share_found(words, set(_WORD.findall(t.lower()))) for t in saved.texts()],
                      dtype=np.float32)
    scores[~saved.embedded] = np.nan
    ranked = np.where(np.isnan(scores), 0.0, scores)
    # A stable sort keeps equal scores in the map's order: file order, usually folder by folder.
    order = np.argsort(-ranked, kind="stable")
    top = order[ranked[order] > 0][:k]
    return SearchResult.of_scores(scores, top.astype(np.int64), query=query, mode=KEYWORD)


def _share_found(words: list[str], tokens: set[str]) -> float:
    found = sum(
        w in tokens or NUMBER_ALIASES.get(w) in tokens
        or (w.isalpha() and len(w) >= 3 and any(t.startswith(w) for t in tokens))
        for w in words
    )
    return found / len(words)
