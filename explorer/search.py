"""Step 4, search: cosine scores of a query against every row, the top hits, and row neighbours."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError

MAX_QUERY_CHARS = 2_000


@dataclass
class SearchResult:
    """Scores for every row (NaN where a row has no embedding) and the ranked hits."""

    scores: np.ndarray
    indices: np.ndarray
    query: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def top_scores(self) -> np.ndarray:
        """The scores of the ranked hits, best first."""
        return self.scores[self.indices]


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
) -> SearchResult:
    """Rank rows by cosine similarity to a unit query vector; keep at most k at or above threshold."""
    scores = embeddings @ np.asarray(query_vector, dtype=np.float32).reshape(-1)
    scores = scores.astype(np.float32)
    if valid is not None:
        scores[~valid] = np.nan
    ranked = np.where(np.isnan(scores), -np.inf, scores)
    if exclude is not None:
        ranked[exclude] = -np.inf
    k = max(0, min(k, int(np.isfinite(ranked).sum())))
    if k == 0:
        return SearchResult(scores=scores, indices=np.zeros(0, dtype=np.int64))
    top = np.argpartition(-ranked, k - 1)[:k]
    top = top[np.argsort(-ranked[top], kind="stable")]
    if threshold is not None:
        top = top[ranked[top] >= threshold]
    return SearchResult(scores=scores, indices=top.astype(np.int64))


def nearest_neighbors(
    embeddings: np.ndarray, row: int, *, k: int = 10, valid: np.ndarray | None = None
) -> SearchResult:
    """The k rows closest to ``row`` in embedding space (the row itself excluded)."""
    if not 0 <= row < len(embeddings):
        raise InputError(f"Row {row} does not exist; the map has {len(embeddings):,} rows.")
    if valid is not None and not valid[row]:
        # A row without text has a zero vector: every other row would tie at score 0.
        return SearchResult(scores=np.full(len(embeddings), np.nan, dtype=np.float32),
                            indices=np.zeros(0, dtype=np.int64))
    return search_similar(embeddings, embeddings[row], k=k, valid=valid, exclude=row)


def query_position(coords: np.ndarray, result: SearchResult, *, top: int = 5) -> np.ndarray:
    """Where to draw a query on the map: the score-weighted mean position of its best hits."""
    idx = result.indices[:top]
    idx = idx[np.isfinite(coords[idx]).all(axis=1)]
    if len(idx) == 0:
        return np.array([np.nan, np.nan], dtype=np.float32)
    weights = np.clip(result.scores[idx], 1e-3, None) ** 2
    return (coords[idx] * weights[:, None]).sum(axis=0) / weights.sum()


def embed_query(query: str, embedder) -> np.ndarray:
    """The unit vector of a cleaned query under ``embedder``."""
    return embedder.embed([clean_query(query)])[0]


def map_embedder(saved):
    """The embedder a saved text map's queries go through: its model, or the fast embedder fitted on its rows."""
    from .embed import load_embedder
    from .fast_embed import is_corpus_model, load_corpus_embedder

    model = saved.manifest.get("model")
    if is_corpus_model(model):
        return load_corpus_embedder(model, workspace_root=saved.path.parent.parent)
    return load_embedder(model)


def search_map(saved, query: str, *, embedder=None, k: int = 10, threshold: float | None = None) -> SearchResult:
    """Search a saved map with the model it was built with (or the embedder given)."""
    embedder = embedder or map_embedder(saved)
    if embedder.model_id != saved.manifest.get("model_id"):
        raise InputError(
            f"This map was built with {saved.manifest.get('model_id')}; the query model is "
            f"{embedder.model_id}. Search with the map's own model."
        )
    result = search_similar(saved.embeddings, embed_query(query, embedder), k=k, threshold=threshold,
                            valid=saved.embedded)
    result.query = clean_query(query)
    result.notes = query_notes(query)
    return result
