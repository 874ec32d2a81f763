"""Screening decisions are data: stored with the map, in order, undoable, and never lost to a concurrent
decision, a rename or a refinement that lands meanwhile."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from explorer import InputError, Workspace, build_map
from explorer.refine import REFINE_DONE, refine_map
from explorer.screening import IRRELEVANT, RELEVANT, decide, decisions_of, history_of, rank, screened


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    return Workspace(tmp_path / "home")


@pytest.fixture
def papers(workspace, tmp_path):
    rows = [f"graph neural networks for molecules, study {i}" for i in range(20)] + \
           [f"medieval poetry and its manuscripts, essay {i}" for i in range(20)]
    table = tmp_path / "papers.csv"
    pd.DataFrame({"title": rows, "year": [2000 + i % 20 for i in range(40)]}).to_csv(table, index=False)
    return build_map(table, name="papers", model="hashing", text_columns=["title"], workspace=workspace).saved


def test_decisions_are_stored_with_the_map_with_who_and_when(papers, workspace):
    decide(workspace, "papers", [3, 4], RELEVANT, who="ada")
    decide(workspace, "papers", [25], IRRELEVANT, who="bob")
    reopened = Workspace(workspace.root).open("papers")
    column = decisions_of(reopened)
    assert column.iloc[3] == RELEVANT and column.iloc[25] == IRRELEVANT and column.isna().sum() == 37
    history = history_of(reopened)
    assert [(h["row_id"], h["decision"], h["who"]) for h in history] == [
        (3, RELEVANT, "ada"), (4, RELEVANT, "ada"), (25, IRRELEVANT, "bob")]
    assert all(h["at"].startswith("20") for h in history)
    assert screened(reopened) == ([3, 4], [25], [True, True, False])
    # The ranking reads them: the other molecule papers come first.
    ranking = rank(reopened, *screened(reopened)[:2])
    assert set(ranking.row_ids[:10].tolist()) <= set(range(20))


def test_undo_and_a_changed_mind(papers, workspace):
    decide(workspace, "papers", [1], RELEVANT)
    decide(workspace, "papers", [2], IRRELEVANT)
    decide(workspace, "papers", [1], None)  # undone
    decide(workspace, "papers", [2], RELEVANT)  # changed: it moves to the end of the order
    saved = workspace.open("papers")
    assert pd.isna(decisions_of(saved).iloc[1])
    assert screened(saved) == ([2], [], [True])
    assert len(history_of(saved)) == 4
    with pytest.raises(InputError, match="No row 99"):
        decide(workspace, "papers", [99], RELEVANT)
    with pytest.raises(InputError, match="relevant"):
        decide(workspace, "papers", [1], "maybe")


def test_a_decision_links_the_vectors_rather_than_writing_them_again(papers, workspace):
    before = (papers.path / "embeddings.npy").stat()
    saved = decide(workspace, "papers", [0], RELEVANT)
    after = (saved.path / "embeddings.npy").stat()
    assert after.st_ino == before.st_ino and after.st_nlink == 1  # the old version's link went with its folder
    np.testing.assert_array_equal(np.load(saved.path / "embeddings.npy"), papers.embeddings)


def test_decisions_made_at_once_by_several_people_all_land(papers, workspace):
    errors = []

    def person(rows: list[int], decision: str, who: str) -> None:
        try:
            for row in rows:
                decide(Workspace(workspace.root), "papers", [row], decision, who=who)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    people = [threading.Thread(target=person, args=(list(range(k, 40, 4)), RELEVANT if k % 2 else IRRELEVANT,
                                                    f"p{k}")) for k in range(4)]
    for thread in people:
        thread.start()
    for thread in people:
        thread.join()
    assert errors == []
    saved = workspace.open("papers")
    column = decisions_of(saved)
    assert column.notna().all()
    assert all(column.iloc[r] == (RELEVANT if (r % 4) % 2 else IRRELEVANT) for r in range(40))
    assert sorted(h["row_id"] for h in history_of(saved)) == list(range(40))


def test_a_refinement_finishing_during_screening_keeps_every_decision(papers, workspace):
    workspace.update_manifest("papers", {"refinement": {"state": "pending", "model": "hashing"}},
                              base=workspace.open("papers"))
    made = []

    def screening_meanwhile(stage, fraction, message):
        # Between reading the map and saving it, the person screens three papers and renames the map.
        if stage == "embed" and not made:
            for row in (5, 6, 30):
                decide(workspace, "papers", [row], RELEVANT if row < 20 else IRRELEVANT, who="ada")
                made.append(row)

    result = refine_map("papers", workspace=workspace, model="hashing", progress=screening_meanwhile)
    assert result.state == REFINE_DONE and made == [5, 6, 30]
    saved = workspace.open("papers")
    assert saved.manifest["refinement"]["state"] == REFINE_DONE
    assert screened(saved) == ([5, 6], [30], [True, True, False])
    assert [h["row_id"] for h in history_of(saved)] == [5, 6, 30]
