"""The corpus of hostile inputs: one generator per case and the outcome each one must have.

Every case makes its input in memory (nothing large is kept in the repository) and states what the
library, the CLI and the app must do with it: refuse it with one documented exception type and a
message holding ``message``, or load it, keeping ``rows`` rows and skipping ``skipped`` lines or files,
with ``message`` among the notes. tests/test_hostile.py runs every case; benchmarks/reliability_table.py
turns the same table into docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from explorer.errors import ExplorerError, InputError

TABLE, IMAGES, QUERY, MAP_NAME, VECTORS = "table", "images", "query", "map name", "your vectors"
CANARY = '<img src=x onerror="window.__pwned=1">'
FORMULAS = ["=1+1", "+SUM(A1:A9)", "-2+3", "@risk", '=HYPERLINK("http://x.invalid","click")']


@dataclass(frozen=True)
class Case:
    """One hostile input and the outcome it must have."""

    id: str
    input: str  # what the input is, in a few words (the first column of docs/reliability.md)
    make: Callable[[], tuple[str, bytes]]  # the file name and its bytes
    kind: str = TABLE
    error: type[ExplorerError] | None = None
    message: str = ""  # in the error message, or in one of the notes when the input loads
    rows: int | None = None  # rows (or images) kept when it loads
    skipped: int = 0  # lines or files left out when it loads
    env: dict[str, str] = field(default_factory=dict)  # limits lowered for this case
    query: str | None = None  # QUERY cases: searched in a map built from the file
    map_name: str | None = None  # MAP_NAME cases: the name the map is built under
    app: bool = False  # also uploaded through the app in the AppTest pass
    given: dict = field(default_factory=dict)  # VECTORS cases: build_map's vectors/x/y/neighbors
    model: str | None = None  # VECTORS cases: the model named as the one that made the vectors
    # Cases that are not an upload (a filter pattern, a text template, a damaged cache...): what the
    # library does with the written input, and the CLI's argv (path, home) for it, or None where the CLI
    # has no such input.
    run: Callable[[Path, object], Outcome] | None = None
    cli: Callable[[Path, Path], list[str]] | None = None


# --- building blocks --------------------------------------------------------------------------------

_TOPICS = [
    ("Protein folding pathways in single molecules", "Chains of amino acids fold into their native shape."),
    ("Gravitational waves from merging black holes", "Interferometers detect ripples in spacetime."),
    ("Minimum wage and employment in fast food", "Raising the minimum wage did not reduce jobs."),
    ("Gene expression in yeast under stress", "Transcription changes when cells are starved."),
    ("Superconductivity in layered copper oxides", "Resistance vanishes below a critical temperature."),
    ("Trade tariffs and consumer prices", "Import taxes were passed on to the prices consumers pay."),
]


def papers(n: int = 6) -> pd.DataFrame:
    """n rows of title, abstract and year about clearly different topics."""
    rows = [{"title": f"{t} ({i})", "abstract": a, "year": 2000 + i}
            for i, (t, a) in ((i, _TOPICS[i % len(_TOPICS)]) for i in range(n))]
    return pd.DataFrame(rows)


def papers_csv(n: int = 6) -> bytes:
    """papers(n) as UTF-8 CSV bytes."""
    return papers(n).to_csv(index=False).encode()


def _lines(*lines: str, encoding: str = "utf-8") -> bytes:
    return ("\n".join(lines) + "\n").encode(encoding)


def png(width: int = 16, height: int = 16, colour: str = "red") -> bytes:
    """A small real PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(size: int = 128) -> bytes:
    """A small real JPEG of noise (so cutting it in half cuts its pixel data, not its header)."""
    from PIL import Image

    image = Image.effect_noise((size, size), 64).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG that claims 900 megapixels in 70 bytes: decoding it would need gigabytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def make_zip(members: dict[str, bytes]) -> bytes:
    """A ZIP holding ``members`` under exactly those names (even unsafe ones)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            # A ZipInfo keeps the name exactly as given (../ and all) but must be told to deflate.
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def many_files_zip(count: int) -> bytes:
    """A ZIP of ``count`` one-byte files (stored, so it is written in well under a second)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            archive.writestr(f"f/{i:05d}.png", b"x")
    return buffer.getvalue()


