"""Property-based fuzzing of every reader (CSV/TSV, JSON/JSONL, Parquet, XLSX, BibTeX, RIS, vector
columns, images, ZIPs of images) with Hypothesis.

Each reader gets two kinds of input: arbitrary bytes, and a valid file of its format with its structure
mutated (odd cells, quotes, delimiters and encodings; odd Arrow types; a workbook's inner XML; @string
macros and braces; RIS tags; image headers; ZIP member names). The property: the reader returns its
result or raises an ExplorerError with a one-line message, within the budget of issue 24 (BUDGET_SECONDS
of server time and BUDGET_PEAK_BYTES above the memory before it, for inputs of at most a megabyte).

The examples are derandomised (the same every run) and few, so the file takes a few minutes;
``FUZZ_EXAMPLES=2000`` runs more per test, ``FUZZ_RANDOM=1`` draws new ones each run. What a longer run
finds becomes a fixed case in tests/hostile_inputs.py ("found by fuzzing").
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import struct
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pytest
from hostile_inputs import (
    BUDGET_INPUT_BYTES,
    BUDGET_PEAK_BYTES,
    BUDGET_SECONDS,
    make_zip,
    peak_memory,
    reset_peak_memory,
    xlsx_with_sheets_and_merged_cells,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer import compose_texts, load_table
from explorer.errors import ExplorerError
from explorer.images import open_image, read_images
from explorer.vectors import offered_columns, read_given

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    database=None,
    deadline=None,  # the budget is checked below, on CPU time, so a busy machine does not fail it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
# A reader still running after this many CPU seconds is stopped and the example fails (a hang).
HARD_STOP_SECONDS = 30


class _Stopped(BaseException):
    """Raised in a reader that ran past HARD_STOP_SECONDS (a BaseException, so no reader swallows it)."""


@contextlib.contextmanager
def _hard_stop(seconds: int) -> Iterator[None]:
    def stop(signum, frame):
        raise _Stopped(f"still running after {seconds} s")

    # A CPU-time timer (SIGPROF), so pytest-timeout keeps SIGALRM for itself.
    previous = signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def holds(read: Callable[[], object], size: int):
    """Run one reader on one input: its result, or None when it refused the input with an ExplorerError of
    one line; fails on any other exception and when an input of at most a megabyte breaks the budget."""
    start = reset_peak_memory()
    wall, cpu = time.perf_counter(), time.process_time()
    result = None
    with _hard_stop(HARD_STOP_SECONDS):
        try:
            result = read()
        except ExplorerError as exc:
            assert "\n" not in str(exc), f"a message is one line: {exc!r}"
            assert str(exc).strip(), "a message says something"
    seconds = min(time.perf_counter() - wall, time.process_time() - cpu)
    peak = peak_memory()
    if size <= BUDGET_INPUT_BYTES:
        assert seconds <= BUDGET_SECONDS, f"{seconds:.2f} s for a {size:,}-byte input"
        if start is not None and peak is not None:
            assert peak - start <= BUDGET_PEAK_BYTES, f"{(peak - start) / 2**20:,.0f} MB for a {size:,}-byte input"
    return result


# --- byte-level mutations ---------------------------------------------------------------------------------


@st.composite
def mutated(draw, data: bytes, *, most: int = 4) -> bytes:
    """``data`` with up to ``most`` edits: a bit flipped, bytes inserted, a span deleted or repeated, the
    end cut off."""
    data = bytearray(data)
    for _ in range(draw(st.integers(0, most))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "repeat", "cut", "byte"]))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and data:
            data[at] = draw(st.sampled_from([0, 0x0A, 0x0D, 0x22, 0x2C, 0x7B, 0x7D, 0x80, 0xFF, 0xFE]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "repeat":
            span = bytes(data[at:at + draw(st.integers(1, 16))])
            data[at:at] = span * draw(st.integers(1, 2_000))
        elif kind == "cut":
            del data[at:]
    return bytes(data)


# Short chunks repeated up to a megabyte: what makes a quadratic parser (a sniffer, a regex) show itself.
REPEATED = st.builds(lambda chunk, count: (chunk * count)[:BUDGET_INPUT_BYTES],
                     st.binary(min_size=1, max_size=8), st.integers(1, 100_000))
ANY_BYTES = st.binary(max_size=4_096) | REPEATED


# --- tables -----------------------------------------------------------------------------------------------


def _load(data: bytes, name: str):
    table = load_table(data, name=name)
    assert len(table.frame) > 0 and table.frame.shape[1] > 0
    assert table.frame.columns.is_unique and all(isinstance(c, str) for c in table.frame.columns)
    compose_texts(table.frame)  # what the upload form does next with every table that loads
    return table


def check_table(data: bytes, name: str) -> None:
    """The table reader's property on one input."""
    holds(lambda: _load(data, name), len(data))


