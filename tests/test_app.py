"""AppTest of the app's pages: first screen, upload and build, search, selection, library, about."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from map_spec import map_args, overlay_names
from streamlit.testing.v1 import AppTest
from test_browser_escaping import (
    HTML_COLUMN,
    LINK,
    LINK_COLUMN,
    MAP_LINK,
    MARKDOWN_MAP,
        VALUES,
    markdown_frame,
    obeyed,
)
from uploads import send_file

from explorer import ProjectionConfig, Workspace, build_map
from explorer.cluster import ClusterConfig
from explorer.map_clusters import cluster_table
from explorer.ui.state import cluster_table_key

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
LIBRARY = str(REPO / "pages" / "1_Library.py")
ABOUT = str(REPO / "pages" / "2_About.py")


@pytest.fixture(autouse=True)
def hashing_model(monkeypatch):
    """The app's default model becomes the weights-free hashing embedder: fast and deterministic."""
    monkeypatch.setenv("EXPLORER_DEFAULT_MODEL", "hashing")


def _app(path: str = APP) -> AppTest:
    at = AppTest.from_file(path, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _upload(at: AppTest, name: str, data: bytes) -> None:
    send_file(at, name, data)
    assert not at.exception, at.exception


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def test_first_screen_offers_three_ways_in():
    at = _app()
    assert at.title[0].value == "Embedding Explorer"
    assert at.button(key="try_sample").label == "Try the sample papers"
    assert [u.key for u in at.file_uploader] == ["upload_images"]  # tables go through the chunked picker
    assert at.button(key="try_sample_images").label == "Try the sample digits"
    assert any("No saved maps yet" in c.value for c in at.caption)


def test_upload_preview_detects_columns_and_builds(papers_frame):
    at = _app()
    _upload(at, "papers.csv", _csv(papers_frame))
    assert at.multiselect(key="upload_columns").value == ["title", "abstract"]
    assert at.dataframe[0].value.shape[0] == 20
    assert at.text_input(key="upload_name").value == "papers"
    at.button(key="build_upload").click().run()
    assert not at.exception, at.exception
    assert at.session_state["map_name"] == "papers"
    assert Workspace().open("papers").manifest["rows"] == len(papers_frame)
    assert at.selectbox(key="colour_by").value == "field"
    assert map_args(at)["base_key"]


def test_bad_upload_shows_error_and_app_stays_usable():
    at = _app()
    _upload(at, "numbers.csv", b"a,b\n1,2\n3,4\n")
    assert not at.exception
    assert any("No text column" in w.value for w in at.warning)
    assert at.button(key="build_upload").disabled, "nothing to embed: the button says so instead of failing"
    assert at.button(key="try_sample").label == "Try the sample papers"


def test_template_overrides_columns(papers_frame):
    at = _app()
    _upload(at, "papers.csv", _csv(papers_frame))
    at.text_input(key="upload_template").set_value("{title} ({field})").run()
    assert any("Protein study 0 of folding (biology)" in c.value.replace("\\", "") for c in at.caption)
    at.text_input(key="upload_template").set_value("{nope}").run()
    assert any("No column named 'nope'" in w.value for w in at.warning)


def _open_built_map(papers_frame) -> AppTest:
    build_map(papers_frame, name="papers", model="hashing", workspace=Workspace())
    at = _app()
    at.selectbox(key="open_choice").set_value("papers")
    at.button(key="open_saved").click().run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_search_lists_ranked_results_and_focuses_a_hit(papers_frame):
    at = _open_built_map(papers_frame)
    at.text_input(key="query").set_value("protein folding enzyme").run()
    assert not at.exception, at.exception
    hits = [b for b in at.button if b.key and b.key.startswith("hit_")]
    assert len(hits) == 10
    fields = papers_frame.set_index("title")["field"]
    top_titles = [_hit_title(b.label) for b in hits[:3]]
    assert [fields[t] for t in top_titles] == ["biology"] * 3
    assert {"search hits", "query"} <= set(overlay_names(at))
    first_title = top_titles[0]
    hits[0].click().run()
    assert not at.exception, at.exception
    assert "focused" in overlay_names(at)
    assert at.session_state["side_tab"] == "Details"
    assert any(m.value.replace("\\", "") == f"#### {first_title}" for m in at.markdown), "the full title"
    # Only the open tab runs: the list is not drawn while Details is open, and comes back as it was.
    assert not [b for b in at.button if b.key and b.key.startswith("hit_")], "the Results tab did not run"
    assert not [b for b in at.button if b.key and b.key.startswith("why_")], "hashing vectors have no tokens to show"
    assert any(c.value.startswith("Words shared with the query: protein") for c in at.caption)
    neighbours = [b for b in at.button if b.key and b.key.startswith("nn_")]
    assert len(neighbours) == 10
    at.session_state["side_tab"] = "Results"
    at.run()
    listed = [b for b in at.button if b.key and b.key.startswith("hit_")]
    assert [_hit_title(b.label) for b in listed[:3]] == top_titles, "the results stay listed"
    assert listed[0].label.startswith("▶ ") and not listed[1].label.startswith("▶ "), "the open one is marked"
    assert not [b for b in at.button if b.key and b.key.startswith("nn_")], "the Details tab did not run"
    at.session_state["side_tab"] = "Details"
    at.run()
    neighbours = [b for b in at.button if b.key and b.key.startswith("nn_")]
    neighbours[0].click().run()
    assert at.session_state["selected_row"] == int(neighbours[0].key.rsplit("_", 1)[1])


def _hit_title(label: str) -> str:
    """The title in a result's label ("**1.** Title · `0.74`", "▶ " before the open one)."""
    match = re.fullmatch(r"(?:▶ )?\*\*\d+\.\*\* (.*) · `-?[\d.]+`", label)
    assert match, label
    return match.group(1).replace("\\", "")


def _selected_line(at: AppTest) -> str | None:
    """The selection tab's heading ("N rows selected"), or None when nothing is selected."""
    lines = [m.value for m in at.markdown if m.value.endswith("rows selected**")]
    return lines[0].strip("*") if lines else None


def _chart_event(at: AppTest, **event) -> None:
    """What the map widget sends when a person clicks a point or draws a box or lasso."""
    at.session_state[f"map:{at.session_state['map_name']}:{at.session_state['map_stamp']}"] = event
    at.run()
    assert not at.exception, at.exception


@pytest.mark.slow
def test_map_events_select_rows_and_open_details(papers_frame):
    at = _open_built_map(papers_frame)
    _chart_event(at, seq="1", kind="selection", shape="lasso", ids=[3, 4, 5])
    assert _selected_line(at) == "3 rows selected"
    assert any(m.value == "**3 selected**" for m in at.markdown), "the badge by the map counts them"
    assert at.session_state["side_tab"] == "Selection"
    assert map_args(at)["selected"] == [3, 4, 5], "the browser marks the selection (the map core fades the rest)"
    _chart_event(at, seq="2", kind="click", ids=[7])
    assert at.session_state["selected_row"] == 7 and at.session_state["side_tab"] == "Details"
    assert at.session_state["selection"] == [3, 4, 5], "a click keeps the selection"
    at.button(key="close_details").click().run()
    assert "selected_row" not in at.session_state, "an event already handled is not replayed"


@pytest.mark.slow
def test_selection_survives_search_and_recolouring(papers_frame):
    at = _open_built_map(papers_frame)
    at.session_state["selection"] = [0, 1, 2, 15]
    at.session_state["side_tab"] = "Selection"
    at.run()
    assert _selected_line(at) == "4 rows selected"
    base = map_args(at)["base_key"]
    at.text_input(key="query").set_value("market price").run()
    assert map_args(at)["base_key"] == base, "a search only changes the overlays; the base layer stays"
    assert at.session_state["side_tab"] == "Results", "a new query brings its results to the front"
    assert _selected_line(at) is None, "only the open tab runs"
    assert any(m.value == "**4 selected**" for m in at.markdown), "the badge by the map still counts them"
    at.selectbox(key="colour_by").set_value("year").run()
    assert not at.exception, at.exception
    assert map_args(at)["base_key"] != base
    at.session_state["side_tab"] = "Selection"
    at.run()
    assert _selected_line(at) == "4 rows selected"
    assert at.get("download_button")
    at.button(key="clear_selection").click().run()
    assert _selected_line(at) is None
    assert map_args(at)["selected"] is None, "the browser is told to clear it too"
    assert not any(m.value.endswith(" selected**") for m in at.markdown), "the badge goes with it"


@pytest.mark.slow
def test_filters_dim_without_removing(papers_frame):
    at = _open_built_map(papers_frame)
    at.multiselect(key="filter_field").set_value(["physics"]).run()
    assert any("10 of 30 rows match the filters" in c.value for c in at.caption)
    at.text_input(key="keyword").set_value("[unclosed").run()
    at.checkbox(key="keyword_regex").check().run()
    assert not at.exception
    assert any("not a valid regular expression" in w.value for w in at.warning)


def test_library_lists_renames_and_deletes(papers_frame):
    build_map(papers_frame, name="first map", model="hashing", projection=None, workspace=Workspace())
    at = _app(LIBRARY)
    assert list(at.dataframe[0].value["map"]) == ["first map"]
    at.text_input(key="library_new_name").set_value("renamed map").run()
    at.button(key="library_rename").click().run()
    assert not at.exception, at.exception
    assert [m.name for m in Workspace().list()] == ["renamed map"]
    assert at.button(key="library_delete").disabled
    at.checkbox(key="library_confirm_delete").check().run()
    at.button(key="library_delete").click().run()
    assert Workspace().list() == []
    assert any("No saved maps yet" in i.value for i in at.info)


def test_library_html_export_is_offered(papers_frame):
    build_map(papers_frame, name="html map", model="hashing", workspace=Workspace())
    at = _app(LIBRARY)
    at.button(key="library_prepare_html").click().run()
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == 3


def test_about_names_the_model_and_licence():
    at = _app(ABOUT)
    text = " ".join(m.value for m in at.markdown)
    assert "all-MiniLM-L6-v2" in text and "Apache 2.0" in text


def _open(name: str) -> AppTest:
    at = _app()
    at.selectbox(key="open_choice").set_value(name)
    at.button(key="open_saved").click().run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_cluster_panel_colours_and_contrast(papers_frame):
    build_map(papers_frame, name="clustered", model="hashing", workspace=Workspace(),
              clusters=ClusterConfig(method="kmeans", k=3, levels=1))
    at = _open("clustered")
    assert any(h.value == "Clusters (3)" for h in at.subheader)
    assert "cluster label" in at.selectbox(key="colour_by").options
    assert "cluster" not in at.selectbox(key="colour_by").options
    at.selectbox(key="colour_by").set_value("cluster label").run()
    assert not at.exception, at.exception
    labels = json.loads(map_args(at)["labels"])
    texts = {text for _, _, text, _, _ in labels["labels"]}
    assert texts == set(cluster_table(Workspace().open("clustered"), "coarse")["label"]), "every label goes along"
    assert labels["levels"] == ["coarse"], "the browser places them, level by level"
    assert at.selectbox(key="contrast_a").value != at.selectbox(key="contrast_b").value
    def contrast():
        return next(e for e in at.expander if e.label == "Contrast two groups")

    assert len(contrast().dataframe) == 0, "words are counted only on request"
    at.toggle(key="contrast_on").set_value(True).run()
    assert not at.exception, at.exception
    assert len(contrast().dataframe) == 2


@pytest.mark.slow
def test_find_clusters_on_a_map_built_without(papers_frame):
    build_map(papers_frame, name="plain", model="hashing", workspace=Workspace())
    at = _open("plain")
    at.button(key="find_clusters").click().run()
    assert not at.exception, at.exception
    assert any(h.value.startswith("Clusters (") for h in at.subheader)
    assert Workspace().open("plain").manifest["clusters"]


@pytest.mark.slow
def test_remove_selection_and_reproject_keeps_the_original(papers_frame):
    build_map(papers_frame, name="source", model="hashing", workspace=Workspace())
    before = (Workspace().map_path("source") / "points.parquet").read_bytes()
    at = _open("source")
    at.session_state["selection"] = list(range(10))
    at.session_state["side_tab"] = "Selection"
    at.run()
    at.button(key="remove_selection").click().run()
    assert not at.exception, at.exception
    new_name = at.session_state["map_name"]
    assert new_name != "source"
    assert len(Workspace().open(new_name).points) == len(papers_frame) - 10
    assert (Workspace().map_path("source") / "points.parquet").read_bytes() == before
    assert any("is unchanged" in i.value for i in at.info)


@pytest.mark.slow
def test_sample_papers_is_built_once_then_reopened():
    at = _app()
    at.button(key="try_sample").click().run()
    assert not at.exception, at.exception
    assert at.session_state["map_name"] == "Sample papers"
    first = Workspace().open("Sample papers").manifest["created"]
    assert any(h.value.startswith("Clusters (") for h in at.subheader)
    at.button(key="new_map").click().run()
    at.button(key="try_sample").click().run()
    assert at.session_state["map_name"] == "Sample papers"
    assert Workspace().open("Sample papers").manifest["created"] == first, "the second click reopens, not rebuilds"


def test_mode_choice_is_explained_before_building(papers_frame, monkeypatch):
    monkeypatch.delenv("EXPLORER_DEFAULT_MODEL")
    at = _app()
    _upload(at, "papers.csv", _csv(papers_frame))
    assert at.radio(key="upload_mode").value == "auto"
    assert any("few enough for the transformer" in i.value for i in at.info)
    at.radio(key="upload_mode").set_value("fast").run()
    assert any("You chose the fast mode" in i.value for i in at.info)


def _digit_pngs(digit: str, n: int) -> list[tuple[str, bytes, str]]:
    files = sorted((REPO / "sample_data" / "images" / digit).glob("*.png"))[:n]
    return [(f"{digit}_{f.name}", f.read_bytes(), "image/png") for f in files]


@pytest.mark.slow
def test_sample_digits_search_by_words_and_by_an_example():
    at = _app()
    at.button(key="try_sample_images").click().run()
    assert not at.exception, at.exception
    assert at.session_state["map_name"] == "Sample digits"
    assert Workspace().open("Sample digits").kind == "images"
    at.text_input(key="query").set_value("3").run()
    assert not at.exception, at.exception
    assert any("file names and labels" in c.value for c in at.caption), "a keyword search says why"
    assert not any("file names and labels" in i.value for i in at.info), "said once, by the map"
    hits = [b for b in at.button if b.key and b.key.startswith("hit_")]
    assert len(hits) == 10 and all("3/" in b.label.replace("\\", "") for b in hits)
    assert not [b for b in at.button if b.key and b.key.startswith("why_")], "no token explanation for images"
    at.text_input(key="query").set_value("seven").run()
    hits = [b for b in at.button if b.key and b.key.startswith("hit_")]
    assert len(hits) == 10 and all("7/" in b.label.replace("\\", "") for b in hits), "a number word finds its digit"
    at.text_input(key="query").set_value("giraffe").run()
    assert any("No file name, label or text contains" in c.value for c in at.caption), "not 'the threshold'"
    at.text_input(key="query").set_value("").run()
    _, example, _ = _digit_pngs("8", 1)[0]
    at.file_uploader(key="example_image").set_value(("eight.png", example, "image/png")).run()
    assert not at.exception, at.exception
    hits = [b.label.replace("\\", "") for b in at.button if b.key and b.key.startswith("hit_")]
    assert hits and "8/" in hits[0], hits
    assert "example image" in map_args(at)["overlay"]
    created = Workspace().open("Sample digits").manifest["created"]
    at.button(key="new_map").click().run()
    at.button(key="try_sample_images").click().run()
    assert at.session_state["map_name"] == "Sample digits", "the second click reopens the map, not 'Sample digits (2)'"
    assert Workspace().open("Sample digits").manifest["created"] == created
    assert [m.name for m in Workspace().list()] == ["Sample digits"]


@pytest.mark.slow
def test_image_upload_offers_clip_or_pixels_and_builds():
    at = _app()
    at.file_uploader(key="upload_images").set_value(_digit_pngs("1", 6) + _digit_pngs("7", 6)).run()
    assert not at.exception, at.exception
    assert any("12 images" in c.value for c in at.caption)
    # No CLIP model on this machine (tests run offline): the form says so and will not build with it.
    assert any("offline pixel features" in w.value for w in at.warning)
    assert at.button(key="build_images").disabled
    at.radio(key="image_model_choice").set_value("Offline pixel features (no weights)").run()
    assert not at.button(key="build_images").disabled
    at.button(key="build_images").click().run()
    assert not at.exception, at.exception
    saved = Workspace().open(at.session_state["map_name"])
    assert saved.kind == "images" and saved.has_thumbnails and len(saved.points) == 12
    assert map_args(at)["base_key"]


def test_library_opens_a_map_with_a_fresh_view(papers_frame):
    build_map(papers_frame, name="lib map", model="hashing", workspace=Workspace())
    at = _app()  # from the main page, as in the app, so switch_page("app.py") finds it
    at.switch_page("pages/1_Library.py").run()
    at.session_state["selection"] = [1, 2]
    at.session_state["selected_row"] = 3
    at.button(key="library_open").click().run()
    assert not at.exception, at.exception
    assert at.session_state["map_name"] == "lib map"
    assert "selection" not in at.session_state and "selected_row" not in at.session_state
    assert at.selectbox(key="colour_by").value == "field", "the map page shows the map"


# ---------------------------------------------------------------- user text is shown literally

# Proto fields Streamlit renders as Markdown: labels, tooltips, bodies (markdown, captions, alerts, headers),
# image captions, radio and pills options, progress texts, dialog titles. Select boxes show options as text.
MARKDOWN_FIELDS = {"label", "help", "body", "caption", "captions", "content", "text", "title"}
PLAIN_OPTIONS = {"Selectbox", "MultiSelect"}


def _markdown_strings(at: AppTest) -> list[str]:
    """Every string of the page that Streamlit renders as Markdown."""
    found: list[str] = []

    def from_proto(message) -> None:
        for field, value in message.ListFields():
            repeated = not isinstance(value, str | bytes) and hasattr(value, "__len__")
            items = list(value) if repeated else [value]
            if field.type == field.TYPE_MESSAGE:
                for item in items:
                    from_proto(item)
            elif field.type == field.TYPE_STRING and (
                    field.name in MARKDOWN_FIELDS
                    or (field.name == "options" and message.DESCRIPTOR.name not in PLAIN_OPTIONS)):
                found.extend(items)

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "ListFields"):
            from_proto(proto)
        for child in (getattr(node, "children", None) or {}).values():
            walk(child)

    walk(at._tree)
    return found