@cache
def zip_bomb(megabytes: int = 1_100) -> bytes:
    """A ~1 MB ZIP whose one member inflates to ``megabytes`` MB of zeros.

    Deflating a gigabyte takes seconds; instead one megabyte is deflated once, ending on a full flush
    (so the block depends on nothing before it), and repeated: the stream stays valid and honest.
    """
    chunk = bytes(1 << 20)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflater.compress(chunk) + deflater.flush(zlib.Z_FULL_FLUSH)
    stream = block * megabytes + b"\x03\x00"  # an empty final block ends the stream
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(chunk, crc)
    name = b"zeros.bmp"
    size = megabytes << 20
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(stream), size, len(name), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(stream), size,
                          len(name), 0, 0, 0, 0, 0, 0)
    offset = len(local) + len(name) + len(stream)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(name), offset, 0)
    return local + name + stream + central + name + end


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def xlsx_with_sheets_and_merged_cells() -> bytes:
    """Three sheets; the first has a title merged across the table above its header and a 'field' column
    whose cells are merged down pairs of rows."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "papers"
    sheet.append(["Papers we read in 2024"])
    sheet.merge_cells("A1:C1")
    sheet.append([])
    sheet.append(["title", "abstract", "field"])
    for i, (title, abstract) in enumerate(_TOPICS):
        sheet.append([title, abstract, ("biology", "physics", "economics")[i // 2] if i % 2 == 0 else None])
    for first in (4, 6, 8):  # each field names the two rows beside it, as people lay out groups
        sheet.merge_cells(f"C{first}:C{first + 1}")
    book.create_sheet("notes").append(["this sheet is not the data"])
    book.create_sheet("empty")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- the cases ----------------------------------------------------------------------------------------


def _ragged() -> tuple[str, bytes]:
    return "ragged.csv", _lines(
        "title,abstract,year",
        "Protein folding,Chains of amino acids fold,2001",
        "Black holes,Ripples in spacetime",
        "Minimum wage",
        "Yeast genes,Cells starve, and they adapt,2004",
        "Copper oxides,Resistance vanishes,2005,,",
    )


def _unclosed_quote() -> tuple[str, bytes]:
    return "unclosed.csv", _lines(
        "title,abstract",
        "Protein folding,Chains of amino acids fold",
        '"Black holes,Ripples in spacetime',
        "Minimum wage,Jobs did not fall",
        "Yeast genes,Cells starve",
    )


def _mixed_delimiters() -> tuple[str, bytes]:
    return "mixed.csv", _lines(
        "title;abstract;year",
        "Protein folding;Chains of amino acids fold;2001",
        "Black holes;Ripples in spacetime;2002",
        "Minimum wage,Jobs did not fall,2003",
        "Yeast genes;Cells starve\tand adapt;2004",
    )


def _nul_bytes() -> tuple[str, bytes]:
    return "nul.csv", papers_csv().replace(b"Protein", b"Pro\x00tein").replace(b"\n", b"\x00\n", 2)


def _invalid_utf8_middle() -> tuple[str, bytes]:
    good = _lines("title,abstract", "Café society in Zürich,Naïve models of crème brûlée",
                  "Protein folding,Chains of amino acids fold")
    return "bad_utf8.csv", good + b"Black holes \xff\xfe merging,Ripples in spacetime\n" + _lines(
        "Minimum wage,Jobs did not fall")


# --- bibliographies and legacy encodings -----------------------------------------------------------------

_BIB_GOOD = ["@article{first2020, title = {Protein folding in single molecules}, author = {M{\\\"u}ller, J{\\\"o}rg},",
             "  year = 2020, abstract = {Chains of amino acids fold into their native shape.}}", ""]
_BIB_LAST = ["@article{last2021, title = {Gravitational waves from merging black holes}, year = {2021},",
             "  abstract = {Interferometers detect ripples in spacetime.}}"]


def _bib_malformed_middle() -> tuple[str, bytes]:
    broken = ["@inproceedings{broken, title = {A title whose brace never closes,", "  year = {2019}", ""]
    return "refs.bib", _lines(*_BIB_GOOD, *broken, *_BIB_LAST)


def _check_bib(table) -> None:
    assert table.frame["key"].tolist() == ["first2020", "last2021"]
    assert table.frame.loc[0, "authors"] == "Müller, Jörg", "LaTeX accents are decoded"


def _bib_huge_entry() -> tuple[str, bytes]:
    abstract = "Caf\\'e au lait and " * 265_000  # 5.0 MB
    return "huge.bib", _lines("@article{huge, title = {A paper with a 5 MB abstract},", f"  abstract = {{{abstract}}}}}")


_RIS_GOOD = ["TY  - JOUR", "TI  - Protein folding in single molecules", "AU  - Müller, Jörg", "PY  - 2020", "ER  - ", ""]
_RIS_LAST = ["TY  - JOUR", "TI  - Gravitational waves from merging black holes", "PY  - 2021", "ER  - "]


def _ris_malformed_middle() -> tuple[str, bytes]:
    return "refs.ris", _lines(*_RIS_GOOD, "T Y - JOUR", "TI  - An entry whose TY line is broken", "ER  - ", "",
                              *_RIS_LAST)


def _legacy_csv(encoding: str, rows: list[tuple[str, str]]) -> Callable[[], tuple[str, bytes]]:
    return lambda: (f"{encoding}.csv", _lines("title,abstract", *(f"{t},{a}" for t, a in rows), encoding=encoding))


_JAPANESE = [("機械学習による画像認識の研究", "深層学習を用いた自然言語処理"),
             ("東京大学の研究者が新しい手法を提案した", "データの前処理と特徴量の抽出について")]
_RUSSIAN = [("Машинное обучение для распознавания изображений", "Обработка естественного языка"),
            ("Исследователи из Москвы предложили новый метод", "Обучение глубоких сетей занимает много времени")]
_CHINESE = [("基于机器学习的图像识别研究", "使用深度学习的自然语言处理"), ("北京大学的研究人员提出了一种新方法", "数据预处理与特征提取")]


def _check_legacy(rows: list[tuple[str, str]]) -> Callable:
    def check(table) -> None:
        assert list(zip(table.frame["title"], table.frame["abstract"], strict=True)) == rows, "read back exactly"
    return check


def _mixed_encodings() -> tuple[str, bytes]:
    return "mixed.csv", (_lines("title,abstract", "Café in UTF-8,Naïve crème brûlée")
                         + _lines("Café in cp1252,Naïve crème brûlée", encoding="cp1252"))


def _five_mb_cell() -> tuple[str, bytes]:
    frame = papers(4)
    frame.loc[1, "abstract"] = ("protein " * 625_000)[:5_000_000]
    return "huge_cell.csv", frame.to_csv(index=False).encode()


def _check_five_mb_cell(table) -> None:
    assert len(table.frame.loc[1, "abstract"]) == 5_000_000, "the table keeps the whole cell"


def _five_mb_cell_ragged() -> tuple[str, bytes]:
    # A row with too many fields sends the file to the line-by-line reader, which has its own field limit.
    return "huge_cell_ragged.csv", _five_mb_cell()[1] + b"Copper oxides,Resistance vanishes,2005,extra,fields\n"


def _binary() -> tuple[str, bytes]:
    import random

    return "papers.csv", random.Random(7).randbytes(4096)


ESCAPES = "\x1b[2J\x1b]0;owned\x07\x9b31m"


def _terminal_escapes() -> tuple[str, bytes]:
    frame = papers(6)
    frame["title"] = [f"{ESCAPES}{title}" for title in frame["title"]]
    frame["again"] = frame["year"]
    header = f"title,abstract,{ESCAPES}year,{ESCAPES}year"
    return "escapes.csv", frame.to_csv(index=False).replace("title,abstract,year,again", header, 1).encode()


def _thousand_columns() -> tuple[str, bytes]:
    frame = papers(3)
    extra = pd.DataFrame({f"c{i}": range(3) for i in range(997)})
    return "wide.csv", pd.concat([frame, extra], axis=1).to_csv(index=False).encode()


def _pandas_internals() -> tuple[str, bytes]:
    frame = papers(6)
    for i, col in enumerate(["index", "level_0", "__index_level_0__", "row_id", "x"]):
        frame[col] = [f"{col}-{r}" if i % 2 else r for r in range(6)]
    return "internals.csv", frame.to_csv(index=False).encode()


def _check_internals(table) -> None:
    assert {"index", "level_0", "__index_level_0__", "row_id_original", "x_original"} <= set(table.frame.columns)


EMOJI_RTL = [
    "Protein folding 🧬🔬 in cells 👩‍🔬",
    "ثقوب سوداء تندمج وموجات الجاذبية",
    "חור שחור ומיזוג גלי כבידה",
    "Mixed \u202etxet desrever\u202c and zero\u200bwidth joiners",
    "Flags 🇫🇷🇯🇵 and skin tones 👍🏽",
    "Combining marks: Z̤͔ͧ̑̓ä͖̭̈̇lgo",
]


def _emoji_rtl() -> tuple[str, bytes]:
    frame = pd.DataFrame({"title": EMOJI_RTL, "abstract": [t[::-1] for t in EMOJI_RTL]})
    return "emoji_rtl.csv", frame.to_csv(index=False).encode()


def _check_emoji_rtl(table) -> None:
    assert table.frame["title"].tolist() == EMOJI_RTL


def _jsonl_broken_line() -> tuple[str, bytes]:
    lines = [json.dumps({"title": t, "abstract": a}) for t, a in _TOPICS[:5]]
    lines.insert(2, '{"title": "broken, "abstract": no quotes}')
    return "broken.jsonl", ("\n".join(lines) + "\n").encode()


def _parquet_nested() -> tuple[str, bytes]:
    frame = papers(4)
    frame["authors"] = [["Ada", "Grace"], [], ["Alan"], None]
    frame["meta"] = [{"venue": "Nature", "pages": 3}, {"venue": "Science", "pages": 9}, None,
                     {"venue": "Cell", "pages": 1}]
    return "nested.parquet", _parquet(frame)


def _check_nested(table) -> None:
    assert table.frame.loc[0, "authors"] == '["Ada", "Grace"]'


def _check_merged(table) -> None:
    assert table.frame["field"].tolist() == ["biology", "biology", "physics", "physics", "economics",
                                             "economics"], "merged cells give their value to every row"


def _html_titles() -> tuple[str, bytes]:
    frame = papers(6)
    frame.loc[0, "title"] = CANARY
    frame.loc[1, "title"] = "<script>window.__pwned=1</script> Protein folding"
    frame.loc[2, "abstract"] = '"><svg onload="window.__pwned=1"> javascript:alert(1) **bold** [x](javascript:1)'
    return "html_titles.csv", frame.to_csv(index=False).encode()


def _check_html(table) -> None:
    assert table.frame.loc[0, "title"] == CANARY, "values are kept exactly; they are escaped when shown"


def _formula_cells() -> tuple[str, bytes]:
    frame = papers(5)
    frame["note"] = FORMULAS
    frame.loc[0, "title"] = "=cmd|' /C calc'!A0 protein folding"
    return "formulas.csv", frame.to_csv(index=False).encode()


def _check_formulas(table) -> None:
    assert table.frame["note"].tolist() == FORMULAS, "values are kept exactly; only CSV export prefixes them"


def _zip_some_corrupt() -> tuple[str, bytes]:
    whole = jpeg()
    return "photos.zip", make_zip({
        "red/a.png": png(colour="red"), "green/b.png": png(colour="green"), "blue/c.png": png(colour="blue"),
        "blue/cut.jpg": whole[: len(whole) // 2], "notes.txt": b"not an image",
    })


def _zip_slip() -> tuple[str, bytes]:
    return "slip.zip", make_zip({"../../evil.png": png(), "/etc/absolute.png": png(), "C:\\windows.png": png(),
                                 "a/../../up.png": png(), "safe/ok.png": png(), "safe/ok2.png": png(colour="blue")})


def _svg_as_png() -> tuple[str, bytes]:
    return "logo.png", b'<svg xmlns="http://www.w3.org/2000/svg" onload="window.__pwned=1"><rect/></svg>'


def _truncated_jpeg() -> tuple[str, bytes]:
    whole = jpeg()
    return "cut.jpg", whole[: len(whole) // 2]


def _png_named_csv() -> tuple[str, bytes]:
    return "papers.csv", png()


def _xlsx_named_csv() -> tuple[str, bytes]:
    return "papers.csv", xlsx_with_sheets_and_merged_cells()


def _truncated_parquet() -> tuple[str, bytes]:
    data = _parquet(papers(50))
    return "cut.parquet", data[: len(data) // 2]


def _with_vectors(name: str, vectors: list, **columns) -> Callable[[], tuple[str, bytes]]:
    """Papers with a column of vectors (and any other columns), as Parquet (lists stay lists) or CSV (JSON text)."""
    def make() -> tuple[str, bytes]:
        frame = papers(len(vectors)).assign(emb=vectors, **columns)
        if name.endswith(".csv"):
            frame["emb"] = [v if isinstance(v, str) else json.dumps(v) for v in vectors]
            return name, frame.to_csv(index=False).encode()
        return name, _parquet(frame)
    return make


def _unit(i: int, dim: int = 4) -> list[float]:
    return [1.0 if j == i % dim else 0.1 for j in range(dim)]


def _deep_json() -> tuple[str, bytes]:
    return "deep.json", b"[" * 100_000 + b"]" * 100_000


CASES: list[Case] = [
    # --- tables: what is refused -----------------------------------------------------------------------
    Case("empty", "empty file (0 bytes)", lambda: ("empty.csv", b""), error=InputError,
         message="the file is empty", app=True),
    Case("blank_lines", "only blank lines and spaces", lambda: ("blank.csv", b"\n \r\n\t\n"), error=InputError,
         message="the file is empty"),
    Case("bom_only", "only a UTF-8 byte-order mark", lambda: ("bom.csv", b"\xef\xbb\xbf\n"), error=InputError,
         message="the file is empty"),
    Case("header_only", "header only", lambda: ("header.csv", b"title,abstract\n"), error=InputError,
         message="a header but no rows", app=True),
    Case("all_text_empty", "every text cell empty or NaN",
         lambda: ("empty_text.csv", _lines("title,abstract,year", ",,2001", "NaN,,2002", '"",nan,2003')),
         error=InputError, message="No text column was found"),
    Case("numbers_only", "numbers only", lambda: ("numbers.csv", _lines("a,b,c", "1,2,3", "4,5.5,-6")),
         error=InputError, message="No text column was found", app=True),
    Case("json_not_records", "JSON list of numbers, not records", lambda: ("list.json", b"[1, 2, 3]"),
         error=InputError, message="the JSON is a list but not of records", app=True),
    Case("json_scalar", "JSON that is one string", lambda: ("scalar.json", b'"just a string"'),
         error=InputError, message="neither a list of records nor an object of columns"),
    Case("json_syntax", "JSON with a syntax error", lambda: ("bad.json", b'[{"title": "a",}]'),
         error=InputError, message="invalid JSON at line 1, column 16"),
    Case("json_deep", "JSON nested 100,000 levels deep", _deep_json, error=InputError,
         message="nested too deeply"),
    Case("jsonl_all_broken", "JSONL where no line is an object",
         lambda: ("broken.jsonl", b"not json\n[1, 2]\n{oops}\n"), error=InputError,
         message="no line is a JSON object"),
    Case("parquet_truncated", "Parquet cut in half", _truncated_parquet, error=InputError,
         message="cannot read this Parquet file"),
    Case("xlsx_corrupt", "a ZIP that is not a workbook, named .xlsx",
         lambda: ("book.xlsx", make_zip({"hello.txt": b"hi"})), error=InputError,
         message="cannot read this Excel file"),
    Case("csv_named_parquet", "CSV text named .parquet", lambda: ("papers.parquet", papers_csv()),
         error=InputError, message="the name says PARQUET but the content is not", app=True),
    Case("png_named_csv", "a PNG image named .csv", _png_named_csv, error=InputError,
         message="is a PNG image, not a table", app=True),
    Case("zip_named_csv", "a ZIP of images named .csv", lambda: ("papers.csv", make_zip({"a.png": png()})),
         error=InputError, message="is a ZIP archive, not a table"),
    Case("binary_named_csv", "random bytes named .csv", _binary, error=InputError,
         message="this is binary data, not text"),
    Case("gzip_csv", "a gzip-compressed CSV (.csv.gz)",
         lambda: ("papers.csv.gz", zlib.compress(papers_csv())), error=InputError,
         message="unsupported file type '.gz'"),
    Case("over_row_cap", "more rows than the row cap (EXPLORER_MAX_ROWS=100)",
         lambda: ("many_rows.csv", papers_csv(101)), error=InputError,
         message="101 rows is more than the limit of 100", env={"EXPLORER_MAX_ROWS": "100"}, app=True),
    Case("over_upload_cap", "a file over the upload cap (EXPLORER_MAX_UPLOAD_MB=1)",
         lambda: ("big.csv", papers_csv(12_000)), error=InputError,
         message="more than the limit of 1 MB", env={"EXPLORER_MAX_UPLOAD_MB": "1"}),
    # --- tables: what loads, with what was repaired or left out ------------------------------------------
    Case("one_row", "one row", lambda: ("one.csv", papers_csv(1)), rows=1),
    Case("thousand_columns", "1,000 columns", _thousand_columns, rows=3),
    Case("ragged", "ragged rows (short and long)", _ragged, rows=5,
         message="have more fields than the header (line 5)"),
    Case("unclosed_quote", "a quote never closed", _unclosed_quote, rows=4,
         message="A quote is opened and never closed on line 3", app=True),
    Case("mixed_delimiters", "semicolons with one comma-separated line", _mixed_delimiters, rows=4,
         message="Columns are separated by semicolons"),
    Case("nul_bytes", "NUL bytes inside cells and line ends", _nul_bytes, rows=6,
         message="Removed 3 NUL characters", app=True),
    Case("utf16le_no_bom", "UTF-16 LE without BOM", lambda: ("utf16.csv", papers().to_csv(index=False)
                                                               .encode("utf-16-le")),
         rows=6, message="read as UTF-16-LE (no byte-order mark)"),
    Case("utf16be_no_bom", "UTF-16 BE without BOM", lambda: ("utf16be.csv", papers().to_csv(index=False)
                                                               .encode("utf-16-be")),
         rows=6, message="read as UTF-16-BE (no byte-order mark)"),
    Case("cp1252", "cp1252 text (curly quotes, €)",
         lambda: ("cp1252.csv", _lines("title,abstract", "“Smart” quotes cost 5 €,Naïve café prices",
                                       "Protein folding,Chains fold", encoding="cp1252")),
         rows=2, message="it was read as cp1252", app=True),
    Case("latin1", "latin-1 text with bytes cp1252 lacks",
         lambda: ("latin1.csv", _lines("title,abstract", "Control \x81 byte and café,Zürich",
                                       "Protein folding,Chains fold", encoding="latin-1")),
         rows=2, message="it was read as latin-1"),
    Case("invalid_utf8_middle", "UTF-8 with invalid bytes in the middle", _invalid_utf8_middle, rows=4,
         message="2 invalid byte sequence(s) on line 4: they were replaced", app=True),
    Case("shift_jis", "a Shift_JIS CSV", _legacy_csv("shift_jis", _JAPANESE), rows=2,
         message="it was read as cp932", app=True),
    Case("cp1251", "a cp1251 (Cyrillic) CSV", _legacy_csv("cp1251", _RUSSIAN), rows=2, message="it was read as cp1251"),
    Case("gb18030", "a GB18030 (Chinese) CSV", _legacy_csv("gb18030", _CHINESE), rows=2,
         message="it was read as gb18030"),
    Case("mixed_encodings", "UTF-8 and cp1252 lines in one file", _mixed_encodings, rows=2,
         message="The file mixes encodings: 1 line(s) are not UTF-8 (line 3) and were read as cp1252"),
    Case("bib_malformed_middle", "BibTeX with a malformed entry between good ones", _bib_malformed_middle, rows=2,
         skipped=1, message="Skipped 1 malformed BibTeX entry (line 4", app=True),
    Case("bib_no_entries", "a .bib file with comments and no entry",
         lambda: ("empty.bib", _lines("% exported by hand", "@comment{nothing here}")), error=InputError,
         message="no BibTeX entry could be read", app=True),
    Case("bib_huge_entry", "a BibTeX entry with a 5 MB abstract", _bib_huge_entry, rows=1,
         message="only the first 20,000 are embedded"),
    Case("ris_malformed_middle", "RIS with an entry whose TY line is broken", _ris_malformed_middle, rows=2,
         skipped=1, message="Skipped 1 malformed RIS entry (line 8", app=True),
    Case("ris_not_ris", "a .ris file that holds no RIS entry", lambda: ("refs.ris", _lines("title,abstract", "A,B")),
         error=InputError, message="no RIS entry could be read"),
    Case("five_mb_cell", "a 5 MB single cell", _five_mb_cell, rows=4,
         message="only the first 20,000 are embedded"),
    Case("five_mb_cell_ragged", "a 5 MB cell in a file with a ragged row", _five_mb_cell_ragged, rows=5,
         message="1 line(s) have more fields than the header (line 6)"),
    Case("long_text_cap", "text over the per-row cap (EXPLORER_MAX_TEXT_CHARS=40)",
         lambda: ("long.csv", papers_csv()), rows=6, message="only the first 40 are embedded",
         env={"EXPLORER_MAX_TEXT_CHARS": "40"}),
    Case("duplicate_columns", "duplicate column names",
         lambda: ("dupes.csv", _lines("title,title,abstract,abstract", "A,B,Protein folds,Cells",
                                      "C,D,Black holes,Waves")),
         rows=2, message="Renamed repeated column name(s): title, abstract"),
    Case("pandas_internals", "columns named index, level_0, __index_level_0__, row_id, x", _pandas_internals,
         rows=6, message="Renamed column(s) row_id, x to *_original"),
    Case("terminal_escapes", "terminal escape codes in titles and column names", _terminal_escapes, rows=6,
         message="Renamed repeated column name(s)"),
    Case("emoji_rtl", "emoji, right-to-left and combining text", _emoji_rtl, rows=6),
    Case("jsonl_broken_line", "JSONL with one broken line", _jsonl_broken_line, rows=5, skipped=1,
         message="Skipped 1 line(s) that are not JSON objects (line 3)", app=True),
    Case("parquet_nested", "Parquet with list and struct columns", _parquet_nested, rows=4),
    Case("xlsx_sheets_merged", "XLSX with 3 sheets and merged cells",
         lambda: ("book.xlsx", xlsx_with_sheets_and_merged_cells()), rows=6,
         message="Read sheet 'papers'; the workbook has 3 sheets", app=True),
    Case("xlsx_named_csv", "an Excel workbook named .csv", _xlsx_named_csv, rows=6,
         message="is an Excel workbook: it was read as one"),
    Case("parquet_named_csv", "Parquet named .csv", lambda: ("papers.csv", _parquet(papers())), rows=6,
         message="papers.csv is a Parquet file: it was read as one"),
    Case("html_titles", "HTML and script tags in titles", _html_titles, rows=6),
    Case("formula_cells", "cells starting with =, +, -, @", _formula_cells, rows=5),
    # --- images ----------------------------------------------------------------------------------------
    Case("text_named_png", "a text file named .png", lambda: ("photo.png", b"hello, I am text\n"),
         kind=IMAGES, error=InputError, message="photo.png (not an image", app=True),
    Case("svg_named_png", "an SVG with a script, named .png", _svg_as_png, kind=IMAGES, error=InputError,
         message="logo.png (not an image"),
    Case("empty_jpeg", "an empty .jpg", lambda: ("empty.jpg", b""), kind=IMAGES, error=InputError,
         message="empty.jpg (not an image"),
    Case("truncated_jpeg", "a truncated JPEG", _truncated_jpeg, kind=IMAGES, error=InputError,
         message="cut.jpg (corrupt or truncated image"),
    Case("png_bomb", "a decompression-bomb PNG (30,000 x 30,000)", lambda: ("bomb.png", png_bomb()),
         kind=IMAGES, error=InputError, message="possible decompression bomb", app=True),
    Case("pixel_cap", "an image over the pixel cap (EXPLORER_MAX_IMAGE_PIXELS=100)",
         lambda: ("small.png", png(20, 20)), kind=IMAGES, error=InputError,
         message="20 x 20 pixels is more than the limit of 100", env={"EXPLORER_MAX_IMAGE_PIXELS": "100"}),
    Case("zip_some_corrupt", "a ZIP with 3 good images, a truncated JPEG and a text file", _zip_some_corrupt,
         kind=IMAGES, rows=3, skipped=2, message="Skipped 2 file(s) that are not usable images", app=True),
    Case("zip_slip", "a ZIP with ../ and absolute paths", _zip_slip, kind=IMAGES, rows=2, skipped=4,
         message="refused: a path with '..' inside the ZIP", app=True),
    Case("zip_bomb", "a ZIP bomb (1 MB unpacking to 1.1 GB)", lambda: ("bomb.zip", zip_bomb()), kind=IMAGES,
         error=InputError, message="would unpack to 1,153.4 MB, more than the limit of 1,074 MB", app=True),
    Case("unzipped_cap", "a ZIP over the unpacked-size cap (EXPLORER_MAX_UNZIPPED_MB=1)",
         lambda: ("zeros.zip", make_zip({"zeros.bmp": bytes(2_000_000)})), kind=IMAGES, error=InputError,
         message="would unpack to 2.0 MB, more than the limit of 1 MB", env={"EXPLORER_MAX_UNZIPPED_MB": "1"}),
    Case("zip_20000_files", "a ZIP of 20,000 tiny files", lambda: ("tiny.zip", many_files_zip(20_000)),
         kind=IMAGES, error=InputError, message="no readable image was found: f/00000.png, f/00001.png, f/00002.png and 19,997 more (not an image"),
    Case("zip_over_file_cap", "a ZIP of 20,001 files (over the entry cap)",
         lambda: ("many.zip", many_files_zip(20_001)), kind=IMAGES, error=InputError,
         message="20,001 files is more than the limit of 20,000"),
    Case("empty_zip", "an empty ZIP", lambda: ("empty.zip", make_zip({})), kind=IMAGES, error=InputError,
         message="no readable image was found: it holds no files"),
    # --- your own vectors, layout and neighbours --------------------------------------------------------
    Case("vectors_ragged", "vectors of different lengths", _with_vectors("ragged.parquet", [_unit(i) for i in range(5)]
         + [[1.0, 2.0]]), kind=VECTORS, given={"vectors": "emb"}, error=InputError, message="have different lengths"),
    Case("vectors_nan", "a vector holding NaN", _with_vectors("nan.parquet", [_unit(i) for i in range(5)]
         + [[1.0, float("nan"), 0.0, 0.0]]), kind=VECTORS, given={"vectors": "emb"}, error=InputError,
         message="Row 6 of 'emb' holds NaN or infinite numbers"),
    Case("vectors_zero", "an all-zero vector", _with_vectors("zero.parquet", [[0.0] * 4] + [_unit(i) for i in range(5)]),
         kind=VECTORS, given={"vectors": "emb"}, error=InputError, message="Row 1 of 'emb' is all zeros"),
    Case("vectors_one_number", "vectors of one number each", _with_vectors("one.parquet", [[float(i)] for i in range(6)]),
         kind=VECTORS, given={"vectors": "emb"}, error=InputError, message="have 1 number(s) each"),
    Case("vectors_not_numbers", "a vector column of words (CSV)", _with_vectors("words.csv", ["[1, 2]"] * 5
         + ["not a vector"]), kind=VECTORS, given={"vectors": "emb"}, error=InputError,
         message="Row 6 of 'emb' is not a list of numbers"),
    Case("vectors_wrong_model", "vectors of 4 numbers with a model that makes 256", _with_vectors(
         "dims.parquet", [_unit(i) for i in range(6)]), kind=VECTORS, given={"vectors": "emb"}, model="hashing",
         error=InputError, message="have 4 numbers each, but hashing-256 makes 256"),
    Case("vectors_missing_column", "a vector column that does not exist", _with_vectors(
         "nocol.parquet", [_unit(i) for i in range(6)]), kind=VECTORS, given={"vectors": "embedding"},
         error=InputError, message="No column named 'embedding' for the vectors"),
    Case("layout_words", "a layout column holding words", _with_vectors("xy.parquet", [_unit(i) for i in range(6)],
         px=["0", "1", "left", "3", "4", "5"], py=[0.0] * 6), kind=VECTORS,
         given={"vectors": "emb", "x": "px", "y": "py"}, error=InputError, message="that is not a finite number"),
    Case("layout_x_only", "a layout with x but no y", _with_vectors("xonly.parquet", [_unit(i) for i in range(6)],
         px=[float(i) for i in range(6)]), kind=VECTORS, given={"vectors": "emb", "x": "px"}, error=InputError,
         message="give --x and --y together"),
    Case("neighbors_outside", "neighbours naming a row that does not exist", _with_vectors(
         "nb.parquet", [_unit(i) for i in range(6)], nb=[json.dumps({"ids": [i + 1], "distances": [0.1]})
                                                         for i in range(5)] + [json.dumps({"ids": [60], "distances": [0.1]})]),
         kind=VECTORS, given={"vectors": "emb", "neighbors": "nb"}, error=InputError,
         message="Row 6 of 'nb' names a neighbour outside the table's 6 rows"),
    Case("neighbors_malformed", "neighbours that are not Embedding Atlas' lists", _with_vectors(
         "nbbad.parquet", [_unit(i) for i in range(6)], nb=["[1, 2]"] * 6), kind=VECTORS,
         given={"vectors": "emb", "neighbors": "nb"}, error=InputError,
         message="Row 1 of 'nb' is not neighbours as Embedding Atlas writes them"),
    # --- names and queries -------------------------------------------------------------------------------
    Case("map_name_dotdot", "the map name ../../etc", lambda: ("papers.csv", papers_csv()), kind=MAP_NAME,
         map_name="../../etc", rows=6, message="The map name '../../etc' was saved as 'etc'"),
    Case("map_name_dots", "the map name ..", lambda: ("papers.csv", papers_csv()), kind=MAP_NAME,
         map_name="..", error=InputError, message="'..' cannot be used as a map name"),
    Case("query_100k", "a query of 100,000 characters", lambda: ("papers.csv", papers_csv()), kind=QUERY,
         query=("protein folding " * 6_250)[:-1] + "s", rows=6,
         message="only its first 2,000 of 100,000 characters were searched"),
    Case("query_terminal_escapes", "search results whose titles hold terminal escape codes", _terminal_escapes,
         kind=QUERY, query="protein folding", rows=6),
    Case("query_empty", "an empty query", lambda: ("papers.csv", papers_csv()), kind=QUERY, query="",
         error=InputError, message="The search query is empty"),
    Case("query_blank", "a query of spaces and newlines", lambda: ("papers.csv", papers_csv()), kind=QUERY,
         query=" \n\t ", error=InputError, message="The search query is empty"),
    # --- issue 24: inputs that must not hold the server (label regexes, the filter regex, templates) -------
    # --- issue 24: readers with budgets, and encodings -----------------------------------------------------
    # --- issue 24: links, caches, vectors and names ----------------------------------------------------------
    # --- issue 24: found by fuzzing (tests/test_fuzz_readers.py) ---------------------------------------------
]


# --- running a case through the library ----------------------------------------------------------------


@dataclass
class Outcome:
    """What the library did with one case."""

    error: ExplorerError | None = None
    rows: int | None = None
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    table: object = None  # the LoadedTable of a TABLE case that loaded

    @property
    def message(self) -> str:
        """The text a person is shown: the error, or the notes."""
        return str(self.error) if self.error else " / ".join(self.notes)


@contextlib.contextmanager
def case_env(case: Case) -> Iterator[None]:
    """The case's environment (its lowered limits) for the duration of the block."""
    saved = {name: os.environ.get(name) for name in case.env}
    os.environ.update(case.env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


QUERY_MAP = "searched"


def run_library(case: Case, path: Path, workspace) -> Outcome:
    """Do with ``path`` what the app and the CLI do with such an input, in ``workspace``; an
    ExplorerError becomes the outcome, any other exception is a bug and propagates."""
    from explorer import (
        ProjectionConfig,
        build_map,
        compose_texts,
        load_table,
        search_map,
    )

    pca = ProjectionConfig(method="pca")
    try:
        if case.run is not None:
            return case.run(path, workspace)
        if case.kind == TABLE:
            table = load_table(path)
            selection = compose_texts(table.frame)
            return Outcome(rows=len(table.frame), skipped=len(table.skipped_lines),
                           notes=[*table.notes, *selection.notes], table=table)
        if case.kind == IMAGES:
            images = build_map(path, kind="images", model="pixels", projection=pca, workspace=workspace)
            return Outcome(rows=len(images.saved.points), skipped=len(images.skipped), notes=images.notes)
        if case.kind == VECTORS:
            built = build_map(path, model=case.model, projection=pca, workspace=workspace, **case.given)
            return Outcome(rows=len(built.saved.points), notes=[*built.notes, built.text_search_reason])
        if case.kind == MAP_NAME:
            built = build_map(path, name=case.map_name, model="hashing", projection=pca, workspace=workspace)
            return Outcome(rows=len(built.saved.points), notes=built.notes)
        saved = build_map(path, name=QUERY_MAP, model="hashing", projection=pca, workspace=workspace).saved
        result = search_map(saved, case.query)
        return Outcome(rows=len(saved.points), notes=result.notes)
    except ExplorerError as exc:
        return Outcome(error=exc)


CHECKS: dict[str, Callable] = {
    "five_mb_cell": _check_five_mb_cell, "five_mb_cell_ragged": _check_five_mb_cell, "pandas_internals": _check_internals, "emoji_rtl": _check_emoji_rtl,
    "parquet_nested": _check_nested, "xlsx_sheets_merged": _check_merged, "xlsx_named_csv": _check_merged,
    "html_titles": _check_html, "formula_cells": _check_formulas, "bib_malformed_middle": _check_bib,
    "shift_jis": _check_legacy(_JAPANESE), "cp1251": _check_legacy(_RUSSIAN), "gb18030": _check_legacy(_CHINESE),
    "mixed_encodings": _check_legacy([("Café in UTF-8", "Naïve crème brûlée"), ("Café in cp1252", "Naïve crème brûlée")]),
}
