"""Clusters, their labels, renaming, contrast, curation (remove and re-project) and the CLI (issue 5)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from explorer import (
    ClusterConfig,
    InputError,
    ProjectionConfig,
    Workspace,
    add_clusters,
    build_map,
    cluster_levels,
    cluster_map,
    cluster_table,
    contrast_terms,
    label_clusters,
    point_labels,
    remove_and_reproject,
    rename_cluster,
)
from explorer.cli import main
from explorer.cluster import (
    FINEST_MIN_ROWS,
    LARGE_MAP_ROWS,
    UNCLUSTERED,
    config_for_rows,
    derived_min_cluster_size,
    link_levels,
)
from explorer.export import export_points, to_csv_bytes, to_parquet_bytes
from explorer.labels import label_by_category, label_sample
from explorer.map_clusters import label_layers, named_points, same_group
from explorer.store import SavedMap

REPO = Path(__file__).resolve().parents[1]
ARXIV_2500 = REPO.parent / "shared" / "data" / "arxiv_cs" / "arxiv_cs10_2500.csv"
PCA = ProjectionConfig(method="pca")
ON_2D = ClusterConfig(space="2d")
FIELD_WORDS = {
    "biology": {"protein", "folding", "enzyme", "cell", "gene", "sequence"},
    "physics": {"quantum", "particle", "field", "energy", "relativity"},
    "economics": {"market", "price", "inflation", "trade", "labour"},
}


def blobs(
    centres, per_blob: int, *, spread: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs around ``centres`` and each point's true blob."""
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, dtype=np.float32)
    points = np.concatenate(
        [c + rng.normal(0, spread, (per_blob, centres.shape[1])) for c in centres]
    )
    return points.astype(np.float32), np.repeat(np.arange(len(centres)), per_blob)


def same_partition(found: np.ndarray, truth: np.ndarray) -> bool:
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(truth, found) == pytest.approx(1.0)


def folder_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def papers_map(papers_frame, fake_embedder, workspace):
    """The 30 papers (three fields) built with the fake embedder, PCA and clusters on the 2D layout."""
    return build_map(
        papers_frame,
        name="papers",
        model=fake_embedder,
        projection=PCA,
        workspace=workspace,
        clusters=ON_2D,
    )


# --- cluster_map -------------------------------------------------------------------------------


def test_hdbscan_finds_separated_blobs_largest_first_and_leaves_outliers_unclustered():
    points, truth = blobs([[0, 0], [10, 0], [0, 10]], 40)
    sizes = [30, 20, 40]
    keep = np.concatenate([np.flatnonzero(truth == b)[:n] for b, n in enumerate(sizes)])
    points, truth = points[keep], truth[keep]
    outliers = np.array([[30, 30], [-30, 30], [30, -30]], dtype=np.float32)
    coords = np.vstack([points, outliers])

    clustering = cluster_map(None, coords, config=ON_2D)

    coarse = clustering.levels["coarse"]
    assert clustering.space == "2d" and list(clustering.levels) == ["coarse"]  # 93 rows: one level
    assert coarse.n_clusters == 3
    assert coarse.sizes.tolist() == [40, 30, 20]  # ids are ordered by size
    assert same_partition(coarse.labels[: len(points)], truth)
    assert coarse.labels[len(points) :].tolist() == [UNCLUSTERED] * 3
    assert coarse.n_unclustered == 3
    # Each centre is a member of its cluster, near the blob's middle.
    for cid, centre in enumerate(coarse.centres):
        members = coords[coarse.labels == cid]
        assert any(np.array_equal(centre, m) for m in members)
        assert np.linalg.norm(centre - members.mean(axis=0)) < 0.5


