"""AppTest of the one view state (explorer/ui/state.py): what a run shows comes from values read before
the map is drawn, so a pick in the clusters table, a click or a lasso shows up in that very run."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from map_spec import base_traces, map_args, overlay_names
from streamlit.testing.v1 import AppTest
from test_browser_escaping import MAP_LINK, obeyed

from explorer import Workspace, build_map
from explorer.cluster import ClusterConfig
from explorer.map_clusters import cluster_column, cluster_table
from explorer.ui.state import cluster_table_key

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")


@pytest.fixture(autouse=True)
def hashing_model(monkeypatch):
    """The app's default model becomes the weights-free hashing embedder: fast and deterministic."""
    monkeypatch.setenv("EXPLORER_DEFAULT_MODEL", "hashing")


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def _open_clustered(papers_frame, name: str = "clustered") -> AppTest:
    build_map(papers_frame, name=name, model="hashing", workspace=Workspace(),
              clusters=ClusterConfig(method="kmeans", k=3, levels=1))
    at = _run(AppTest.from_file(APP, default_timeout=120))
    at.selectbox(key="open_choice").set_value(name)
    at.button(key="open_saved").click()
    return _run(at)


def _pick_cluster(at: AppTest, row: int | None) -> AppTest:
    """What the browser sends when a person picks a row of the clusters table (or clears the pick)."""
    saved = Workspace().open(at.session_state["map_name"])
    rows = [] if row is None else [row]
    at.session_state[cluster_table_key(saved, "coarse")] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    return _run(at)


def _cluster_rows(name: str, row: int) -> tuple[str, set[int]]:
    """The label of the cluster on ``row`` of the clusters table, and its rows' ids."""
    saved = Workspace().open(name)
    chosen = cluster_table(saved, "coarse").iloc[row]
    members = saved.points[cluster_column(saved, "coarse")] == int(chosen["id"])
    return chosen["label"], set(saved.points["row_id"][members].tolist())


@pytest.mark.slow
def test_a_cluster_picked_in_the_table_is_highlighted_in_the_same_run(papers_frame):
    at = _open_clustered(papers_frame)
    assert "filtered out" not in base_traces(at), "nothing is dimmed before a pick"
    assert any("Select a cluster to highlight it" in c.value for c in at.caption)

    _pick_cluster(at, 0)
    label, members = _cluster_rows("clustered", 0)
    traces = base_traces(at)
    dimmed = set(traces["filtered out"])
    assert dimmed == set(range(len(papers_frame))) - members, "the other clusters are dimmed in this very run"
    assert {i for name, ids in traces.items() if name != "filtered out" for i in ids} == members
    assert any(f"highlighted ({len(members)} rows)" in c.value.replace("\\", "") for c in at.caption), \
        "the line by the map says why"
    assert not any("match the filters" in c.value for c in at.caption), "a pick is not a filter"
    assert any(label in m.value.replace("\\", "") for m in at.markdown), "the side panel names the pick"

    _pick_cluster(at, 1)
    _, members = _cluster_rows("clustered", 1)
    assert set(base_traces(at)["filtered out"]) == set(range(len(papers_frame))) - members, "a new pick shows at once"

    _pick_cluster(at, None)
    assert "filtered out" not in base_traces(at), "clearing the pick undims the map in the same run"
    assert any("Select a cluster to highlight it" in c.value for c in at.caption)
    assert not any("highlighted (" in c.value.replace("\\", "") for c in at.caption), "no stale line"


@pytest.mark.slow
def test_a_cluster_pick_and_the_filters_dim_together(papers_frame):
    at = _open_clustered(papers_frame)
    at.multiselect(key="filter_field").set_value(["physics"])
    _run(at)
    physics = set(papers_frame.index[papers_frame["field"] == "physics"])
    _pick_cluster(at, 0)
    _, members = _cluster_rows("clustered", 0)
    live = {i for name, ids in base_traces(at).items() if name != "filtered out" for i in ids}
    assert live == physics & members


@pytest.mark.slow
def test_opening_another_map_forgets_the_cluster_pick(papers_frame):
    at = _open_clustered(papers_frame)
    _pick_cluster(at, 0)
    assert "filtered out" in base_traces(at)
    build_map(papers_frame, name="second", model="hashing", workspace=Workspace(),
              clusters=ClusterConfig(method="kmeans", k=3, levels=1))
    at.button(key="new_map").click()
    _run(at)
    at.selectbox(key="open_choice").set_value("second")
    at.button(key="open_saved").click()
    _run(at)
    assert at.session_state["map_name"] == "second"
    assert "filtered out" not in base_traces(at)


@pytest.mark.slow
def test_removing_the_picked_cluster_opens_the_new_map_without_a_pick(papers_frame):
    at = _open_clustered(papers_frame)
    _pick_cluster(at, 0)
    _, members = _cluster_rows("clustered", 0)
    at.button(key="remove_cluster").click()
    _run(at)
    new_name = at.session_state["map_name"]
    assert new_name != "clustered"
    assert len(Workspace().open(new_name).points) == len(papers_frame) - len(members)
    assert "filtered out" not in base_traces(at), "the pick belonged to the old map's table"
    assert any("Select a cluster to highlight it" in c.value for c in at.caption)


