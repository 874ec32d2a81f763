"""The progress callback shared by every step: stage name, fraction done, a short message."""

from __future__ import annotations

from typing import Protocol


class ProgressFn(Protocol):
    """Called as work advances; ``fraction`` runs from 0.0 to 1.0 within ``stage``."""

    def __call__(self, stage: str, fraction: float, message: str = "") -> None: ...


def no_progress(stage: str, fraction: float, message: str = "") -> None:
    """A progress callback that ignores every report."""
