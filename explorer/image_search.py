"""Search an image map: by text (CLIP, or keywords in file names and labels) or by an example image."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .errors import InputError, ModelError
from .image_embed import KEYWORD, SEMANTIC, ImageEmbedder, load_image_embedder
from .images import open_image, upright_rgb
from .search import SearchResult, clean_query, search_map, search_similar
from .texts import compose_texts

log = logging.getLogger(__name__)

EXAMPLE = "example"
# Letters and digits apart and underscores as separators, so "tabby_cat2.jpg" gives tabby, cat, 2, jpg.
_WORD = re.compile(r"[^\W\d_]+|\d+")


@dataclass
class ImageSearchResult(SearchResult):
    """A SearchResult that says how it was found: "clip", "keyword" or "example", and why."""

    mode: str = SEMANTIC
    reason: str = ""


def search_images_by_text(
    saved, query: str, *, embedder: ImageEmbedder | None = None, k: int = 10,
    threshold: float | None = None,
) -> ImageSearchResult:
    """Rank a map's images by a text query: with CLIP when the map was built with CLIP and the model
    loads, else by the share of query words found in each image's name, label and text columns."""
    query = clean_query(query)
    if saved.manifest.get("text_search") == SEMANTIC:
        try:
            embedder = embedder or load_image_embedder(saved.manifest.get("model"))
        except ModelError as exc:
            reason = (f"The map's CLIP model could not be loaded ({exc}), so text search matches "
                      "words in file names and labels instead.")
            log.warning("%s", reason)
        else:
            result = search_map(saved, query, embedder=embedder, k=k, threshold=threshold)
            return ImageSearchResult(scores=result.scores, indices=result.indices, query=query,
                                     mode=SEMANTIC, reason=saved.manifest.get("text_search_reason", ""))
    else:
        reason = saved.manifest.get("text_search_reason") or "This map has no text model."
    result = keyword_search(saved, query, k=k)
    return ImageSearchResult(scores=result.scores, indices=result.indices, query=query, mode=KEYWORD,
                             reason=reason)


def keyword_search(saved, query: str, *, k: int = 10) -> SearchResult:
    """Rows scored by the share of the query's words found among their keyword text's words (0 to
    1); a word of 3+ letters also matches longer words it starts (cat → cats); rows with no word in
    common are not ranked."""
    words = list(dict.fromkeys(_WORD.findall(clean_query(query).lower())))
    if not words:
        raise InputError("The search query has no letters or digits to match. Type a word.")
    texts = compose_texts(saved.points, columns=saved.manifest.get("text_columns"),
                          max_chars=10**9).texts
    scores = np.array([_share_found(words, set(_WORD.findall(t.lower()))) for t in texts],
                      dtype=np.float32)
    scores[~saved.embedded] = np.nan
    ranked = np.where(np.isnan(scores), 0.0, scores)
    # A stable sort keeps equal scores in the map's order: file order, usually folder by folder.
    order = np.argsort(-ranked, kind="stable")
    top = order[ranked[order] > 0][:k]
    return SearchResult(scores=scores, indices=top.astype(np.int64), query=query)


def _share_found(words: list[str], tokens: set[str]) -> float:
    found = sum(
        w in tokens or (w.isalpha() and len(w) >= 3 and any(t.startswith(w) for t in tokens))
        for w in words
    )
    return found / len(words)


def search_images_by_example(
    saved, image: bytes | Image.Image, *, embedder: ImageEmbedder | None = None, k: int = 10,
    exclude: int | None = None,
) -> ImageSearchResult:
    """The images nearest to an example image (bytes of an upload, or a PIL image) under the
    map's own embedder; ``exclude`` leaves out one row (the example itself, when picked from the map)."""
    embedder = embedder or load_image_embedder(saved.manifest.get("model"))
    if embedder.model_id != saved.manifest.get("model_id"):
        raise InputError(
            f"This map was built with {saved.manifest.get('model_id')}; the example would be embedded "
            f"with {embedder.model_id}. Search with the map's own model."
        )
    if isinstance(image, Image.Image):
        picture = upright_rgb(image)
    else:
        picture = open_image(bytes(image), max_side=getattr(embedder, "image_side", None))
    vector = embedder.embed_images([picture])[0]
    result = search_similar(saved.embeddings, vector, k=k, valid=saved.embedded, exclude=exclude)
    return ImageSearchResult(scores=result.scores, indices=result.indices, mode=EXAMPLE,
                             reason=f"Nearest images to the example under {embedder.model_id}.")