def _assert_escaped(at: AppTest, where: str) -> int:
    """No string carrying the hostile text renders it as Markdown; returns how many carry it."""
    carrying = [s for s in _markdown_strings(at) if re.search(r"evil|pwned|BOLD", s)]
    rendered = [s for s in carrying if obeyed(s)]
    assert not rendered, f"{where}: {rendered}"
    return len(carrying)


@pytest.mark.slow
def test_markdown_and_html_in_a_map_are_shown_literally():
    saved = build_map(markdown_frame(), name=MARKDOWN_MAP, model="hashing", text_columns=["title", "abstract"],
                      clusters=ClusterConfig(method="kmeans", k=3, levels=1), workspace=Workspace()).saved
    at = _open(saved.name)
    shown = _assert_escaped(at, "the open map")
    at.selectbox(key="colour_by").set_value(LINK_COLUMN)
    at.multiselect(key=f"filter_{LINK_COLUMN}").set_value(VALUES[:2])
    at.multiselect(key=f"filter_{HTML_COLUMN}").set_value(VALUES[1:3])
    at.run()
    assert not at.exception, at.exception
    shown += _assert_escaped(at, "filters and colour")
    at.text_input(key="keyword").set_value(f"{LINK} (")
    at.checkbox(key="keyword_regex").check()
    at.text_input(key="query").set_value(MAP_LINK)
    at.run()
    assert not at.exception, at.exception
    assert any("not a valid regular expression" in w.value for w in at.warning)
    shown += _assert_escaped(at, "a bad filter pattern and a search")
    hits = [b for b in at.button if b.key and b.key.startswith("hit_")]
    hits[0].click().run()
    assert at.session_state["side_tab"] == "Details"
    shown += _assert_escaped(at, "a row's details")
    at.session_state[cluster_table_key(saved, "coarse")] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.session_state["selection"] = list(range(6))
    at.session_state["side_tab"] = "Selection"
    at.run()
    assert not at.exception, at.exception
    shown += _assert_escaped(at, "a cluster pick and a selection")
    at.button(key="remove_selection").click().run()
    assert not at.exception, at.exception
    shown += _assert_escaped(at, "the note after a removal")
    library = _app(LIBRARY)
    library.checkbox(key="library_confirm_delete").check().run()
    shown += _assert_escaped(library, "the Library")
    assert shown >= 20, "the hostile text did reach the page"


