"""Maps saved by version 0.1.0 before issue 13 (tests/fixtures/maps_v0_1), and one saved by the code before
issue 25 (``today v0.2``: trust, neighbours, labels.parquet, a finished refinement), open, search,
re-cluster, curate and export with today's code, unchanged; opening them writes nothing."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from explorer import ClusterConfig, Workspace, search_map
from explorer.curate import remove_and_reproject
from explorer.export import to_csv_bytes, to_html_bytes, to_parquet_bytes
from explorer.label_file import LABELS_FILE, label_table
from explorer.map_clusters import add_clusters, cluster_table
from explorer.points_file import read_neighbor_lists
from explorer.thumbnails import thumbnail_data_uri
from explorer.trust import add_trust

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "maps_v0_1"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
# What the old version was asked (tests/fixtures/README.md): one query per map.
QUERIES = {"papers v0.1": ("protein folding", 5), "fast v0.1": ("quantum energy", 5), "colours v0.1": ("red", 3),
           "today v0.2": ("quantum photon energy", 5)}
KINDS = {"papers v0.1": "text", "fast v0.1": "text", "colours v0.1": "images", "today v0.2": "text"}
V0_1 = ("papers v0.1", "fast v0.1", "colours v0.1")
TWO_CLUSTERS = ClusterConfig(method="kmeans", k=2, space="2d")


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    """A copy of the old workspace (maps/ and models/), so nothing a test does reaches the fixture."""
    root = tmp_path / "old-home"
    shutil.copytree(FIXTURE, root)
    return Workspace(root)


def test_the_fixture_is_a_workspace_of_the_old_format():
    # The text maps' manifests predate "kind": that is what the store must read as "text".
    manifests = {name: json.loads((FIXTURE / "maps" / name / "manifest.json").read_text()) for name in V0_1}
    assert {name: m.get("kind") for name, m in manifests.items()} == {
        "papers v0.1": None, "fast v0.1": None, "colours v0.1": "images"}
    assert {m["version"] for m in manifests.values()} == {"0.1.0"}


@pytest.mark.parametrize("name", list(KINDS))
def test_every_old_map_opens_with_its_kind(workspace, name):
    saved = workspace.open(name)
    assert saved.kind == KINDS[name]
    assert workspace.read_manifest(name)["kind"] == KINDS[name]
    assert {info.name for info in workspace.list()} == set(KINDS)
    assert saved.has_thumbnails == (KINDS[name] == "images")
    assert len(saved.points) == len(saved.embeddings) == saved.manifest["rows"]


@pytest.mark.parametrize("name", list(KINDS))
def test_search_gives_what_the_old_version_gave(workspace, name):
    query, k = QUERIES[name]
    expected = EXPECTED[name]
    result = search_map(workspace.open(name), query, k=k)
    assert result.indices.tolist() == expected["indices"]
    if "scores" in expected:
        np.testing.assert_allclose(result.top_scores, expected["scores"], atol=1e-4)
    assert result.mode == expected.get("mode", "semantic")


def test_the_fast_maps_fitted_model_is_found_under_the_workspace(workspace):
    from explorer.embedders import embedder_for

    saved = workspace.open("fast v0.1")
    embedder = embedder_for(saved)
    assert embedder.model_id == saved.manifest["model_id"] == "tfidf-svd16@7c2a404b9df65607"
    assert (saved.path.parent.parent / "models" / "tfidf-svd16-7c2a404b9df65607").is_dir()


def test_thumbnails_are_read(workspace):
    saved = workspace.open("colours v0.1")
    thumbs = saved.thumbnails()
    assert sorted(thumbs) == list(range(9))
    assert all(Image.open(io.BytesIO(data)).format == "WEBP" for data in thumbs.values())
    assert sorted(saved.thumbnails([2, 7])) == [2, 7]
    assert thumbnail_data_uri(thumbs[0]).startswith("data:image/webp;base64,")


def test_the_renamed_cluster_label_is_still_read(workspace):
    table = cluster_table(workspace.open("papers v0.1"), "coarse")
    renamed = table[table["renamed"]]
    assert renamed["label"].tolist() == ["My renamed cluster"] and renamed["id"].tolist() == [0]
    assert table["size"].tolist() == [10, 10, 10]
    assert len(cluster_table(workspace.open("papers v0.1"), "fine")) == 6


# Nine images are too few to form clusters (fewer than two of the minimum size): the clustering
# runs, says so, and saves the map again all the same.
@pytest.mark.parametrize(("name", "clusters"), [("papers v0.1", 2), ("colours v0.1", 0), ("today v0.2", 2)])
def test_re_clustering_an_old_map_keeps_its_data_and_thumbnails(workspace, name, clusters):
    saved = workspace.open(name)
    thumbnails = saved.thumbnails() if saved.has_thumbnails else {}
    updated = add_clusters(saved, config=TWO_CLUSTERS, workspace=workspace)
    reopened = workspace.open(name)
    assert reopened.manifest["clusters"]["config"]["k"] == 2
    assert len(cluster_table(reopened, "coarse")) == clusters
    assert (reopened.points["cluster"] >= 0).sum() == (int(saved.embedded.sum()) if clusters else 0)
    assert reopened.kind == KINDS[name] and workspace.read_manifest(name)["kind"] == KINDS[name]
    np.testing.assert_array_equal(reopened.embeddings, saved.embeddings)
    np.testing.assert_array_equal(reopened.coords, saved.coords)
    assert updated.has_thumbnails == reopened.has_thumbnails == bool(thumbnails)
    if thumbnails:
        assert reopened.thumbnails() == thumbnails
    query, k = QUERIES[name]
    assert search_map(reopened, query, k=k).indices.tolist() == EXPECTED[name]["indices"]


@pytest.mark.parametrize("name", list(KINDS))
def test_export_of_an_old_map(workspace, name):
    saved = workspace.open(name)
    points = saved.points
    csv = to_csv_bytes(points)
    assert csv.startswith(b"\xef\xbb\xbf")
    assert len(pd.read_csv(io.BytesIO(csv), encoding="utf-8-sig")) == len(points)
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(to_parquet_bytes(points))), points)
    html = to_html_bytes(saved)
    assert b"<html>" in html[:100] and html.rstrip().endswith(b"</html>") and name.encode() in html


def test_curating_the_old_image_map_keeps_the_thumbnails_of_the_kept_rows(workspace):
    source = workspace.open("colours v0.1")
    before = source.thumbnails()
    curated = remove_and_reproject(workspace, "colours v0.1", [0, 4])
    assert curated.name == "colours v0.1 (v2)" and curated.kind == "images"
    kept = curated.points["row_id"].tolist()
    assert kept == [1, 2, 3, 5, 6, 7, 8]
    assert curated.thumbnails() == {row: before[row] for row in kept}
    assert workspace.open("colours v0.1").thumbnails() == before  # the source map is untouched


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and mtime."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_opening_and_searching_the_old_maps_writes_nothing(workspace):
    before = _tree(workspace.maps_dir)
    for name in KINDS:
        saved = workspace.open(name)
        search_map(saved, QUERIES[name][0], k=QUERIES[name][1])
        if saved.manifest.get("clusters"):
            cluster_table(saved, "coarse")
    assert _tree(workspace.maps_dir) == before


def test_the_map_saved_before_issue_25_keeps_its_trust_neighbours_labels_and_refinement(workspace):
    saved = workspace.open("today v0.2")
    assert saved.manifest["refinement"]["state"] == "done" and saved.manifest["trust"]["k_map"] == 10
    assert np.isfinite(saved.points["trust"]).all()
    neighbours = read_neighbor_lists(saved.path / "points.parquet")
    assert len(neighbours) == 120 and all(len(row["ids"]) == 15 for row in neighbours)
    labels = pd.read_parquet(saved.path / LABELS_FILE)
    assert labels["text"].tolist() == label_table(saved.manifest)["text"].tolist()
    assert "My renamed cluster" in cluster_table(saved, "coarse")["label"].tolist()

    # Saved again by today's code (trust measured again): the same neighbours, kept, and the same labels.
    trusted = add_trust(saved, workspace=workspace)
    assert read_neighbor_lists(trusted.path / "points.parquet") == neighbours
    assert pd.read_parquet(trusted.path / LABELS_FILE).equals(labels)
    assert trusted.manifest["refinement"] == saved.manifest["refinement"]
