"""Step 1, load: every supported format and encoding, and the files that must be refused clearly."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from explorer import InputError, load_table

ROWS = [
    ("Café au lait", "A naïve study of crème brûlée, coffee and milk."),
    ("Protein folding", "How chains of amino acids find their native shape."),
    ("Market prices", "Inflation; trade and the price of bread."),
]


def delimited(delimiter: str) -> str:
    """The rows as delimited text, abstracts quoted (they hold commas and semicolons)."""
    return f"title{delimiter}abstract\n" + "".join(f'{t}{delimiter}"{a}"\n' for t, a in ROWS)


CSV_TEXT = delimited(",")


def assert_papers(table, *, rows: int = len(ROWS)) -> None:
    assert list(table.frame.columns) == ["title", "abstract"]
    assert len(table.frame) == rows
    assert list(table.frame["title"]) == [t for t, _ in ROWS][:rows]
    assert list(table.frame["abstract"]) == [a for _, a in ROWS][:rows]


def xlsx_bytes(sheets: dict[str, pd.DataFrame]) -> bytes:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
    return buffer.getvalue()


# --- delimited text ---------------------------------------------------------------------------


def test_csv_from_path(tmp_path):
    path = tmp_path / "papers.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    table = load_table(path)
    assert_papers(table)
    assert table.format == "csv"
    assert table.source_name == "papers.csv"
    assert table.encoding == "utf-8"
    assert table.notes == [] and table.skipped_lines == []
    assert len(table.content_hash) == 64


def test_content_hash_follows_the_bytes():
    first = load_table(CSV_TEXT.encode(), name="a.csv")
    again = load_table(CSV_TEXT.encode(), name="b.csv")
    changed = load_table(CSV_TEXT.replace("bread", "rice").encode(), name="a.csv")
    assert first.content_hash == again.content_hash != changed.content_hash


@pytest.mark.parametrize(
    ("delimiter", "name", "said"),
    [("\t", "papers.tsv", "tabs"), ("\t", "papers.csv", "tabs"), (";", "papers.csv", "semicolons")],
)
def test_delimiter_is_sniffed(delimiter, name, said):
    table = load_table(delimited(delimiter).encode(), name=name)
    assert_papers(table)
    assert any(said in note for note in table.notes)


def test_numbers_stay_numbers():
    table = load_table(b"title,year\nA,1999\nB,2001\n", name="t.csv")
    assert pd.api.types.is_integer_dtype(table.frame["year"])
    assert list(table.frame["year"]) == [1999, 2001]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_unicode_encodings_with_or_without_bom(encoding):
    table = load_table(CSV_TEXT.encode(encoding), name="papers.csv")
    assert_papers(table)
    assert table.frame.columns[0] == "title", "a BOM must not stick to the first column name"
    assert table.notes == []


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_detected(encoding):
    table = load_table(CSV_TEXT.encode(encoding), name="papers.csv")
    assert_papers(table)
    assert table.encoding == encoding
    assert any("no byte-order mark" in note for note in table.notes)


def test_cp1252_fallback_is_reported():
    data = (CSV_TEXT + "Euro,“Quoted” price of 5 €\n").encode("cp1252")
    table = load_table(data, name="papers.csv")
    assert table.encoding == "cp1252"
    assert table.frame["abstract"].iloc[-1] == "“Quoted” price of 5 €"
    assert table.frame["title"].iloc[0] == "Café au lait"
    assert any("not valid UTF-8" in note and "line 2" in note for note in table.notes)


def test_latin1_fallback_when_cp1252_cannot_decode():
    # 0x81 is undefined in cp1252, so only latin-1 can read these bytes.
    data = "title,abstract\nA,caf\xe9 \x81\n".encode("latin-1")
    table = load_table(data, name="t.csv")
    assert table.encoding == "latin-1"
    assert table.frame["abstract"].iloc[0] == "caf\xe9 \x81"
    assert any("latin-1" in note for note in table.notes)


def test_row_with_too_many_fields_is_kept_and_reported():
    data = b"title,abstract\nA,first\nB,has, an unquoted comma\nC,third\n"
    table = load_table(data, name="t.csv")
    assert list(table.frame["title"]) == ["A", "B", "C"]
    assert table.frame["abstract"].iloc[1] == "has, an unquoted comma"
    assert any("line 3" in note and "more fields" in note for note in table.notes)


def test_long_first_row_does_not_shift_columns():
    # pandas would take the first column as the index and shift every value one column left.
    table = load_table(b"title,abstract\nA,b,extra\nC,d\n", name="t.csv")
    assert list(table.frame["title"]) == ["A", "C"]
    assert list(table.frame["abstract"]) == ["b,extra", "d"]
    assert any("line 2" in note for note in table.notes)


def test_trailing_delimiters_are_harmless():
    table = load_table(b"title,abstract\nA,b,\nC,d,\n", name="t.csv")
    assert list(table.frame["title"]) == ["A", "C"]
    assert list(table.frame["abstract"]) == ["b", "d"]
    assert table.notes == []


def test_short_rows_are_padded():
    table = load_table(b"title,abstract,year\nA,b,2000\nC\nE,f,2002\n", name="t.csv")
    assert len(table.frame) == 3
    assert table.frame["title"].iloc[1] == "C"
    assert pd.isna(table.frame["abstract"].iloc[1])


def test_unclosed_quote_keeps_the_following_rows():
    data = b'title,abstract\nA,first\n"B,never closed\nC,third\nD,fourth\n'
    table = load_table(data, name="t.csv")
    assert list(table.frame["title"]) == ["A", '"B', "C", "D"]
    assert any("never closed on line 3" in note for note in table.notes)


def test_quoted_newlines_are_one_row():
    table = load_table(b'title,abstract\n"two\nlines",x\nB,y\n', name="t.csv")
    assert list(table.frame["title"]) == ["two\nlines", "B"]


def test_blank_lines_are_not_rows():
    table = load_table(b"title\nA\n\nB\n", name="t.txt")
    assert list(table.frame["title"]) == ["A", "B"]


# --- JSON, JSON Lines, Parquet, Excel ---------------------------------------------------------


def test_json_records():
    records = [{"title": t, "abstract": a} for t, a in ROWS]
    table = load_table(json.dumps(records).encode(), name="papers.json")
    assert table.format == "json"
    assert_papers(table)


def test_json_columns():
    columns = {"title": [t for t, _ in ROWS], "abstract": [a for _, a in ROWS]}
    table = load_table(json.dumps(columns).encode(), name="papers.json")
    assert_papers(table)


def test_json_nested_values_become_text():
    records = [{"title": "A", "tags": ["x", "y"]}, {"title": "B", "tags": []}]
    table = load_table(json.dumps(records).encode(), name="t.json")
    assert list(table.frame["tags"]) == ['["x", "y"]', "[]"]


def test_json_lines_with_a_broken_line():
    lines = [json.dumps({"title": t, "abstract": a}) for t, a in ROWS]
    lines.insert(2, '{"title": "broken", ')
    table = load_table("\n".join(lines).encode(), name="papers.jsonl")
    assert table.format == "jsonl"
    assert_papers(table)
    assert table.skipped_lines == [3]
    assert any("line 3" in note for note in table.notes)


def test_json_lines_named_json_is_explained():
    lines = "\n".join(json.dumps({"title": t}) for t, _ in ROWS)
    with pytest.raises(InputError, match="JSON Lines"):
        load_table(lines.encode(), name="papers.json")


@pytest.mark.parametrize("payload", ["[1, 2, 3]", "42", "[]"])
def test_json_that_is_not_a_table(payload):
    with pytest.raises(InputError, match="t.json"):
        load_table(payload.encode(), name="t.json")


def test_parquet():
    frame = pd.DataFrame({"title": [t for t, _ in ROWS], "abstract": [a for _, a in ROWS]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    table = load_table(buffer.getvalue(), name="papers.parquet")
    assert table.format == "parquet"
    assert_papers(table)


def test_xlsx_first_sheet_and_the_list_of_sheets():
    papers = pd.DataFrame({"title": [t for t, _ in ROWS], "abstract": [a for _, a in ROWS]})
    data = xlsx_bytes({"Papers": papers, "Notes": pd.DataFrame({"note": ["ignore me"]})})
    table = load_table(data, name="papers.xlsx")
    assert table.format == "xlsx"
    assert_papers(table)
    assert any("Papers" in note and "Notes" in note and "2 sheets" in note for note in table.notes)


def test_xlsx_chosen_sheet():
    data = xlsx_bytes({"A": pd.DataFrame({"a": [1]}), "B": pd.DataFrame({"b": ["x", "y"]})})
    assert list(load_table(data, name="t.xlsx", sheet="B").frame["b"]) == ["x", "y"]
    with pytest.raises(InputError, match="no sheet named 'C'"):
        load_table(data, name="t.xlsx", sheet="C")


def test_file_object_source():
    table = load_table(io.BytesIO(CSV_TEXT.encode()), name="upload.csv")
    assert_papers(table)


# --- what must be refused, clearly --------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.csv", "empty"),
        (b"  \n\n", "blank.csv", "empty"),
        (b"title,abstract\n", "header.csv", "header but no rows"),
        (b"title,abstract\r\n", "header.tsv", "header but no rows"),
        (b"hello", "notes.docx", "unsupported file type '.docx'"),
        (b"hello", "noextension", "unsupported file type"),
        (CSV_TEXT.encode(), "papers.parquet", "name says PARQUET but the content is not"),
        (CSV_TEXT.encode(), "papers.xlsx", "name says XLSX but the content is not"),
        (b"PAR1 but truncated", "papers.parquet", "cannot read this Parquet file"),
        (b"not json at all", "t.json", "invalid JSON at line 1"),
        (b"not json\nat all\n", "t.jsonl", "no line is a JSON object"),
    ],
)
def test_unusable_files_raise_input_error(data, name, message):
    with pytest.raises(InputError) as caught:
        load_table(data, name=name)
    text = str(caught.value)
    assert message in text
    assert name in text and "\n" not in text


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_table(tmp_path / "missing.csv")


def test_size_and_row_limits():
    with pytest.raises(InputError, match="more than the limit"):
        load_table(CSV_TEXT.encode(), name="t.csv", max_bytes=10)
    with pytest.raises(InputError, match="rows is more than the limit of 2"):
        load_table(CSV_TEXT.encode(), name="t.csv", max_rows=2)


# --- columns ---------------------------------------------------------------------------------


def test_reserved_column_names_are_renamed_not_overwritten():
    data = b"x,y,row_id,embedded,title\n1,2,3,yes,hello world\n"
    table = load_table(data, name="t.csv")
    assert list(table.frame.columns) == [
        "x_original", "y_original", "row_id_original", "embedded_original", "title",
    ]
    assert table.frame.iloc[0].tolist() == [1, 2, 3, "yes", "hello world"]
    assert any("x, y, row_id, embedded" in note for note in table.notes)


def test_duplicate_and_blank_column_names_are_made_unique():
    table = load_table(b"title,title,,x_original,x\na,b,c,d,e\n", name="t.csv")
    columns = list(table.frame.columns)
    assert len(set(columns)) == len(columns) == 5
    assert table.frame.iloc[0].tolist() == ["a", "b", "c", "d", "e"]


def test_row_count_is_preserved():
    lines = ["title,abstract"] + [f"paper {i},text number {i}" for i in range(500)]
    table = load_table("\n".join(lines).encode(), name="t.csv")
    assert len(table.frame) == 500
    assert table.frame["title"].iloc[499] == "paper 499"


def test_json_wrapped_in_a_data_key():
    payload = {"meta": {"source": "x"}, "data": [{"title": t} for t, _ in ROWS]}
    table = load_table(json.dumps(payload).encode(), name="t.json")
    assert list(table.frame["title"]) == [t for t, _ in ROWS]


def test_columns_mixing_numbers_and_text_become_text():
    # Spreadsheets and JSON often mix types in a column; a saved map (Parquet) cannot.
    records = [{"title": "a", "id": 1, "flag": True}, {"title": "b", "id": "x", "flag": None},
               {"title": "c", "id": 2.5, "flag": "maybe"}]
    table = load_table(json.dumps(records).encode(), name="t.json")
    assert table.frame["id"].tolist() == ["1", "x", "2.5"]
    assert table.frame["flag"].iloc[0] == "True" and pd.isna(table.frame["flag"].iloc[1])
    table.frame.to_parquet(io.BytesIO())


def test_spreadsheet_column_mixing_numbers_and_text():
    data = xlsx_bytes({"S": pd.DataFrame({"title": ["a", "b", "c"], "code": [1, "A", 3.5]})})
    table = load_table(data, name="t.xlsx")
    assert table.frame["code"].tolist() == ["1", "A", "3.5"]
    table.frame.to_parquet(io.BytesIO())


def test_columns_of_one_type_keep_it():
    records = [{"n": 1, "f": 1.5, "b": True}, {"n": 2, "f": None, "b": False}]
    frame = load_table(json.dumps(records).encode(), name="t.json").frame
    assert pd.api.types.is_integer_dtype(frame["n"]) and pd.api.types.is_float_dtype(frame["f"])
    assert pd.api.types.is_bool_dtype(frame["b"])


# --- issue 24: no code runs from an uploaded Parquet file (CVE-2023-47248) ----------------------------


@pytest.fixture
def unpickling_extension_type():
    """pyarrow 14.0.0's registry: arrow.py_extension_type rebuilt by unpickling what the file holds.
    Later pyarrows refuse it or no longer know it; this puts the vulnerable behaviour back for the test."""
    import pickle

    import pyarrow as pa

    class Unpickling(pa.ExtensionType):
        def __init__(self):
            super().__init__(pa.binary(), "arrow.py_extension_type")

        def __arrow_ext_serialize__(self) -> bytes:
            return b""

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type, serialized):
            pickle.loads(serialized)
            return cls()

    def unregister():
        try:
            pa.unregister_extension_type("arrow.py_extension_type")
        except KeyError:
            pass

    unregister()
    pa.register_extension_type(Unpickling())
    yield
    from explorer.load import _refuse_pickled_extension_type

    _refuse_pickled_extension_type()  # what the app leaves registered (pyarrow 14.0.1 to 20 unregister it at exit)


def test_a_pickled_extension_type_in_a_parquet_file_is_never_unpickled(unpickling_extension_type, tmp_path):
    from hostile_inputs import PWNED, parquet_pickled_extension

    data = parquet_pickled_extension()
    if PWNED.exists():
        PWNED.rmdir()
    try:
        table = load_table(data, name="papers.parquet")
        assert len(table.frame) == 6 and "title" in table.frame.columns
    except InputError as exc:
        assert "\n" not in str(exc)
    assert not PWNED.exists(), "the file's pickle ran"
