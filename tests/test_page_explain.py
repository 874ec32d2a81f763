"""The "How embeddings work" page, run headless by Streamlit's AppTest on the real bundled model."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "3_How_embeddings_work.py")

pytestmark = pytest.mark.slow


def run_page(**session) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def tokens_shown(at: AppTest) -> list[str]:
    return at.dataframe[0].value["token"].tolist()


def test_page_walks_through_every_step():
    at = run_page()
    assert [s.value for s in at.subheader] == [
        "1. Tokens", "2. Token embeddings and positions", "3. Attention",
        "4. Mixing the value vectors", "5. The whole layer", "6. Output: one vector for the sentence",
    ]
    assert tokens_shown(at) == ["[CLS]", "the", "bank", "raised", "interest", "rates", "to",
                                "fight", "inflation", ".", "[SEP]"]
    assert at.selectbox(key="explain_layer").options == [f"layer {i}" for i in range(1, 7)]
    assert "average of all heads" in at.selectbox(key="explain_head").options
    assert any("sum to 1.0000" in c.value for c in at.caption)
    assert 0 < float(at.metric[-1].value) < 1  # the cosine with the second text
    assert len(at.get("plotly_chart")) >= 8
    assert not at.error and not at.code  # no stray output (e.g. Streamlit magic echoing the model)


def test_a_changed_sentence_updates_the_tokens():
    at = run_page()
    at.selectbox(key="explain_token").set_value(10).run()
    at.text_input(key="explain_text").input("Cats purr").run()
    assert not at.exception, at.exception
    assert tokens_shown(at) == ["[CLS]", "cats", "pu", "##rr", "[SEP]"]
    assert at.selectbox(key="explain_token").value < 5  # the old selection no longer exists


def test_the_search_query_is_the_default_sentence():
    at = run_page(last_query="protein folding")
    assert at.text_input(key="explain_text").value == "protein folding"
    assert tokens_shown(at) == ["[CLS]", "protein", "folding", "[SEP]"]


def test_an_empty_sentence_shows_an_error_not_a_traceback():
    at = run_page()
    at.text_input(key="explain_text").input("  ").run()
    assert not at.exception
    assert "empty" in at.error[0].value
