"""The package itself: its error hierarchy (its layout and light import are checked in test_layout.py)."""

from __future__ import annotations

import explorer


def test_every_error_is_an_explorer_error():
    for error in (explorer.InputError, explorer.ModelError, explorer.MapNotFoundError):
        assert issubclass(error, explorer.ExplorerError)