CELL = st.text(alphabet=st.sampled_from(list('ab 1.,;\t|"\'\n\r\\=+-@#{}[]éü€жё中\x00\ufeff\u2028\u202e')),
               max_size=24) | st.text(max_size=12)
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "cp1251", "koi8-r",
             "mac-cyrillic", "latin-1", "shift_jis", "gb18030", "cp1257"]


@st.composite
def delimited(draw) -> bytes:
    """A CSV (or TSV, semicolon, pipe) of odd cells and ragged rows, written in some encoding, mutated."""
    width = draw(st.integers(1, 8))
    header = draw(st.lists(CELL, min_size=width, max_size=width))
    rows = draw(st.lists(st.lists(CELL, max_size=width + 3), max_size=12))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC, csv.QUOTE_NONE]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, escapechar="\\",
                        lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
    for row in [header, *rows]:
        try:
            writer.writerow(row)
        except csv.Error:  # QUOTE_NONE cannot write this row: it goes in as plain text
            buffer.write(delimiter.join(row) + "\n")
    data = buffer.getvalue().encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    return draw(mutated(data))


@given(data=ANY_BYTES, name=st.sampled_from(["data.csv", "data.tsv", "data.txt", "data"]))
@FUZZ
def test_delimited_arbitrary_bytes(data, name):
    check_table(data, name)


@given(data=delimited(), name=st.sampled_from(["data.csv", "data.tsv"]))
@FUZZ
def test_delimited_mutated(data, name):
    check_table(data, name)


SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70).map(lambda i: i * 10**300)
           | st.floats(allow_nan=True, allow_infinity=True) | CELL)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(CELL, inner, max_size=4), max_leaves=20)
RECORDS = st.lists(st.dictionaries(st.sampled_from(["title", "abstract", "year", "", "0", "x", "row_id", "a.b"]),
                                   JSON_VALUES, max_size=5), min_size=1, max_size=8)


@st.composite
def json_files(draw) -> bytes:
    """A JSON list of records, an object of columns or any JSON value, mutated."""
    payload = draw(RECORDS | st.dictionaries(CELL, st.lists(SCALARS, max_size=5), max_size=4)
                   | st.fixed_dictionaries({"data": RECORDS}) | JSON_VALUES)
    return draw(mutated(json.dumps(payload, ensure_ascii=draw(st.booleans())).encode()))


@st.composite
def jsonl_files(draw) -> bytes:
    """JSON Lines of records and other values, mutated."""
    lines = draw(st.lists(st.one_of(RECORDS.map(lambda r: r[0]), JSON_VALUES), min_size=1, max_size=10))
    return draw(mutated("\n".join(json.dumps(v) for v in lines).encode()))


@given(data=ANY_BYTES, name=st.sampled_from(["data.json", "data.jsonl"]))
@FUZZ
def test_json_arbitrary_bytes(data, name):
    check_table(data, name)


@given(data=json_files())
@FUZZ
def test_json_mutated(data):
    check_table(data, "data.json")


@given(data=jsonl_files())
@FUZZ
def test_jsonl_mutated(data):
    check_table(data, "data.jsonl")


# --- Parquet ----------------------------------------------------------------------------------------------


