"""build_map end to end: load → embed → project → save, with progress and the caches, for every kind."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from kinds import COLOURS, KINDS, PCA, Case, Recorder, build, encode, make_case, square

from explorer import (
    BuildResult,
    ClusterConfig,
    HashingEmbedder,
    InputError,
    Workspace,
    __version__,
    build_map,
    cluster_table,
    search_map,
)
from explorer.pipeline import STAGES, assemble_points, map_is_current


@pytest.fixture(params=KINDS)
def case(request, papers_frame, tmp_path) -> Case:
    return make_case(request.param, papers_frame, tmp_path)


# --- every kind ----------------------------------------------------------------------------------


def test_build_end_to_end(case, workspace):
    result = build(case, workspace)
    assert isinstance(result, BuildResult)
    saved = result.saved
    assert saved.path == workspace.maps_dir / "m" and saved.kind == case.kind
    points = saved.points
    assert points.columns[0] == "row_id" and list(points.columns[-3:]) == ["x", "y", "embedded"]
    assert points["row_id"].tolist() == list(range(case.rows)) and points["embedded"].all()
    assert saved.embeddings.shape == (case.rows, case.embedder.dimension)
    assert saved.embeddings.dtype == np.float32
    np.testing.assert_allclose(saved.embeddings, case.expected_vectors(), atol=1e-6)
    np.testing.assert_array_equal(saved.embeddings[case.twin], saved.embeddings[0])
    assert np.isfinite(saved.coords).all()
    assert set(result.seconds) == set(STAGES)
    assert result.total_seconds == pytest.approx(sum(result.seconds.values()))

    reopened = workspace.open("m")
    pd.testing.assert_frame_equal(reopened.points, points, check_dtype=False)
    np.testing.assert_array_equal(reopened.embeddings, saved.embeddings)
    assert reopened.kind == case.kind and reopened.texts() == saved.texts()
    assert reopened.has_thumbnails == (case.kind == "images")


def test_manifest(case, workspace):
    manifest = build(case, workspace).saved.manifest
    dimension = case.embedder.dimension
    assert manifest["name"] == "m" and manifest["kind"] == case.kind
    assert (manifest["rows"], manifest["embedded_rows"]) == (case.rows, case.rows)
    assert manifest["text_columns"] == case.text_columns and manifest["template"] is None
    assert (manifest["model_id"], manifest["model"], manifest["dimension"]) == (case.model_id, case.model, dimension)
    assert manifest["model_hash"] == ""
    assert manifest["projection"] == {
        "method": "pca", "n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "seed": 42,
        "sample_rows": 150_000, "method_used": "pca", "input_dimension": dimension,
    }
    assert manifest["mode"] is None  # an explicit model: no mode was chosen
    assert manifest["version"] == __version__
    assert manifest["created"].startswith("20") and "T" in manifest["created"]
    on_disk = workspace.open("m").manifest
    assert {k: on_disk[k] for k in manifest} == {**manifest, "seconds": on_disk["seconds"]}
    assert workspace.read_manifest("m") == on_disk


def test_progress_reports_every_stage_to_the_end(case, workspace):
    progress = Recorder()
    build(case, workspace, progress=progress)
    assert progress.stages == list(STAGES)
    for stage in STAGES:
        fractions = [f for s, f, _ in progress.calls if s == stage]
        assert fractions[-1] == 1.0, stage
        assert all(0.0 <= f <= 1.0 for f in fractions)
        assert fractions == sorted(fractions), f"{stage} went backwards"
    assert all(isinstance(message, str) for _, _, message in progress.calls)


def test_a_twin_is_embedded_once_and_a_rebuild_uses_the_cache(case, workspace):
    first = build(case, workspace, name="a")
    assert (case.embedder.embedded, first.n_cached) == (case.rows - 1, 0)  # the twin was embedded once
    again = build(case, workspace, name="b")
    assert (case.embedder.embedded, again.n_cached) == (case.rows - 1, case.rows)
    np.testing.assert_array_equal(first.saved.embeddings, again.saved.embeddings)
    np.testing.assert_array_equal(first.saved.coords, again.saved.coords)


def test_no_cache_embeds_again(case, workspace):
    build(case, workspace)
    again = build(case, workspace, use_cache=False)
    assert again.n_cached == 0 and case.embedder.embedded == 2 * (case.rows - 1)


def test_a_rebuild_takes_the_layout_from_the_projection_cache(case, workspace, monkeypatch):
    first = build(case, workspace, name="a")
    assert len(list(workspace.projection_cache_dir.glob("*.npz"))) == 1

    def no_second_layout(*args, **kwargs):
        raise AssertionError("the layout must come from the projection cache")

    # The module, not the function `explorer.project` that the package face re-exports under its name.
    monkeypatch.setattr(importlib.import_module("explorer.project"), "project_pca", no_second_layout)
    again = build(case, workspace, name="b")
    np.testing.assert_array_equal(again.saved.coords, first.saved.coords)
    assert again.saved.manifest["projection"]["method_used"] == "pca"


def test_clusters_at_build_time(case, workspace):
    result = build(case, workspace, clusters=ClusterConfig(method="kmeans", k=3, space="2d"))
    saved = result.saved
    assert saved.kind == case.kind and "cluster" in result.seconds
    assert workspace.open("m").manifest["clusters"]["config"]["k"] == 3
    table = cluster_table(saved, "coarse")
    assert len(table) == 3 and table["size"].sum() == case.rows
    assert sorted(saved.points["cluster"].unique()) == [0, 1, 2]
    if case.kind == "text":  # each cluster is one field, named by its words
        assert (saved.points.groupby("cluster")["field"].nunique() == 1).all()
    else:  # an image map's clusters are named after its labels, and the map keeps its thumbnails
        assert set(table["label"]) <= set(COLOURS)
        assert sorted(saved.thumbnails()) == list(range(case.rows))


def test_a_changed_name_is_noted(case, workspace):
    result = build(case, workspace, name="my/map?")
    assert result.saved.name == "my_map"
    assert any("The map name 'my/map?' was saved as 'my_map'" in note for note in result.notes)


def test_unusable_name_fails_before_any_work(case, workspace, tmp_path):
    class Refuses:
        model_id, dimension, kinds = "refuses", 4, frozenset(KINDS)

        def embed(self, texts, **kwargs):
            raise AssertionError("the name must be checked before embedding")

        embed_images = embed

    # A source that does not exist: reading it first would fail with another error.
    missing = tmp_path / ("missing.csv" if case.kind == "text" else "missing.zip")
    with pytest.raises(InputError, match="cannot be used as a map name"):
        build_map(missing, kind=case.kind, name="../", model=Refuses(), workspace=workspace)
    assert workspace.list() == []


# --- text tables -----------------------------------------------------------------------------------


def test_build_from_a_dataframe_keeps_its_columns_and_texts(papers_frame, workspace, fake_embedder):
    saved = build_map(papers_frame, name="papers", model=fake_embedder, workspace=workspace,
                      projection=PCA).saved
    points = saved.points
    assert list(points.columns) == ["row_id", "title", "abstract", "field", "year", "x", "y", "embedded"]
    pd.testing.assert_frame_equal(points[papers_frame.columns], papers_frame, check_dtype=False)
    texts = [f"{t}. {a}" for t, a in zip(papers_frame["title"], papers_frame["abstract"], strict=True)]
    np.testing.assert_array_equal(saved.embeddings, fake_embedder.embed(texts))
    assert workspace.open("papers").texts() == texts


def test_same_name_replaces_the_map(papers_frame, workspace, fake_embedder):
    build_map(papers_frame, name="m", model=fake_embedder, workspace=workspace, projection=PCA)
    build_map(papers_frame.head(12), name="m", model=fake_embedder, workspace=workspace,
              projection=PCA)
    assert [(i.name, i.rows) for i in workspace.list()] == [("m", 12)]


def test_build_from_a_csv_file(tmp_path, papers_frame, workspace):
    path = tmp_path / "My papers.csv"
    papers_frame.to_csv(path, index=False)
    result = build_map(path, model="hashing", workspace=workspace, projection=PCA,
                       template="{title}: {abstract}")
    saved = result.saved
    assert saved.name == "My papers" and saved.kind == "text"
    assert saved.manifest["template"] == "{title}: {abstract}"
    assert saved.manifest["source"]["name"] == "My papers.csv"
    assert saved.manifest["source"]["format"] == "csv"
    assert len(saved.manifest["source"]["sha256"]) == 64
    assert saved.texts()[0] == f"{papers_frame.loc[0, 'title']}: {papers_frame.loc[0, 'abstract']}"
    assert search_map(saved, "inflation market price", k=3).indices.size == 3


def test_build_from_bytes_uses_the_source_name(papers_frame, workspace, fake_embedder):
    data = papers_frame.to_csv(index=False, sep=";").encode()
    result = build_map(data, source_name="upload.csv", model=fake_embedder, workspace=workspace,
                       projection=PCA, text_columns=["title"])
    assert result.saved.name == "upload"
    assert result.saved.manifest["text_columns"] == ["title"]
    assert any("semicolons" in note for note in result.notes)


def test_rows_without_text_are_kept_but_not_placed(papers_frame, workspace, fake_embedder):
    papers_frame.loc[[2, 7], ["title", "abstract"]] = None
    result = build_map(papers_frame, model=fake_embedder, workspace=workspace, projection=PCA)
    saved = result.saved
    assert len(saved.points) == 30
    assert saved.manifest["embedded_rows"] == 28
    assert saved.points.loc[[2, 7], "embedded"].tolist() == [False, False]
    assert np.isnan(saved.coords[[2, 7]]).all() and np.isfinite(saved.coords[saved.embedded]).all()
    assert not saved.embeddings[[2, 7]].any()
    assert saved.points.loc[3, "field"] == papers_frame.loc[3, "field"]
    assert any("2 of 30 row(s) have no text" in note for note in result.notes)


def test_reserved_column_names_in_a_dataframe(workspace, fake_embedder):
    frame = pd.DataFrame({"x": [1, 2, 3], "row_id": ["a", "b", "c"], "text": ["one", "two", "three"]})
    result = build_map(frame, model=fake_embedder, workspace=workspace, projection=PCA)
    points = result.saved.points
    assert points["x_original"].tolist() == [1, 2, 3]
    assert points["row_id_original"].tolist() == ["a", "b", "c"]
    assert points["row_id"].tolist() == [0, 1, 2]
    assert any("Renamed column(s) x, row_id" in note for note in result.notes)


def test_errors_reach_the_caller_and_save_nothing(workspace, fake_embedder):
    frame = pd.DataFrame({"title": ["", None], "year": [1, 2]})
    with pytest.raises(InputError, match="Every row's text is empty"):
        build_map(frame, text_columns=["title"], model=fake_embedder, workspace=workspace)
    assert workspace.list() == []


def test_model_string_is_recorded_for_search(papers_frame, workspace):
    saved = build_map(papers_frame, model="hashing-32", workspace=workspace, projection=PCA).saved
    assert saved.manifest["model"] == "hashing-32"
    result = search_map(saved, "quantum particle energy", k=5)
    assert set(saved.points["field"].to_numpy()[result.indices]) == {"physics"}


def test_assemble_points_spreads_back_to_every_row():
    frame = pd.DataFrame({"t": ["a", "", "c"]})
    embedded = np.array([True, False, True])
    vectors = np.ones((2, 4), dtype=np.float32)
    coords = np.array([[1, 2], [3, 4]], dtype=np.float32)
    points, full = assemble_points(frame, embedded, vectors, coords)
    assert points.columns.tolist() == ["row_id", "t", "x", "y", "embedded"]
    assert points["x"].tolist()[::2] == [1, 3] and np.isnan(points.loc[1, "x"])
    assert full.shape == (3, 4) and not full[1].any()


def test_hashing_model_on_cli_default_dimension(papers_frame, workspace):
    saved = build_map(papers_frame, model="hashing", workspace=workspace, projection=PCA).saved
    assert saved.manifest["model_id"] == HashingEmbedder().model_id == "hashing-256"


def test_build_from_json_with_mixed_columns(tmp_path, workspace, fake_embedder):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"title": "protein folding", "id": 1}\n{"title": "market prices", "id": "b2"}\n'
                    '{"title": "quantum field", "id": null}\n')
    saved = build_map(path, model=fake_embedder, workspace=workspace).saved
    assert workspace.open(saved.name).points["id"].tolist()[:2] == ["1", "b2"]


# --- the real model and UMAP (slow) -------------------------------------------------------------------


@pytest.mark.slow
def test_real_build_finds_protein_folding(real_map, real_embedder):
    saved = real_map.saved
    assert (saved.manifest["rows"], saved.manifest["embedded_rows"]) == (200, 200)
    assert saved.manifest["projection"]["method_used"] == "umap"
    assert saved.manifest["model_hash"] == real_embedder.model_hash != ""
    result = search_map(saved, "protein folding", embedder=real_embedder, k=5)
    fields = saved.points["field"].to_numpy()[result.indices]
    assert "molecular biology" in fields
    assert list(fields[:3]) == ["molecular biology"] * 3


@pytest.mark.slow
def test_real_rebuild_is_deterministic(real_map, real_embedder, sample_papers, tmp_path):
    # A fresh workspace: no cache, so the model embeds everything again.
    again = build_map(sample_papers, name="papers", model=real_embedder,
                      workspace=Workspace(tmp_path / "again"))
    assert again.n_cached == 0
    np.testing.assert_allclose(again.saved.embeddings, real_map.saved.embeddings, atol=1e-6)
    np.testing.assert_array_equal(again.saved.coords, real_map.saved.coords)


@pytest.mark.slow
def test_real_rebuild_from_the_cache(real_map, real_embedder, sample_papers):
    workspace = Workspace(real_map.saved.path.parent.parent)
    again = build_map(sample_papers, name="papers again", model=real_embedder, workspace=workspace)
    assert again.n_cached == 200
    np.testing.assert_array_equal(again.saved.embeddings, real_map.saved.embeddings)
    np.testing.assert_array_equal(again.saved.coords, real_map.saved.coords)


def test_map_is_current_for_a_file_and_a_folder_of_images(tmp_path, workspace, papers_frame):
    table = tmp_path / "papers.csv"
    papers_frame.to_csv(table, index=False)
    build_map(table, name="papers", model="hashing", projection=PCA, workspace=workspace)
    assert map_is_current(workspace, "papers", source=table, model="hashing", clusters=False)
    assert not map_is_current(workspace, "papers", source=table, model="hashing"), "asked for clusters it lacks"
    table.write_text(table.read_text() + "An extra,row,physics,2024\n")
    assert not map_is_current(workspace, "papers", source=table, model="hashing", clusters=False)

    folder = tmp_path / "images"
    for colour in ("red", "blue"):
        (folder / colour).mkdir(parents=True)
        for i in range(3):
            (folder / colour / f"{i}.png").write_bytes(encode(square(colour, seed=i)))
    build_map(folder, name="colours", model="pixels", projection=PCA, workspace=workspace)
    assert map_is_current(workspace, "colours", source=folder, model="pixels", clusters=False)
    (folder / "red" / "9.png").write_bytes(encode(square("green")))
    assert not map_is_current(workspace, "colours", source=folder, model="pixels", clusters=False)


def test_a_umap_build_computes_its_knn_graph_once_and_the_save_reuses_it(papers_frame, workspace, monkeypatch):
    """The exact graph UMAP is given is the neighbours column's: the save does not compute it again."""
    import explorer.map_files as map_files
    import explorer.neighbours as neighbours
    from explorer.neighbor_column import NEIGHBORS_K, computed_neighbors
    from explorer.points_file import read_neighbor_lists

    graphs: list[int] = []
    real_nearest_rows = neighbours.nearest_rows

    def counted(queries, reference, **kwargs):
        if kwargs.get("skip_self"):
            graphs.append(len(queries))
        return real_nearest_rows(queries, reference, **kwargs)

    def refused(*args, **kwargs):
        raise AssertionError("the save computed the neighbours column again")

    monkeypatch.setattr(neighbours, "nearest_rows", counted)
    monkeypatch.setattr(map_files, "computed_neighbors", refused)
    saved = build_map(papers_frame, model="hashing", workspace=workspace, use_cache=False).saved
    assert saved.manifest["projection"]["method_used"] == "umap"
    assert graphs == [len(papers_frame)]  # one exact graph for UMAP and the column
    lists = read_neighbor_lists(saved.path / "points.parquet")
    expected = computed_neighbors(saved.embeddings, saved.embedded, saved.points["row_id"].to_numpy()).to_pylist()
    assert len(lists[0]["ids"]) == min(NEIGHBORS_K, len(papers_frame) - 1)
    assert [row["ids"] for row in lists] == [row["ids"] for row in expected]
    np.testing.assert_array_equal([row["distances"] for row in lists], [row["distances"] for row in expected])
