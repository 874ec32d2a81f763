"""The typed manifest (explorer.manifest): every saved map's manifest.json reads into sections and
writes back the same dict, unknown keys included, and the code reads attributes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from explorer import ClusterConfig, ProjectionConfig, add_trust, build_map
from explorer.grow import add_rows
from explorer.manifest import ClusterSection, ClustersSection, Manifest, TrustSection
from explorer.map_clusters import rename_cluster

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "maps_v0_1"
FIXTURE_MANIFESTS = sorted((FIXTURE / "maps").glob("*/manifest.json"))
PCA = ProjectionConfig(method="pca")


@pytest.mark.parametrize("path", FIXTURE_MANIFESTS, ids=lambda p: p.parent.name)
def test_every_fixture_manifest_round_trips(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    meta = Manifest.from_dict(data)
    assert meta.to_dict() == data
    assert list(meta.to_dict()) == list(data)  # in its order too: a rewrite changes no line
    assert meta.kind == data.get("kind", "text") and meta.rows == data["rows"]


def test_the_fixture_maps_read_as_sections():
    papers = Manifest.from_dict(json.loads((FIXTURE / "maps" / "papers v0.1" / "manifest.json").read_text()))
    assert papers.kind == "text" and papers.map_id is None and papers.mode is None
    assert papers.projection.method_used == "pca" and papers.source.format == "dataframe"
    coarse = papers.clusters.levels["coarse"]
    assert coarse.column == "cluster" and isinstance(coarse.clusters[0], ClusterSection)
    assert coarse.clusters[0].label == "My renamed cluster" and coarse.clusters[0].renamed is True
    assert list(papers.cluster_levels) == ["coarse", "fine"]
    colours = Manifest.from_dict(json.loads((FIXTURE / "maps" / "colours v0.1" / "manifest.json").read_text()))
    assert colours.kind == "images" and colours.images.path_column == "file" and colours.text_search == "keyword"


def _vectors_table(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"title": [f"paper {i} on topic {i % 3}" for i in range(n)],
                         "emb": [rng.normal(size=6).tolist() for _ in range(n)],
                         "x": rng.normal(size=n), "y": rng.normal(size=n)})


def test_maps_saved_today_round_trip(tmp_path, papers_frame, fake_embedder, workspace, monkeypatch):
    """Every section today's code writes: clusters (renamed), trust, batches, mode and refinement, given inputs."""
    built = build_map(papers_frame, name="papers", model=fake_embedder, projection=PCA, workspace=workspace,
                      clusters=ClusterConfig(method="kmeans", k=3, space="2d")).saved
    add_trust(built, workspace=workspace)
    add_rows("papers", papers_frame.head(3), workspace=workspace)
    rename_cluster(workspace, "papers", "coarse", 0, "Renamed")
    monkeypatch.setenv("EXPLORER_QUALITY_BUDGET_SECONDS", "0.001")  # a progressive build, however small
    build_map(papers_frame, name="fast", workspace=workspace)
    path = tmp_path / "given.parquet"
    _vectors_table().to_parquet(path)
    build_map(path, vectors="emb", x="x", y="y", workspace=workspace)
    seen = set()
    for info in workspace.list():
        data = json.loads((workspace.map_path(info.name) / "manifest.json").read_text(encoding="utf-8"))
        assert Manifest.from_dict(data).to_dict() == data, info.name
        seen.update(key for key, value in data.items() if value)
    # The test saw the sections it is about (so the round trip above covered them).
    assert {"clusters", "trust", "batches", "mode", "refinement", "given", "map_id", "map_version"} <= seen
    meta = workspace.open("papers").meta
    assert meta.trust.k_map > 0 and [b.batch for b in meta.batches] == [0, 1]
    assert meta.clusters.levels["coarse"].clusters[0].label == "Renamed"
    assert workspace.open("fast").meta.refinement.state == "pending"


def test_unknown_keys_are_kept_at_every_depth():
    data = {"name": "m", "from_the_future": {"a": [1, 2]}, "trust": {"overall": 0.5, "new_score": 3},
            "clusters": {"levels": {"coarse": {"column": "cluster", "clusters": [{"id": 0, "hue": "red"}],
                                               "extra_level_key": 1}}}}
    meta = Manifest.from_dict(data)
    assert meta.to_dict() == data
    assert meta.extra == {"from_the_future": {"a": [1, 2]}} and meta.trust.extra == {"new_score": 3}
    assert meta.clusters.levels["coarse"].clusters[0].extra == {"hue": "red"}


def test_absent_keys_stay_absent_and_set_ones_are_written():
    meta = Manifest.from_dict({"name": "m", "mode": None})
    assert meta.to_dict() == {"name": "m", "mode": None}  # defaults are not written; a null that was there is
    assert meta.kind == "text" and meta.rows == 0 and not meta.clusters and meta.cluster_levels == {}
    assert meta.refinement.state is None and meta.mode is None  # absent: an empty section; null: None
    changed = dataclasses.replace(meta, trust=TrustSection(overall=0.9, k_map=10))
    assert changed.to_dict() == {"name": "m", "mode": None, "trust": {"overall": 0.9, "k_map": 10}}


def test_a_section_is_true_as_its_dict_would_be():
    # Readers test `if meta.clusters:` as they tested `if manifest.get("clusters"):`.
    assert not Manifest.from_dict({"clusters": {}}).clusters
    assert Manifest.from_dict({"clusters": {"space": None}}).clusters
    assert not ClustersSection() and ClustersSection(space="2d")


def test_saved_meta_follows_the_manifest_dict(papers_frame, fake_embedder, workspace):
    saved = build_map(papers_frame, name="p", model=fake_embedder, projection=PCA, workspace=workspace).saved
    assert saved.meta is saved.meta  # read once
    assert saved.meta.name == "p" and saved.meta.model_id == saved.manifest["model_id"]
    saved.manifest = {**saved.manifest, "name": "q"}
    assert saved.meta.name == "q"
