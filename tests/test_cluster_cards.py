"""Cluster cards: what a cluster is about, from its central papers, terms, years, venues and trust."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explorer import ClusterConfig, InputError, Workspace, add_trust, build_map, cluster_cards


@pytest.fixture
def clustered(tmp_path):
    rng = np.random.default_rng(0)
    molecules = [f"graph networks predict molecule properties {w}" for w in rng.choice(["fast", "exact", "deep"], 40)]
    poems = [f"medieval poetry manuscripts and their scribes {w}" for w in rng.choice(["latin", "french", "welsh"], 40)]
    frame = pd.DataFrame({
        "title": molecules + poems,
        "year": [2018 + i % 4 for i in range(40)] + [f"Spring {1990 + i % 3}" for i in range(40)],
        "venue": ["NeurIPS"] * 30 + ["ICML"] * 10 + ["Speculum"] * 40,
        "authors": ["Ada Lovelace and Alan Turing"] * 40 + ["Marie de France; Chrétien de Troyes"] * 40,
    })
    table = tmp_path / "papers.csv"
    frame.to_csv(table, index=False)
    workspace = Workspace(tmp_path / "home")
    saved = build_map(table, name="papers", model="hashing", text_columns=["title"], workspace=workspace,
                      clusters=ClusterConfig(min_cluster_size=10)).saved
    return add_trust(saved, workspace=workspace)


def test_a_card_per_cluster_says_what_it_is_about(clustered):
    cards = cluster_cards(clustered, level=0)
    assert len(cards) >= 2 and [c.size for c in cards] == sorted((c.size for c in cards), reverse=True)
    by_venue = {card.top_values["venue"][0][0]: card for card in cards}
    poems = by_venue["Speculum"]
    assert 3 <= len(poems.central) <= 5
    ids = clustered.points.set_index("row_id")
    assert all("poetry" in title and ids.loc[row, "title"] == title for row, title in poems.central)
    assert poems.year_span == (1990, 1992) and sum(poems.years.values()) == poems.size
    assert ("Marie de France", poems.size) in poems.top_values["authors"]
    counts = dict(poems.terms)
    assert counts and all(0 < n <= poems.size for n in counts.values())
    assert poems.trust is not None and 0 <= poems.trust <= 1
    venues = [dict(card.top_values["venue"]) for card in cards]
    assert sum(v.get("NeurIPS", 0) for v in venues) == 30 and sum(v.get("ICML", 0) for v in venues) == 10
    assert by_venue["NeurIPS"].year_span == (2018, 2021)


def test_the_central_papers_are_nearest_the_clusters_mean_vector(clustered):
    card = cluster_cards(clustered, level=0)[0]
    column = clustered.manifest["clusters"]["levels"][card.level]["column"]
    rows = np.flatnonzero(clustered.points[column].to_numpy() == card.id)
    vectors = np.asarray(clustered.embeddings[rows])
    similarity = vectors @ vectors.mean(axis=0)
    best = clustered.points["row_id"].to_numpy()[rows[np.argsort(-similarity, kind="stable")[:len(card.central)]]]
    assert [row for row, _ in card.central] == best.tolist()


def test_levels_by_name_or_number_and_a_missing_level(clustered):
    assert cluster_cards(clustered, level="coarse")[0].id == cluster_cards(clustered, level=0)[0].id
    with pytest.raises(InputError, match="level 7 does not exist"):
        cluster_cards(clustered, level=7)
