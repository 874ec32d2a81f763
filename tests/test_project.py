"""Step 3, project: UMAP by default, PCA on request, and a valid layout for any input size."""

from __future__ import annotations

import warnings

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


def blobs(rows: int, *, centres: int = 4, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around a few well-separated directions, and which direction each row came from."""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, centres, size=rows)
    vectors = np.eye(centres, dim, dtype=np.float32)[topic] + rng.normal(scale=0.15, size=(rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), topic


def test_umap_s_graph_is_exact_below_the_threshold():
    from explorer.project import umap_graph

    vectors, _ = blobs(200)
    graph = umap_graph(vectors, n_neighbors=6, metric="cosine")
    assert graph.exact and graph.indices.shape == (200, 5) and graph.distances.dtype == np.float32
    distances = 1 - vectors @ vectors.T
    np.fill_diagonal(distances, np.inf)
    expected = np.sort(distances, axis=1)[:, :5]
    np.testing.assert_allclose(graph.distances, np.maximum(expected, 0), atol=1e-5)
    # UMAP's input: each row itself first, at distance 0, then its nearest others.
    indices, given, index = graph.umap_knn(6)
    np.testing.assert_array_equal(indices[:, 0], np.arange(200))
    np.testing.assert_array_equal(indices[:, 1:], graph.indices)
    assert (given[:, 0] == 0).all() and index is None


def test_placement_puts_a_row_among_its_nearest_fitted_rows():
    from explorer.neighbours import KnnGraph, knn_graph
    from explorer.placement import median_positions, place_rows

    fitted, _ = blobs(100, seed=1)
    coords = np.random.default_rng(2).normal(size=(100, 2)).astype(np.float32)
    graph: KnnGraph = knn_graph(fitted, k=14)
    new = fitted[:10] + np.float32(1e-3)
    placed = place_rows(new, searcher=graph.searcher, reference_coords=coords, k=5).coords
    indices, _ = graph.query(new, k=5)
    np.testing.assert_array_equal(indices[:, 0], np.arange(10))  # a near-copy's nearest is its original
    np.testing.assert_array_equal(placed, np.median(coords[indices], axis=1).astype(np.float32))
    lo, hi = coords[indices].min(axis=1), coords[indices].max(axis=1)
    assert ((placed >= lo) & (placed <= hi)).all()  # inside its neighbours' box
    # Neighbours split between two places: the row goes to where most of them are, not between.
    pts = np.array([[0, 0], [0.1, 0], [0, 0.1], [10, 10], [10, 10.1]], dtype=np.float32)
    (where,) = median_positions(pts, np.array([[0, 3, 1, 4, 2]]))
    assert np.linalg.norm(where) < 0.2
    # A missing neighbour (-1, as an approximate index may return) does not count.
    np.testing.assert_allclose(median_positions(pts, np.array([[3, -1, 4]])), [[10, 10.05]], rtol=1e-6)


def test_placement_is_deterministic_and_independent_of_chunking():
    from explorer.neighbours import knn_graph
    from explorer.placement import place_rows

    fitted, _ = blobs(300, seed=3)
    new, _ = blobs(250, seed=4)
    coords = np.random.default_rng(5).normal(size=(300, 2)).astype(np.float32)
    seen: list[float] = []
    for graph in (knn_graph(fitted, k=14), knn_graph(fitted, k=14, exact_max_rows=0)):
        seen.clear()
        whole = place_rows(new, searcher=graph.searcher, reference_coords=coords,
                           progress=lambda stage, fraction, message: seen.append(fraction)).coords
        np.testing.assert_array_equal(whole, place_rows(new, searcher=graph.searcher, reference_coords=coords,
                                                        chunk_rows=7).coords)
        assert seen == [1.0]
    steps: list[float] = []
    place_rows(new, searcher=graph.searcher, reference_coords=coords, chunk_rows=100,
               progress=lambda stage, fraction, message: steps.append(fraction))
    assert steps == [0.4, 0.8, 1.0]


@pytest.mark.slow
def test_a_big_map_is_fitted_on_a_sample_and_the_rest_placed_by_their_neighbours():
    vectors, topic = blobs(700, seed=6)
    config = ProjectionConfig(sample_rows=300)
    layout = project(vectors, config=config)
    assert_layout(layout.coords, 700)
    assert layout.method == "umap" and len(layout.fitted_rows) == 300 and layout.knn.indices.shape == (300, 14)
    np.testing.assert_array_equal(layout.coords, project(vectors.copy(), config=config).coords)
    from sklearn.neighbors import KNeighborsClassifier

    sample = layout.fitted_rows
    rest = np.setdiff1d(np.arange(700), sample)
    classifier = KNeighborsClassifier(n_neighbors=10).fit(layout.coords[sample], topic[sample])
    assert classifier.score(layout.coords[rest], topic[rest]) > 0.95  # placed among their own topic


@pytest.mark.slow
def test_the_exact_graph_path_gives_a_valid_layout_and_can_be_reused(paper_vectors, papers_frame):
    from explorer.neighbours import knn_graph
    from explorer.project import project_umap

    layout = project(paper_vectors)
    assert layout.knn is not None and layout.knn.exact
    assert_layout(layout.coords, len(paper_vectors))
    # A graph with more neighbours than asked serves the UMAP as well: the same layout.
    wider = knn_graph(paper_vectors, k=24)
    coords, _ = project_umap(paper_vectors, config=ProjectionConfig(), knn=wider)
    np.testing.assert_array_equal(coords, layout.coords)
    fields = papers_frame["field"].to_numpy()
    centres = {f: coords[fields == f].mean(axis=0) for f in set(fields)}
    spread = max(np.linalg.norm(coords[fields == f] - centres[f], axis=1).mean() for f in centres)
    assert min(np.linalg.norm(centres[a] - centres[b]) for a in centres for b in centres if a < b) > spread


def test_umap_kernels_get_numba_s_disk_cache():
    import umap.umap_

    from explorer.project import enable_umap_cache

    enable_umap_cache()
    enable_umap_cache()  # once per process: a second call changes nothing
    assert type(umap.umap_.smooth_knn_dist._cache).__name__ != "NullCache"


def test_placement_of_chosen_rows_equals_placing_their_copy():
    from explorer.placement import place_rows

    fitted, _ = blobs(200, seed=7)
    vectors, _ = blobs(90, seed=8)
    coords = np.random.default_rng(9).normal(size=(200, 2)).astype(np.float32)
    rows = np.array([3, 50, 51, 89, 0])
    chosen = place_rows(vectors, reference_vectors=fitted, reference_coords=coords, rows=rows, chunk_rows=2)
    copied = place_rows(vectors[rows], reference_vectors=fitted, reference_coords=coords)
    np.testing.assert_array_equal(chosen.coords, copied.coords)
    np.testing.assert_array_equal(chosen.neighbours, copied.neighbours)


def test_umap_on_the_one_graph_lays_out_as_on_scikit_learn_s_exact_graph():
    """UMAP's layout moves with a distance's last bit: the one graph gives it scikit-learn's distances."""
    import umap
    from sklearn.neighbors import NearestNeighbors

    vectors, _ = blobs(400, seed=11)
    distances, indices = NearestNeighbors(n_neighbors=15, metric="cosine", algorithm="brute").fit(vectors) \
        .kneighbors(vectors)
    reducer = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=42, n_jobs=1,
                        precomputed_knn=(indices, np.maximum(distances, 0.0).astype(np.float32), None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no search index, so no transform: not needed here
        expected = reducer.fit_transform(vectors).astype(np.float32)
    np.testing.assert_array_equal(project(vectors, config=ProjectionConfig()).coords, expected)


@pytest.mark.parametrize("rows", [7, 300, 5_000])
def test_exact_neighbours_are_a_full_sorts_top_k_ties_by_row(rows):
    from explorer.neighbours import nearest_rows, unit_rows

    rng = np.random.default_rng(rows)
    # Rows repeated (equal scores) and on a coarse grid (many ties at the k-th place), past the sampled columns.
    x = unit_rows(np.repeat(rng.integers(-2, 3, size=(max(rows // 3, 3), 6)), 3, axis=0)[:rows].astype(np.float32))
    for k in (1, 5, min(16, len(x) - 1)):
        found, scores = nearest_rows(x, x, k=k, skip_self=True)
        full = x @ x.T
        np.fill_diagonal(full, -np.inf)
        columns = np.arange(len(x))
        for row in range(len(x)):
            best = np.lexsort((columns, -full[row]))[:k]
            assert found[row].tolist() == best.tolist() and np.array_equal(scores[row], full[row, best])


def test_spread_is_read_a_chunk_at_a_time_with_the_whole_arrays_answer():
    from explorer.project import spread

    x = np.random.default_rng(3).normal(size=(1_001, 5)).astype(np.float32)
    for chunk_rows in (1, 7, 1_000, 5_000):
        assert spread(x, chunk_rows=chunk_rows) == float(np.abs(x - x[0]).max())
    assert spread(np.ones((4, 3), dtype=np.float32)) == 0.0


def test_exact_neighbours_of_identical_rows_are_the_lowest_other_rows():
    from explorer.neighbours import nearest_rows

    # Every score equal: each row's candidates are the whole row, sorted alone (the old argpartition's ties).
    x = np.ones((3_000, 4), dtype=np.float32) / 2.0
    found, scores = nearest_rows(x, x, k=5, skip_self=True)
    assert found[0].tolist() == [1, 2, 3, 4, 5] and found[7].tolist() == [0, 1, 2, 3, 4]
    assert np.allclose(scores, 1.0)
