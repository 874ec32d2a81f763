"""A layout input read by rows: the same values, layout and cache key as the whole array, never held whole."""

from __future__ import annotations

import numpy as np
import pytest

from explorer import ProjectionConfig, project
from explorer.embedders.base import l2_normalise
from explorer.embedders.tfidf import LAYOUT_DIMENSION, CorpusEmbedder
from explorer.project import _cache_file
from explorer.row_view import RowView, row_blocks


def unit_rows(rows: int, dimension: int, seed: int = 0) -> np.ndarray:
    return l2_normalise(np.random.default_rng(seed).normal(size=(rows, dimension)))


def test_a_view_reads_what_the_whole_transformed_array_holds():
    source = unit_rows(301, 12)
    whole = l2_normalise(source[:, :5])
    view = RowView(source, lambda rows: l2_normalise(rows[:, :5]))
    assert view.shape == (301, 5) and len(view) == 301 and view.ndim == 2
    np.testing.assert_array_equal(np.asarray(view), whole)
    np.testing.assert_array_equal(view[7], whole[7])
    np.testing.assert_array_equal(view[-1], whole[-1])
    np.testing.assert_array_equal(view[10:250], whole[10:250])
    picked = np.array([300, 3, 3, 0, 150])
    np.testing.assert_array_equal(view[picked], whole[picked])
    mask = np.arange(301) % 3 == 0
    np.testing.assert_array_equal(view[mask], whole[mask])
    with pytest.raises(TypeError):
        view[:, 0]
    with pytest.raises(IndexError):
        view[301]
    starts = [start for start, _ in row_blocks(view, rows=100)]
    assert starts == [0, 100, 200, 300]
    np.testing.assert_array_equal(np.concatenate([b for _, b in row_blocks(view, rows=100)]), whole)


def test_the_fast_embedder_s_layout_input_is_its_leading_components_at_unit_length():
    vectors = unit_rows(500, 256, seed=1)
    view = CorpusEmbedder().layout_vectors(vectors)
    assert isinstance(view, RowView) and view.shape == (500, LAYOUT_DIMENSION)
    # Bit for bit what the whole normalised slice was, read whole or by rows.
    np.testing.assert_array_equal(np.asarray(view), l2_normalise(vectors[:, :LAYOUT_DIMENSION]))
    np.testing.assert_array_equal(view[np.array([499, 2])], l2_normalise(vectors[[499, 2], :LAYOUT_DIMENSION]))


@pytest.mark.slow
def test_a_sampled_layout_of_a_view_never_holds_it_whole_and_equals_the_array_s(tmp_path, monkeypatch):
    source = unit_rows(700, 24, seed=2)
    source[:350, 0] += 2.0  # two groups, so the layout has something to find
    source = l2_normalise(source)
    view = RowView(source, lambda rows: l2_normalise(rows[:, :8]))
    whole = np.asarray(view)
    config = ProjectionConfig(sample_rows=300)
    assert _cache_file(tmp_path, view, config) == _cache_file(tmp_path, whole, config)
    expected = project(whole, config=config)

    def held_whole(*args, **kwargs):
        raise AssertionError("the layout read the whole view at once")

    monkeypatch.setattr(RowView, "__array__", held_whole)
    laid = project(view, config=config, cache_dir=tmp_path)
    assert laid.method == "umap" and len(laid.fitted_rows) == 300
    np.testing.assert_array_equal(laid.coords, expected.coords)
    # Kept in the cache under the whole array's key: the same layout comes back for either.
    monkeypatch.undo()
    assert len(list(tmp_path.glob("*.npz"))) == 1
    np.testing.assert_array_equal(project(whole, config=config, cache_dir=tmp_path).coords, expected.coords)


def test_a_view_at_or_below_the_sample_is_laid_out_as_its_array():
    source = unit_rows(60, 16, seed=3)
    view = RowView(source, lambda rows: l2_normalise(rows[:, :6]))
    for method in ("pca", "umap"):
        config = ProjectionConfig(method=method)
        np.testing.assert_array_equal(project(view, config=config).coords,
                                      project(np.asarray(view), config=config).coords)
