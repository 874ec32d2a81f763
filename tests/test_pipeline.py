"""build_map end to end: load → embed → project → save, with progress and the cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explorer import (
    BuildResult,
    HashingEmbedder,
    InputError,
    ProjectionConfig,
    Workspace,
    __version__,
    build_map,
    search_map,
)
from explorer.pipeline import STAGES, assemble_points

PCA = ProjectionConfig(method="pca")


class Recorder:
    """A progress callback that keeps every report."""

    def __init__(self):
        self.calls: list[tuple[str, float, str]] = []

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        self.calls.append((stage, fraction, message))

    @property
    def stages(self) -> list[str]:
        return list(dict.fromkeys(stage for stage, _, _ in self.calls))


def test_build_from_a_dataframe(papers_frame, workspace, fake_embedder):
    result = build_map(papers_frame, name="papers", model=fake_embedder, workspace=workspace,
                       projection=PCA)
    assert isinstance(result, BuildResult)
    saved = result.saved
    assert saved.path == workspace.maps_dir / "papers"
    points = saved.points
    assert list(points.columns) == ["row_id", "title", "abstract", "field", "year", "x", "y", "embedded"]
    assert points["row_id"].tolist() == list(range(30))
    pd.testing.assert_frame_equal(points[papers_frame.columns], papers_frame, check_dtype=False)
    assert saved.embeddings.shape == (30, 64) and saved.embeddings.dtype == np.float32
    texts = [f"{t}. {a}" for t, a in zip(papers_frame["title"], papers_frame["abstract"], strict=True)]
    np.testing.assert_array_equal(saved.embeddings, fake_embedder.embed(texts))
    assert np.isfinite(saved.coords).all()
    assert set(result.seconds) == set(STAGES)
    assert result.total_seconds == pytest.approx(sum(result.seconds.values()))

    reopened = workspace.open("papers")
    pd.testing.assert_frame_equal(reopened.points, points, check_dtype=False)
    np.testing.assert_array_equal(reopened.embeddings, saved.embeddings)
    assert reopened.texts() == texts


def test_manifest(papers_frame, workspace, fake_embedder):
    manifest = build_map(papers_frame, name="papers", model=fake_embedder, workspace=workspace,
                         projection=PCA).saved.manifest
    assert manifest["name"] == "papers"
    assert (manifest["rows"], manifest["embedded_rows"]) == (30, 30)
    assert manifest["text_columns"] == ["title", "abstract"] and manifest["template"] is None
    assert (manifest["model_id"], manifest["model"], manifest["dimension"]) == ("hashing-64",) * 2 + (64,)
    assert manifest["model_hash"] == ""
    assert manifest["projection"] == {
        "method": "pca", "n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "seed": 42,
        "sample_rows": 150_000, "method_used": "pca", "input_dimension": 64,
    }
    assert manifest["mode"] is None  # an explicit model: no mode was chosen
    assert manifest["version"] == __version__
    assert manifest["created"].startswith("20") and "T" in manifest["created"]
    on_disk = workspace.open("papers").manifest
    assert {k: on_disk[k] for k in manifest} == {**manifest, "seconds": on_disk["seconds"]}


def test_build_from_a_csv_file(tmp_path, papers_frame, workspace):
    path = tmp_path / "My papers.csv"
    papers_frame.to_csv(path, index=False)
    result = build_map(path, model="hashing", workspace=workspace, projection=PCA,
                       template="{title}: {abstract}")
    saved = result.saved
    assert saved.name == "My papers"
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


def test_progress_reports_every_stage_to_the_end(papers_frame, workspace, fake_embedder):
    progress = Recorder()
    build_map(papers_frame, model=fake_embedder, workspace=workspace, projection=PCA,
              progress=progress)
    assert progress.stages == list(STAGES)
    for stage in STAGES:
        fractions = [f for s, f, _ in progress.calls if s == stage]
        assert fractions[-1] == 1.0, stage
        assert all(0.0 <= f <= 1.0 for f in fractions)
        assert fractions == sorted(fractions), f"{stage} went backwards"
    assert all(isinstance(message, str) for _, _, message in progress.calls)


def test_rebuild_uses_the_cache(papers_frame, workspace, fake_embedder):
    first = build_map(papers_frame, name="a", model=fake_embedder, workspace=workspace,
                      projection=PCA)
    again = build_map(papers_frame, name="b", model=fake_embedder, workspace=workspace,
                      projection=PCA)
    assert (first.n_cached, again.n_cached) == (0, 30)
    np.testing.assert_array_equal(first.saved.embeddings, again.saved.embeddings)
    np.testing.assert_array_equal(first.saved.coords, again.saved.coords)


def test_no_cache_embeds_again(papers_frame, workspace, fake_embedder):
    build_map(papers_frame, model=fake_embedder, workspace=workspace, projection=PCA)
    again = build_map(papers_frame, model=fake_embedder, workspace=workspace, projection=PCA,
                      use_cache=False)
    assert again.n_cached == 0


def test_same_name_replaces_the_map(papers_frame, workspace, fake_embedder):
    build_map(papers_frame, name="m", model=fake_embedder, workspace=workspace, projection=PCA)
    build_map(papers_frame.head(12), name="m", model=fake_embedder, workspace=workspace,
              projection=PCA)
    assert [(i.name, i.rows) for i in workspace.list()] == [("m", 12)]


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


def test_build_from_json_with_mixed_columns(tmp_path, workspace, fake_embedder):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"title": "protein folding", "id": 1}\n{"title": "market prices", "id": "b2"}\n'
                    '{"title": "quantum field", "id": null}\n')
    saved = build_map(path, model=fake_embedder, workspace=workspace).saved
    assert workspace.open(saved.name).points["id"].tolist()[:2] == ["1", "b2"]


def test_unusable_name_fails_before_any_work(papers_frame, workspace):
    class Refuses:
        model_id, dimension = "refuses", 4

        def embed(self, texts, **kwargs):
            raise AssertionError("the name must be checked before embedding")

    with pytest.raises(InputError, match="cannot be used as a map name"):
        build_map(papers_frame, name="../", model=Refuses(), workspace=workspace)
