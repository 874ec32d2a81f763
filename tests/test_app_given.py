"""AppTest of the upload form's "Your own vectors or layout": vectors, the model that made them, x/y, neighbours."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from uploads import send_file

from explorer import Workspace
from explorer.points_file import read_neighbor_lists
from explorer.ui.text import escape_markdown

APP = str(Path(__file__).resolve().parents[1] / "app.py")

TOPICS = ["robot grasping hand", "protein folding biology", "graph neural network"]
SECTION = "Your own vectors or layout"


@pytest.fixture(autouse=True)
def hashing_model(monkeypatch):
    """The app's default model becomes the weights-free hashing embedder, as in test_app."""
    monkeypatch.setenv("EXPLORER_DEFAULT_MODEL", "hashing")


def _table(n: int = 30) -> pd.DataFrame:
    """Three topics, each with its own 6-number vectors, a hand-made layout and a count (a number, not a layout)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        t = i % 3
        v = np.full(6, 0.05)
        v[t] = 1.0
        rows.append({"title": f"{TOPICS[t]} paper {i}", "emb": (v + rng.normal(0, 0.01, 6)).tolist(),
                     "x": float(10 * t + i / n), "y": float(-t - i / (2 * n)), "count": i * 7,
                     "nb": {"ids": [(i + 3) % n, (i + 6) % n], "distances": [0.1, 0.2]}})
    return pd.DataFrame(rows)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _uploaded(frame: pd.DataFrame, name: str = "given.parquet") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    send_file(at, name, _parquet(frame))
    assert not at.exception, at.exception
    return at


def _keys(widgets) -> set[str]:
    return {w.key for w in widgets}


def _section(at: AppTest):
    return next(e for e in at.expander if e.label == SECTION)


def test_own_vectors_and_layout_are_offered_chosen_and_kept():
    frame = _table()
    at = _uploaded(frame)
    assert _section(at).proto.expanded, "a table with a vector column opens the section"
    assert at.selectbox(key="upload_vectors").options == ["None: embed the text", "emb"]
    # The reader renames a user's x and y (the map's own columns); the form offers them as the preview shows them.
    assert at.selectbox(key="upload_x").options == ["None: UMAP or PCA", "x_original", "y_original", "count"]
    assert at.multiselect(key="upload_columns").value == ["title"], "JSON text of numbers is not prose"
    assert "emb" not in at.multiselect(key="upload_columns").options
    assert "upload_model_choice" in _keys(at.radio)  # (the mode radio shows only without a default model)

    at.selectbox(key="upload_vectors").set_value("emb").run()
    assert "upload_model_choice" not in _keys(at.radio), "the vectors are kept: no model to embed them with"
    assert at.radio(key="upload_vector_model").value == "None"
    assert any("search matches the words" in c.value for c in at.caption)
    at.selectbox(key="upload_x").set_value("x_original").run()
    assert at.button(key="build_upload").disabled, "half a layout waits for its y"
    assert any("both columns of the layout" in w.value for w in at.warning)
    at.selectbox(key="upload_y").set_value("y_original").run()
    assert not at.button(key="build_upload").disabled
    assert any("is kept as it is" in c.value for c in at.caption)
    assert "upload_method" not in _keys(at.selectbox), "projection settings are moot with a layout"

    at.button(key="build_upload").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    saved = Workspace().open(at.session_state["map_name"])
    given = saved.manifest["given"]
    assert given["vectors"] == "emb" and given["dimension"] == 6
    assert given["layout"] == ["x_original", "y_original"] and given["query_model"] is None
    assert saved.manifest["text_columns"] == ["title"]
    np.testing.assert_allclose(saved.coords, frame[["x", "y"]].to_numpy(), atol=1e-6)
    expected = np.stack(frame["emb"].to_list())
    np.testing.assert_allclose(saved.embeddings, expected / np.linalg.norm(expected, axis=1, keepdims=True),
                               atol=1e-6)


def test_the_embedding_mode_goes_when_vectors_are_given(monkeypatch):
    monkeypatch.delenv("EXPLORER_DEFAULT_MODEL")
    at = _uploaded(_table())
    assert "upload_mode" in _keys(at.radio), "no default model: the mode chooses the embedder"
    at.selectbox(key="upload_vectors").set_value("emb").run()
    assert not at.exception, at.exception
    assert "upload_mode" not in _keys(at.radio) and "upload_model_choice" not in _keys(at.radio)
    assert not [i for i in at.info if "transformer" in i.value], "no advice on a mode that does not apply"


def test_a_named_model_must_make_the_vectors_dimension():
    frame = _table()
    at = _uploaded(frame)
    at.selectbox(key="upload_vectors").set_value("emb").run()
    at.radio(key="upload_vector_model").set_value("Bundled all-MiniLM-L6-v2").run()
    at.button(key="build_upload").click().run()  # the bundled model is hashing-256 here: not 6 numbers
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [escape_markdown(
        "Your vectors in emb have 6 numbers each, but hashing-256 makes 256: name the model that made them, or leave "
        "the model out to search by words.")], "the library's message, shown as the text it is"
    assert Workspace().list() == []
    assert at.selectbox(key="upload_vectors").value == "emb", "the form stays as it was"

    at.radio(key="upload_vector_model").set_value("Other sentence-transformers model").run()
    assert at.button(key="build_upload").disabled, "no name yet"
    at.text_input(key="upload_vector_model_name").set_value("hashing-6").run()
    at.button(key="build_upload").click().run()
    assert not at.exception, at.exception
    saved = Workspace().open(at.session_state["map_name"])
    assert saved.manifest["given"]["query_model"] == "hashing-6"
    assert saved.manifest["projection"]["method_used"] != "given", "no layout chosen: it is computed"


def test_ragged_vectors_give_one_error_and_no_map():
    frame = _table()
    frame.at[12, "emb"] = frame.at[12, "emb"][:4]
    at = _uploaded(frame)
    at.selectbox(key="upload_vectors").set_value("emb").run()
    at.button(key="build_upload").click().run()
    assert not at.exception, at.exception
    assert len(at.error) == 1 and escape_markdown("different lengths (4, 6; row 13") in at.error[0].value
    assert Workspace().list() == []
    assert not at.button(key="build_upload").disabled, "the form is kept, to fix and build again"


def test_given_neighbours_are_kept():
    frame = _table()
    at = _uploaded(frame)
    assert at.selectbox(key="upload_neighbors").options == ["None: computed from the vectors", "nb"]
    at.selectbox(key="upload_neighbors").set_value("nb").run()
    at.button(key="build_upload").click().run()
    assert not at.exception, at.exception
    saved = Workspace().open(at.session_state["map_name"])
    assert saved.manifest["given"]["neighbors"] == "nb"
    kept = read_neighbor_lists(Workspace().map_path(saved.name) / "points.parquet")
    assert [row["ids"] for row in kept] == [row["ids"] for row in frame["nb"]]


def test_two_plain_numbers_fold_the_section_and_a_text_table_has_none(papers_frame):
    at = _uploaded(papers_frame.assign(citations=range(len(papers_frame))), "papers.parquet")
    assert not _section(at).proto.expanded, "a year and a count are numbers, not a layout: folded"
    assert "upload_vectors" not in _keys(at.selectbox)
    at = _uploaded(papers_frame, "papers.parquet")
    assert SECTION not in [e.label for e in at.expander], "one numeric column cannot be a layout"
