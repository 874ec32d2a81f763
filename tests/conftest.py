"""Shared fixtures: a private workspace per test, a deterministic fake embedder, small datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from explorer import HashingEmbedder, Workspace

# Nothing may be fetched from a model hub in tests: fail fast instead of retrying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SAMPLE_PAPERS = REPO / "sample_data" / "papers.csv"


@pytest.fixture(autouse=True)
def explorer_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own workspace, so no test sees another's maps or the user's."""
    home = tmp_path / "home"
    monkeypatch.setenv("EXPLORER_HOME", str(home))
    return home


@pytest.fixture
def workspace(explorer_home) -> Workspace:
    """An empty workspace in the test's home."""
    return Workspace(explorer_home)


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    """The deterministic, weights-free embedder used by unit tests."""
    return HashingEmbedder(dimension=64)


@pytest.fixture
def papers_frame() -> pd.DataFrame:
    """A small table of papers in three clearly different fields (30 rows)."""
    return papers_table()


def papers_table() -> pd.DataFrame:
    """The papers_frame fixture's table, for module-scoped fixtures that cannot ask for it."""
    topics = {
        "biology": "protein folding enzyme cell gene sequence",
        "physics": "quantum particle field energy relativity",
        "economics": "market price inflation trade labour",
    }
    rows = []
    for field, words in topics.items():
        vocab = words.split()
        for i in range(10):
            title = f"{vocab[i % 5].title()} study {i} of {vocab[(i + 1) % 5]}"
            abstract = " ".join(vocab[(i + j) % 5] for j in range(12))
            rows.append({"title": title, "abstract": abstract, "field": field, "year": 2000 + i})
    return pd.DataFrame(rows)


# --- shared session fixtures for the slow tier: the real model is loaded once per run -------------


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2, loaded once and shared by every slow test."""
    from explorer import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    assert embedder.model is not None  # load now, so the first test to use it is not billed for it
    return embedder


@pytest.fixture(scope="session")
def sample_papers() -> pd.DataFrame:
    """200 rows of sample_data/papers.csv, 25 per field (the file is sorted by field)."""
    from explorer import load_table

    frame = load_table(SAMPLE_PAPERS).frame
    return frame.groupby("field", sort=False).head(25).reset_index(drop=True)


@pytest.fixture(scope="session")
def real_map(real_embedder, sample_papers, tmp_path_factory):
    """The sample papers built once with the real model and UMAP, in a session workspace."""
    from explorer import build_map

    workspace = Workspace(tmp_path_factory.mktemp("real-map-home"))
    return build_map(sample_papers, name="papers", model=real_embedder, workspace=workspace)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright (installed by `make test`), one per browser-test module:
    the sync API must be closed before a module that drives Playwright's async API starts."""
    from playwright.sync_api import sync_playwright
    from streamlit_server import ARTIFACTS, CHROMIUM_ARGS, chromium_path

    ARTIFACTS.mkdir(exist_ok=True)
    executable = chromium_path()
    assert executable, "Chromium is missing: `make test` installs it with apt-get (package chromium)."
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
