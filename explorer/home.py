"""Where the workspace lives (maps, caches, fitted models): every step that keeps files asks here."""

from __future__ import annotations

import os
from pathlib import Path


def explorer_home() -> Path:
    """The workspace root: $EXPLORER_HOME, else ~/.embedding-explorer."""
    return Path(os.environ.get("EXPLORER_HOME") or Path.home() / ".embedding-explorer")
