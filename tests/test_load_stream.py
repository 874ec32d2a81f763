"""Big files read from a path by pyarrow in blocks (explorer.load._load_streamed) give the table the
whole-file read gives: forced onto both paths, every case must come out the same, or be refused the same."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hostile_inputs import CASES, TABLE
from hypothesis import given
from test_fuzz_readers import FUZZ, jsonl_files

from explorer import InputError, load
from explorer.texts import TextColumn, compose_texts

STREAMED = ("csv", "tsv", "tab", "txt", "jsonl", "ndjson", "parquet", "pq")


def _outcome(path, monkeypatch, *, stream: bool, **caps):
    # -1: every file from a path streams (0-byte ones too); 2**62: none does (the whole-file read).
    monkeypatch.setattr(load, "STREAM_BYTES", -1 if stream else 2**62)
    try:
        table = load.load_table(path, **caps)
    except InputError as exc:
        return ("refused", type(exc).__name__, str(exc))
    return table


def assert_same_table(path, monkeypatch, **caps):
    """Both reads of ``path`` agree: the same frame (values and dtypes), notes, encoding and hash."""
    whole = _outcome(path, monkeypatch, stream=False, **caps)
    streamed = _outcome(path, monkeypatch, stream=True, **caps)
    if isinstance(whole, tuple):
        assert streamed == whole
        return whole
    assert not isinstance(streamed, tuple), streamed
    pd.testing.assert_frame_equal(streamed.frame, whole.frame)
    assert (streamed.notes, streamed.encoding, streamed.content_hash, streamed.skipped_lines, streamed.format) == (
        whole.notes, whole.encoding, whole.content_hash, whole.skipped_lines, whole.format)
    return whole


_TYPED = (
    'id,count,score,flag,empty,mixed,huge,zeros,markers,text,text,,x\n'
    '1, 4 ,1.5,True,,1,99999999999999999999,007,NA,"a, quoted\nline",first,u,p\n'
    '2,-2,1e3,false,NA,a,1,010,null,"say ""hi""",second,v,q\n'
    '3,+3,.5,TRUE,,2,2,1,x,plain,third,w,r\n'
    '4,7,inf,FALSE,n/a,3,3,2,None,"",fourth,,s\n'
    '5,8,-Infinity,true,,4,4,3,,<NA>,fifth,y,t\n'
)


@pytest.mark.parametrize("name, data", [
    ("typed.csv", _TYPED.encode()),
    ("bom.csv", b"\xef\xbb\xbf" + _TYPED.encode()),
    ("tabs.tsv", _TYPED.replace(",", "\t").encode()),
    ("semi.csv", _TYPED.replace(",", ";").encode()),
    ("crlf.csv", _TYPED.replace("\n", "\r\n").encode()),
    ("accents.csv", "title,abstract\nÉtude,über naïve café\n日本語,テキスト\n".encode()),
    ("latin1.csv", "title,abstract\nÉtude,über naïve café\n".encode("latin-1")),
    ("nul.csv", b"title,abstract\nA\x00B,text\n"),
    ("ragged.csv", b"a,b\n1,2\n3,4,5\n6\n"),
    ("utf16.csv", "title,abstract\nA,B\n".encode("utf-16")),
    ("header_only.csv", b"a,b\n"),
])
def test_the_block_read_gives_the_whole_file_reads_table(tmp_path, monkeypatch, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    assert_same_table(path, monkeypatch)


def test_the_typed_columns_come_out_as_pandas_types_them(tmp_path, monkeypatch):
    path = tmp_path / "typed.csv"
    path.write_bytes(_TYPED.encode())
    table = assert_same_table(path, monkeypatch)
    dtypes = {c: str(t) for c, t in table.frame.dtypes.items()}
    assert dtypes["count"] == "Int64" and dtypes["score"] == "Float64" and dtypes["flag"] == "boolean"
    assert dtypes["empty"] == "Int64" and dtypes["huge"] == "string" and dtypes["text"] == "string"
    assert list(table.frame.columns[-4:]) == ["text", "text.1", "column_12", "x_original"]


def test_a_real_table_and_its_parquet_read_the_same(tmp_path, monkeypatch):
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "arxiv_cs" / "arxiv_cs10_2500.csv"
    if not path.is_file():
        pytest.skip("the shared arXiv sample is not here")
    whole = assert_same_table(path, monkeypatch)
    parquet = tmp_path / "papers.parquet"
    whole.frame.to_parquet(parquet)
    assert_same_table(parquet, monkeypatch)


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == TABLE and c.run is None], ids=lambda c: c.id)
def test_every_hostile_table_reads_the_same_from_a_path(tmp_path, monkeypatch, case):
    name, data = case.make()
    if name.rsplit(".", 1)[-1].lower() not in STREAMED:
        pytest.skip("not a format the block read takes")
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / name
    path.write_bytes(data)
    assert_same_table(path, monkeypatch)