def test_file_names_and_labels_of_uploaded_images_are_shown_literally():
    png = _digit_pngs("1", 1)[0][1]
    at = _app()
    at.file_uploader(key="upload_images").set_value(
        [(f"**BOLD** [x](evil{i}).png", png, "image/png") for i in range(3)]).run()
    assert not at.exception, at.exception
    assert _assert_escaped(at, "the image upload") >= 3


def test_an_upload_is_parsed_once_per_file_content(papers_frame, monkeypatch):
    from explorer.ui import build_page

    calls = []
    real = build_page.load_table
    monkeypatch.setattr(build_page, "load_table", lambda *a, **k: calls.append(k.get("name")) or real(*a, **k))
    at = _app()
    _upload(at, "papers.csv", _csv(papers_frame))
    at.text_input(key="upload_template").set_value("{title}").run()
    at.text_input(key="upload_name").set_value("renamed").run()
    at.checkbox(key="upload_clusters").uncheck().run()
    at.multiselect(key="upload_columns").set_value(["abstract"]).run()
    assert not at.exception, at.exception
    assert calls == ["papers.csv"], "one parse for five runs of the form"
    _upload(at, "papers.csv", _csv(papers_frame.head(12)))  # other bytes under the same name: read again
    assert len(calls) == 2 and at.dataframe[0].value.shape[0] == 12
    at.button(key="build_upload").click().run()
    assert not at.exception, at.exception
    assert len(calls) == 2 and Workspace().open(at.session_state["map_name"]).manifest["rows"] == 12


