"""Maps that grow: added rows are placed on the stored layout, which never moves (issue 18)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explorer import ClusterConfig, InputError, ProjectionConfig, build_map
from explorer.grow import BATCH_COLUMN, add_rows
from explorer.label_file import LABELS_FILE
from explorer.placement import median_positions

PCA = ProjectionConfig(method="pca")
ON_2D = ClusterConfig(space="2d", levels=1)
TOPICS = {
    "biology": "protein folding enzyme cell gene sequence",
    "physics": "quantum particle field energy relativity",
    "economics": "market price inflation trade labour",
}


@pytest.fixture
def papers(papers_frame, fake_embedder, workspace):
    return build_map(papers_frame, name="papers", model=fake_embedder, projection=PCA, workspace=workspace,
                     clusters=ON_2D).saved


def new_rows(field: str, n: int = 4) -> pd.DataFrame:
    """Papers of ``field`` written as the fixture's are, numbered after them."""
    vocab = TOPICS[field].split()
    return pd.DataFrame({"title": [f"{vocab[i % 5].title()} study {i} of {vocab[(i + 1) % 5]}" for i in range(10, 10 + n)],
                         "abstract": [" ".join(vocab[(i + j) % 5] for j in range(12)) for i in range(10, 10 + n)],
                         "field": field})


def test_added_rows_leave_every_old_point_byte_identical_and_join_their_field(papers, workspace):
    before = workspace.open("papers")
    old_bytes = before.points[["x", "y"]].to_numpy().tobytes(), np.asarray(before.embeddings).tobytes()

    result = add_rows("papers", new_rows("biology"), workspace=workspace)

    grown = workspace.open("papers")
    old = grown.points.iloc[: len(before.points)]
    assert (old[["x", "y"]].to_numpy().tobytes(), np.asarray(grown.embeddings)[: len(before.points)].tobytes()) \
        == old_bytes
    # The same values (a column the new rows lack turns nullable: the year stays 2021, not 2021.0).
    pd.testing.assert_frame_equal(old.drop(columns=[BATCH_COLUMN]), before.points, check_dtype=False)
    assert old["year"].dtype == "Int64"
    assert (old[BATCH_COLUMN] == 0).all()
    added = grown.points.iloc[len(before.points):]
    assert result.added == 4 and result.batch == 1 and result.novel == 0
    assert added["row_id"].tolist() == list(range(30, 34)) and (added[BATCH_COLUMN] == 1).all()
    biology = before.points.loc[before.points["field"] == "biology", "cluster"].mode()[0]
    assert (added["cluster"] == biology).all(), "the new rows take their neighbours' cluster"
    # ...and sit among the biology papers on the map, not between the fields.
    centre = before.points.loc[before.points["field"] == "biology", ["x", "y"]].to_numpy().mean(axis=0)
    others = before.points.loc[before.points["field"] != "biology", ["x", "y"]].to_numpy().mean(axis=0)
    for xy in added[["x", "y"]].to_numpy():
        assert np.linalg.norm(xy - centre) < np.linalg.norm(xy - others)
    sizes = {c["id"]: c["size"] for c in grown.manifest["clusters"]["levels"]["coarse"]["clusters"]}
    assert sizes[biology] == (grown.points["cluster"] == biology).sum()
    labels = pd.read_parquet(grown.path / LABELS_FILE)
    assert labels.set_index("cluster_id").loc[biology, "size"] == sizes[biology]
    assert [b["batch"] for b in grown.manifest["batches"]] == [0, 1]
    assert grown.manifest["map_id"] != before.manifest["map_id"]

    second = add_rows("papers", new_rows("physics", 2), workspace=workspace)
    assert second.batch == 2 and workspace.open("papers").points[BATCH_COLUMN].tolist()[-2:] == [2, 2]


