"""labels.parquet: every clustered map's labels beside its points, in Embedding Atlas' --labels schema."""

from __future__ import annotations

import pandas as pd

from explorer import ClusterConfig, ProjectionConfig, build_map, rename_cluster
from explorer.label_file import LABELS_FILE
from explorer.map_clusters import label_layers
from explorer.trust import add_trust

PCA = ProjectionConfig(method="pca")
ON_2D = ClusterConfig(space="2d", levels=2)


def test_a_clustered_map_has_labels_parquet_that_follows_renames(papers_frame, fake_embedder, workspace):
    saved = build_map(papers_frame, name="papers", model=fake_embedder, projection=PCA, workspace=workspace,
                      clusters=ON_2D).saved
    table = pd.read_parquet(saved.path / LABELS_FILE)

    assert {"x", "y", "text", "level", "priority"} <= set(table.columns)
    assert table["level"].dtype.kind == "i" and table["level"].min() == 0
    # The same rows the map draws, with the level numbered (0 the coarsest) as Embedding Atlas reads it.
    layers = label_layers(saved)
    assert table["text"].tolist() == layers["text"].tolist()
    assert table["level_name"].tolist() == layers["level"].tolist()
    assert (table.loc[table["level_name"] == "coarse", "level"] == 0).all()
    coarse = table[table["level"] == 0].iloc[0]

    rename_cluster(workspace, "papers", "coarse", int(coarse["cluster_id"]), "Renamed field")

    renamed = pd.read_parquet(workspace.map_path("papers") / LABELS_FILE)
    assert "Renamed field" in renamed["text"].tolist() and coarse["text"] not in renamed["text"].tolist()


def test_a_map_without_clusters_has_no_labels_file(papers_frame, fake_embedder, workspace):
    saved = build_map(papers_frame, name="plain", model=fake_embedder, projection=PCA, workspace=workspace,
                      clusters=None).saved

    assert "clusters" not in saved.manifest or not saved.manifest["clusters"]
    assert not (saved.path / LABELS_FILE).exists()


def test_a_map_clustered_before_labels_parquet_gets_it_at_its_next_save_not_when_opened(
        papers_frame, fake_embedder, workspace):
    saved = build_map(papers_frame, name="old", model=fake_embedder, projection=PCA, workspace=workspace,
                      clusters=ON_2D).saved
    (saved.path / LABELS_FILE).unlink()

    reopened = workspace.open("old")
    assert not (reopened.path / LABELS_FILE).exists()  # opening a map writes nothing
    assert label_layers(reopened)["text"].tolist()  # the app reads the labels from the manifest

    add_trust(reopened, workspace=workspace)
    assert pd.read_parquet(reopened.path / LABELS_FILE)["text"].tolist() == label_layers(reopened)["text"].tolist()