def test_the_row_cap_is_checked_as_the_blocks_arrive(tmp_path, monkeypatch):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"title\n" + b"".join(b"row %d\n" % i for i in range(50)))
    monkeypatch.setattr(load, "STREAM_BYTES", -1)
    with pytest.raises(InputError, match="more than the limit of 10"):
        load.load_table(path, max_rows=10)


def test_texts_composed_in_arrow_are_the_texts_of_the_list(monkeypatch):
    import explorer.texts as texts

    monkeypatch.setattr(texts, "TEXT_BATCH_ROWS", 3)  # several batches, and a last one cut short
    frame = pd.DataFrame({"title": ["A", None, " C ", "D", "", "F", "G"],
                          "abstract": ["x", "y", None, "w", "", "u", "v" * 50]}, dtype="string")
    for kwargs in ({"columns": ["title", "abstract"]}, {"template": "{title}: {abstract}"}):
        listed = compose_texts(frame, max_chars=20, **kwargs)
        arrow = compose_texts(frame, max_chars=20, arrow=True, **kwargs)
        assert isinstance(arrow.texts, TextColumn) and list(arrow.texts) == listed.texts
        assert arrow.embedded.tolist() == listed.embedded.tolist() and arrow.notes == listed.notes
        assert arrow.texts[1] == listed.texts[1] and arrow.texts[2:5] == listed.texts[2:5]
        assert list(arrow.texts.take([6, 0])) == [listed.texts[6], listed.texts[0]]
        assert list(arrow.texts.filter(arrow.embedded)) == [t for t, e in zip(listed.texts, listed.embedded, strict=True) if e]


# --- JSON Lines -------------------------------------------------------------------------------------------


def _streams(path, **caps) -> bool:
    """Whether the block read gives ``path``'s table itself, rather than handing it to the whole-file read."""
    limits = {"max_bytes": 2**40, "max_rows": 10**9, "max_columns": 10_000, **caps}
    return load._load_streamed(path, name=path.name, **limits) is not None


def _jsonl(*records) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


