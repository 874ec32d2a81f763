"""Weights-free image features: what image maps are embedded with when no CLIP model is at hand."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from ..corpus import IMAGES
from ..errors import ModelError
from ..progress import ProgressFn, no_progress
from .base import DEFAULT_BATCH_SIZE, EmbedderBase, l2_normalise

PIXEL_MODEL = "pixels"


class PixelFeatureEmbedder(EmbedderBase):
    """Weights-free image features: a small grey thumbnail, edge orientations (HOG) and a colour
    histogram, each centred and scaled per image, joined and L2-normalised. It cannot read text."""

    kinds = frozenset({IMAGES})
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

    def embed(self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE,
              progress: ProgressFn = no_progress) -> np.ndarray:
        """Pixel features have no text side: text queries of its maps are matched as keywords."""
        raise ModelError(f"{self.model_id} embeds images only: it cannot embed text.")

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

