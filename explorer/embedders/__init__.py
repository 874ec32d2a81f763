"""Step 2's models: one protocol, one file per embedder, one registry that parses every model spec."""

from __future__ import annotations

from ..corpus import IMAGES, TEXT
from .base import DEFAULT_BATCH_SIZE, Embedder, EmbedderBase, l2_normalise, text_search_of
from .hashing import HASHING_MODEL, HashingEmbedder
from .pixels import PIXEL_MODEL, PixelFeatureEmbedder
from .registry import embedder_for, load_embedder
from .tfidf import FAST_MODEL, CorpusEmbedder, is_corpus_model
from .transformer import (
    BUNDLED_MODEL,
    BUNDLED_MODEL_SHA256,
    DEFAULT_CLIP_MODEL,
    ClipEmbedder,
    SentenceTransformerEmbedder,
    bundled_model_path,
    default_device,
    verify_bundled_model,
)

__all__ = [
    "BUNDLED_MODEL", "BUNDLED_MODEL_SHA256", "DEFAULT_BATCH_SIZE", "DEFAULT_CLIP_MODEL", "FAST_MODEL",
    "HASHING_MODEL", "IMAGES", "PIXEL_MODEL", "TEXT", "ClipEmbedder", "CorpusEmbedder", "Embedder",
    "EmbedderBase", "HashingEmbedder", "PixelFeatureEmbedder", "SentenceTransformerEmbedder",
    "bundled_model_path", "default_device", "embedder_for", "is_corpus_model", "l2_normalise",
    "load_embedder", "text_search_of", "verify_bundled_model",
]