def test_rows_unlike_anything_on_the_map_form_their_own_region_apart(papers, workspace):
    strangers = pd.DataFrame({"title": ["a", "b", "c"], "abstract": ["volcano lava ash", "lava magma crater",
                                                                     "ash crater eruption"], "field": "geology"})
    result = add_rows("papers", strangers, workspace=workspace)

    grown = workspace.open("papers")
    added = grown.points.iloc[30:]
    assert result.novel == 3 and any("unlike anything on the map" in n for n in result.notes)
    assert (added["x"] > grown.points["x"].iloc[:30].max()).all(), "drawn right of the map"
    assert (added["cluster"] == -1).all()


def test_a_failed_add_leaves_the_map_as_it_was(papers, workspace, monkeypatch):
    stamp = workspace.stamp("papers")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(workspace), "save", fail)
    with pytest.raises(OSError):
        add_rows("papers", new_rows("biology"), workspace=workspace)
    monkeypatch.undo()
    assert workspace.stamp("papers") == stamp and len(workspace.open("papers").points) == 30

    with pytest.raises(InputError, match="No column named 'abstract'"):
        add_rows("papers", pd.DataFrame({"title": ["x"]}), workspace=workspace)
    assert workspace.stamp("papers") == stamp


def test_a_fast_map_adds_rows_with_its_own_fitted_embedder(papers_frame, workspace):
    built = build_map(papers_frame, name="fast", mode="fast", projection=PCA, workspace=workspace, clusters=None)
    result = add_rows("fast", new_rows("economics", 3), workspace=workspace)
    assert result.saved.manifest["model_id"] == built.saved.manifest["model_id"]
    assert len(result.saved.points) == 33 and np.isfinite(result.saved.coords[30:]).all()


def test_a_point_goes_among_the_neighbours_that_sit_together_not_between_two_regions():
    # Six of its ten nearest rows in one region at x = 0, four in another at x = 10.
    coords = np.array([[0.0, i * 0.1] for i in range(6)] + [[10.0, i * 0.1] for i in range(4)], dtype=np.float32)
    placed = median_positions(coords, np.arange(10)[None])
    assert placed[0, 0] == pytest.approx(0.0, abs=1e-9)
    # A mean would have said x = 4.


def test_a_grown_map_can_be_laid_out_afresh_as_a_new_version(papers, workspace):
    from explorer.curate import relayout_map

    add_rows("papers", new_rows("physics"), workspace=workspace)
    fresh = relayout_map(workspace, "papers")

    assert fresh.name == "papers (v2)" and len(fresh.points) == 34
    assert fresh.manifest["parent"]["removed_rows"] == 0 and "cluster" in fresh.points
    assert len(workspace.open("papers").points) == 34, "the grown map itself is untouched"


def test_a_query_whose_hits_are_spread_over_the_map_is_placed_among_them_not_between():
    from explorer.placement import place_query

    # Its ten best hits: six in one region, four in another; an eleventh far away does not count.
    coords = np.array([[0.0, 0.0]] * 6 + [[10.0, 0.0]] * 4 + [[5.0, 5.0]] * 20, dtype=np.float32)
    assert place_query(coords, np.arange(11))[0] == pytest.approx(0.0, abs=1e-6)
    coords[:10] = np.nan  # hits without a position on the map (no text) are left out
    assert np.isnan(place_query(coords, np.arange(10))).all()


def test_what_is_new_names_the_clusters_that_gained_and_the_rows_apart(papers, workspace):
    from explorer.grow import newest_batch
    from explorer.map_clusters import point_labels

    assert newest_batch(workspace.open("papers")) is None, "a map never grown has no new batch"
    strangers = pd.DataFrame({"title": ["a", "b"], "abstract": ["volcano lava ash", "lava magma crater"],
                              "field": "geology"})
    add_rows("papers", pd.concat([new_rows("biology", 5), strangers], ignore_index=True), workspace=workspace)
    grown = workspace.open("papers")
    summary = newest_batch(grown)
    assert (summary.batch, summary.rows) == (1, 7) and summary.added and summary.source
    biology = point_labels(grown, "coarse").iloc[:30][grown.points["field"].iloc[:30] == "biology"].mode()[0]
    assert summary.gained == [(biology, 5)]
    assert summary.apart == [35, 36] == grown.points["row_id"].iloc[-2:].tolist()
