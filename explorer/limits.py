"""The caps on what one upload may hold, in one place: each has a default and an environment override."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ExplorerError

MB = 1_000_000


@dataclass(frozen=True)
class Limits:
    """Caps that keep a hostile or mistaken upload from exhausting memory or time."""

    # A CSV of a million abstracts is about 1.4 GB, and the readers stream it (the build of 1M rows stays
    # within the 5 GB budget of issue 31), so the cap lets such a file through; the app's upload writes
    # it to disk as it arrives, never holding it in memory.
    max_upload_bytes: int = 2048 * MB
    max_rows: int = 2_000_000
    # Far more than any table worth mapping has; a wider file costs seconds per thousand columns to read.
    max_columns: int = 2_000
    # Longer texts are cut before embedding (the model reads ~256 tokens anyway); the table keeps them whole.
    max_text_chars: int = 20_000
    max_zip_files: int = 20_000
    max_unzipped_bytes: int = 1024**3
    # Pillow's own limit (about 89 megapixels) is the documented decompression-bomb threshold.
    max_image_pixels: int = 89_478_485

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, with any cap set in the environment (see ENV_VARS) replacing its default."""
        environ = os.environ if environ is None else environ
        overrides = {}
        for name, (variable, unit) in ENV_VARS.items():
            raw = environ.get(variable, "").strip()
            if raw:
                overrides[name] = _positive(variable, raw, unit)
        return cls(**overrides)


# Field → (environment variable, how many units of the field one unit of the variable is).
ENV_VARS: dict[str, tuple[str, int]] = {
    "max_upload_bytes": ("EXPLORER_MAX_UPLOAD_MB", MB),
    "max_rows": ("EXPLORER_MAX_ROWS", 1),
    "max_columns": ("EXPLORER_MAX_COLUMNS", 1),
    "max_text_chars": ("EXPLORER_MAX_TEXT_CHARS", 1),
    "max_zip_files": ("EXPLORER_MAX_ZIP_FILES", 1),
    "max_unzipped_bytes": ("EXPLORER_MAX_UNZIPPED_MB", MB),
    "max_image_pixels": ("EXPLORER_MAX_IMAGE_PIXELS", 1),
}


def too_big_message(name: str, size: int, limit: int) -> str:
    """The one line that refuses a file of ``size`` bytes over the upload limit ``limit``."""
    return (
        f"{name}: the file is {size / 1e6:,.1f} MB, more than the limit of {limit / 1e6:,.0f} MB. "
        "Upload a smaller file, or raise the limit (EXPLORER_MAX_UPLOAD_MB)."
    )


def _positive(variable: str, raw: str, unit: int) -> int:
    try:
        value = float(raw.replace("_", "").replace(",", ""))
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ExplorerError(f"{variable} must be a positive number, not '{raw}'. Fix or unset it.")
    return max(1, int(value * unit))