def test_a_sql_condition_dims_the_rest_and_stays_in_the_url(papers_frame):
    build_map(papers_frame, name="papers", model="hashing", projection=ProjectionConfig(method="pca"),
              workspace=Workspace())
    at = _app()
    at.query_params["map"] = "papers"
    at.query_params["sql"] = "year >= 2005"  # a shared link: the condition comes with the map
    at.run()
    assert not at.exception, at.exception
    assert at.text_input(key="sql_filter").value == "year >= 2005"
    assert any("15 of 30 rows match the filters" in c.value for c in at.caption), [c.value for c in at.caption]
    at.text_input(key="sql_filter").set_value("year >= 2008 AND field = 'physics'").run()
    assert any("2 of 30 rows match the filters" in c.value for c in at.caption)
    assert at.query_params["sql"] == "year >= 2008 AND field = 'physics'"
    at.multiselect(key="filter_field").set_value(["biology"]).run()  # combines with the other filters
    assert any("0 of 30 rows match the filters" in c.value for c in at.caption)
    at.text_input(key="sql_filter").set_value('"**bold** [x](https://evil.example)" > 1').run()
    assert not at.exception, at.exception
    assert len(at.warning) == 1 and "not found" in at.warning[0].value
    assert "\\*\\*bold\\*\\* \\[x\\]" in at.warning[0].value, "the user's text shows as text"
    at.text_input(key="sql_filter").set_value("").run()
    assert "sql" not in at.query_params


