"""Which embedding mode a build uses: the transformer (quality) or the corpus-fitted TF-IDF + SVD (fast).

The choice is made from the size of the data and per-row costs measured on a 2-core CPU (see
docs/benchmarks.md, section "Speed"); the user can always override it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .errors import InputError

MODES = ("auto", "fast", "quality")
# all-MiniLM-L6-v2 on 2 shared cores read 9-12 abstracts of 256 tokens a second (docs/benchmarks.md,
# "Speed"; 3-5 a second when the machine was busy): ~0.4 ms per token, rounded up.
QUALITY_SECONDS_PER_TOKEN = 0.1 / 256
QUALITY_MAX_TOKENS = 256
CHARS_PER_TOKEN = 5.0  # English abstracts through MiniLM's WordPiece tokenizer
QUALITY_LOAD_SECONDS = 3.0  # loading the model and checking its weights
# TF-IDF + SVD: ~0.4 ms per 1,400-character abstract, and a fixed cost for the SVD.
FAST_SECONDS_PER_CHAR = 0.3e-6
FAST_FIXED_SECONDS = 1.0
# UMAP after its kernels are compiled: ~5 s for 2.5k rows (500 epochs below 10k rows), ~5 s for
# 12k, ~50 s for 100k.
PROJECT_FIXED_SECONDS = 3.0
PROJECT_SECONDS_PER_ROW = 0.45e-3
# Up to this estimate the transformer is worth its wait: the map is better and still comes quickly.
QUALITY_BUDGET_SECONDS = 60.0


@dataclass(frozen=True)
class ModeChoice:
    """The mode a build will use, why, and about how long embedding and projecting will take."""

    mode: str
    reason: str
    estimated_seconds: float
    requested: str = "auto"

    @property
    def model(self) -> str | None:
        """The model spec that load_embedder understands: None is the bundled transformer."""
        from .embedders.tfidf import FAST_MODEL

        return FAST_MODEL if self.mode == "fast" else None

    def to_dict(self) -> dict:
        """Plain dict for the manifest."""
        return asdict(self)


def estimate_seconds(mode: str, *, n_rows: int, avg_chars: float) -> float:
    """Seconds to embed and project ``n_rows`` texts of ``avg_chars`` characters in ``mode``."""
    project = PROJECT_FIXED_SECONDS + n_rows * PROJECT_SECONDS_PER_ROW
    if mode == "fast":
        return FAST_FIXED_SECONDS + n_rows * avg_chars * FAST_SECONDS_PER_CHAR + project
    tokens = min(QUALITY_MAX_TOKENS, avg_chars / CHARS_PER_TOKEN + 2)  # + the [CLS] and [SEP] tokens
    return QUALITY_LOAD_SECONDS + n_rows * tokens * QUALITY_SECONDS_PER_TOKEN + project


def choose_mode(n_rows: int, avg_chars: float, requested: str = "auto") -> ModeChoice:
    """Pick fast or quality for ``n_rows`` texts: as requested, or automatically by estimated time."""
    if requested not in MODES:
        raise InputError(f"Unknown mode '{requested}'; choose one of {', '.join(MODES)}.")
    quality = estimate_seconds("quality", n_rows=n_rows, avg_chars=avg_chars)
    fast = estimate_seconds("fast", n_rows=n_rows, avg_chars=avg_chars)
    if requested == "quality":
        return ModeChoice("quality", f"You chose the quality mode (the transformer): about {_duration(quality)} "
                          f"for {n_rows:,} rows on this machine.", quality, requested)
    if requested == "fast":
        return ModeChoice("fast", f"You chose the fast mode (TF-IDF + SVD fitted on your data): about "
                          f"{_duration(fast)} for {n_rows:,} rows.", fast, requested)
    if quality <= QUALITY_BUDGET_SECONDS:
        return ModeChoice("quality", f"{n_rows:,} rows are few enough for the transformer (about "
                          f"{_duration(quality)}), which gives the best map.", quality, requested)
    return ModeChoice("fast", f"The transformer would take about {_duration(quality)} for {n_rows:,} rows on this "
                      f"CPU, so the fast mode (TF-IDF + SVD fitted on your data) builds the map in about "
                      f"{_duration(fast)}. Choose the quality mode for the transformer's map.", fast, requested)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def choose_mode_for_texts(texts: Sequence[str], requested: str = "auto") -> ModeChoice:
    """choose_mode for the texts a build will embed (their count and mean length)."""
    n_rows = len(texts)
    avg_chars = sum(map(len, texts)) / n_rows if n_rows else 0.0
    return choose_mode(n_rows, avg_chars, requested)
