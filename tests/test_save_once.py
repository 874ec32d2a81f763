"""Each operation writes the map once, and the store writes the derived files it is given (explorer.map_files)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explorer import ClusterConfig, ProjectionConfig, Workspace, build_map, neighbor_column
from explorer import map_files as map_files_module
from explorer.curate import remove_and_reproject
from explorer.grow import add_rows
from explorer.label_file import LABELS_FILE
from explorer.map_clusters import cluster_table, rename_cluster
from explorer.map_files import map_files, save_map
from explorer.points_file import read_neighbor_lists
from explorer.refine import REFINE_DONE, refine_map
from explorer.trust import add_trust

PCA = ProjectionConfig(method="pca")
KMEANS = ClusterConfig(method="kmeans", k=3, space="2d")


@pytest.fixture
def writes(monkeypatch) -> list[str]:
    """The names of the maps each Workspace.save and update_manifest call wrote, in order."""
    calls: list[str] = []
    real_save, real_update = Workspace.save, Workspace.update_manifest

    def save(self, name, **kwargs):
        calls.append(name)
        return real_save(self, name, **kwargs)

    def update_manifest(self, name, changes, **kwargs):
        calls.append(name)
        return real_update(self, name, changes, **kwargs)

    monkeypatch.setattr(Workspace, "save", save)
    monkeypatch.setattr(Workspace, "update_manifest", update_manifest)
    return calls


def _clustered_map(papers_frame, workspace, name="papers"):
    return build_map(papers_frame, name=name, model="hashing", projection=PCA, clusters=KMEANS, workspace=workspace,
                     use_cache=False).saved


def test_a_clustered_build_writes_the_map_once(papers_frame, workspace, writes):
    saved = _clustered_map(papers_frame, workspace)

    assert writes == ["papers"]
    reopened = workspace.open("papers")
    assert len(cluster_table(reopened, "coarse")) == 3 and (reopened.points["cluster"] >= 0).all()
    assert (reopened.path / LABELS_FILE).is_file() and read_neighbor_lists(reopened.path / "points.parquet")
    assert saved.manifest["seconds"]["cluster"] >= 0


def test_add_rows_with_trust_writes_the_map_once(papers_frame, workspace, writes):
    add_trust(_clustered_map(papers_frame, workspace), workspace=workspace)
    writes.clear()

    grown = add_rows("papers", papers_frame.head(5).assign(title=lambda f: f["title"] + " (new)"),
                     workspace=workspace, use_cache=False).saved

    assert writes == ["papers"]
    assert np.isfinite(grown.points["trust"]).all() and grown.manifest["trust"]["overall"] > 0
    assert len(grown.points) == len(papers_frame) + 5
    assert [len(row["ids"]) for row in read_neighbor_lists(grown.path / "points.parquet")] == [15] * 35


def test_a_refinement_with_clusters_writes_the_map_once(papers_frame, workspace, writes):
    saved = _clustered_map(papers_frame, workspace)
    workspace.update_manifest("papers", {"refinement": {"state": "pending", "model": "hashing"}}, base=saved)
    writes.clear()

    result = refine_map("papers", workspace=workspace, model="hashing")

    assert result.state == REFINE_DONE and writes == ["papers"]
    assert workspace.open("papers").manifest["clusters"]["config"]["k"] == 3


def test_a_curation_of_a_clustered_map_writes_the_new_map_once(papers_frame, workspace, writes):
    _clustered_map(papers_frame, workspace)
    writes.clear()

    curated = remove_and_reproject(workspace, "papers", [0, 1, 2])

    assert writes == ["papers (v2)"]
    assert len(cluster_table(curated, "coarse")) == 3 and (curated.path / LABELS_FILE).is_file()


def test_the_store_writes_only_what_it_is_given(papers_frame, workspace):
    saved = _clustered_map(papers_frame, workspace)
    workspace.save("bare", points=saved.points, embeddings=saved.embeddings, manifest=saved.manifest)
    bare = workspace.map_path("bare")
    assert not (bare / LABELS_FILE).exists() and read_neighbor_lists(bare / "points.parquet") is None


def test_an_unchanged_map_keeps_its_neighbours_without_computing_them(papers_frame, workspace, monkeypatch):
    saved = _clustered_map(papers_frame, workspace)
    before = read_neighbor_lists(saved.path / "points.parquet")
    monkeypatch.setattr(map_files_module, "computed_neighbors", lambda *a, **k: pytest.fail("computed again"))

    files = map_files(saved.points, saved.embeddings, saved.manifest, previous=saved)

    assert files.neighbors.to_pylist() == before
    assert files.labels["text"].tolist() == pd.read_parquet(saved.path / LABELS_FILE)["text"].tolist()
    assert files.index is None  # a map this small is searched exactly


@pytest.mark.parametrize("neighbours", [True, False])
def test_a_save_meeting_a_newer_cluster_rename_derives_its_labels_again(papers_frame, workspace, monkeypatch,
                                                                         neighbours):
    """A stale save merged with a rename made meanwhile: its labels.parquet holds the rename, which the
    files it derived before the merge did not know of (also for maps too big for a neighbours column)."""
    if not neighbours:
        monkeypatch.setattr(neighbor_column, "NEIGHBORS_MAX_ROWS", 0)
    saved = _clustered_map(papers_frame, workspace)
    assert (read_neighbor_lists(saved.path / "points.parquet") is not None) == neighbours
    rename_cluster(workspace, "papers", "coarse", 0, "Renamed meanwhile")

    # Derived from the version read before the rename: the store hands the merge back (StaleFiles).
    trusted = add_trust(saved, workspace=workspace)

    assert "trust" in trusted.points
    assert "Renamed meanwhile" in pd.read_parquet(trusted.path / LABELS_FILE)["text"].tolist()
    assert "Renamed meanwhile" in cluster_table(workspace.open("papers"), "coarse")["label"].tolist()


def test_a_stale_save_merged_with_new_vectors_gets_their_neighbours(papers_frame, workspace):
    """Another save replaced the vectors (as a refinement does) after this one read the map: the merged
    map's neighbours column is derived from the vectors it ends up with, not from those it read."""
    saved = _clustered_map(papers_frame, workspace)
    before = read_neighbor_lists(saved.path / "points.parquet")
    rng = np.random.default_rng(0)
    vectors = saved.embeddings + rng.normal(0, 0.3, saved.embeddings.shape).astype(np.float32)
    save_map(workspace, "papers", points=saved.points, embeddings=vectors, manifest=saved.manifest, base=saved)

    trusted = add_trust(saved, workspace=workspace)

    np.testing.assert_array_equal(trusted.embeddings, vectors)
    expected = map_files(trusted.points, vectors, trusted.manifest).neighbors.to_pylist()
    assert read_neighbor_lists(trusted.path / "points.parquet") == expected
    assert [row["ids"] for row in expected] != [row["ids"] for row in before]  # the vectors did move them
