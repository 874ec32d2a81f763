"""AppTest of the map's tools in the sidebar: add rows, lay out afresh, near-duplicates, trust (issue 18)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from test_app import APP
from uploads import send_file

from explorer import ProjectionConfig, Workspace, build_map

PCA = ProjectionConfig(method="pca")


@pytest.fixture(autouse=True)
def hashing_model(monkeypatch):
    monkeypatch.setenv("EXPLORER_DEFAULT_MODEL", "hashing")


def opened(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.selectbox(key="open_choice").set_value(name)
    at.button(key="open_saved").click().run()
    assert not at.exception, at.exception
    return at


def test_rows_added_in_the_app_join_the_map_without_moving_it(papers_frame):
    build_map(papers_frame, name="papers", model="hashing", projection=PCA, workspace=Workspace())
    before = Workspace().open("papers").coords.tobytes()
    at = opened("papers")
    assert at.button(key="add_rows").disabled, "nothing to add before a file is chosen"
    new = papers_frame.head(4).assign(title=lambda f: f["title"] + " (new)")
    send_file(at, "more.csv", new.to_csv(index=False).encode(), key="add_rows_file")
    at.button(key="add_rows").click().run()
    assert not at.exception, at.exception

    grown = Workspace().open("papers")
    assert len(grown.points) == 34 and grown.coords[:30].tobytes() == before
    assert any("Added 4 rows to 'papers' as batch 1" in i.value for i in at.info)
    assert at.multiselect(key="filter_batch").options == ["0", "1"], "the new rows can be filtered"

    at.button(key="relayout").click().run()
    assert not at.exception, at.exception
    assert at.session_state["map_name"] == "papers (v2)" and len(Workspace().open("papers (v2)").points) == 34


def test_near_duplicates_are_listed_and_selected_for_removal(papers_frame):
    copies = papers_frame.iloc[[0, 0, 12]].assign(year=1999)
    build_map(pd.concat([papers_frame, copies], ignore_index=True), name="dups", model="hashing", projection=PCA,
              workspace=Workspace())
    at = opened("dups")
    at.slider(key="duplicate_threshold").set_value(0.99).run()
    at.button(key="find_duplicates").click().run()
    assert not at.exception, at.exception
    assert any("groups" in m.value for m in at.markdown)

    at.button(key="select_duplicates").click().run()
    assert sorted(at.session_state["selection"]) == [30, 31, 32]
    assert at.session_state["side_tab"] == "Selection"


def test_trust_is_measured_on_request_and_colours_the_map(papers_frame):
    build_map(papers_frame, name="papers", model="hashing", projection=PCA, workspace=Workspace(), clusters=None)
    at = opened("papers")
    at.button(key="measure_trust").click().run()
    assert not at.exception, at.exception
    trust = Workspace().open("papers").points["trust"].to_numpy()
    assert np.isfinite(trust).all()
    assert any(c.value.startswith("Trust ") for c in at.sidebar.caption)

    assert "trust" in at.selectbox(key="colour_by").options, "the map can be coloured by trust"


def test_details_mark_the_neighbours_the_map_draws_far_away(papers_frame):
    # Papers on a circle, laid out on the same circle, but for two that swapped places.
    n = 60
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    vectors = np.hstack([np.cos(angles)[:, None], np.sin(angles)[:, None], np.zeros((n, 6))]).astype(np.float32)
    coords = (vectors[:, :2] * 10).copy()
    coords[[0, 30]] = coords[[30, 0]]
    built = build_map(papers_frame, name="seed", model="hashing", projection=PCA, workspace=Workspace(),
                      clusters=None).saved
    points = pd.DataFrame({"row_id": np.arange(n), "title": [f"paper {i}" for i in range(n)],
                           "abstract": [f"text {i}" for i in range(n)], "x": coords[:, 0], "y": coords[:, 1],
                           "embedded": True})
    Workspace().save("circle", points=points, embeddings=vectors,
                     manifest={**built.manifest, "rows": n, "embedded_rows": n, "dimension": 8})
    at = opened("circle")
    at.session_state["selected_row"] = 0
    at.session_state["side_tab"] = "Details"
    at.run()
    assert not at.exception, at.exception
    assert any("sit far from it on the map" in c.value for c in at.caption)
    buttons = [b.label for b in at.button if b.key and b.key.startswith("nn_0_")]
    # Row 0 is drawn where row 30 belongs: every one of its ten neighbours in meaning is across the map.
    assert len(buttons) == 10 and all(label.startswith("↗ paper ") for label in buttons)

    at.session_state["selected_row"] = 15
    at.run()
    assert not any(b.label.startswith("↗") for b in at.button if b.key and b.key.startswith("nn_15_"))
