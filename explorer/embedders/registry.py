"""One place that turns a model spec into an embedder, for every kind of data, and keeps them loaded."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from ..corpus import DATA_KINDS, IMAGES, TEXT
from ..errors import ModelError
from .base import Embedder, EmbedderBase
from .given import is_given_model
from .hashing import HASHING_MODEL, HashingEmbedder
from .pixels import PIXEL_MODEL, PixelFeatureEmbedder
from .tfidf import CONFIG_FILE, is_corpus_model, load_corpus_embedder, model_folder
from .transformer import (
    BUNDLED_MODEL,
    DEFAULT_CLIP_MODEL,
    ClipEmbedder,
    SentenceTransformerEmbedder,
    max_seq_length_of,
    quantize_of,
)

log = logging.getLogger(__name__)

# Loaded models kept by embedder_for: a transformer holds ~100 MB, so a handful is plenty.
MAX_LOADED = 8


def load_embedder(
    spec: str | Embedder | None = None,
    *,
    kind: str = TEXT,
    fallback: bool = False,
    device: str | None = None,
    max_seq_length: int | None = None,
    workspace_root: str | Path | None = None,
) -> Embedder:
    """The embedder for a model spec and a kind of data.

    None is the default of the kind: the bundled MiniLM for text, CLIP clip-ViT-B-32 for images.
    "hashing" / "hashing-<dim>" is the weights-free word hasher; "tfidf-svd" the fast corpus embedder
    (a fitted id such as "tfidf-svd256@…" is read from ``workspace_root``, default the user's
    workspace); "pixels" the weights-free image features; anything else a sentence-transformers
    name or folder (a CLIP model for images, loaded now). For images, ``fallback`` turns a CLIP
    model that cannot be loaded into the pixel embedder, whose ``fallback_reason`` says why."""
    if kind not in DATA_KINDS:
        raise ModelError(f"Unknown kind of data '{kind}': use one of {', '.join(DATA_KINDS)}.")
    if spec is not None and not isinstance(spec, str):
        return spec if isinstance(spec, EmbedderBase) else _Adapted(spec)
    spec = (spec or "").strip()
    if is_given_model(spec):
        raise ModelError(f"{spec} names vectors that came with the data; no model can embed into them here.")
    if spec == HASHING_MODEL or spec.startswith(HASHING_MODEL + "-"):
        size = spec.split("-", 1)[1] if "-" in spec else "256"
        if not size.isdigit() or int(size) == 0:
            raise ModelError(f"'{spec}' is not a hashing model: use 'hashing' or 'hashing-<dimension>'.")
        return HashingEmbedder(dimension=int(size))
    if is_corpus_model(spec):
        return load_corpus_embedder(spec, workspace_root=workspace_root)
    if spec == PIXEL_MODEL:
        return PixelFeatureEmbedder()
    if kind == TEXT:
        return SentenceTransformerEmbedder(spec or BUNDLED_MODEL, max_seq_length=max_seq_length, device=device)
    try:
        return ClipEmbedder(spec or DEFAULT_CLIP_MODEL, device=device).load()
    except ModelError as exc:
        if not fallback:
            raise
        reason = (f"CLIP could not be loaded: {exc} Using the offline pixel embedder instead, so "
                  "text search matches file names and labels only.")
        # Logged at info only: the caller tells the user, once, in its own words or with this reason.
        log.info("%s", reason)
        return PixelFeatureEmbedder(fallback_reason=reason)


class _Adapted(EmbedderBase):
    """An embedder of the caller's own that has only the protocol's core (model_id, dimension, embed):
    it gets the defaults every other embedder has, and says it embeds images when it can."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.kinds = getattr(inner, "kinds", None) or frozenset(
            {TEXT, *([IMAGES] if callable(getattr(inner, "embed_images", None)) else [])})
        for name in ("model_hash", "cacheable", "fallback_reason"):  # else the defaults would hide them
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def embed(self, texts, **options):
        """The caller's embedder's own ``embed``."""
        return self._inner.embed(texts, **options)

    def embed_images(self, images, **options):
        """The caller's embedder's own ``embed_images``, where it has one."""
        if IMAGES not in self.kinds:
            return super().embed_images(images, **options)
        return self._inner.embed_images(images, **options)

    def layout_vectors(self, vectors):
        """The caller's embedder's own layout vectors, where it has them."""
        own = getattr(self._inner, "layout_vectors", None)
        return own(vectors) if callable(own) else vectors

    def persist(self, workspace_root) -> None:
        """The caller's embedder's own persist, where it has one."""
        own = getattr(self._inner, "persist", None)
        if callable(own):
            own(workspace_root)


_loaded: dict[tuple, Embedder] = {}
_lock = threading.Lock()


def embedder_for(saved) -> Embedder:
    """The embedder a saved map's queries go through, loaded once and kept: repeated searches reuse it."""
    kind = saved.kind
    spec = saved.meta.model or None
    root = Path(saved.path).parent.parent
    # A text map's queries are cut as its rows were: a map of the bundled model from before 128 tokens
    # became its default keeps 256, so its model id, and the search check, still match.
    length = max_seq_length_of(saved.meta.model_id) if kind == TEXT and not is_corpus_model(spec) else None
    # Int8 vectors come from the CPU path only: on a machine with a GPU the queries still go through it.
    device = "cpu" if kind == TEXT and quantize_of(saved.meta.model_id) else None
    key = (kind, spec, str(root) if is_corpus_model(spec) else "", _stamp(spec, root), length)
    with _lock:
        embedder = _loaded.get(key)
    if embedder is None:
        # Loaded outside the lock: a first load takes seconds and must not hold up other maps' searches.
        embedder = load_embedder(spec, kind=kind, workspace_root=root, max_seq_length=length, device=device)
        with _lock:
            while len(_loaded) >= MAX_LOADED:
                _loaded.pop(next(iter(_loaded)))
            embedder = _loaded.setdefault(key, embedder)
    return embedder


def _stamp(spec: str | None, root: Path) -> int:
    """When a fitted fast embedder's files were written, so one that was changed on disk is read again."""
    if not is_corpus_model(spec) or "@" not in (spec or ""):
        return 0
    try:
        return (model_folder(root, spec) / CONFIG_FILE).stat().st_mtime_ns
    except OSError:
        return 0
