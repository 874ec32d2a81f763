"""Which embedding mode a build uses: the transformer (quality) or the corpus-fitted TF-IDF + SVD (fast).

The choice is made from the size of the data and per-row costs measured on a 2-core CPU (see
docs/benchmarks.md, section "Speed"); the user can always override it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .errors import InputError

MODES = ("auto", "fast", "quality")
# all-MiniLM-L6-v2 on 2 shared cores, re-measured for issue 15 (docs/benchmarks.md, "Transformer speed"):
# 30-33 abstracts of ~240 tokens a second while the cores were free (load average 0.4-3; 0.13 ms per
# token), 13 at load 4 (0.3 ms), 2-6 at load 8-15 (0.7-2 ms). Kept at ~0.4 ms per token, ~10 abstracts
# a second: the machine this runs on is usually shared.
QUALITY_SECONDS_PER_TOKEN = 0.1 / 256
QUALITY_MAX_TOKENS = 256  # texts are cut there (BUNDLED_MAX_SEQ_LENGTH in explorer/embedders/transformer.py)
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
# The progressive build's refinement step (issue 30): the bundled model reading the first REFINE_MAX_TOKENS
# tokens of each text, run as REFINE_QUANTIZE on the CPU (None: fp32; on a GPU it is fp32 whatever this says).
# Measured by ranking against the 256-token fp32 model (docs/benchmarks.md, "The refinement's transformer step,
# measured by ranking"), no step faster than fp32 at 256 held >= 0.97x on every metric of both arXiv sets. Of the
# two that come closest, int8 at 128 reads 1.5x the rows a second of fp32 at 128 and misses the bar by less:
# its worst ratio is the neighbours' precision@10 on the 2,500 papers, 0.967x (0.978x on the ~12k sample), where
# fp32 at 128 misses the topic queries' precision there by more (0.958x; 0.976x on the neighbours). So the
# refinement runs int8 at 128: the whole refinement of 10k papers fits the three minutes only so.
# int8 and fp32 at 96 and 64 tokens lost more; int8 at 256 reads fewer rows a second than fp32 at 128.
REFINE_MAX_TOKENS = 128
REFINE_QUANTIZE: str | None = "int8"
# fp32 at 128 tokens read 37 abstracts a second at load 2-3 on the 12k file (section "progressive"): ~0.21 ms per
# token, rounded up for a shared machine. Re-measured for issue 30 at load 5.5-8 (other work on both cores):
# 10-15 rows a second at 2 threads, 12-22 at 1 (0.4-0.8 ms per token); the estimate stays at the quieter figure.
# int8 read the same 9,986 papers' 128 tokens in 101 s where fp32 took 142 s (load 1.7-1.9, "refine-stages"): 0.71x.
REFINE_SECONDS_PER_TOKEN = 0.25e-3 * (0.71 if REFINE_QUANTIZE else 1.0)
# A refinement estimated to take longer starts only when asked (a button, `explorer refine`): at 100k
# rows it would hold both cores for hours.
REFINE_AUTO_MAX_SECONDS = 30 * 60.0


@dataclass(frozen=True)
class ModeChoice:
    """The mode a build will use, why, and about how long embedding and projecting will take.

    ``refine``: the fast map is refined by the transformer afterwards (a progressive build), and
    ``search_seconds`` is about when search by meaning is ready (None: never, the fast mode alone)."""

    mode: str
    reason: str
    estimated_seconds: float
    requested: str = "auto"
    refine: bool = False
    search_seconds: float | None = None
    # Whether the refinement starts by itself after the fast map (False: it would take too long here).
    automatic: bool = True

    @property
    def model(self) -> str | None:
        """The model spec that load_embedder understands: None is the bundled transformer."""
        from .embedders.tfidf import FAST_MODEL

        return FAST_MODEL if self.mode == "fast" else None

    @property
    def summary(self) -> str:
        """Both waits in a few words: 'map in about N s, search by meaning in about M min'."""
        text = f"map in about {duration_text(self.estimated_seconds)}"
        if self.search_seconds is None:
            return text + "; search matches the words of your data (TF-IDF), not their meaning"
        if self.refine and not self.automatic:
            return text + f"; search by meaning when you ask for it (about {duration_text(self.search_seconds)})"
        if self.refine:
            return text + f", search by meaning in about {duration_text(self.search_seconds)}"
        return text + ", search by meaning as soon as it is shown"

    def to_dict(self) -> dict:
        """Plain dict for the manifest."""
        return asdict(self)


def estimate_seconds(mode: str, *, n_rows: int, avg_chars: float) -> float:
    """Seconds to embed and project ``n_rows`` texts of ``avg_chars`` characters in ``mode``."""
    project = PROJECT_FIXED_SECONDS + n_rows * PROJECT_SECONDS_PER_ROW
    if mode == "fast":
        return FAST_FIXED_SECONDS + n_rows * avg_chars * FAST_SECONDS_PER_CHAR + project
    if mode in ("refine", "titles"):  # the transformer at REFINE_MAX_TOKENS; the whole text is laid out again
        tokens = min(REFINE_MAX_TOKENS, avg_chars / CHARS_PER_TOKEN + 2)
        return QUALITY_LOAD_SECONDS + n_rows * tokens * REFINE_SECONDS_PER_TOKEN + (project if mode == "refine" else 0)
    tokens = min(QUALITY_MAX_TOKENS, avg_chars / CHARS_PER_TOKEN + 2)  # + the [CLS] and [SEP] tokens
    return QUALITY_LOAD_SECONDS + n_rows * tokens * QUALITY_SECONDS_PER_TOKEN + project


def choose_mode(n_rows: int, avg_chars: float, requested: str = "auto", *,
                title_chars: float | None = None) -> ModeChoice:
    """Pick fast or quality for ``n_rows`` texts: as requested, or automatically by estimated time.

    Automatically, a table the transformer would take too long for gets the fast map first and the
    transformer's refinement after it (``refine``), so the map comes quickly and search by meaning follows:
    on the titles first when the table has them (``title_chars``, their mean length), then on the whole text."""
    if requested not in MODES:
        raise InputError(f"Unknown mode '{requested}'; choose one of {', '.join(MODES)}.")
    quality = estimate_seconds("quality", n_rows=n_rows, avg_chars=avg_chars)
    fast = estimate_seconds("fast", n_rows=n_rows, avg_chars=avg_chars)
    if requested == "quality":
        return ModeChoice("quality", f"You chose the quality mode (the transformer): about {duration_text(quality)} "
                          f"for {n_rows:,} rows on this machine.", quality, requested, search_seconds=quality)
    if requested == "fast":
        return ModeChoice("fast", f"You chose the fast mode (TF-IDF + SVD fitted on your data): about "
                          f"{duration_text(fast)} for {n_rows:,} rows, and no transformer afterwards.", fast, requested)
    if quality <= quality_budget_seconds():
        return ModeChoice("quality", f"{n_rows:,} rows are few enough for the transformer (about "
                          f"{duration_text(quality)}), which gives the best map.", quality, requested,
                          search_seconds=quality)
    # The refinement embeds the titles (when there are), then every row's text, and lays the map out again.
    titles = estimate_seconds("titles", n_rows=n_rows, avg_chars=title_chars) if title_chars else 0.0
    whole = estimate_seconds("refine", n_rows=n_rows, avg_chars=avg_chars)
    search = fast + (titles or whole)
    first = (f"The transformer would take about {duration_text(quality)} for {n_rows:,} rows on this CPU, so the "
             f"fast mode (TF-IDF + SVD fitted on your data) builds the map in about {duration_text(fast)}; ")
    if titles + whole <= REFINE_AUTO_MAX_SECONDS:
        then = (f"search by meaning on the titles in about {duration_text(search)}, on the whole text in about "
                f"{duration_text(fast + titles + whole)}" if titles else
                f"search by meaning in about {duration_text(search)}")
        return ModeChoice("fast", first + f"the transformer then refines it in the background: {then}. Choose the "
                          "quality mode to wait for the transformer's map instead.", fast, requested, refine=True,
                          search_seconds=search)
    return ModeChoice("fast", first + f"refining it with the transformer would hold the CPU for about "
                      f"{duration_text(titles + whole)}, so it starts only when you ask (the map's sidebar, or "
                      "`explorer refine`); until then search matches the words of your data.", fast, requested,
                      refine=True, search_seconds=search, automatic=False)


def refine_model_spec() -> str:
    """The spec of the refinement's transformer step, loaded with max_seq_length=REFINE_MAX_TOKENS: the bundled
    model, named "#int8" where REFINE_QUANTIZE says so."""
    from .embedders.transformer import BUNDLED_MODEL, quantized_spec

    return quantized_spec(BUNDLED_MODEL, REFINE_QUANTIZE)


def quality_budget_seconds() -> float:
    """QUALITY_BUDGET_SECONDS, or $EXPLORER_QUALITY_BUDGET_SECONDS (a demo or a browser test can make
    a small table take the progressive build). Read on every call: the module outlives the runs that set it."""
    return float(os.environ.get("EXPLORER_QUALITY_BUDGET_SECONDS") or QUALITY_BUDGET_SECONDS)


def duration_text(seconds: float) -> str:
    """A wait as people say it: "40 s", "3 min", "1.5 h"."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def choose_mode_for_texts(texts: Sequence[str], requested: str = "auto", *,
                          title_chars: float | None = None) -> ModeChoice:
    """choose_mode for the texts a build will embed (their count and mean length), and the mean length of
    their titles when the refinement reads those first (texts.title_stage_column)."""
    n_rows = len(texts)
    avg_chars = sum(map(len, texts)) / n_rows if n_rows else 0.0
    return choose_mode(n_rows, avg_chars, requested, title_chars=title_chars)
