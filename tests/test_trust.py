"""The whole-map kNN graph, the trust layer and near-duplicates (unit tests on synthetic vectors)."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.duplicates import near_duplicates
from explorer.neighbours import knn_graph
from explorer.trust import far_on_map, trust_scores


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def circle(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points on a circle: the embedding is the angle's unit vector, the map the same circle."""
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return unit(np.hstack([vectors, np.zeros((n, 6))])), (vectors * 10).astype(np.float32)


def test_the_exact_graph_is_every_rows_nearest_other_rows_best_first():
    x = unit(np.random.default_rng(0).normal(size=(300, 16)))
    graph = knn_graph(x, k=7)
    scores = x @ x.T
    np.fill_diagonal(scores, -np.inf)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :7]
    assert graph.exact and graph.k == 7
    np.testing.assert_array_equal(graph.indices, expected)
    np.testing.assert_allclose(graph.similarities, np.take_along_axis(scores, expected, axis=1), rtol=1e-5)


@pytest.mark.slow
def test_the_approximate_graph_finds_nearly_every_true_neighbour():
    x = unit(np.random.default_rng(1).normal(size=(3000, 12)))
    exact = knn_graph(x, k=10)
    approximate = knn_graph(x, k=10, exact_max_rows=1000)
    assert not approximate.exact
    assert (approximate.indices != np.arange(3000)[:, None]).all(), "a row is never its own neighbour"
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approximate.indices, exact.indices, strict=True)])
    assert recall >= 0.9


def test_a_faithful_map_is_trusted_and_a_shuffled_one_is_not():
    vectors, coords = circle(400)
    faithful = trust_scores(vectors, coords)
    shuffled = trust_scores(vectors, coords[np.random.default_rng(2).permutation(400)])

    assert faithful.scores.min() == pytest.approx(1.0) and faithful.overall == pytest.approx(1.0)
    assert shuffled.overall < 0.2


def test_two_swapped_points_are_the_ones_the_map_misleads_about():
    vectors, coords = circle(400)
    coords[[0, 200]] = coords[[200, 0]]
    trust = trust_scores(vectors, coords)

    assert trust.scores[0] == 0 and trust.scores[200] == 0
    assert np.sort(trust.scores)[2] > 0.5, "everyone else keeps most of their neighbourhood"
    # Row 0's true neighbours (rows 1, 2, 399...) are drawn across the map from where row 0 now is.
    assert far_on_map(coords, 0, np.array([1, 2, 399])).all()
    assert not far_on_map(coords, 100, np.array([99, 101])).any()


def test_rows_without_an_embedding_get_no_trust():
    vectors, coords = circle(100)
    valid = np.ones(100, dtype=bool)
    valid[[3, 50]] = False
    trust = trust_scores(vectors, coords, valid=valid)
    assert np.isnan(trust.scores[[3, 50]]).all() and np.isfinite(np.delete(trust.scores, [3, 50])).all()


def duplicated_rows() -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 32))
    for copy in (100, 200, 300):
        x[copy] = x[5] + rng.normal(scale=0.01, size=32)
    x[400] = x[10] + rng.normal(scale=0.01, size=32)
    return unit(x)


@pytest.mark.parametrize("exact_max_rows", [100_000, 100])
def test_near_duplicates_are_grouped_biggest_first(exact_max_rows):
    found = near_duplicates(duplicated_rows(), threshold=0.98, exact_max_rows=exact_max_rows)

    assert found.exact == (exact_max_rows > 500)
    assert [g.tolist() for g in found.groups] == [[5, 100, 200, 300], [10, 400]]
    assert found.extra_rows().tolist() == [100, 200, 300, 400] and found.n_rows == 6


def test_near_duplicates_skip_rows_without_an_embedding_and_check_the_threshold():
    x = duplicated_rows()
    valid = np.ones(len(x), dtype=bool)
    valid[10] = False
    found = near_duplicates(x, threshold=0.98, valid=valid)
    assert [g.tolist() for g in found.groups] == [[5, 100, 200, 300]]
    assert near_duplicates(x, threshold=1.0).groups == []
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates(x, threshold=1.5)


def test_a_saved_map_gets_a_trust_column_and_a_summary(papers_frame, fake_embedder, workspace):
    from explorer import ProjectionConfig, build_map
    from explorer.trust import TRUST_COLUMN, add_trust, trust_summary

    saved = build_map(papers_frame, name="papers", model=fake_embedder, projection=ProjectionConfig(method="pca"),
                      workspace=workspace, clusters=None).saved
    assert trust_summary(saved) is None

    trusted = add_trust(saved, workspace=workspace)

    reopened = workspace.open("papers")
    scores = reopened.points[TRUST_COLUMN].to_numpy()
    assert ((scores >= 0) & (scores <= 1)).all() and len(scores) == 30
    assert reopened.manifest["trust"]["overall"] == pytest.approx(float(scores.mean()), abs=1e-4)
    assert trust_summary(trusted).startswith(f"Trust {scores.mean():.2f}")


def test_ties_at_the_kth_neighbour_go_to_the_lowest_rows_so_a_wider_graph_begins_with_a_narrower():
    # Forty copies of one vector and a few others: every row's neighbours tie far past k.
    rng = np.random.default_rng(3)
    others = rng.normal(size=(10, 8)).astype(np.float32)
    x = np.vstack([np.tile(others[:1], (40, 1)), others[1:]])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    narrow, wide = knn_graph(x, k=5), knn_graph(x, k=20)
    np.testing.assert_array_equal(wide.indices[:, :5], narrow.indices)
    np.testing.assert_array_equal(narrow.indices[0], [1, 2, 3, 4, 5])  # the lowest of the tied rows
