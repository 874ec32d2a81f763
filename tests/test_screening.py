"""Screening: ranking from decisions, the stopping hint, and replaying a labelled collection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explorer import InputError, Workspace, build_map
from explorer.screening import (
    feature_matrix,
    progress,
    random_order,
    rank,
    rank_rows,
    simulate,
)


def two_topics(n: int = 400, relevant_share: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in 16 dimensions where the relevant rows lean one way: a topic a model can learn."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < relevant_share
    vectors = rng.normal(size=(n, 16)).astype(np.float32)
    vectors[labels, 0] += 3.0
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), labels


def test_the_model_ranks_the_relevant_topic_first():
    vectors, labels = two_topics()
    relevant = np.flatnonzero(labels)[:3]
    irrelevant = np.flatnonzero(~labels)[:10]
    order, scores, how = rank_rows(vectors, relevant, irrelevant)
    assert "logistic regression" in how
    assert not set(order) & set(relevant) | set(irrelevant) & set(order)  # screened rows are not ranked again
    assert len(order) == len(labels) - 13 and np.all(np.diff(scores) <= 0)
    top = labels[order[:20]].mean()
    assert top > 0.8 > labels.mean()  # the first 20 are mostly relevant where 1 in 10 is


def test_with_only_relevant_decisions_the_nearest_come_first_and_with_none_the_table_order():
    vectors, labels = two_topics()
    order, _, how = rank_rows(vectors, np.flatnonzero(labels)[:2], [])
    assert "mean of the relevant" in how and labels[order[:20]].mean() > 0.6
    order, scores, how = rank_rows(vectors, [], [5, 6])
    assert "order" in how and order[:3].tolist() == [0, 1, 2] and not scores.any()


def test_a_simulated_screening_saves_work_over_random_order():
    vectors, labels = two_topics(n=600)
    model = simulate(vectors, labels, seed=1)
    baseline = random_order(labels, seed=1)
    assert sorted(model.order.tolist()) == list(range(600))  # every row read exactly once
    assert model.found[-1] == labels.sum()
    assert model.wss() > 0.5 and abs(baseline.wss()) < 0.15
    assert model.recall_at(0.1) > 0.5 > baseline.recall_at(0.1)


def test_wss_and_recall_by_their_definitions():
    labels = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    perfect = random_order(labels)
    perfect = type(perfect)(order=np.array([0, 2, 9, 1, 3, 4, 5, 6, 7, 8]), labels=labels)
    # 95 % of 3 relevant needs all 3: read 3 of 10, 7 never read, minus the 5 % random order gets.
    assert perfect.wss() == pytest.approx(0.7 - 0.05)
    assert perfect.recall_at(0.1) == pytest.approx(1 / 3)
    assert perfect.found.tolist() == [1, 2, 3, 3, 3, 3, 3, 3, 3, 3]


def test_progress_and_its_stopping_hint():
    made = [True, False, True] + [False] * 47 + [True] + [False] * 9
    state = progress(made, total=1000)
    assert (state.screened, state.relevant, state.since_last_relevant) == (60, 3, 9)
    assert state.recent_rate == pytest.approx(1 / 50)  # the last 50 decisions
    assert state.estimated_left == pytest.approx(940 / 50)
    hint = state.hint()
    assert "9 screened since the last relevant" in hint and "about 19" in hint
    assert progress([], total=10).hint() == "Nothing screened yet."


def test_features_of_each_kind():
    vectors, _ = two_topics(n=20)
    words = ["graphs", "proteins", "poems", "robots", "markets"]
    texts = [f"{words[i % 5]} studied with {words[(i * 2) % 5]}" for i in range(20)]
    assert feature_matrix(vectors * 3, None, "vectors").dtype == np.float32
    assert np.allclose(np.linalg.norm(feature_matrix(vectors * 3, None, "vectors"), axis=1), 1)
    both = feature_matrix(vectors, texts, "both")
    assert both.shape[0] == 20 and both.shape[1] > 16
    with pytest.raises(InputError, match="Unknown screening features"):
        feature_matrix(vectors, texts, "bm25")
    with pytest.raises(InputError, match="no words"):
        feature_matrix(None, ["the and of"] * 4, "tfidf")


@pytest.fixture
def small_map(tmp_path):
    rows = [f"graph neural networks for molecules, study {i}" for i in range(15)] + \
           [f"medieval poetry and its manuscripts, essay {i}" for i in range(15)]
    table = tmp_path / "papers.csv"
    pd.DataFrame({"title": rows, "topic": ["m"] * 15 + ["p"] * 15}).to_csv(table, index=False)
    workspace = Workspace(tmp_path / "home")
    return build_map(table, name="papers", model="hashing", text_columns=["title"], workspace=workspace).saved


def test_rank_a_saved_map_by_row_id(small_map):
    ranking = rank(small_map, relevant=[0, 1], irrelevant=[20])
    assert set(ranking.row_ids.tolist()) == set(range(30)) - {0, 1, 20}
    assert set(ranking.row_ids[:10].tolist()) <= set(range(15))  # the other molecule papers first
    assert ranking.head(2)[0][1] >= ranking.head(2)[1][1]
    with pytest.raises(InputError, match="No row 99"):
        rank(small_map, relevant=[99])


def test_cli_lists_the_next_papers_and_replays_a_labelled_collection(small_map, capsys):
    from explorer.cli import EXIT_USER_ERROR, main

    home = str(small_map.path.parents[1])
    assert main(["--home", home, "screen", "papers", "--relevant", "0,1", "--irrelevant", "20", "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Nothing screened yet." and lines[1].startswith("ranked by logistic regression")
    assert len(lines) == 5 and all("molecules" in line for line in lines[2:])
    assert main(["--home", home, "screen", "papers", "--simulate", "title=nothing like it"]) == EXIT_USER_ERROR
    assert "both relevant and irrelevant" in capsys.readouterr().err
    assert main(["--home", home, "screen", "papers", "--simulate", "topic=m"]) == 0
    out = capsys.readouterr().out
    assert "15 relevant (topic = m) of 30 rows" in out and "WSS@95:" in out and " 100 %  1.000" in out
    assert main(["--home", home, "screen", "papers", "--relevant", "a,b"]) == EXIT_USER_ERROR


def test_seeds_from_a_bib_file_or_a_list_mark_their_rows(tmp_path):
    frame = pd.DataFrame({
        "title": ["Deep Learning for Proteins", "Graph networks, revisited", "Medieval poems"],
        "doi": ["10.1000/ABC", None, "10.1000/xyz"],
        "arxiv_id": ["2101.00001", "2101.00002", "2101.00003"],
    })
    table = tmp_path / "papers.csv"
    frame.to_csv(table, index=False)
    saved = build_map(table, name="papers", model="hashing", text_columns=["title"],
                      workspace=Workspace(tmp_path / "home")).saved
    from explorer.screening import seed_rows

    bib = ("@article{a, title={Graph Networks Revisited}, year={2020}}\n"
           "@article{b, title={Something else}, doi={https://doi.org/10.1000/abc}}\n"
           "@article{c, title={Not on the map}}\n")
    seeds = seed_rows(saved, bib, "mine.bib")
    assert seeds.row_ids == [1, 0] and seeds.unmatched == ["c"]
    seeds = seed_rows(saved, "# my seeds\ndoi:10.1000/XYZ\narXiv:2101.00002\nmedieval poems\nnope\n", "seeds.txt")
    assert seeds.row_ids == [2, 1] and seeds.unmatched == ["nope"]


def test_cli_records_decisions_seeds_and_exports_the_relevant_ones(small_map, tmp_path, capsys):
    from explorer.cli import main

    home = str(small_map.path.parents[1])
    assert main(["--home", home, "screen", "papers", "--relevant", "0,1", "--irrelevant", "20", "--save",
                 "--who", "ada", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 relevant in 3 screened" in out and "logistic regression on 2 relevant and 1 irrelevant" in out
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("graph neural networks for molecules, study 7\nno such paper\n")
    bib, csv = tmp_path / "relevant.bib", tmp_path / "decisions.csv"
    assert main(["--home", home, "screen", "papers", "--seeds", str(seeds), "--bib", str(bib), "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "marked 1 rows relevant from seeds.txt; not found: no such paper" in out
    assert bib.read_text().count("@") == 3 and "study 7" in bib.read_text()
    decided = pd.read_csv(csv)
    assert sorted(decided["row_id"]) == [0, 1, 7, 20]
    assert dict(zip(decided["row_id"], decided["decision"], strict=True))[20] == "irrelevant"
    saved = Workspace(home).open("papers")
    from explorer.screening import history_of

    assert [h["who"] for h in history_of(saved)][:3] == ["ada"] * 3
