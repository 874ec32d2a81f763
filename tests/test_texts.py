"""Step 1b, texts: which columns are prose, and the text each row is embedded from."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from conftest import SAMPLE_PAPERS

from explorer import InputError, compose_texts, detect_text_columns, load_table
from explorer.texts import template_fields


@pytest.fixture
def abstracts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "title": ["Deep nets for vision", "Protein folding paths", "Markets and trade"],
            "abstract": [
                "We train deep convolutional networks on images and report accuracy.",
                "We simulate how proteins fold into their native structures over time.",
                "We model prices across markets with trade frictions and inflation.",
            ],
            "year": [2001, 2002, 2003],
            "category": ["cs", "bio", "econ"],
        }
    )


def test_detects_title_and_abstract(abstracts):
    assert detect_text_columns(abstracts) == ["title", "abstract"]


def test_detects_title_on_the_sample_papers():
    frame = load_table(SAMPLE_PAPERS).frame
    assert list(frame.columns) == ["title", "year", "field", "authors"]
    assert detect_text_columns(frame) == ["title"]


def test_numbers_only_have_no_text_column():
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    assert detect_text_columns(frame) == []
    with pytest.raises(InputError, match="No text column was found"):
        compose_texts(frame)


def test_auto_columns_are_joined(abstracts):
    selection = compose_texts(abstracts)
    assert selection.columns == ["title", "abstract"]
    assert selection.template is None
    assert selection.texts[0] == (
        "Deep nets for vision. We train deep convolutional networks on images and report accuracy."
    )
    assert selection.embedded.tolist() == [True, True, True]
    assert selection.n_embedded == 3
    assert selection.notes == []


def test_columns_override(abstracts):
    selection = compose_texts(abstracts, columns=["abstract", "category"], separator=" | ")
    assert selection.columns == ["abstract", "category"]
    assert selection.texts[1] == (
        "We simulate how proteins fold into their native structures over time. | bio"
    )


def test_numbers_in_a_chosen_column_become_text(abstracts):
    assert compose_texts(abstracts, columns=["year"]).texts == ["2001", "2002", "2003"]


def test_template(abstracts):
    selection = compose_texts(abstracts, template="{title}. {abstract} ({year})")
    assert selection.template == "{title}. {abstract} ({year})"
    assert selection.columns == ["title", "abstract", "year"]
    assert selection.texts[2] == (
        "Markets and trade. We model prices across markets with trade frictions and inflation. (2003)"
    )


def test_template_fields():
    assert template_fields("{title}. {abstract} {title}") == ["title", "abstract", "title"]
    assert template_fields("no placeholder") == []


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{title}. {summary}", "No column named 'summary'"),
        ("no placeholder", "names no column"),
        ("{title", "malformed"),
    ],
)
def test_bad_template_is_an_input_error(abstracts, template, message):
    with pytest.raises(InputError, match=message):
        compose_texts(abstracts, template=template)


def test_missing_column_is_an_input_error(abstracts):
    with pytest.raises(InputError, match="No column named 'body'.*Available columns: title"):
        compose_texts(abstracts, columns=["body"])
    with pytest.raises(InputError, match="at least one"):
        compose_texts(abstracts, columns=[])


def test_empty_rows_are_kept_but_not_embedded(abstracts):
    abstracts.loc[1, ["title", "abstract"]] = [None, "   "]
    abstracts.loc[2, "title"] = ""
    selection = compose_texts(abstracts, columns=["title", "abstract"])
    assert len(selection.texts) == 3
    assert selection.texts[1] == ""
    assert selection.texts[2].startswith("We model prices")
    assert selection.embedded.tolist() == [True, False, True]
    assert selection.n_embedded == 2
    assert any("1 of 3 row(s) have no text" in note for note in selection.notes)


def test_template_on_an_empty_row_gives_no_text(abstracts):
    abstracts.loc[0, ["title", "abstract"]] = [None, None]
    selection = compose_texts(abstracts, template="{title}. {abstract}")
    assert selection.texts[0] == ""
    assert selection.embedded.tolist() == [False, True, True]


def test_all_empty_is_an_input_error():
    frame = pd.DataFrame({"title": ["", None, "  "], "year": [1, 2, 3]})
    with pytest.raises(InputError, match="Every row's text is empty in column"):
        compose_texts(frame, columns=["title"])


def test_long_text_is_truncated_with_a_note(abstracts):
    abstracts.loc[0, "abstract"] = "word " * 1000
    selection = compose_texts(abstracts, max_chars=500)
    assert len(selection.texts[0]) == 500
    assert len(selection.texts[1]) < 500
    assert any("1 row(s) have more than 500 characters" in note for note in selection.notes)
    # The table keeps the whole text: only the embedded copy is cut.
    assert len(abstracts.loc[0, "abstract"]) == 5000


# --- templates take plain {column} fields only (issue 24) ---------------------------------------------------


def test_template_braces_stay_literal(abstracts):
    selection = compose_texts(abstracts, template="{{literal}} {title} }}{{")
    assert selection.texts[0] == "{literal} Deep nets for vision }{"
    assert template_fields("{{x}} {a.b} {{{y}}}") == ["a.b", "y"]


def test_a_field_is_the_exact_column_name(abstracts):
    # Deduplicated column names look like attribute or index access to str.format: "title.1", "a[0]".
    frame = abstracts.assign(**{"title.1": ["First", "Second", "Third"], "a[0]": ["x", "y", "z"],
                                "0": ["zero"] * 3})
    selection = compose_texts(frame, template="{title.1} / {a[0]} / {0} / {title}")
    assert selection.texts[1] == "Second / y / zero / Protein folding paths"
    assert selection.columns == ["title.1", "a[0]", "0", "title"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{title:>99999999999999999999}", "'{title:>99999999999999999999}' is not a plain column name"),
        ("{title:#>100000000}", "'{title:#>100000000}' is not a plain column name"),
        ("{title!r}", "'{title!r}' is not a plain column name"),
        ("{title!s:^30}", "'{title!s:^30}' is not a plain column name"),
        ("{title.upper}", "No column named 'title.upper'"),
        ("{abstract[0]}", "No column named 'abstract[0]'"),
        ("{} and {title}", "No column named ''"),
        ("{title} }", "malformed"),
        ("{title {abstract}}", "malformed"),
    ],
)
def test_anything_but_a_plain_field_is_one_line(abstracts, template, message):
    with pytest.raises(InputError, match=re.escape(message)) as info:
        compose_texts(abstracts, template=template)
    assert "\n" not in str(info.value)


def test_a_template_longer_than_the_cap_is_one_line(abstracts):
    with pytest.raises(InputError, match="The template is 5,008 characters long; at most 2,000") as info:
        compose_texts(abstracts, template="{title} " + "x" * 5_000)
    assert "\n" not in str(info.value)
