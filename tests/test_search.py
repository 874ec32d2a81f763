"""Step 4, search: cosine scores for every row, ranked hits, a row's neighbours, and one search_map
for every kind of map."""

from __future__ import annotations

import numpy as np
import pytest
from kinds import KINDS, Case, build, encode, make_case, square

from explorer import (
    HashingEmbedder,
    InputError,
    PixelFeatureEmbedder,
    nearest_neighbors,
    search_map,
    search_similar,
)
from explorer.placement import place_query
from explorer.search import MAX_QUERY_CHARS, clean_query, embed_query

# Five unit vectors in 3D whose cosine to QUERY is known: 1.0, 0.8, 0.6, 0.0, -1.0.
VECTORS = np.array(
    [[1, 0, 0], [0.8, 0.6, 0], [0.6, 0, 0.8], [0, 1, 0], [-1, 0, 0]], dtype=np.float32
)
QUERY = np.array([1, 0, 0], dtype=np.float32)


def test_scores_for_every_row_and_ranked_hits():
    result = search_similar(VECTORS, QUERY, k=3)
    np.testing.assert_allclose(result.scores, [1.0, 0.8, 0.6, 0.0, -1.0], atol=1e-6)
    assert result.indices.tolist() == [0, 1, 2]
    np.testing.assert_allclose(result.top_scores, [1.0, 0.8, 0.6], atol=1e-6)


def test_k_larger_than_the_rows():
    assert search_similar(VECTORS, QUERY, k=50).indices.tolist() == [0, 1, 2, 3, 4]
    assert search_similar(VECTORS, QUERY, k=0).indices.tolist() == []


def test_equal_scores_come_back_in_row_order():
    # Every 7th row scores 1, row 150 scores 2: np.argpartition alone returns the tied rows shuffled,
    # and differently between numpy versions.
    vectors = np.zeros((200, 2), dtype=np.float32)
    vectors[:, 1] = 1.0
    vectors[::7] = [1.0, 0.0]
    vectors[150] = [2.0, 0.0]
    result = search_similar(vectors, np.array([1, 0], dtype=np.float32), k=10)
    assert result.indices.tolist() == [150, 0, 7, 14, 21, 28, 35, 42, 49, 56]


def test_threshold():
    assert search_similar(VECTORS, QUERY, k=10, threshold=0.5).indices.tolist() == [0, 1, 2]
    assert search_similar(VECTORS, QUERY, k=10, threshold=1.5).indices.tolist() == []


def test_rows_without_embeddings_are_never_returned():
    valid = np.array([False, True, True, False, True])
    result = search_similar(VECTORS, QUERY, k=10, valid=valid)
    assert result.indices.tolist() == [1, 2, 4]
    assert np.isnan(result.scores[[0, 3]]).all()
    assert np.isfinite(result.scores[[1, 2, 4]]).all()


def test_no_valid_row_gives_no_hit():
    result = search_similar(VECTORS, QUERY, k=3, valid=np.zeros(5, dtype=bool))
    assert result.indices.tolist() == []


def test_nearest_neighbors_excludes_the_row_itself():
    result = nearest_neighbors(VECTORS, 0, k=2)
    assert result.indices.tolist() == [1, 2]
    assert 0 not in nearest_neighbors(VECTORS, 0, k=10).indices


def test_nearest_neighbors_respects_valid():
    valid = np.array([True, False, True, True, True])
    assert nearest_neighbors(VECTORS, 0, k=2, valid=valid).indices.tolist() == [2, 3]


def test_nearest_neighbors_of_a_row_without_embedding_is_empty():
    valid = np.array([False, True, True, True, True])
    assert nearest_neighbors(VECTORS, 0, k=3, valid=valid).indices.tolist() == []


@pytest.mark.parametrize("row", [-1, 5])
def test_nearest_neighbors_of_a_missing_row(row):
    with pytest.raises(InputError, match=f"Row {row} does not exist"):
        nearest_neighbors(VECTORS, row)


