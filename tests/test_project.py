"""Step 3, project: UMAP by default, PCA on request, and a valid layout for any input size."""

from __future__ import annotations

import numpy as np
import pytest

from explorer import ProjectionConfig, project
from explorer.texts import compose_texts


@pytest.fixture
def paper_vectors(papers_frame, fake_embedder) -> np.ndarray:
    return fake_embedder.embed(compose_texts(papers_frame).texts)


def assert_layout(coords: np.ndarray, rows: int) -> None:
    assert coords.shape == (rows, 2)
    assert coords.dtype == np.float32
    assert np.isfinite(coords).all()


def test_defaults():
    config = ProjectionConfig()
    assert (config.method, config.n_neighbors, config.min_dist, config.metric, config.seed) == (
        "umap", 15, 0.1, "cosine", 42,
    )
    assert config.to_dict() == {
        "method": "umap", "n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "seed": 42,
        "sample_rows": 150_000,
    }


@pytest.mark.parametrize("rows", [0, 1, 2, 3])
def test_tiny_inputs_get_a_layout(rows):
    vectors = np.random.default_rng(rows).normal(size=(rows, 16)).astype(np.float32)
    assert_layout(project(vectors).coords, rows)


def test_two_rows_are_apart():
    coords = project(np.eye(2, 8, dtype=np.float32)).coords
    assert not np.allclose(coords[0], coords[1])


@pytest.mark.parametrize("rows", [1, 5, 40])
def test_identical_rows_get_a_layout(rows):
    vectors = np.tile(np.arange(8, dtype=np.float32), (rows, 1))
    result = project(vectors)
    assert_layout(result.coords, rows)
    assert result.method == "constant"


def test_one_dimensional_input():
    # PCA cannot find two components in one feature; the second axis is padded.
    assert_layout(project(np.array([[0.0], [1.0], [3.0]], dtype=np.float32)).coords, 3)


def test_few_rows_fall_back_to_pca():
    vectors = np.random.default_rng(0).normal(size=(6, 16)).astype(np.float32)
    result = project(vectors)
    assert result.method == "pca"
    assert result.reducer is None
    assert_layout(result.coords, 6)


def test_pca_option(paper_vectors):
    config = ProjectionConfig(method="pca")
    first = project(paper_vectors, config=config)
    again = project(paper_vectors, config=config)
    assert first.method == "pca" and first.config is config
    assert_layout(first.coords, len(paper_vectors))
    np.testing.assert_array_equal(first.coords, again.coords)
    assert first.coords.std(axis=0).min() > 0


def test_unknown_method_is_refused(paper_vectors):
    with pytest.raises(ValueError, match="Unknown projection method 'tsne'"):
        project(paper_vectors, config=ProjectionConfig(method="tsne"))


@pytest.mark.slow
def test_umap_is_deterministic_with_the_configured_parameters(paper_vectors):
    first = project(paper_vectors)
    again = project(paper_vectors.copy())
    assert first.method == "umap"
    assert_layout(first.coords, len(paper_vectors))
    np.testing.assert_array_equal(first.coords, again.coords)
    reducer = first.reducer
    assert (reducer.n_neighbors, reducer.min_dist, reducer.metric, reducer.random_state) == (
        15, 0.1, "cosine", 42,
    )


@pytest.mark.slow
def test_umap_seed_changes_the_layout(paper_vectors):
    base = project(paper_vectors).coords
    other = project(paper_vectors, config=ProjectionConfig(seed=7)).coords
    assert not np.array_equal(base, other)


@pytest.mark.slow
@pytest.mark.parametrize("rows", [10, 12])
def test_umap_on_few_rows_clamps_the_neighbours(rows):
    vectors = np.random.default_rng(rows).normal(size=(rows, 16)).astype(np.float32)
    result = project(vectors)
    assert result.method == "umap"
    assert result.reducer.n_neighbors == rows - 1
    assert_layout(result.coords, rows)


@pytest.mark.slow
def test_umap_on_many_duplicates(fake_embedder):
    vectors = fake_embedder.embed(["protein folding"] * 20 + ["market prices"] * 20)
    assert_layout(project(vectors).coords, 40)


@pytest.mark.slow
def test_umap_keeps_clusters_apart(papers_frame, paper_vectors):
    coords = project(paper_vectors).coords
    fields = papers_frame["field"].to_numpy()
    centres = {f: coords[fields == f].mean(axis=0) for f in set(fields)}
    spread = max(np.linalg.norm(coords[fields == f] - centres[f], axis=1).mean() for f in centres)
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in centres for b in centres if a < b]
    assert min(gaps) > spread