def test_the_fine_level_splits_groups_the_coarse_level_keeps_whole():
    groups = [[0, 0], [40, 0], [0, 40]]
    centres = [[gx + dx, gy + dy] for gx, gy in groups for dx, dy in ((0, 0), (4, 0), (0, 4))]
    coords, truth = blobs(centres, 15, spread=0.4)

    clustering = cluster_map(None, coords, config=ClusterConfig(space="2d", min_cluster_size=30))

    assert clustering.levels["coarse"].n_clusters == 3
    assert same_partition(clustering.levels["coarse"].labels, truth // 3)
    fine = clustering.levels["fine"]
    assert fine.params == {"min_cluster_size": 7}
    assert fine.n_clusters == 9 and same_partition(fine.labels, truth)


def test_kmeans_uses_the_chosen_k_and_is_repeatable():
    coords, truth = blobs([[0, 0], [10, 0], [0, 10], [10, 10]], 25)
    config = ClusterConfig(method="kmeans", k=4, space="2d", levels=1, seed=7)

    first = cluster_map(None, coords, config=config)
    again = cluster_map(None, coords, config=config)

    assert list(first.levels) == ["coarse"]
    assert first.levels["coarse"].n_clusters == 4 and first.levels["coarse"].n_unclustered == 0
    assert same_partition(first.levels["coarse"].labels, truth)
    assert np.array_equal(first.levels["coarse"].labels, again.levels["coarse"].labels)
    two_levels = cluster_map(None, coords, config=ClusterConfig(method="kmeans", k=4, space="2d"))
    assert two_levels.levels["fine"].n_clusters == 12


def test_too_few_or_identical_points_are_all_unclustered_with_a_note():
    for coords in (np.random.default_rng(0).normal(size=(6, 2)), np.ones((40, 2))):
        clustering = cluster_map(None, coords, config=ON_2D)
        level = clustering.levels["coarse"]
        assert level.n_clusters == 0 and level.n_unclustered == len(coords)
        assert "unclustered" in clustering.notes[0]


def test_big_maps_are_clustered_on_their_2d_layout():
    assert config_for_rows(LARGE_MAP_ROWS).space == "umap5"
    assert config_for_rows(LARGE_MAP_ROWS + 1).space == "2d"


def test_minimum_cluster_size_grows_with_the_row_count():
    assert derived_min_cluster_size(30) == 5
    assert derived_min_cluster_size(2_500) == 50
    assert derived_min_cluster_size(2_500, fine=True) == 12


@pytest.mark.parametrize(
    "config",
    [
        ClusterConfig(method="dbscan"),
        ClusterConfig(space="3d"),
        ClusterConfig(levels=4),
        ClusterConfig(method="kmeans", k=1),
        ClusterConfig(min_cluster_size=1),
    ],
)
def test_bad_settings_are_one_clear_error(config):
    with pytest.raises(InputError):
        cluster_map(None, np.zeros((20, 2)), config=config)


# --- labels and contrast -----------------------------------------------------------------------


def test_labels_are_each_clusters_distinctive_words_without_numbers_or_short_tokens(papers_frame):
    texts = (papers_frame["title"] + ". " + papers_frame["abstract"] + " 2024 of ai").tolist()
    fields = papers_frame["field"].tolist()
    ids = np.array([list(FIELD_WORDS).index(f) for f in fields])
    ids[0] = UNCLUSTERED  # an unclustered row is allowed and gets no label

    labels = label_clusters(texts, ids, top_n=5)

    assert sorted(labels) == [0, 1, 2]
    for cid, field in enumerate(FIELD_WORDS):
        label = labels[cid]
        assert label.size == (9 if cid == 0 else 10)
        words = {w for term, _ in label.terms for w in term.split()}
        # The field's five words, as words or two-word phrases ("labour market").
        assert len(words) == 5 and 3 <= len(label.terms) <= 5
        assert words <= FIELD_WORDS[field], (field, label.terms)
        assert label.label == " · ".join(t for t, _ in label.terms[:3])
        scores = [s for _, s in label.terms]
        assert scores == sorted(scores, reverse=True) and scores[-1] > 0


def test_a_label_does_not_repeat_a_word_as_its_plural_or_inside_a_phrase():
    texts = [
        "robot robots grasping",
        "robot robots grasping",
        "robot arm grasping arms",
        "stock market price",
        "stock market price",
        "market price stock",
    ]
    labels = label_clusters(texts, np.array([0, 0, 0, 1, 1, 1]))
    terms = [t for t, _ in labels[0].terms]
    assert "robot" in terms and "robots" not in terms
    assert not any(" " in t and "robot" in t.split() for t in terms)


def test_texts_without_usable_words_get_a_plain_label():
    labels = label_clusters(["12 34", "a b", "56", "of to"], np.array([0, 0, 1, 1]))
    assert labels[0].label == "Cluster 0" and labels[0].terms == [] and labels[1].size == 2


def test_image_clusters_take_their_dominant_label_value():
    values = ["cat", "cat", "dog", None, "dog", "dog", "bird"]
    labels = label_by_category(values, np.array([0, 0, 0, 1, 1, 1, UNCLUSTERED]))
    assert labels[0].label == "cat" and labels[0].terms[0] == ("cat", pytest.approx(2 / 3))
    assert labels[1].label == "dog" and labels[1].size == 3
    assert UNCLUSTERED not in labels


def test_contrast_lists_the_words_of_each_side(papers_frame):
    texts = (papers_frame["title"] + ". " + papers_frame["abstract"]).tolist()
    a = (papers_frame["field"] == "biology").to_numpy()
    b = (papers_frame["field"] == "physics").to_numpy()

    contrast = contrast_terms(texts, a, b, top_n=4)

    assert (contrast.n_a, contrast.n_b) == (10, 10)
    assert len(contrast.a_terms) == 4 and len(contrast.b_terms) == 4
    assert {w for t, _ in contrast.a_terms for w in t.split()} <= FIELD_WORDS["biology"]
    assert {w for t, _ in contrast.b_terms for w in t.split()} <= FIELD_WORDS["physics"]
    assert all(score > 0 for _, score in contrast.a_terms + contrast.b_terms)
    empty = contrast_terms(texts, a, np.zeros(len(texts), dtype=bool))
    assert empty.a_terms == [] and empty.b_terms == [] and empty.n_b == 0


# --- clusters in the saved map -----------------------------------------------------------------


def test_build_with_clusters_stores_columns_and_labels_in_the_saved_map(papers_map, workspace):
    assert "cluster" in papers_map.seconds
    saved = workspace.open("papers")
    assert cluster_levels(saved) == ["coarse"]
    points = saved.points
    assert points["cluster"].dtype == np.int32
    # Three fields, three clusters, each one field.
    assert pd.crosstab(points["cluster"], points["field"]).gt(0).sum(axis=1).tolist() == [1, 1, 1]

    table = cluster_table(saved)
    assert table["size"].tolist() == [10, 10, 10] and table["id"].tolist() == [0, 1, 2]
    for row in table.itertuples():
        field = points.loc[points["cluster"] == row.id, "field"].iloc[0]
        assert set(" ".join(row.terms).split()) <= FIELD_WORDS[field] | {"study"}
        members = points[points["cluster"] == row.id]
        assert ((members["x"] == row.x) & (members["y"] == row.y)).any()  # centre on a member
    section = saved.manifest["clusters"]
    assert section["config"]["space"] == "2d" and section["space"] == "2d"
    assert set(section["seconds"]) == {"cluster", "label"}
    assert point_labels(saved).tolist() == [
        table.set_index("id").loc[c, "label"] for c in points["cluster"]
    ]


def test_unembedded_rows_are_unclustered(papers_frame, fake_embedder, workspace):
    frame = papers_frame.copy()
    frame.loc[[0, 15], ["title", "abstract"]] = ""
    saved = build_map(
        frame, name="gaps", model=fake_embedder, projection=PCA, workspace=workspace, clusters=ON_2D
    ).saved
    assert saved.points.loc[[0, 15], "cluster"].tolist() == [UNCLUSTERED, UNCLUSTERED]
    assert point_labels(saved).iloc[0] == "Unclustered"
    assert (saved.points["cluster"] >= 0).sum() == 28


def test_add_clusters_to_an_existing_map_keeps_everything_else(
    papers_frame, fake_embedder, workspace
):
    plain = build_map(
        papers_frame, name="plain", model=fake_embedder, projection=PCA, workspace=workspace
    ).saved
    with pytest.raises(InputError, match="no clusters yet"):
        cluster_table(plain)

    clustered = add_clusters(
        plain, config=ClusterConfig(method="kmeans", k=3, space="2d"), workspace=workspace
    )

    reopened = workspace.open("plain")
    assert reopened.points.drop(columns=["cluster", "cluster_fine"]).equals(plain.points)
    assert np.array_equal(reopened.embeddings, plain.embeddings)
    assert cluster_levels(reopened) == ["coarse", "fine"]
    assert (
        reopened.points["cluster"].nunique() == 3 and reopened.points["cluster_fine"].nunique() == 6
    )
    assert clustered.manifest["clusters"] == reopened.manifest["clusters"]
    assert reopened.manifest["model_id"] == plain.manifest["model_id"]


def test_rename_is_kept_with_the_map_and_an_empty_name_restores_the_automatic_one(
    papers_map, workspace
):
    auto = cluster_table(workspace.open("papers")).loc[0, "label"]

    rename_cluster(workspace, "papers", "coarse", 0, "  Proteins   and genes ")

    table = cluster_table(workspace.open("papers"))
    assert table.loc[0, "label"] == "Proteins and genes" and bool(table.loc[0, "renamed"])
    assert not table.loc[1:, "renamed"].any()
    rename_cluster(workspace, "papers", "coarse", 0, "")
    table = cluster_table(workspace.open("papers"))
    assert table.loc[0, "label"] == auto and not table.loc[0, "renamed"]
    with pytest.raises(InputError, match="no cluster 9"):
        rename_cluster(workspace, "papers", "coarse", 9, "x")
    with pytest.raises(InputError, match="no fine clusters"):
        rename_cluster(workspace, "papers", "fine", 0, "x")


# --- curation ----------------------------------------------------------------------------------


def test_remove_and_reproject_saves_a_new_version_and_leaves_the_original_untouched(
    papers_map, workspace
):
    original = workspace.open("papers")
    before = folder_hashes(original.path)
    economics = original.points.loc[original.points["field"] == "economics", "row_id"].tolist()

    v2 = remove_and_reproject(workspace, "papers", economics)

    assert folder_hashes(original.path) == before
    assert v2.name == "papers (v2)"
    kept = original.points[~original.points["row_id"].isin(economics)]
    assert v2.points["row_id"].tolist() == kept["row_id"].tolist()  # original ids, for traceability
    assert np.array_equal(v2.embeddings, original.embeddings[kept.index.to_numpy()])
    assert v2.points[["title", "field"]].equals(kept[["title", "field"]].reset_index(drop=True))
    assert not np.allclose(v2.coords, original.coords[kept.index.to_numpy()])  # a fresh layout
    manifest = v2.manifest
    assert manifest["rows"] == 20 and manifest["embedded_rows"] == 20
    assert manifest["parent"]["name"] == "papers" and manifest["parent"]["removed_rows"] == 10
    assert (
        manifest["projection"]["method"] == "pca"
        and manifest["source"] == original.manifest["source"]
    )
    # Re-clustered with the source's settings: two fields left, two clusters.
    assert manifest["clusters"]["config"] == original.manifest["clusters"]["config"]
    assert sorted(cluster_table(v2)["size"]) == [10, 10]

    v3 = remove_and_reproject(workspace, v2.name, v2.points["row_id"].tolist()[:2])
    assert v3.name == "papers (v3)" and v3.manifest["parent"]["name"] == "papers (v2)"
    named = remove_and_reproject(workspace, "papers", [0], new_name="no first row")
    assert named.name == "no first row" and len(named.points) == 29


def test_remove_and_reproject_refuses_what_would_do_nothing_or_leave_nothing(papers_map, workspace):
    with pytest.raises(InputError, match="nothing to do"):
        remove_and_reproject(workspace, "papers", [999])
    with pytest.raises(InputError, match="leave no point"):
        remove_and_reproject(workspace, "papers", range(30))
    with pytest.raises(InputError, match="already exists"):
        remove_and_reproject(workspace, "papers", [0], new_name="papers")
    assert [m.name for m in workspace.list()] == ["papers"]


def colour_zip(per_colour: int) -> bytes:
    """Noisy red, green and blue squares in one folder per colour (the folder is the label)."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for colour, rgb in {
            "red": (220, 30, 30),
            "green": (30, 200, 30),
            "blue": (30, 30, 220),
        }.items():
            for i in range(per_colour):
                pixels = np.clip(np.array(rgb) + rng.normal(0, 20, (24, 24, 3)), 0, 255).astype(
                    np.uint8
                )
                png = io.BytesIO()
                Image.fromarray(pixels).save(png, format="PNG")
                archive.writestr(f"{colour}/{colour}_{i}.png", png.getvalue())
    return buffer.getvalue()


def test_image_maps_are_labelled_by_folder_and_keep_their_thumbnails(workspace, tmp_path):
    archive = tmp_path / "colours.zip"
    archive.write_bytes(colour_zip(8))
    saved = build_map(archive, model="pixels", projection=PCA, workspace=workspace).saved
    thumbnails = saved.thumbnails()

    clustered = add_clusters(saved, config=ON_2D, workspace=workspace)

    assert sorted(cluster_table(clustered)["label"]) == ["blue", "green", "red"]
    assert workspace.open("colours").thumbnails() == thumbnails
    reds = clustered.points.loc[clustered.points["label"] == "red", "row_id"].tolist()
    smaller = remove_and_reproject(workspace, "colours", reds)
    assert sorted(cluster_table(smaller)["label"]) == ["blue", "green"]
    assert smaller.thumbnails() == {r: thumbnails[r] for r in smaller.points["row_id"]}


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_builds_with_clusters_and_lists_them_largest_first(papers_frame, tmp_path, capsys):
    csv = tmp_path / "papers.csv"
    papers_frame.iloc[:25].to_csv(csv, index=False)
    assert (
        main(
            [
                "build",
                str(csv),
                "--model",
                "hashing-64",
                "--projection",
                "pca",
                "--clusters",
                "--cluster-space",
                "2d",
                "-q",
            ]
        )
        == 0
    )
    assert "clusters: coarse 3" in capsys.readouterr().out

    assert main(["clusters", "papers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "coarse: 3 clusters, 0 points unclustered"
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == ["coarse"] * 3
    assert [int(r[2]) for r in rows] == [10, 10, 5]
    saved = Workspace().open("papers")
    assert [r[3] for r in rows] == cluster_table(saved)["label"].tolist()

    assert main(["clusters", "papers", "--compute", "--k", "2", "--cluster-space", "2d"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("coarse: 2 clusters") and "fine: 5 clusters" in out


def test_cli_clusters_errors_are_one_line(papers_frame, fake_embedder, workspace, capsys):
    build_map(papers_frame, name="plain", model=fake_embedder, projection=PCA, workspace=workspace)
    assert main(["clusters", "plain"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: The map 'plain' has no clusters yet")
    assert main(["clusters", "missing"]) == 2
    assert capsys.readouterr().err.startswith("error: No saved map named 'missing'")
    assert main(["clusters", "plain", "--compute", "--k", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: k must be at least 2")


# --- slow: UMAP and the real model -------------------------------------------------------------


@pytest.mark.slow
def test_hdbscan_on_a_five_dimensional_umap_finds_blobs_in_high_dimensions():
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (4, 32)) * 4
    embeddings, truth = blobs(centres, 40, spread=0.3, seed=2)
    coords = embeddings[:, :2]

    clustering = cluster_map(embeddings, coords, config=ClusterConfig(seed=3))
    again = cluster_map(embeddings, coords, config=ClusterConfig(seed=3))

    assert clustering.space == "umap5"
    coarse = clustering.levels["coarse"]
    assert coarse.n_clusters == 4 and coarse.n_unclustered <= 4
    clustered = coarse.labels >= 0
    assert same_partition(coarse.labels[clustered], truth[clustered])
    assert np.array_equal(coarse.labels, again.levels["coarse"].labels)


ROBOTICS_WORDS = {
    "robot",
    "robots",
    "robotic",
    "robotics",
    "manipulation",
    "navigation",
    "locomotion",
    "grasping",
    "humanoid",
    "legged",
    "quadruped",
}
LANGUAGE_WORDS = {
    "language",
    "languages",
    "llm",
    "llms",
    "text",
    "translation",
    "linguistic",
    "multilingual",
    "nlp",
    "sentence",
    "sentences",
    "speech",
    "tokens",
}


@pytest.fixture(scope="session")
def arxiv_map(real_embedder, pytestconfig, tmp_path_factory):
    """The arXiv 2,500 file built once per session with clusters; its embeddings are cached across
    sessions in pytest's cache folder (a first run embeds for minutes, later ones only project)."""
    if not ARXIV_2500.is_file():
        pytest.skip(f"{ARXIV_2500} is absent: the arXiv benchmark data is not on this machine")
    cache = getattr(pytestconfig, "cache", None)  # None under -p no:cacheprovider
    root = cache.mkdir("explorer-arxiv2500") if cache else tmp_path_factory.mktemp("arxiv2500")
    workspace = Workspace(root)
    frame = pd.read_csv(ARXIV_2500, dtype={"arxiv_id": str})
    return build_map(
        frame, name="arxiv2500", model=real_embedder, workspace=workspace, clusters=ClusterConfig()
    ).saved


def _top_terms_of_cluster_holding(saved, category: str, level: str) -> list[str]:
    column = saved.manifest["clusters"]["levels"][level]["column"]
    points = saved.points[saved.points[column] >= 0]
    holder = points.loc[points["primary_category"] == category, column].value_counts().index[0]
    table = cluster_table(saved, level).set_index("id")
    return table.loc[holder, "terms"][:5]


@pytest.mark.slow
@pytest.mark.parametrize("level", ["coarse", "fine"])
def test_arxiv_labels_are_meaningful(arxiv_map, level):
    assert cluster_levels(arxiv_map) == ["coarse", "fine"]
    assert 5 <= len(cluster_table(arxiv_map, "coarse")) < len(cluster_table(arxiv_map, "fine"))
    robotics = _top_terms_of_cluster_holding(arxiv_map, "cs.RO", level)
    assert {w for t in robotics for w in t.split()} & ROBOTICS_WORDS, robotics
    language = _top_terms_of_cluster_holding(arxiv_map, "cs.CL", level)
    assert {w for t in language for w in t.split()} & LANGUAGE_WORDS, language


@pytest.mark.slow
def test_arxiv_contrast_of_robotics_and_language_papers(arxiv_map):
    points = arxiv_map.points
    contrast = contrast_terms(
        arxiv_map.texts(),
        (points["primary_category"] == "cs.RO").to_numpy(),
        (points["primary_category"] == "cs.CL").to_numpy(),
        top_n=5,
    )
    assert {w for t, _ in contrast.a_terms for w in t.split()} & ROBOTICS_WORDS, contrast.a_terms
    assert {w for t, _ in contrast.b_terms for w in t.split()} & LANGUAGE_WORDS, contrast.b_terms


def test_big_maps_name_their_clusters_from_a_sample_that_keeps_every_cluster():
    labels = np.repeat([0, 1, 2, -1], [9_000, 900, 60, 40])
    fine = np.repeat([0, 1, 2, 3, -1], [5_000, 4_000, 900, 60, 40])
    rows = label_sample({"coarse": labels, "fine": fine}, rows=1_000)
    assert 1_000 <= len(rows) <= 1_200 and len(set(rows.tolist())) == len(rows)
    for level in (labels, fine):
        kept = np.unique(level[rows], return_counts=True)
        assert set(kept[0]) == set(np.unique(level)), "every cluster keeps rows in the sample"
        assert kept[1].min() >= 40
    assert np.array_equal(label_sample({"coarse": labels[:500]}, rows=1_000), np.arange(500))


def test_sampled_labels_keep_the_whole_clusters_sizes():
    texts = ["protein folding enzyme"] * 3_000 + ["market price inflation"] * 2_000
    labels = np.repeat([0, 1], [3_000, 2_000])
    with_sample = label_clusters(texts, labels)
    assert {c: lab.size for c, lab in with_sample.items()} == {0: 3_000, 1: 2_000}
    assert "protein" in with_sample[0].label and "market" in with_sample[1].label


# --- levels linked, renamed together, shown by name (issue 14) ---------------------------------


def nested_blobs(per_blob: int) -> tuple[np.ndarray, np.ndarray]:
    """4 groups of 4 subgroups of 4 blobs (64 blobs, far apart at each scale) and each point's blob."""
    offsets = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)
    centres = [200 * a + 40 * b + 8 * c for a in offsets for b in offsets for c in offsets]
    return blobs(centres, per_blob, spread=0.5)


