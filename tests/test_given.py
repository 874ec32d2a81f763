"""Your own vectors, layout and neighbours through build_map, and the neighbors column of points.parquet."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from explorer import ProjectionConfig, Workspace, build_map
from explorer.errors import InputError
from explorer.search import KEYWORD, search_map

PCA = ProjectionConfig(method="pca")
TOPICS = ["robot grasping hand", "protein folding biology", "graph neural network"]


def _table(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        t = i % 3
        v = np.full(6, 0.05)
        v[t] = 1.0
        rows.append({"title": f"{TOPICS[t]} paper {i}", "emb": (v + rng.normal(0, 0.01, 6)).tolist(),
                     "x": float(10 * t + i / n), "y": float(-t)})
    return pd.DataFrame(rows)


def test_given_vectors_and_layout_are_kept_exactly(tmp_path, workspace):
    frame = _table()
    path = tmp_path / "given.parquet"
    frame.to_parquet(path)
    result = build_map(path, vectors="emb", x="x", y="y", workspace=workspace)
    saved = result.saved
    expected = np.stack(frame["emb"].to_list())
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(saved.embeddings, expected, atol=1e-6)
    np.testing.assert_allclose(saved.coords, frame[["x", "y"]].to_numpy(), atol=1e-6)
    assert "emb" not in saved.points.columns
    assert saved.manifest["given"]["layout"] == ["x_original", "y_original"]
    hits = search_map(saved, "protein")
    assert hits.mode == KEYWORD and "your own vectors" in hits.reason
    assert all("protein" in saved.points["title"][r] for r in hits.indices)
    assert len(hits.indices) == 10


def test_a_named_model_searches_given_vectors_by_meaning_and_its_dimension_is_checked(tmp_path, workspace):
    from explorer.embedders import HashingEmbedder

    frame = _table()
    frame["emb"] = [json.dumps(v.tolist()) for v in HashingEmbedder(dimension=16).embed(frame["title"].tolist())]
    path = tmp_path / "given.csv"
    frame.drop(columns=["x", "y"]).to_csv(path, index=False)
    saved = build_map(path, vectors="emb", model="hashing-16", projection=PCA, workspace=workspace).saved
    assert search_map(saved, "protein folding").mode != KEYWORD
    with pytest.raises(InputError, match="have 16 numbers each, but hashing-256 makes 256"):
        build_map(path, vectors="emb", model="hashing", projection=PCA, workspace=workspace)


def test_rows_without_a_position_are_placed_among_their_nearest_rows(tmp_path, workspace):
    frame = _table()
    frame.loc[[1, 4], ["x", "y"]] = np.nan
    path = tmp_path / "given.parquet"
    frame.to_parquet(path)
    result = build_map(path, vectors="emb", x="x", y="y", workspace=workspace)
    coords = result.saved.coords
    assert np.isfinite(coords).all()
    # Row 1 is a "protein" row: it lands among the protein rows (x near 10), not the others.
    assert 9 <= coords[1, 0] <= 11
    assert any("placed at the median position" in note for note in result.notes)


def test_points_parquet_holds_neighbors_as_embedding_atlas_reads_them(tmp_path, workspace):
    frame = _table()
    path = tmp_path / "plain.csv"
    frame[["title"]].to_csv(path, index=False)
    saved = build_map(path, model="hashing", projection=PCA, workspace=workspace).saved
    column = pq.read_table(saved.path / "points.parquet").column("neighbors").to_pylist()
    assert len(column) == len(frame) and len(column[0]["ids"]) == 15
    assert 0 not in column[0]["ids"], "a row is not its own neighbour"
    assert column[0]["distances"] == sorted(column[0]["distances"])
    assert "neighbors" not in saved.points.columns


def test_given_neighbors_are_kept_and_a_users_neighbors_column_does_not_break_a_build(tmp_path, workspace):
    frame = _table()
    frame["nb"] = [{"ids": [(i + 3) % 30], "distances": [0.5]} for i in range(30)]
    path = tmp_path / "given.parquet"
    frame.to_parquet(path)
    saved = build_map(path, vectors="emb", neighbors="nb", projection=PCA, workspace=workspace).saved
    stored = pq.read_table(saved.path / "points.parquet").column("neighbors").to_pylist()
    assert stored[0] == {"ids": [3], "distances": [0.5]}
    # A table that has a column of that name already (e.g. a map's own points.parquet) builds as any other.
    other = tmp_path / "atlas.parquet"
    frame.rename(columns={"nb": "neighbors"}).drop(columns=["emb"]).to_parquet(other)
    again = build_map(other, model="hashing", projection=PCA, workspace=workspace, name="again").saved
    assert "neighbors_original" in again.points.columns


def test_your_vectors_are_an_input_the_reader_fills_and_build_map_takes_grouped_options(tmp_path):
    import inspect

    from explorer import EmbedOptions, ReadOptions, read_corpus

    frame = pd.DataFrame({"title": ["a b", "c d", "e f"], "emb": [[1.0, 0.0], None, [0.0, 1.0]]})
    corpus = read_corpus(frame, ReadOptions(vectors="emb", text_columns=["title"]))
    assert corpus.given is not None and corpus.given.vectors.dimension == 2
    assert corpus.embedded.tolist() == [True, False, True], "a row is on the map when it has a vector"
    assert "emb" not in corpus.frame.columns, "the vectors' column is read as an input, not a text"
    parameters = inspect.signature(build_map).parameters
    assert len(parameters) <= 10 and {"read", "embed"} <= set(parameters)
    saved = build_map(frame, read=ReadOptions(vectors="emb", text_columns=["title"]), embed=EmbedOptions(),
                      name="given", workspace=Workspace(tmp_path / "home")).saved
    assert len(saved.points) == 3 and saved.embedded.tolist() == [True, False, True]
    # The same options by name, for the common case; a misspelt one is refused as Python refuses it.
    again = build_map(frame, vectors="emb", text_columns=["title"], name="again", workspace=Workspace(tmp_path / "h2"))
    np.testing.assert_array_equal(again.saved.embeddings, saved.embeddings)
    with pytest.raises(TypeError, match="text_column"):
        build_map(frame, text_column=["title"], workspace=Workspace(tmp_path / "h3"))
