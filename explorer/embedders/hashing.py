"""A weights-free bag-of-words embedder: deterministic and instant, for tests and for trying things out."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from ..progress import ProgressFn, no_progress
from .base import DEFAULT_BATCH_SIZE, EmbedderBase, l2_normalise

HASHING_MODEL = "hashing"


class HashingEmbedder(EmbedderBase):
    """A weights-free bag-of-words embedder (signed feature hashing); deterministic and instant."""

    def __init__(self, *, dimension: int = 256):
        self.dimension = dimension
        self.model_id = f"{HASHING_MODEL}-{dimension}"
        self.model_hash = ""

    def embed(
        self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressFn = no_progress
    ) -> np.ndarray:
        """Hash each lower-cased word (and word pair) into a signed bucket; log-scale the counts."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            for token in words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]:
                h = zlib.crc32(token.encode("utf-8"))
                out[i, h % self.dimension] += 1.0 if (h >> 16) & 1 else -1.0
            if (i + 1) % batch_size == 0 or i + 1 == len(texts):
                progress("embed", (i + 1) / len(texts), f"{i + 1:,} / {len(texts):,} rows")
        return l2_normalise(np.sign(out) * np.log1p(np.abs(out)))


_WORD = re.compile(r"\w+")
