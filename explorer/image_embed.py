"""Step 2 for images: CLIP (texts and images in one space) or weights-free pixel features."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from .cache import EmbeddingCache, EmbeddingResult, align_vectors
from .embed import DEFAULT_BATCH_SIZE, SentenceTransformerEmbedder, l2_normalise
from .errors import ModelError
from .images import DEFAULT_MAX_SIDE, ImageSequence, ImageSet
from .progress import ProgressFn, no_progress

log = logging.getLogger(__name__)

DEFAULT_CLIP_MODEL = "clip-ViT-B-32"
PIXEL_MODEL = "pixels"
SEMANTIC, KEYWORD = "clip", "keyword"


@runtime_checkable
class ImageEmbedder(Protocol):
    """Anything that turns images into unit-length float32 rows; ``text_search`` says whether text
    queries can be embedded into the same space ("clip") or fall back to keywords ("keyword")."""

    model_id: str
    dimension: int
    text_search: str

    def embed_images(
        self, images: Sequence[Image.Image], *, batch_size: int = DEFAULT_BATCH_SIZE,
        progress: ProgressFn = no_progress,
    ) -> np.ndarray: ...


class ClipEmbedder(SentenceTransformerEmbedder):
    """A sentence-transformers CLIP model (a name or a local folder): ``embed`` takes texts,
    ``embed_images`` images, and both land in one space."""

    text_search = SEMANTIC
    image_side = DEFAULT_MAX_SIDE

    def __init__(self, model: str = DEFAULT_CLIP_MODEL, *, device: str = "cpu"):
        # A local folder is kept as an absolute path, so a saved map finds it from any directory.
        super().__init__(str(Path(model).resolve()) if Path(model).is_dir() else model, device=device)

    @property
    def model(self):
        """The loaded SentenceTransformer, checked to embed images (loaded on first use)."""
        if self._model is None:
            try:
                loaded = super().model
            except ModelError as exc:
                log.info("CLIP load failed: %s", exc)
                raise ModelError(self._unavailable(exc.__cause__ or exc)) from exc
            if "image" not in getattr(loaded, "modalities", ()):
                self._model = None
                raise ModelError(
                    f"'{self.model_name}' is not a CLIP model: it embeds text only, so it cannot "
                    "embed images. Give a sentence-transformers CLIP model such as clip-ViT-B-32."
                )
        return self._model

    def _unavailable(self, cause: BaseException | None = None) -> str:
        if Path(self.model_name).exists():
            detail = f" ({type(cause).__name__}: {' '.join(str(cause).split())[:160]})" if cause else ""
            return (f"The folder {self.model_name} could not be loaded as a sentence-transformers "
                    f"CLIP model{detail}.")
        return (f"The CLIP model '{self.model_name}' is not on this machine and cannot be "
                "downloaded (no network, or the name is wrong).")

    def load(self) -> ClipEmbedder:
        """Load the model now, so a missing model is reported before any work starts."""
        if self.model is None:  # the property loads it or raises ModelError; never None after
            raise ModelError(self._unavailable())
        return self

    def embed_images(
        self, images: Sequence[Image.Image], *, batch_size: int = DEFAULT_BATCH_SIZE,
        progress: ProgressFn = no_progress,
    ) -> np.ndarray:
        """Encode images in batches (decoding each batch only when it is reached)."""
        model = self.model
        total = len(images)
        out = np.zeros((total, self.dimension), dtype=np.float32)
        for start in range(0, total, batch_size):
            batch = list(images[start : start + batch_size])
            out[start : start + len(batch)] = model.encode(
                batch, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                show_progress_bar=False,
            )
            done = start + len(batch)
            progress("embed", done / total, f"{done:,} / {total:,} images")
        return l2_normalise(out)


class PixelFeatureEmbedder:
    """Weights-free image features: a small grey thumbnail, edge orientations (HOG) and a colour
    histogram, each centred and scaled per image, joined and L2-normalised."""

    text_search = KEYWORD
    # Part of the model id: bump it when the features change, so cached vectors are not reused.
    version = 1

    def __init__(self, *, side: int = 32, cell: int = 8, orientations: int = 9, levels: int = 4,
                 fallback_reason: str = ""):
        self.side = side
        self.cell = cell
        self.orientations = orientations
        self.levels = levels
        self.fallback_reason = fallback_reason
        # Decoding at twice the feature size keeps the final shrink antialiased, and JPEGs fast.
        self.image_side = side * 2
        self.model_name = PIXEL_MODEL
        self.model_id = f"{PIXEL_MODEL}-v{self.version}-{side}"
        self.model_hash = ""
        cells = side // cell
        self.dimension = (side // 2) ** 2 + (cells - 1) ** 2 * 4 * orientations + levels**3

    def embed_images(
        self, images: Sequence[Image.Image], *, batch_size: int = DEFAULT_BATCH_SIZE,
        progress: ProgressFn = no_progress,
    ) -> np.ndarray:
        """Compute the features of each batch of images."""
        total = len(images)
        out = np.zeros((total, self.dimension), dtype=np.float32)
        for start in range(0, total, batch_size):
            batch = list(images[start : start + batch_size])
            pixels = np.stack([self._pixels(image) for image in batch])
            out[start : start + len(batch)] = self.features(pixels)
            done = start + len(batch)
            progress("embed", done / total, f"{done:,} / {total:,} images")
        return out

    def _pixels(self, image: Image.Image) -> np.ndarray:
        small = image.convert("RGB").resize((self.side, self.side), Image.Resampling.BOX)
        return np.asarray(small, dtype=np.float32) / 255.0

    def features(self, pixels: np.ndarray) -> np.ndarray:
        """Unit feature rows for an (n, side, side, 3) array of RGB values in [0, 1]."""
        grey = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        n, half = len(pixels), self.side // 2
        shape = grey.reshape(n, half, 2, half, 2).mean(axis=(2, 4)).reshape(n, -1)
        blocks = [_centred_unit(shape), _centred_unit(self._hog(grey)),
                  0.5 * _centred_unit(self._colour_histogram(pixels))]
        return l2_normalise(np.hstack(blocks))

    def _hog(self, grey: np.ndarray) -> np.ndarray:
        """Histograms of gradient orientation per cell, normalised over 2 x 2 cell blocks (L2-Hys)."""
        n, side, cell, bins = len(grey), self.side, self.cell, self.orientations
        gy, gx = np.gradient(grey, axis=(1, 2))
        magnitude = np.hypot(gx, gy)
        # Unsigned orientation: a dark-on-light edge and a light-on-dark one count the same.
        angle = np.mod(np.arctan2(gy, gx), np.pi)
        index = np.minimum((angle / np.pi * bins).astype(np.int64), bins - 1)
        onehot = np.zeros((n, side, side, bins), dtype=np.float32)
        np.put_along_axis(onehot, index[..., None], magnitude[..., None], axis=3)
        cells = side // cell
        hist = onehot.reshape(n, cells, cell, cells, cell, bins).sum(axis=(2, 4))
        blocks = np.concatenate(
            [hist[:, :-1, :-1], hist[:, 1:, :-1], hist[:, :-1, 1:], hist[:, 1:, 1:]], axis=3
        ).reshape(n, (cells - 1) ** 2, 4 * bins)
        blocks = blocks / (np.linalg.norm(blocks, axis=2, keepdims=True) + 1e-6)
        blocks = np.minimum(blocks, 0.2)
        blocks = blocks / (np.linalg.norm(blocks, axis=2, keepdims=True) + 1e-6)
        return blocks.reshape(n, -1)

    def _colour_histogram(self, pixels: np.ndarray) -> np.ndarray:
        """A joint RGB histogram of ``levels`` steps per channel, square-rooted (Hellinger)."""
        n, levels = len(pixels), self.levels
        q = np.minimum((pixels * levels).astype(np.int64), levels - 1)
        index = (q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]
        counts = np.zeros((n, levels**3), dtype=np.float32)
        np.add.at(counts, (np.repeat(np.arange(n), index[0].size), index.reshape(-1)), 1.0)
        return np.sqrt(counts / index[0].size)


def _centred_unit(block: np.ndarray) -> np.ndarray:
    """Each row minus its mean, scaled to unit length, so every block weighs the same."""
    return l2_normalise(block - block.mean(axis=1, keepdims=True))


def load_image_embedder(
    model: str | ImageEmbedder | None = None, *, fallback: bool = False, device: str = "cpu"
) -> ImageEmbedder:
    """The image embedder for a spec, loaded now: None → CLIP clip-ViT-B-32, "pixels" → the
    weights-free PixelFeatureEmbedder, else a CLIP name or folder. ModelError if CLIP cannot be
    loaded, unless ``fallback``: then the pixel embedder, whose ``fallback_reason`` says why."""
    if model is None or model == "":
        model = DEFAULT_CLIP_MODEL
    if not isinstance(model, str):
        return model
    if model == PIXEL_MODEL:
        return PixelFeatureEmbedder()
    try:
        return ClipEmbedder(model, device=device).load()
    except ModelError as exc:
        if not fallback:
            raise
        reason = (f"CLIP could not be loaded: {exc} Using the offline pixel embedder instead, so "
                  "text search matches file names and labels only.")
        # Logged at info only: the caller tells the user, once, in its own words or with this reason.
        log.info("%s", reason)
        return PixelFeatureEmbedder(fallback_reason=reason)


def embed_image_set(
    embedder: ImageEmbedder,
    images: ImageSet,
    *,
    cache: EmbeddingCache | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressFn = no_progress,
) -> EmbeddingResult:
    """Embed every image of the set, reusing cached vectors (keyed by the image bytes' hash) and
    embedding each distinct new image once."""
    started = time.perf_counter()
    # Text and image vectors of one CLIP model share a model id; the suffix keeps their keys apart.
    key = f"{embedder.model_id}#image"
    hashes = images.hashes
    first = {}
    for i, digest in enumerate(hashes):
        first.setdefault(digest, i)
    known = cache.get_many(key, list(first)) if cache else {}
    todo = [h for h in first if h not in known]
    if todo:
        if known:
            progress("embed", 0.0, f"{len(known):,} images from the cache; embedding {len(todo):,} new")
        pending = ImageSequence([images.data[first[h]] for h in todo],
                                max_side=getattr(embedder, "image_side", DEFAULT_MAX_SIDE))
        fresh = embedder.embed_images(pending, batch_size=batch_size, progress=progress)
        if cache:
            cache.put_many(key, todo, fresh)
        known.update(zip(todo, fresh, strict=True))
    progress("embed", 1.0, f"{len(hashes):,} / {len(hashes):,} images")
    vectors = align_vectors(hashes, known, dimension=embedder.dimension)
    new = set(todo)
    n_cached = sum(1 for h in hashes if h not in new)
    log.info("embedded %d images (%d cached) with %s", len(hashes), n_cached, embedder.model_id)
    return EmbeddingResult(vectors=vectors, model_id=embedder.model_id, n_cached=n_cached,
                           n_computed=len(todo), seconds=time.perf_counter() - started)