@pytest.mark.slow
def test_a_click_and_a_search_show_in_the_run_that_brings_them(papers_frame):
    build_map(papers_frame, name="papers", model="hashing", workspace=Workspace())
    at = _run(AppTest.from_file(APP, default_timeout=120))
    at.selectbox(key="open_choice").set_value("papers")
    at.button(key="open_saved").click()
    _run(at)
    key = f"map:papers:{at.session_state['map_stamp']}"
    at.session_state[key] = {"seq": "1", "kind": "click", "ids": [4]}
    at.text_input(key="query").set_value("market price")
    _run(at)
    assert {"search hits", "query", "focused"} <= set(overlay_names(at))
    assert at.session_state["selected_title"] == papers_frame["title"][4], "the details row is remembered"
    assert at.session_state["last_query"] == "market price"
    assert at.session_state["side_tab"] == "Details", "the click opens its row's tab in the same run"
    assert any(papers_frame["title"][4] in m.value.replace("\\", "") for m in at.markdown)
    assert map_args(at)["selected"] is None


def test_the_map_frontend_ships_inside_the_package():
    from explorer.ui import widget

    assert (widget.FRONTEND / "index.html").is_file()
    assert widget.FRONTEND.is_relative_to(Path(widget.__file__).parent)


def test_app_py_is_only_a_router():
    source = (REPO / "app.py").read_text()
    assert len(source.splitlines()) < 40
    assert "from explorer.ui import main" in source
    for page in (REPO / "pages").glob("*.py"):
        text = page.read_text()
        assert "import app" not in text and "from app " not in text, page.name


def test_user_text_is_shown_literally_in_markdown():
    from explorer.ui import escape_markdown

    assert escape_markdown("**bold** [x](y)") == r"\*\*bold\*\* \[x\]\(y\)"
    # GFM links bare URLs, www. names and addresses whatever the backslashes: a word joiner breaks each.
    assert escape_markdown("https://e.example www.e.example a@e.example") == (
        "https\\:\u2060//e\\.example www\u2060\\.e\\.example a@\u2060e\\.example")
    assert not obeyed(escape_markdown(MAP_LINK))
    assert escape_markdown("a\x1b[31m\x00b\u202ec &amp;\n:red[x] $x$") == r"a \[31m b c \&amp; \:red\[x\] \$x\$"


def test_the_time_left_starts_after_the_model_is_loaded(monkeypatch):
    from explorer.ui import build_page

    now = [0.0]
    monkeypatch.setattr(build_page.time, "perf_counter", lambda: now[0])
    clock = build_page.BuildClock()
    assert clock.update("embed", 0.0, "Loading the model all-MiniLM-L6-v2") == ("Loading the model", "")
    now[0] = 22.0  # the model took 22 s to load; the first batch arrives
    assert clock.update("embed", 0.05, "64 of 1,280 texts") == ("Embedding", "")
    now[0] = 24.0  # two seconds for the next 5 %: about 36 s for the remaining 90 %
    title, eta = clock.update("embed", 0.10, "128 of 1,280 texts")
    assert (title, eta) == ("Embedding", " · about 36 s left"), "measured from the first batch, not the load"
    assert clock.update("project", 0.0, "Projecting") == ("Projecting", "")


def test_the_line_by_the_map_names_what_is_dimmed():
    import pandas as pd

    from explorer.ui.state import dim_note

    cluster = pd.Series({"label": "protein · folding", "size": 12})
    assert dim_note(30, filtered=None, cluster=None, shown=30) == ""
    assert dim_note(30, filtered=10, cluster=None, shown=10) == "10 of 30 rows match the filters; the rest are dimmed."
    assert dim_note(30, filtered=None, cluster=cluster, shown=12) == (
        "cluster “protein · folding” highlighted (12 rows); the rest are dimmed.")
    assert dim_note(30, filtered=10, cluster=cluster, shown=4).endswith("; 4 shown, the rest dimmed.")


# ---------------------------------------------------------------- links: ?map= with any value



def _messages(at: AppTest) -> list[str]:
    return [m.value for kind in ("error", "warning", "info", "success") for m in getattr(at, kind)]


@pytest.mark.parametrize("value", [
    "..", "../x", "/etc/passwd", MAP_LINK, "No such map", "", "x" * 5_000, "漢" * 200, "a\x1b[31mb\x00c\u202e",
    "**BOLD** <img src=x onerror=\"window.__pwned=1\">",
], ids=["dotdot", "dotdot-slash", "absolute", "phish", "missing", "empty", "long", "wide", "controls", "html"])
def test_any_map_link_shows_one_escaped_message_and_clears_itself(value):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["map"] = value
    at.query_params["query"] = "protein"
    _run(at)
    messages = _messages(at)
    assert len(messages) == 1, messages
    assert messages[0].startswith("The link names"), messages
    assert not obeyed(messages[0]), messages[0]
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", messages[0]), "no control characters"
    assert len(messages[0]) < 600, "a long link is shortened in the message"
    assert "map" not in at.query_params and "query" not in at.query_params, at.query_params
    assert at.button(key="try_sample").label == "Try the sample papers", "the first screen is usable"
    _run(at)  # a reload: the URL no longer names the map, so the message is not repeated
    assert _messages(at) == []


