"""What every embedder is: a model id and hash, a dimension, the kinds of data it embeds, and `embed`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..corpus import TEXT
from ..errors import ModelError
from ..progress import ProgressFn, no_progress

DEFAULT_BATCH_SIZE = 32


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts (and, where ``IMAGES`` is in ``kinds``, images) into unit float32 rows.

    ``spec`` is what `load_embedder` takes to load this embedder again (a saved map records it);
    ``model_id`` names the vector space (cache keys and the search check use it)."""

    model_id: str
    model_hash: str
    dimension: int
    kinds: frozenset[str]

    def embed(
        self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressFn = no_progress
    ) -> np.ndarray: ...


class EmbedderBase:
    """The defaults an embedder shares unless it says otherwise: texts only, its vectors are worth
    caching, the map is laid out from the vectors themselves, and nothing to keep after a build."""

    kinds: frozenset[str] = frozenset({TEXT})
    # False for an embedder fitted on the corpus it embeds: its vectors belong to that corpus alone.
    cacheable = True
    model_hash = ""
    fallback_reason = ""

    @property
    def spec(self) -> str:
        """The model spec that loads this embedder again."""
        return getattr(self, "model_name", self.model_id)

    def embed_images(self, images: Sequence, *, batch_size: int = DEFAULT_BATCH_SIZE,
                     progress: ProgressFn = no_progress) -> np.ndarray:
        """Unit vectors of images; only embedders with ``IMAGES`` in ``kinds`` have them."""
        raise ModelError(f"{self.model_id} embeds text only, so it cannot embed images.")

    def layout_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """What the map is laid out from (the vectors themselves, unless the embedder knows better)."""
        return vectors

    def persist(self, workspace_root: str | Path) -> None:
        """Keep what a saved map needs to embed its queries later (nothing, for most embedders)."""


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def text_search_of(embedder) -> str:
    """How text queries search an image map built with ``embedder``: "clip" (one space) or "keyword"."""
    return "clip" if TEXT in embedder.kinds else "keyword"
