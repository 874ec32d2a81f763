"""The package version, in one module that imports nothing (so every module may import it)."""

from __future__ import annotations

__version__ = "0.1.0"
