"""The embedder of a map that keeps the user's own vectors: it names their space and embeds nothing."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ModelError
from ..progress import ProgressFn, no_progress
from .base import DEFAULT_BATCH_SIZE, EmbedderBase

GIVEN_PREFIX = "given:"


class GivenVectorsEmbedder(EmbedderBase):
    """Stands for vectors made elsewhere by a model nobody named: no query can be put into their space."""

    kinds: frozenset[str] = frozenset()
    cacheable = False

    def __init__(self, *, source: str, dimension: int, digest: str) -> None:
        self.dimension = int(dimension)
        self.model_id = f"{GIVEN_PREFIX}{source}@{digest[:16]}"

    @property
    def spec(self) -> str:
        """Nothing loads these vectors' model again: the id is all there is."""
        return self.model_id

    def embed(self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE,
              progress: ProgressFn = no_progress) -> np.ndarray:
        """Refused: the model that made these vectors was not named."""
        raise ModelError("This map keeps your own vectors and no model was named as the one that made them, "
                         "so nothing can be embedded into their space: name that model to search by meaning.")


def is_given_model(spec: str | None) -> bool:
    """Whether a model spec is the id of a map's own given vectors."""
    return bool(spec) and str(spec).startswith(GIVEN_PREFIX)
