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


def _column_and_list(monkeypatch, rows: int = 11):
    import explorer.texts as texts

    monkeypatch.setattr(texts, "TEXT_BATCH_ROWS", 3)  # several chunks, the last one short
    frame = pd.DataFrame({"title": [f"T{i}" if i % 4 else "" for i in range(rows)],
                          "abstract": [f"a{i} " * (i % 5) for i in range(rows)]}, dtype="string")
    return (compose_texts(frame, columns=["title", "abstract"], arrow=True).texts,
            compose_texts(frame, columns=["title", "abstract"]).texts)


def test_a_composed_text_column_reads_as_its_list(monkeypatch):
    column, listed = _column_and_list(monkeypatch)
    assert len(column) == len(listed) and list(column) == listed
    for start in range(-2, len(listed) + 2):
        for stop in range(-2, len(listed) + 2):
            assert column[start:stop] == listed[start:stop], (start, stop)
    assert column[::2] == listed[::2]
    for indices in ([], [0], [10, 0, 5, 5, 3], list(range(11)), [-1, 2]):
        assert list(column.take(indices)) == [listed[i] for i in indices]
    with pytest.raises(IndexError):
        column.take([11])
    mask = [i % 3 != 1 for i in range(11)]
    kept = [t for t, keep in zip(listed, mask, strict=True) if keep]
    assert list(column.filter(mask)) == kept and column.filter(mask)[2:6] == kept[2:6]
    assert list(column.filter(mask).take([4, 0])) == [kept[4], kept[0]]
    assert column[7] == listed[7] and list(column) == listed  # a read by row holds it, the same texts


def test_take_composes_each_chunk_once_in_any_order(monkeypatch):
    column, listed = _column_and_list(monkeypatch, rows=30)
    calls = []
    compose = column._compose
    column._compose = lambda i: calls.append(i) or compose(i)
    assert list(column.take([29, 0, 14, 1, 28, 15])) == [listed[i] for i in (29, 0, 14, 1, 28, 15)]
    assert sorted(calls) == [0, 4, 5, 9]


def test_texts_composed_in_arrow_hold_no_copy_of_the_table():
    pa = pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"title": [f"Paper {i}" for i in range(60_000)],
                          "abstract": [f"{i} " + "words of an abstract " * 50 for i in range(60_000)]},
                         dtype="string[pyarrow]")
    before = pa.total_allocated_bytes()
    selection = compose_texts(frame, columns=["title", "abstract"], arrow=True)
    assert sum(len(t) for t in selection.texts) > 60_000_000  # 60 MB of texts, read through
    # Held beside the table they would be 60 MB of Arrow buffers; composed when read, one chunk at most stays.
    assert pa.total_allocated_bytes() - before < 15_000_000


def test_a_read_interleaved_with_another_chunks_read_gets_its_own_texts(monkeypatch):
    from explorer.texts import TextColumn

    column, listed = _column_and_list(monkeypatch)
    interleaved = []

    class Interleaving(TextColumn):
        """Another thread's read of chunk 1 lands just after this read keeps chunk 0 (the race's window)."""

        @property
        def _last(self):
            return self.__dict__["last"]

        @_last.setter
        def _last(self, value):
            self.__dict__["last"] = value
            if value is not None and value[0] == 0 and not interleaved:
                interleaved.append(self[3:6])

    column.__class__ = Interleaving
    column._last = None
    assert column[0:3] == listed[0:3] and interleaved == [listed[3:6]]