_LONG = "Long abstract " * 20_000 + "end"
# Each case streams (True) or goes to the whole-file read (False), and both give the same table.
_JSONL_CASES = {
    "typed": (True, _jsonl({"id": 1, "title": "A", "score": 1.5, "flag": True, "count": 1},
                           {"id": 2, "title": "B", "score": 2, "flag": False, "count": None},
                           {"id": 3, "title": None, "score": None, "flag": True})),
    "blank_and_bad_lines": (True, b"\n" + _jsonl({"t": "a"}, "   ", "not json", "[1, 2]", "42", '"text"', "null",
                                                 "{oops}", {"t": "b"}, "") + b"\n\n"),
    "missing_keys": (True, _jsonl({"a": "x", "b": 1}, {"b": 2}, {"a": "y"}, {}, {"c": None})),
    "ints_then_floats": (True, _jsonl(*[{"n": i} for i in range(5)], {"n": 0.5}, {"n": -1e300})),
    "ints_with_nulls": (True, _jsonl({"n": 1}, {"n": None}, {"m": 3}, {"n": 2**53 + 1})),
    "booleans": (True, _jsonl({"f": True, "g": True, "h": None}, {"f": False, "g": None}, {"f": True})),
    "booleans_missing": (True, _jsonl({"g": True}, {"x": 1}, {"g": None}, {"g": False})),
    "null_only": (True, _jsonl({"a": None, "t": "x"}, {"t": "y"}, {"a": None, "t": None})),
    "unicode": (True, _jsonl({"t": "Étude naïve 日本語 🧬", "u": "\u202eRTL"}, {"t": "z\u00e9", "u": "e\u0301"},
                             '{"t": "half \\udc00 pair", "u": "\\ud83d\\ude00 whole"}', '{"t": "\\ud800", "u": ""}')),
    "line_separators": (True, '{"t": "a\u2028b"}\n{"t": "c"}\r\n{"t": "d"}\r{"t": "e"}\x85{"t": "f"}\f\n'.encode()),
    "very_long_strings": (True, _jsonl({"t": _LONG, "n": 1}, {"t": "short", "n": 2}, {"t": _LONG[::-1], "n": 3})),
    "one_row": (True, _jsonl({"title": "only"})),
    "bom": (True, b"\xef\xbb\xbf" + _jsonl({"t": "a"}, {"t": "b"})),
    "no_trailing_newline": (True, _jsonl({"t": "a"}, {"t": "b"})[:-1]),
    "reserved_and_odd_keys": (True, _jsonl({"row_id": 1, "x": 2, "": "e", "Unnamed: 3": 4, "a ": 5, "a": 6})),
    "duplicate_keys": (True, b'{"a": 1, "b": "x", "a": "text"}\n{"a": "more", "b": "y"}\n'),
    "big_ints_as_digits": (True, _jsonl('{"n": 1' + "0" * 400 + "}", '{"n": 2' + "0" * 5000 + "}")),
    "keys_only_in_later_blocks": (True, _jsonl(*[{"a": i} for i in range(7)], {"a": 7, "late": "x", "flag": True},
                                               {"late": None, "num": 1}, {"a": 8.5, "flag": None})),
    "no_valid_row": (False, _jsonl("nope", "[1]", "2")),
    "empty_objects": (False, _jsonl({}, {})),
    "blank": (False, b"\n \n\t\n"),
}


@pytest.mark.parametrize("block_lines", [2, 20_000])
@pytest.mark.parametrize("case", list(_JSONL_CASES))
def test_a_jsonl_file_reads_the_same_in_blocks(tmp_path, monkeypatch, case, block_lines):
    monkeypatch.setattr(load, "JSONL_BLOCK_LINES", block_lines)  # 2: every kind of column crosses blocks
    streams, data = _JSONL_CASES[case]
    path = tmp_path / f"{case}.jsonl"
    path.write_bytes(data)
    monkeypatch.setattr(load, "STREAM_BYTES", -1)
    assert _streams(path) is streams
    assert_same_table(path, monkeypatch)


# Each thing the block read cannot type as the whole-file read does, after blocks it read well (2 lines each).
_JSONL_FALLBACKS = {
    "text_then_number": _jsonl({"a": "x"}, {"a": "y"}, {"a": 1}),
    "number_then_text": _jsonl({"a": 1}, {"a": 2.5}, {"a": "x"}),
    "bool_and_int": _jsonl({"a": True}, {"a": False}, {"a": 1}),
    "bool_and_text": _jsonl({"a": "yes"}, {"a": None}, {"a": True}),
    "mixed_in_one_block": _jsonl({"a": 1}, {"a": "x"}),
    "nested_object": _jsonl({"a": 1}, {"a": 2}, {"a": 3, "meta": {"k": [1, 2]}}),
    "nested_list": _jsonl({"a": 1}, {"a": 2}, {"a": 3, "tags": ["x", "y"]}),
    "beyond_int64": _jsonl({"n": 1}, {"n": 2}, {"n": 2**63}),
    "beyond_int64_negative": _jsonl({"n": -(2**63) - 1}),
    "big_ints_among_ints": _jsonl({"n": 1}, {"n": 2}, '{"n": 3' + "0" * 400 + "}"),
    "int_past_2_53_with_floats": _jsonl({"n": 2**53 + 1}, {"n": 0.5}),
    "not_utf8": _jsonl({"t": "a"}, {"t": "b"}) + '{"t": "café"}\n'.encode("latin-1"),
    "nul_byte": _jsonl({"t": "a"}, {"t": "b"}) + b'{"t": "c\x00d"}\n',
    "utf16": '{"t": "a"}\n{"t": "b"}\n'.encode("utf-16"),
    "utf16_without_bom": '{"t": "a"}\n{"t": "b"}\n'.encode("utf-16-le"),
}