def _arrow_column(kind: str, values: list):
    import datetime
    import decimal

    import pyarrow as pa

    n = len(values)
    if kind == "text":
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    if kind == "large_text":
        return pa.array([None if v is None else str(v) for v in values], pa.large_string())
    if kind == "int":
        return pa.array([(2**63 - 1, -2**63, 0, None)[i % 4] for i in range(n)], pa.int64())
    if kind == "uint":
        return pa.array([(2**64 - 1, 0, None)[i % 3] for i in range(n)], pa.uint64())
    if kind == "float":
        return pa.array([(float("nan"), float("inf"), -float("inf"), 1e308, -0.0, None)[i % 6] for i in range(n)])
    if kind == "half":
        return pa.array(np.array([1.5, np.inf, np.nan][: 1] * n, dtype=np.float16), pa.float16())
    if kind == "decimal":
        return pa.array([decimal.Decimal("1e-30") * i for i in range(n)], pa.decimal128(38, 35))
    if kind == "date":
        return pa.array([(datetime.date(1, 1, 1), datetime.date(9999, 12, 31), None)[i % 3] for i in range(n)])
    if kind == "timestamp":
        return pa.array([(-2**63 + 1, 2**63 - 1, None)[i % 3] for i in range(n)], pa.timestamp("ns"))
    if kind == "timestamp_tz":
        return pa.array([i * 10**15 for i in range(n)], pa.timestamp("us", tz="Pacific/Chatham"))
    if kind == "duration":
        return pa.array([2**62 * (i % 2) for i in range(n)], pa.duration("ns"))
    if kind == "time":
        return pa.array([i for i in range(n)], pa.time64("ns"))
    if kind == "bool":
        return pa.array([(True, False, None)[i % 3] for i in range(n)])
    if kind == "binary":
        return pa.array([None if v is None else str(v).encode("utf-8", "replace") + b"\xff\x00" for v in values])
    if kind == "fixed_binary":
        return pa.array([b"\x00\xffab"] * n, pa.binary(4))
    if kind == "null":
        return pa.nulls(n)
    if kind == "dictionary":
        return pa.array([None if v is None else str(v) for v in values], pa.string()).dictionary_encode()
    if kind == "list":
        return pa.array([[str(v)] * (i % 3) if i % 4 else None for i, v in enumerate(values)], pa.list_(pa.string()))
    if kind == "nested_list":
        return pa.array([[[float(i)], [], None] for i in range(n)], pa.list_(pa.list_(pa.float64())))
    if kind == "vector":
        return pa.array([[float(i), 1e300, -1e-300] for i in range(n)], pa.list_(pa.float32(), 3))
    if kind == "struct":
        return pa.array([{"a": str(v), "b": [i]} if i % 2 else None for i, v in enumerate(values)])
    if kind == "map":
        return pa.array([[(str(v), i)] for i, v in enumerate(values)], pa.map_(pa.string(), pa.int64()))
    raise AssertionError(kind)


ARROW_KINDS = ["text", "large_text", "int", "uint", "float", "half", "decimal", "date", "timestamp", "timestamp_tz",
               "duration", "time", "bool", "binary", "fixed_binary", "null", "dictionary", "list", "nested_list",
               "vector", "struct", "map"]


