"""The package itself: a light import, and the public API it promises."""

from __future__ import annotations

import json
import subprocess
import sys

import explorer

HEAVY_MODULES = ("streamlit", "torch", "umap", "sentence_transformers", "transformers", "sklearn")


def test_import_leaves_heavy_libraries_unloaded():
    # A fresh interpreter: in this one, other tests have long since imported torch and friends.
    code = (
        "import json, sys, explorer; "
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_public_api_names_resolve():
    assert explorer.__all__, "the package must declare its public API"
    for name in explorer.__all__:
        assert getattr(explorer, name) is not None, name


def test_every_error_is_an_explorer_error():
    for error in (explorer.InputError, explorer.ModelError, explorer.MapNotFoundError):
        assert issubclass(error, explorer.ExplorerError)