@pytest.mark.parametrize("case", list(_JSONL_FALLBACKS))
def test_what_the_block_read_cannot_type_goes_to_the_whole_file_read(tmp_path, monkeypatch, case):
    monkeypatch.setattr(load, "JSONL_BLOCK_LINES", 2)
    path = tmp_path / f"{case}.jsonl"
    path.write_bytes(_JSONL_FALLBACKS[case])
    monkeypatch.setattr(load, "STREAM_BYTES", -1)
    assert not _streams(path)
    assert_same_table(path, monkeypatch)


def test_jsonl_text_stays_in_arrow(tmp_path, monkeypatch):
    """Text columns come out as the whole-file read types them: Arrow-backed where pandas keeps text in Arrow
    (pandas 3), so no Python string per row is held; objects where that pandas does (2.x)."""
    path = tmp_path / "papers.jsonl"
    path.write_bytes(_jsonl(*[{"title": f"T{i}", "abstract": None if i % 3 else f"A{i}", "year": 2000 + i}
                              for i in range(10)]))
    monkeypatch.setattr(load, "JSONL_BLOCK_LINES", 4)
    table = assert_same_table(path, monkeypatch)
    assert str(table.frame["year"].dtype) == "int64"
    if pd.api.types.is_string_dtype(table.frame["title"].dtype) and table.frame["title"].dtype != object:
        assert table.frame["title"].dtype.storage == "pyarrow"
        monkeypatch.setattr(load, "STREAM_BYTES", -1)
        streamed = load.load_table(path).frame
        assert streamed["title"].dtype.storage == "pyarrow" and streamed["abstract"].dtype.storage == "pyarrow"


@pytest.mark.parametrize("caps, match", [({"max_rows": 10}, "25 rows is more than the limit of 10"),
                                         ({"max_columns": 3}, "5 columns is more than the limit of 3")])
def test_the_jsonl_caps_give_the_whole_file_reads_message(tmp_path, monkeypatch, caps, match):
    monkeypatch.setattr(load, "JSONL_BLOCK_LINES", 4)  # the caps pass in the first blocks; rows are counted on
    path = tmp_path / "caps.jsonl"
    path.write_bytes(_jsonl(*[{"a": i, "b": "x"} for i in range(20)], {"c": 1, "d": 2}, {"e": 3}, "bad",
                            *[{"a": i} for i in range(3)]))
    for key, value in caps.items():
        monkeypatch.setenv("EXPLORER_MAX_COLUMNS" if key == "max_columns" else "EXPLORER_MAX_ROWS", str(value))
    refused = assert_same_table(path, monkeypatch)
    assert refused[0] == "refused" and match in refused[2]


@given(data=jsonl_files())
@FUZZ
def test_fuzzed_jsonl_reads_the_same_in_blocks(data):
    """The JSON Lines the reader fuzzing draws (records of odd keys and values, mutated bytes), 3 lines a block."""
    with pytest.MonkeyPatch.context() as monkeypatch, tempfile.TemporaryDirectory() as folder:
        monkeypatch.setattr(load, "JSONL_BLOCK_LINES", 3)
        path = Path(folder) / "data.jsonl"
        path.write_bytes(data)
        assert_same_table(path, monkeypatch)