@st.composite
def parquet_files(draw) -> bytes:
    """A Parquet file of columns of odd Arrow types and extreme values, written by pyarrow, perhaps with
    bytes mutated."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = draw(st.lists(st.none() | CELL, min_size=0, max_size=8))
    kinds = draw(st.lists(st.sampled_from(ARROW_KINDS), min_size=1, max_size=5))
    names = draw(st.lists(st.sampled_from(["title", "abstract", "", "x", "row_id", "a", "a", "__index_level_0__",
                                           "0", "é"]), min_size=len(kinds), max_size=len(kinds)))
    table = pa.table({f"{name}{'.' * i}" if names.count(name) > 1 else name: _arrow_column(kind, values)
                      for i, (name, kind) in enumerate(zip(names, kinds, strict=True))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression=draw(st.sampled_from(["snappy", "zstd", "gzip", "none"])),
                   row_group_size=draw(st.integers(1, 8)))
    return draw(mutated(buffer.getvalue(), most=2)) if draw(st.booleans()) else buffer.getvalue()


@given(data=st.binary(max_size=2_048).map(lambda b: b"PAR1" + b + b"PAR1"))
@FUZZ
def test_parquet_arbitrary_bytes(data):
    check_table(data, "data.parquet")


@given(data=parquet_files())
@FUZZ
def test_parquet_odd_types_and_mutations(data):
    check_table(data, "data.parquet")


# --- XLSX -------------------------------------------------------------------------------------------------

XLSX_MEMBERS = ["xl/worksheets/sheet1.xml", "xl/workbook.xml", "xl/sharedStrings.xml", "xl/styles.xml",
                "[Content_Types].xml", "xl/_rels/workbook.xml.rels"]
CELL_REFS = st.sampled_from(["A1", "XFD1", "A1048576", "XFD1048576", "ZZZZ1", "A0", "1A", "", "A-1", "AAA99999999"])


@st.composite
def xml_mutated(draw, text: bytes) -> bytes:
    """A workbook part with its cell references, dimension or text changed, or cut, or made invalid."""
    import re

    kind = draw(st.sampled_from(["refs", "dimension", "cut", "garbage", "bytes", "entity"]))
    if kind == "refs":
        return re.sub(rb'r="[A-Z]+\d+"', lambda m: b'r="' + draw(CELL_REFS).encode() + b'"', text)
    if kind == "dimension":
        return re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:' + draw(CELL_REFS).encode() + b'"', text)
    if kind == "cut":
        return text[: draw(st.integers(0, len(text)))]
    if kind == "garbage":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.sampled_from([b"<", b"&", b"]]>", b"<c r=\"XFD9\"><v>1</v></c>", b"\x00",
                                                 b"<row r=\"1048576\"/>", b"<v>1e999</v>"])) + text[at:]
    if kind == "entity":  # an entity expansion (billion laughs): the XML parser must refuse or bound it
        lol = b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">' \
              b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
        return text.replace(b"?>", b"?>" + lol, 1).replace(b"<v>", b"<v>&d;", 1)
    return draw(mutated(text, most=3))


def _workbook(cells: list[tuple[int, int, object]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row, column, value in cells:
        sheet.cell(row=row, column=column, value=value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@st.composite
def xlsx_files(draw) -> bytes:
    """A valid workbook (odd cells at odd places, or one with sheets and merged cells) with one inner XML
    part mutated and the whole zipped again."""
    if draw(st.booleans()):
        base = xlsx_with_sheets_and_merged_cells()
    else:
        value = st.none() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False) | CELL.map(
            lambda s: "".join(ch for ch in s if ch >= " " or ch in "\t\n"))
        cells = draw(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 12), value), min_size=1, max_size=20))
        base = _workbook(cells)
    with zipfile.ZipFile(io.BytesIO(base)) as book:
        parts = {info.filename: book.read(info) for info in book.infolist()}
    target = draw(st.sampled_from([m for m in XLSX_MEMBERS if m in parts]))
    parts[target] = draw(xml_mutated(parts[target]))
    return make_zip(parts)


@given(data=st.binary(max_size=2_048).map(lambda b: b"PK\x03\x04" + b))
@FUZZ
def test_xlsx_arbitrary_bytes(data):
    check_table(data, "book.xlsx")


@given(data=xlsx_files())
@FUZZ
def test_xlsx_inner_xml_mutated(data):
    check_table(data, "book.xlsx")


# --- BibTeX and RIS ---------------------------------------------------------------------------------------

LATEX = st.sampled_from(["\\'e", '{\\"o}', "\\frac{a}", "$x^2$", "$", "\\url{", "\\\\", "%", "--", "---", "~",
                         "\\c{c}", "{\\ss}", "\\emph{x}", "\\", "{", "}", "{}", "#", "@", "\"", "\\begin{x}", "''"])
BIB_TEXT = st.lists(LATEX | CELL, max_size=8).map("".join)
MACRO = st.sampled_from(["jan", "nat", "acm", "a", "X_1", "{", "", "b c"])


@st.composite
def bib_value(draw) -> str:
    parts = draw(st.lists(st.one_of(BIB_TEXT.map(lambda t: "{" + t + "}"), BIB_TEXT.map(lambda t: f'"{t}"'), MACRO,
                                    st.integers(-5, 3000).map(str)), min_size=1, max_size=4))
    return " # ".join(parts)


@st.composite
def bibtex_files(draw) -> bytes:
    """BibTeX of entries, @string macros (some defined by others), @comment, @preamble and stray text,
    with braces and LaTeX anywhere."""
    blocks = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["entry", "entry", "string", "comment", "preamble", "stray"]))
        if kind == "string":
            blocks.append(f"@string{{{draw(MACRO)} = {draw(bib_value())}}}")
        elif kind == "comment":
            blocks.append(f"@comment{{{draw(BIB_TEXT)}}}" if draw(st.booleans()) else f"% {draw(BIB_TEXT)}")
        elif kind == "preamble":
            blocks.append(f"@preamble{{{draw(bib_value())}}}")
        elif kind == "stray":
            blocks.append(draw(BIB_TEXT))
        else:
            fields = draw(st.lists(st.tuples(st.sampled_from(["title", "abstract", "author", "year", "doi", "journal",
                                                              "keywords", "date", "editor", "x", ""]), bib_value()),
                                   max_size=6))
            body = ",\n  ".join(f"{name} = {value}" for name, value in fields)
            entry_type = draw(st.sampled_from(["article", "inproceedings", "misc", "", "string", "ARTICLE"]))
            blocks.append(f"@{entry_type}{{{draw(CELL)},\n  {body}}}")
    text = "\n".join(blocks)
    return draw(mutated(text.encode(draw(st.sampled_from(["utf-8", "latin-1", "utf-16"])), errors="replace"),
                        most=2))


RIS_TAGS = st.sampled_from(["TY", "ER", "TI", "T1", "AU", "A1", "PY", "Y1", "DA", "AB", "N2", "KW", "DO", "JO", "T2",
                            "ID", "SP", "UR", "ZZ", "T Y", "ty", "TY ", "", "1A"])


@st.composite
def ris_files(draw) -> bytes:
    """RIS lines: known, unknown and malformed tags, spacing variants, continuation lines, mutated."""
    lines = []
    for _ in range(draw(st.integers(1, 30))):
        tag = draw(RIS_TAGS)
        dash = draw(st.sampled_from(["  - ", " - ", "  -", "- ", "  -  ", ""]))
        lines.append(f"{tag}{dash}{draw(CELL)}" if draw(st.integers(0, 5)) else draw(CELL))
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    return draw(mutated(("\ufeff" if draw(st.booleans()) else "").encode() + text.encode(), most=2))


@given(data=ANY_BYTES, name=st.sampled_from(["refs.bib", "refs.ris"]))
@FUZZ
def test_bibliography_arbitrary_bytes(data, name):
    check_table(data, name)


@given(data=bibtex_files())
@FUZZ
def test_bibtex_macros_braces_and_comments(data):
    check_table(data, "refs.bib")


@given(data=ris_files(), name=st.sampled_from(["refs.ris", "refs.txt"]))
@FUZZ
def test_ris_tags(data, name):
    check_table(data, name)


# --- your own vectors, layout and neighbours ----------------------------------------------------------------

NUMBERS = (st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.sampled_from([1e308, 1e200, -1e200,
                                                                                               5e-324, 10**400]))
NESTED = st.recursive(NUMBERS | st.none() | st.booleans() | CELL, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(CELL, inner, max_size=2), max_leaves=16)
VECTOR_CELLS = st.one_of(
    st.lists(NUMBERS, min_size=0, max_size=6).map(json.dumps),  # what CSV holds: JSON text
    NESTED.map(json.dumps),
    st.lists(NUMBERS, min_size=2, max_size=6).map(lambda v: np.array(v, dtype=object)),
    st.integers(1, 200_000).map(lambda depth: "[" * depth + "1" + "]" * depth),
    CELL, st.none(), st.floats(),
)
NEIGHBOUR_CELLS = st.one_of(
    st.fixed_dictionaries({"ids": st.lists(NUMBERS | CELL, max_size=4)},
                          optional={"distances": st.lists(NUMBERS | CELL, max_size=4)}).map(json.dumps),
    NESTED.map(json.dumps), CELL, st.none(),
)


@given(cells=st.lists(st.tuples(VECTOR_CELLS, NEIGHBOUR_CELLS, NUMBERS | CELL, NUMBERS), min_size=1, max_size=8),
       which=st.sampled_from(["vectors", "neighbors", "layout", "all"]))
@FUZZ
def test_vector_layout_and_neighbour_columns(cells, which):
    frame = pd.DataFrame(cells, columns=["emb", "nb", "px", "py"])
    frame["title"] = [f"row {i}" for i in range(len(frame))]
    asked = {"vectors": {"vectors": "emb"}, "neighbors": {"neighbors": "nb"}, "layout": {"x": "px", "y": "py"},
             "all": {"vectors": "emb", "neighbors": "nb", "x": "px", "y": "py"}}[which]
    size = sum(len(str(v)) for row in cells for v in row)

    def read():
        offered_columns(frame)
        given = read_given(frame, **asked)
        if given.vectors is not None:
            present = given.vectors.vectors[given.vectors.present]
            assert np.isfinite(present).all() and np.allclose(np.linalg.norm(present, axis=1), 1, atol=1e-3), \
                "every given vector is stored as a unit vector"
        return given

    holds(read, size)


# --- images and ZIPs of images --------------------------------------------------------------------------------

IMAGE_MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I", "F", "CMYK"]
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp", "TIFF": "tif", "WEBP": "webp"}


def _image_bytes(mode: str, fmt: str, width: int, height: int, seed: int) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB").convert(mode)
    buffer = io.BytesIO()
    try:
        image.save(buffer, fmt)
    except (OSError, ValueError, KeyError):  # a mode this format cannot hold: save it as RGB
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, fmt)
    return buffer.getvalue()


def _with_size(data: bytes, width: int, height: int) -> bytes:
    """The image's header made to claim another size (its checksum kept valid where it has one)."""
    if data.startswith(b"\x89PNG") and data[12:16] == b"IHDR":
        body = struct.pack(">II", width, height) + data[24:29]
        return data[:16] + body + struct.pack(">I", zlib.crc32(b"IHDR" + body)) + data[33:]
    if data.startswith(b"GIF8"):
        return data[:6] + struct.pack("<HH", width & 0xFFFF, height & 0xFFFF) + data[10:]
    if data.startswith(b"BM"):
        return data[:18] + struct.pack("<ii", width & 0x7FFFFFFF, height & 0x7FFFFFFF) + data[26:]
    if data.startswith(b"\xff\xd8"):
        at = data.find(b"\xff\xc0")
        if at > 0:
            return data[:at + 5] + struct.pack(">HH", height & 0xFFFF, width & 0xFFFF) + data[at + 9:]
    return data