def test_a_facet_filter_in_the_link_dims_the_rest_and_follows_the_browsers_facets(papers_frame):
    build_map(papers_frame, name="papers", model="hashing", projection=ProjectionConfig(method="pca"),
              workspace=Workspace())
    at = _app()
    at.query_params["map"] = "papers"
    at.query_params["facets"] = "year:2002..2003"  # a shared link: the facets come with the map
    at.run()
    assert not at.exception, at.exception
    assert any("6 of 30 rows match the filters" in c.value for c in at.caption), [c.value for c in at.caption]
    dimmed = map_args(at)["base_key"]
    assert at.query_params["facets"] == "year:2002..2003"
    # The browser's facets send their state as a map event: Python's view follows, and the URL with it.
    key = f"map:papers:{at.session_state['map_stamp']}"
    at.session_state[key] = {"seq": "f1", "kind": "facets",
                             "state": {"year": {"range": [2000, 2004]}, "field": {"selected": ["physics"]}}}
    at.run()
    assert any("5 of 30 rows match the filters" in c.value for c in at.caption), [c.value for c in at.caption]
    assert at.query_params["facets"] == "year:2000..2004;field=physics"
    assert map_args(at)["base_key"] != dimmed
    at.button(key="clear_facets").click().run()
    assert not any("match the filters" in c.value for c in at.caption)
    assert "facets" not in at.query_params
    at.session_state["facet_filter"] = "field=**bold** [x](https://evil.example)"
    at.run()
    assert "\\*\\*bold\\*\\* \\[x\\]" in at.button(key="clear_facets").help, "the link's text shows as text"
    at.session_state["facet_filter"] = "year:2009..2001"
    at.run()
    assert not at.exception, at.exception
    assert len(at.warning) == 1 and "ends before it starts" in at.warning[0].value
