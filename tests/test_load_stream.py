"""Big files read from a path by pyarrow in blocks (explorer.load._load_streamed) give the table the
whole-file read gives: forced onto both paths, every case must come out the same, or be refused the same."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hostile_inputs import CASES, TABLE

from explorer import InputError, load
from explorer.texts import TextColumn, compose_texts

STREAMED = ("csv", "tsv", "tab", "txt", "parquet", "pq")


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