@st.composite
def image_files(draw) -> tuple[bytes, str]:
    """A real small image in some format and mode, with its header's size changed or bytes mutated."""
    fmt = draw(st.sampled_from(sorted(IMAGE_FORMATS)))
    data = _image_bytes(draw(st.sampled_from(IMAGE_MODES)), fmt, draw(st.integers(1, 24)), draw(st.integers(1, 24)),
                        draw(st.integers(0, 9)))
    if draw(st.booleans()):
        side = st.sampled_from([0, 1, 65_535, 30_000, 9_000, 2**31 - 1]) | st.integers(0, 70_000)
        data = _with_size(data, draw(side), draw(side))
    data = draw(mutated(data, most=3))
    return data, f"image.{IMAGE_FORMATS[fmt] if draw(st.booleans()) else draw(st.sampled_from(['png', 'jpg', 'bmp']))}"


def check_images(data: bytes, name: str) -> None:
    """The image readers' property on one input: one image decoded, and the file read as an upload."""
    holds(lambda: open_image(data), len(data))
    holds(lambda: read_images(data, name=name), len(data))


@given(data=ANY_BYTES, name=st.sampled_from(["image.png", "image.jpg", "images.zip"]))
@FUZZ
def test_images_arbitrary_bytes(data, name):
    check_images(data, name)