def test_big_maps_get_a_finest_level_nested_in_the_fine_one():
    coords, truth = nested_blobs(80)  # 5,120 rows
    config = ClusterConfig(space="2d", min_cluster_size=1_000)

    clustering = cluster_map(None, coords, config=config)

    assert list(clustering.levels) == ["coarse", "fine", "finest"]
    for level, groups in (("coarse", truth // 16), ("fine", truth // 4), ("finest", truth)):
        assert same_partition(clustering.levels[level].labels, groups), level
    assert clustering.levels["finest"].params == {"min_cluster_size": 62}
    # Each finest cluster is a whole quarter of its fine parent.
    fine, finest = clustering.levels["fine"], clustering.levels["finest"]
    for cid, link in enumerate(finest.parents):
        members = finest.labels == cid
        assert link["id"] == np.bincount(fine.labels[members]).argmax()
        assert link["share"] == 1.0 and link["cover"] == pytest.approx(0.25, abs=0.01)
    assert clustering.levels["coarse"].parents is None
    assert len(fine.parents) == fine.n_clusters == 16


def test_below_five_thousand_rows_or_with_two_levels_asked_there_is_no_finest_level():
    coords, _ = nested_blobs(80)
    small = cluster_map(None, coords[:FINEST_MIN_ROWS - 1], config=ClusterConfig(space="2d", min_cluster_size=1_000))
    assert list(small.levels) == ["coarse", "fine"]
    two = cluster_map(None, coords, config=ClusterConfig(space="2d", min_cluster_size=1_000, levels=2))
    assert list(two.levels) == ["coarse", "fine"]
    kmeans = cluster_map(None, coords, config=ClusterConfig(method="kmeans", k=4, space="2d"))
    assert [lv.n_clusters for lv in kmeans.levels.values()] == [4, 12, 36]


def test_link_levels_gives_each_clusters_parent_its_share_and_cover():
    parent = np.array([0, 0, 0, 0, 1, 1, -1, -1])
    child = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    assert link_levels(child, parent) == [
        {"id": 0, "share": 1.0, "cover": 0.75},
        {"id": 1, "share": pytest.approx(0.6667), "cover": 1.0},
        {"id": -1, "share": 1.0, "cover": 0.0},
    ]


@pytest.fixture
def linked_map(papers_frame, fake_embedder, workspace):
    """The papers laid out by hand: biology one tight blob (one cluster at both levels), physics and
    economics two halves each of one group (one coarse cluster, two fine ones)."""
    frame = pd.concat([papers_frame] * 2, ignore_index=True)  # 60 rows, 20 per field
    saved = build_map(frame, name="linked", model=fake_embedder, projection=PCA, workspace=workspace).saved
    rng = np.random.default_rng(0)
    field = saved.points["field"].to_numpy()
    half = np.arange(len(frame)) % 2
    centre = np.where((field == "biology")[:, None], [[0, 0]], [[30, 0]])
    centre = centre + np.where((field != "biology")[:, None], np.c_[half * 6, (field == "economics") * 6], 0)
    points = saved.points.assign(**dict(zip(["x", "y"], (centre + rng.normal(0, 0.3, centre.shape)).T, strict=True)))
    saved = workspace.save("linked", points=points, embeddings=saved.embeddings, manifest=saved.manifest)
    return add_clusters(saved, config=ClusterConfig(space="2d", min_cluster_size=20), workspace=workspace)


def test_levels_are_linked_and_a_rename_applies_wherever_the_same_group_shows(linked_map, workspace):
    assert cluster_levels(linked_map) == ["coarse", "fine"]
    coarse, fine = cluster_table(linked_map, "coarse"), cluster_table(linked_map, "fine")
    points = linked_map.points
    bio = int(points.loc[points["field"] == "biology", "cluster"].mode()[0])
    bio_fine = int(points.loc[points["field"] == "biology", "cluster_fine"].mode()[0])
    others = [int(c) for c in coarse["id"] if c != bio]
    assert len(fine) > len(coarse) and (points["cluster_fine"] == bio_fine).sum() == 20
    assert same_group(linked_map, "coarse", bio) == [("coarse", bio), ("fine", bio_fine)]
    assert same_group(linked_map, "fine", bio_fine) == [("fine", bio_fine), ("coarse", bio)]
    assert all(same_group(linked_map, "coarse", c) == [("coarse", c)] for c in others)
    links = [c["parent"] for c in linked_map.manifest["clusters"]["levels"]["fine"]["clusters"]]
    assert all({"id", "share", "cover"} == set(link) for link in links)

    rename_cluster(workspace, "linked", "fine", bio_fine, "Proteins")

    reopened = workspace.open("linked")
    for level, cid in (("coarse", bio), ("fine", bio_fine)):
        row = cluster_table(reopened, level).set_index("id").loc[cid]
        assert row["label"] == "Proteins" and row["renamed"]
    assert not cluster_table(reopened, "coarse").set_index("id").loc[others, "renamed"].any()
    assert cluster_table(reopened, "fine")["renamed"].sum() == 1
    # The map shows the name once: the fine copy of a coarse label is left out of the layers.
    layers = label_layers(reopened)
    assert (layers["text"] == "Proteins").sum() == 1 and layers["text"].is_unique

    rename_cluster(workspace, "linked", "coarse", bio, "")
    reopened = workspace.open("linked")
    assert not cluster_table(reopened, "coarse")["renamed"].any()
    assert not cluster_table(reopened, "fine")["renamed"].any()


def test_maps_clustered_before_links_were_recorded_still_rename_every_level(linked_map, workspace):
    manifest = linked_map.manifest
    for cluster in manifest["clusters"]["levels"]["fine"]["clusters"]:
        del cluster["parent"]
    workspace.update_manifest("linked", {"clusters": manifest["clusters"]})
    bio = int(linked_map.points.loc[linked_map.points["field"] == "biology", "cluster"].mode()[0])

    rename_cluster(workspace, "linked", "coarse", bio, "Proteins")

    assert cluster_table(workspace.open("linked"), "fine")["renamed"].sum() == 1


def test_label_layers_rank_coarse_over_fine_over_finest_and_bigger_first(workspace, fake_embedder):
    words = ["robot gripper", "parsing tokenizer", "decoding parity", "orbit rocket"]
    coords, truth = nested_blobs(80)
    frame = pd.DataFrame({"text": [f"{words[t // 16]} part{t // 4} piece{t}" for t in truth]})
    saved = build_map(frame, name="big", model=fake_embedder, projection=PCA, workspace=workspace).saved
    points = saved.points.assign(x=coords[:, 0], y=coords[:, 1])
    saved = workspace.save("big", points=points, embeddings=saved.embeddings, manifest=saved.manifest)
    saved = add_clusters(saved, config=ClusterConfig(space="2d", min_cluster_size=1_000), workspace=workspace)
    assert cluster_levels(saved) == ["coarse", "fine", "finest"]

    layers = label_layers(saved)

    assert list(layers.columns) == ["x", "y", "text", "level", "priority", "cluster_id", "size"]
    assert layers["priority"].is_monotonic_decreasing
    assert layers["level"].tolist() == ["coarse"] * 4 + ["fine"] * 16 + ["finest"] * 64
    for rank, level in enumerate(["finest", "fine", "coarse"]):
        rows = layers[layers["level"] == level]
        assert ((rows["priority"] >= rank) & (rows["priority"] < rank + 1)).all()
        assert rows["size"].is_monotonic_decreasing
    for level in ("coarse", "fine", "finest"):
        texts = layers.loc[layers["level"] == level, "text"]
        assert texts.is_unique and texts.str.len().gt(0).all()
    assert "cluster_finest" in workspace.open("big").points


def test_label_layers_of_unequal_clusters_put_the_biggest_first():
    manifest = {"clusters": {"levels": {
        "coarse": {"column": "cluster", "clusters": [
            {"id": 0, "label": "a", "size": 90, "centre": [0, 0]}, {"id": 1, "label": "b", "size": 10, "centre": [1, 1]}]},
        "fine": {"column": "cluster_fine", "clusters": [
            {"id": 0, "label": "c", "size": 5, "centre": [0, 0], "parent": {"id": 0, "share": 1, "cover": 0.1}},
            {"id": 1, "label": "d", "size": 85, "centre": [0, 0], "parent": {"id": 0, "share": 1, "cover": 0.9}},
            {"id": 2, "label": "b", "size": 10, "centre": [1, 1], "parent": {"id": 1, "share": 1, "cover": 1.0}}]},
    }}}
    saved = SavedMap(path=Path("/nonexistent/maps/m"), manifest=manifest, points=pd.DataFrame(),
                     embeddings=np.zeros((0, 2)))

    layers = label_layers(saved)

    assert layers["text"].tolist() == ["a", "b", "d", "c"]  # fine "b" repeats its parent's label
    assert layers["priority"].tolist() == pytest.approx([1 + 90 / 101, 1 + 10 / 101, 85 / 91, 5 / 91])


def test_named_points_and_exports_name_the_clusters(linked_map, workspace):
    named = named_points(linked_map)
    points = linked_map.points
    assert list(named.columns) == list(points.columns)
    tables = {level: cluster_table(linked_map, level).set_index("id")["label"] for level in ("coarse", "fine")}
    for level, column in (("coarse", "cluster"), ("fine", "cluster_fine")):
        ids = points[column].to_numpy()
        expected = ["Unclustered" if i < 0 else tables[level][i] for i in ids]
        assert named[column].tolist() == expected
    assert workspace.open("linked").points.equals(points)  # the stored ids are untouched

    exported = export_points(linked_map)
    column_order = list(exported.columns)
    assert column_order[column_order.index("cluster") + 1] == "cluster_id"
    assert exported["cluster"].tolist() == named["cluster"].tolist()
    assert exported["cluster_fine_id"].tolist() == points["cluster_fine"].tolist()
    some = points["row_id"].iloc[[3, 1, 40]].tolist()
    assert export_points(linked_map, some)["row_id"].tolist() == sorted(some)
    csv = pd.read_csv(io.BytesIO(to_csv_bytes(export_points(linked_map, some))), encoding="utf-8-sig")
    assert csv["cluster"].tolist() == exported.set_index("row_id").loc[sorted(some), "cluster"].tolist()
    parquet = pd.read_parquet(io.BytesIO(to_parquet_bytes(exported)))
    assert parquet["cluster_id"].dtype == np.int32 and parquet.equals(exported)


def test_an_unclustered_map_exports_its_points_as_they_are(papers_frame, fake_embedder, workspace):
    plain = build_map(papers_frame, name="plain", model=fake_embedder, projection=PCA, workspace=workspace).saved
    assert named_points(plain).equals(plain.points) and export_points(plain).equals(plain.points)


def test_a_big_map_is_clustered_on_a_sample_and_the_rest_joins_its_nearest_sample_point():
    from scipy.spatial import cKDTree

    from explorer.cluster import nearest_sample_rows
    from explorer.project import sample_indices

    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=np.float32)
    topic = rng.integers(0, 4, size=2_000)
    coords = centres[topic] + rng.normal(scale=0.6, size=(2_000, 2)).astype(np.float32)
    config = ClusterConfig(space="2d", levels=2)
    clustering = cluster_map(None, coords, config=config, sample_rows=500)
    assert any("sample of 500 of the 2,000" in note for note in clustering.notes)
    coarse = clustering.levels["coarse"]
    assert coarse.labels.shape == (2_000,) and coarse.n_clusters == 4
    sample = sample_indices(2_000, 500, seed=config.seed)
    nearest = sample[nearest_sample_rows(coords, coords[sample])]
    _, expected = cKDTree(coords[sample]).query(coords, k=1)
    np.testing.assert_array_equal(nearest, sample[expected])
    # Every point carries the label of its nearest sample point, at every level.
    for level in clustering.levels.values():
        np.testing.assert_array_equal(level.labels, level.labels[nearest])
    # The four blobs come out as four clusters, each one of them whole.
    for t in range(4):
        ids = coarse.labels[(topic == t) & (coarse.labels >= 0)]
        assert len(set(ids.tolist())) == 1
    again = cluster_map(None, coords, config=config, sample_rows=500)
    np.testing.assert_array_equal(again.levels["coarse"].labels, coarse.labels)


def test_clusters_reuse_the_build_s_neighbour_graph(papers_frame, fake_embedder):
    from explorer.neighbours import knn_graph

    vectors = fake_embedder.embed(papers_frame["abstract"].tolist() * 2)
    coords = np.random.default_rng(0).normal(size=(len(vectors), 2)).astype(np.float32)
    config = ClusterConfig(levels=1, n_neighbors=10)
    graph = knn_graph(vectors, k=19)
    with_graph = cluster_map(vectors, coords, config=config, knn=graph)
    without = cluster_map(vectors, coords, config=config)
    assert with_graph.space == "umap5"
    # The same exact graph, computed once more or handed over: the same clusters.
    np.testing.assert_array_equal(with_graph.levels["coarse"].labels, without.levels["coarse"].labels)


@pytest.mark.parametrize("all_embedded", [True, False])
def test_clustering_reads_the_vectors_without_a_copy_when_every_row_has_one(monkeypatch, all_embedded):
    import explorer.map_clusters as map_clusters

    vectors = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    points = pd.DataFrame({"title": [f"t{i}" for i in range(40)], "x": np.arange(40.0), "y": np.zeros(40),
                           "embedded": [all_embedded or i % 2 == 0 for i in range(40)]})
    seen = []

    def capture(embeddings, coords, **_):
        seen.append(embeddings)
        raise RuntimeError("captured")

    monkeypatch.setattr(map_clusters, "cluster_map", capture)
    with pytest.raises(RuntimeError, match="captured"):
        map_clusters.clustered(points, vectors, {"name": "m", "text_columns": ["title"]}, config=ClusterConfig())
    # A masked copy of a million rows' vectors was 1 GB more at the cluster stage.
    assert (seen[0] is vectors) == all_embedded and len(seen[0]) == points["embedded"].sum()
