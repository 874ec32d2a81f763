"""Step 4 at scale: big maps are searched through compressed codes re-ranked exactly, small ones exactly,
and the codes kept in the map folder are never used for vectors they were not built from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explorer import map_files, nearest_neighbors, search_map, search_similar
from explorer import vector_index as vi
from explorer.index_file import INDEX_FILE, fingerprint, read_index
from explorer.store import EMBEDDINGS_FILE
from explorer.vector_index import build_index, search_index

pytest.importorskip("faiss")

K = 10


def clustered(rows: int, *, dim: int = 64, seed: int = 0) -> np.ndarray:
    """Unit vectors in 400 loose topics: diffuse enough that the codes' first 500 candidates alone miss
    part of the exact top 10 for about a quarter of the queries."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(400, dim))
    vectors = centres[rng.integers(0, len(centres), rows)] + 1.4 * rng.normal(size=(rows, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def brute_force(vectors: np.ndarray, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[int]:
    scores = vectors.astype(np.float64) @ query.astype(np.float64)
    if allowed is not None:
        scores[~allowed] = -np.inf
    return np.argsort(-scores, kind="stable")[:k].tolist()


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered(20_000)


@pytest.fixture(scope="module")
def index(vectors):
    return build_index(vectors)


@pytest.fixture(scope="module")
def queries(vectors) -> np.ndarray:
    # Unseen points of the same distribution: not rows of the map, so no query is its own best hit.
    return clustered(200, seed=1)


@pytest.fixture
def small_limit(monkeypatch):
    """Maps of more than 1,000 rows get an index."""
    monkeypatch.setattr(vi, "EXACT_ROWS", 1_000)


def save_map(workspace, name: str, vectors: np.ndarray, *, model_id: str = "synthetic"):
    rows = len(vectors)
    points = pd.DataFrame({"row_id": np.arange(rows), "title": [f"row {i}" for i in range(rows)],
                           "x": np.zeros(rows, np.float32), "y": np.zeros(rows, np.float32),
                           "embedded": np.ones(rows, bool)})
    manifest = {"rows": rows, "embedded_rows": rows, "model_id": model_id, "kind": "text"}
    return map_files.save_map(workspace, name, points=points, embeddings=vectors, manifest=manifest)


def test_index_search_finds_the_exact_top_k(vectors, index, queries, monkeypatch):
    asked = []
    candidates = type(index).candidates
    monkeypatch.setattr(type(index), "candidates", lambda self, q, count: asked.append(count) or candidates(self, q, count))
    same = 0
    for query in queries:
        result = search_similar(vectors, query, k=K, index=index)
        same += set(result.indices.tolist()) == set(brute_force(vectors, query, K))
        # Hits carry exact scores, and every row's score is there when asked for.
        np.testing.assert_allclose(result.top_scores, vectors[result.indices] @ query, atol=1e-5)
    assert same / len(queries) >= 0.99
    np.testing.assert_allclose(result.scores, vectors @ query, atol=1e-5)
    # The first candidates alone would not do: the check of what a row left out could score asks for more.
    assert max(asked) > min(asked) == 501
    first = [set(brute_force(vectors, q, K)) <= set(index.candidates(q, 500)[0].tolist()) for q in queries]
    assert np.mean(first) < 0.9


def test_neighbours_through_the_index(vectors, index):
    for row in (0, 777, 19_999):
        result = nearest_neighbors(vectors, row, k=K, index=index)
        assert row not in result.indices
        assert result.indices.tolist() == [r for r in brute_force(vectors, vectors[row], K + 1) if r != row][:K]


def test_valid_exclude_and_threshold_on_the_index_path(vectors, index, queries):
    valid = np.random.default_rng(3).random(len(vectors)) < 0.7
    query = queries[0]
    result = search_similar(vectors, query, k=K, valid=valid, index=index)
    assert result.indices.tolist() == brute_force(vectors, query, K, valid)
    assert np.isnan(result.scores[~valid]).all() and np.isfinite(result.scores[valid]).all()

    best = int(result.indices[0])
    without = search_similar(vectors, query, k=K, valid=valid, exclude=best, index=index)
    assert without.indices.tolist() == result.indices[1:].tolist() + [brute_force(vectors, query, K + 1, valid)[-1]]

    cut = float(result.top_scores[4])
    above = search_similar(vectors, query, k=K, valid=valid, threshold=cut, index=index)
    assert above.indices.tolist() == result.indices[:5].tolist()
    assert search_similar(vectors, query, k=K, threshold=1.01, index=index).indices.tolist() == []


def test_a_mask_leaving_few_rows_is_searched_exactly(vectors, index, queries):
    valid = np.zeros(len(vectors), bool)
    valid[::7] = True  # 14 % of the rows: the index's candidates would be mostly filtered away
    for query in queries[:5]:
        assert search_similar(vectors, query, k=K, valid=valid, index=index).indices.tolist() == \
            brute_force(vectors, query, K, valid)


def test_small_maps_stay_exact(workspace, fake_embedder):
    vectors = clustered(3_000)
    saved = save_map(workspace, "small", vectors)
    assert search_index(saved) is None and not (saved.path / INDEX_FILE).exists()
    opened = workspace.open("small", mmap=True)
    assert search_index(opened) is None
    for query in clustered(20, seed=5):
        assert search_similar(opened.embeddings, query, k=K).indices.tolist() == brute_force(vectors, query, K)


def test_a_big_map_saves_its_index_and_search_map_uses_it(workspace, small_limit, fake_embedder, monkeypatch):
    vectors = fake_embedder.embed([f"paper {i} about topic {i % 50}" for i in range(3_000)])
    saved = save_map(workspace, "big", vectors, model_id=fake_embedder.model_id)
    assert (saved.path / INDEX_FILE).is_file()
    opened = workspace.open("big", mmap=True)
    # Opened again it is read from the folder, not built.
    monkeypatch.setattr(vi, "build_index", lambda *a, **kw: pytest.fail("the saved index was rebuilt"))
    assert search_index(opened) is not None and search_index(opened) is search_index(opened)
    result = search_map(opened, "topic 7 paper", embedder=fake_embedder, k=K)
    assert result.indices.tolist() == brute_force(vectors, fake_embedder.embed(["topic 7 paper"])[0], K)


def test_the_index_is_rebuilt_when_the_embeddings_change(workspace, small_limit):
    first, second = clustered(3_000, seed=1), clustered(3_000, seed=2)
    saved = save_map(workspace, "m", first)
    old = read_index(saved.path, first, embeddings_file=saved.path / EMBEDDINGS_FILE)
    assert old is not None

    # A refinement saves the map again with new vectors: its index is of those.
    refined = save_map(workspace, "m", second)
    assert read_index(refined.path, first) is None
    assert read_index(refined.path, second, embeddings_file=refined.path / EMBEDDINGS_FILE) is not None

    # Vectors written over the file in place: the kept index no longer matches the file, so the
    # first search builds a new one and keeps it.
    np.save(refined.path / EMBEDDINGS_FILE, first)
    reopened = workspace.open("m", mmap=True)
    assert read_index(reopened.path, reopened.embeddings, embeddings_file=reopened.path / EMBEDDINGS_FILE) is None
    index = search_index(reopened)
    assert index.fingerprint == fingerprint(first)
    assert read_index(reopened.path, first, embeddings_file=reopened.path / EMBEDDINGS_FILE) is not None
    assert not [p for p in reopened.path.iterdir() if p.name.endswith(".tmp")]

    # New vectors set on an open map get their own index, built in memory: the folder's is not theirs.
    reopened.embeddings = second.copy()
    assert search_index(reopened).fingerprint == fingerprint(second)
    assert read_index(reopened.path, first, embeddings_file=reopened.path / EMBEDDINGS_FILE) is not None


def test_without_faiss_big_maps_are_searched_exactly(workspace, small_limit, monkeypatch):
    monkeypatch.setattr(vi, "faiss_available", lambda: False)
    vectors = clustered(3_000)
    saved = save_map(workspace, "no faiss", vectors)
    assert search_index(saved) is None and not (saved.path / INDEX_FILE).exists()


def test_a_failed_index_build_still_saves_the_map(workspace, small_limit, monkeypatch):
    import explorer.map_files

    def broken(*args, **kwargs):
        raise RuntimeError("faiss failed")

    monkeypatch.setattr(explorer.map_files, "build_index", broken)
    monkeypatch.setattr(vi, "build_index", broken)
    vectors = clustered(3_000)
    saved = save_map(workspace, "unindexed", vectors)
    assert not (saved.path / INDEX_FILE).exists()
    opened = workspace.open("unindexed", mmap=True)
    assert search_index(opened) is None
    query = clustered(1, seed=9)[0]
    assert search_similar(opened.embeddings, query, k=K, index=search_index(opened)).indices.tolist() == \
        brute_force(vectors, query, K)