@pytest.mark.parametrize("query", ["", "   ", "\n\t", None])
def test_empty_query_is_an_input_error(query, fake_embedder):
    with pytest.raises(InputError, match="query is empty"):
        clean_query(query)
    with pytest.raises(InputError, match="query is empty"):
        embed_query(query, fake_embedder)


def test_long_query_is_cut():
    assert clean_query("  " + "a" * (MAX_QUERY_CHARS + 50)) == "a" * MAX_QUERY_CHARS


def test_the_query_star_sits_among_its_hits():
    coords = np.array([[0, 0], [2, 0], [10, 10], [50, 50], [90, 90]], dtype=np.float32)
    result = search_similar(VECTORS, QUERY, k=2)
    position = place_query(coords, result.indices)
    assert 0 <= position[0] <= 2 and position[1] == 0


# --- searching a saved map of every kind -------------------------------------------------------------

# A query each case's own model answers, the group every hit must be in, and how it is found:
# the hashing embedder reads text; the pixel embedder cannot, so an image map matches words.
QUERIES = {"text": ("  protein folding enzyme  ", "biology", "semantic"),
           "images": ("  green  ", "green", "keyword")}
# Another model of the same family, whose vectors the map's own cannot be compared with.
OTHER_MODELS = {"text": HashingEmbedder(dimension=32), "images": PixelFeatureEmbedder(side=16)}


@pytest.fixture(params=KINDS)
def case(request, papers_frame, tmp_path) -> Case:
    # Row 3 of the papers has no text: it is kept on the map without a vector.
    papers_frame.loc[3, ["title", "abstract"]] = ["", None]
    return make_case(request.param, papers_frame, tmp_path)


@pytest.fixture
def saved(case, workspace):
    # The map records its model by name: search_map loads it again (embedder_for) when none is given.
    return build(case, workspace, model=case.model).saved


def test_search_map_with_the_maps_own_model(case, saved):
    query, group, mode = QUERIES[case.kind]
    result = search_map(saved, query, k=5)
    assert result.query == query.strip() and result.mode == mode
    groups = saved.points[case.group_column]
    in_group = int((groups[saved.embedded] == group).sum())
    assert groups.iloc[result.indices].tolist() == [group] * min(5, in_group)
    assert np.all(np.diff(result.top_scores) <= 0)
    # A row without a vector (the paper without text) has no score and is never a hit.
    assert np.flatnonzero(~saved.embedded).tolist() == ([3] if case.kind == "text" else [])
    assert np.isnan(result.scores[~saved.embedded]).all() and np.isfinite(result.scores[saved.embedded]).all()
    assert not set(result.indices) & set(np.flatnonzero(~saved.embedded))


def test_search_by_example_leaves_the_example_out(case, saved):
    # The example is row 0 itself (its text, or its image's bytes): its twin comes first.
    query, image = case.example(saved, 0)
    result = search_map(saved, query, image=image, k=3, exclude=0)
    assert result.mode == ("example" if case.kind == "images" else "semantic")
    assert 0 not in result.indices and len(result.indices) == 3
    assert result.indices[0] == case.twin and result.top_scores[0] == pytest.approx(1.0, abs=1e-5)
    groups = saved.points[case.group_column]
    assert (groups.iloc[result.indices] == groups.iloc[0]).all()


def test_search_map_refuses_another_model(case, saved):
    # Text maps check the query's model; image maps the model that would embed the example.
    query, image = ("protein", None) if case.kind == "text" else (None, encode(square("blue")))
    with pytest.raises(InputError, match=f"built with {case.model_id}"):
        search_map(saved, query, image=image, embedder=OTHER_MODELS[case.kind])


def test_search_map_empty_query(saved):
    with pytest.raises(InputError, match="query is empty"):
        search_map(saved, "  ")