@pytest.mark.slow
def test_a_picked_cluster_shows_its_card(papers_frame):
    at = _open_clustered(papers_frame)
    _pick_cluster(at, 0)
    label, members = _cluster_rows("clustered", 0)
    texts = [m.value.replace("\\", "") for m in at.markdown]
    central = next(t for t in texts if t.startswith("**Most central**"))
    titles = set(papers_frame["title"].iloc[sorted(members)])
    listed = [line.removeprefix("1. ") for line in central.splitlines()[1:]]
    assert 3 <= len(listed) <= 5 and all(title in titles for title in listed), listed
    captions = [c.value.replace("\\", "") for c in at.caption]
    assert any(c.startswith("Terms (papers using them): ") and "(" in c for c in captions)
    years = papers_frame["year"].iloc[sorted(members)]
    assert f"Years {years.min()}–{years.max()}" in captions
    assert any(c.startswith("field: ") for c in captions)


@pytest.mark.slow
def test_what_is_new_on_a_grown_map(papers_frame):
    from explorer.grow import add_rows

    at = _open_clustered(papers_frame, name="grown")
    assert not [e for e in at.expander if e.label.startswith("What is new")], "a map never grown has nothing new"
    strangers = pd.DataFrame({"title": ["Volcano lava ash", "Lava magma crater"], "year": [2030, 2031],
                              "field": ["geology", "geology"]})
    add_rows("grown", pd.concat([papers_frame.head(4).assign(title=lambda f: f["title"] + " again"), strangers],
                                ignore_index=True), workspace=Workspace())
    at = _run(AppTest.from_file(APP, default_timeout=120))
    at.selectbox(key="open_choice").set_value("grown")
    at.button(key="open_saved").click()
    _run(at)
    panel = next(e for e in at.expander if e.label.startswith("What is new"))
    assert panel.label == "What is new: batch 1, 6 rows"
    assert any(c.value.replace("\\", "").startswith("Gained most: ") and "(+4)" in c.value.replace("\\", "")
               for c in panel.caption), [c.value for c in panel.caption]
    at.button(key="whats_new_only").click()
    _run(at)
    total = len(Workspace().open("grown").points)
    assert any(f"6 of {total} rows match the filters" in c.value for c in at.caption), [c.value for c in at.caption]
    apart = Workspace().open("grown").manifest["batches"][-1]["apart_rows"]
    assert apart and set(apart) <= {len(papers_frame) + 4, len(papers_frame) + 5}, "the strangers land apart"
    at.button(key="whats_new_apart").click()
    _run(at)
    assert at.session_state["selection"] == apart and at.session_state["side_tab"] == "Selection"


@pytest.mark.slow
def test_a_paper_open_in_details_is_screened_there(papers_frame):
    from explorer.screening import RELEVANT, decisions_of

    at = _open_clustered(papers_frame, name="details")
    at.session_state["selected_row"] = 3
    at.session_state["side_tab"] = "Details"
    _run(at)
    assert any(c.value == "Screening: not screened" for c in at.caption)
    at.button(key="details_yes").click()
    _run(at)
    _run(at)  # the page runs again whole on the saved decision
    assert decisions_of(Workspace().open("details")).iloc[3] == RELEVANT
    assert any(c.value == "Screening: relevant" for c in at.caption)
    assert at.button(key="details_yes").disabled


@pytest.mark.slow
def test_events_that_pile_up_during_a_run_are_all_applied_once_in_order(papers_frame):
    build_map(papers_frame, name="papers", model="hashing", workspace=Workspace())
    at = _run(AppTest.from_file(APP, default_timeout=120))
    at.selectbox(key="open_choice").set_value("papers")
    at.button(key="open_saved").click()
    _run(at)
    key = f"map:papers:{at.session_state['map_stamp']}"
    # A box selection, then a click that landed while the run the box started was busy: both arrive together.
    box = {"instance": "page-1", "n": 1, "seq": "page-1:1", "kind": "selection", "ids": [1, 2, 3]}
    click = {"instance": "page-1", "n": 2, "seq": "page-1:2", "kind": "click", "ids": [7]}
    at.session_state[key] = {"seq": "page-1:2", "events": [box, click]}
    _run(at)
    assert at.session_state["selection"] == [1, 2, 3] and at.session_state["selected_row"] == 7
    assert map_args(at)["ack"] == {"instance": "page-1", "n": 2}, "the browser may forget both"
    # Sent again (the browser had not heard the ack yet) with a new one: only the new one applies.
    at.session_state["selection"] = [9]
    again = {"instance": "page-1", "n": 3, "seq": "page-1:3", "kind": "click", "ids": [5]}
    at.session_state[key] = {"seq": "page-1:3", "events": [box, click, again]}
    _run(at)
    assert at.session_state["selection"] == [9] and at.session_state["selected_row"] == 5