@given(image=image_files())
@FUZZ
def test_image_headers_mutated(image):
    check_images(*image)


ZIP_NAMES = st.one_of(
    st.sampled_from(["a.png", "cats/b.jpg", "../up.png", "/abs.png", "C:\\win.png", "a/../../x.png", "", "dir/",
                     "__MACOSX/._a.png", ".hidden.png", "Thumbs.db", "a\\b\\c.png", "nested.zip", "é/ü.png",
                     "a/" * 60 + "deep.png", "x" * 300 + ".png", "CON.png", "a.PNG", " .png", "a.png "]),
    CELL.map(lambda s: s + ".png"),
)


@st.composite
def zip_files(draw) -> bytes:
    """A ZIP of images, junk, empty files and nested ZIPs under odd names, stored or compressed, mutated."""
    png = _image_bytes("RGB", "PNG", 8, 8, 0)
    contents = st.sampled_from([png, b"", b"not an image", _with_size(png, 60_000, 60_000),
                                make_zip({"inner.png": png}), bytes(200_000)])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a name written twice is part of the test
        for name, content in draw(st.lists(st.tuples(ZIP_NAMES, contents), max_size=8)):
            method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                           zipfile.ZIP_LZMA]))
            with contextlib.suppress(ValueError):  # a name zipfile itself refuses to write
                archive.writestr(zipfile.ZipInfo(name), content, compress_type=method)
    data = buffer.getvalue()
    return draw(mutated(data, most=2)) if draw(st.booleans()) else data


@given(data=zip_files())
@FUZZ
def test_zip_of_images(data):
    holds(lambda: read_images(data, name="images.zip"), len(data))
