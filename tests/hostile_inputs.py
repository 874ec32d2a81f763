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
import pickle
import random
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


# --- issue 24: damaged caches and vectors past float64 (the cases under "links, caches, vectors and names") --


def _papers_file() -> tuple[str, bytes]:
    return "papers.csv", papers_csv()


def _cache_random_bytes(workspace) -> None:
    _cache_replaced(workspace).write_bytes(random.Random(24).randbytes(8192))


def _cache_replaced(workspace) -> Path:
    """The embedding cache's path, with what stood there (and SQLite's companions) removed."""
    path = workspace.cache_path
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if stale.is_dir():
            import shutil

            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    return path


def _cache_truncated(workspace) -> None:
    """2,000 cached vectors, the file cut after its first two pages (a full disk, a copy cut short)."""
    import sqlite3

    path = _cache_replaced(workspace)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE vectors (model TEXT, hash TEXT, vector BLOB, PRIMARY KEY (model, hash)) WITHOUT ROWID")
        db.executemany("INSERT INTO vectors VALUES (?, ?, ?)", [("hashing-256", f"h{i}", bytes(1024))
                                                                for i in range(2_000)])
    path.write_bytes(path.read_bytes()[:8192])


def _cache_wrong_schema(workspace) -> None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(_cache_replaced(workspace))) as db, db:
        db.execute("CREATE TABLE vectors (id INTEGER PRIMARY KEY, payload TEXT)")


def _cache_folder(workspace) -> None:
    path = _cache_replaced(workspace)
    path.mkdir()
    (path / "note.txt").write_text("a folder where the cache file should be")


def _cache_dir_file(workspace) -> None:
    import shutil

    folder = workspace.cache_path.parent
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.write_bytes(b"not a folder")


def _projection_entries(workspace, path: Path) -> list[Path]:
    """The projection cache's entries, after a build of ``path`` made sure there is one for it."""
    from explorer import ProjectionConfig, build_map

    entries = list(workspace.projection_cache_dir.glob("*.npz"))
    if not entries:
        build_map(path, model="hashing", projection=ProjectionConfig(method="pca"), workspace=workspace)
        entries = list(workspace.projection_cache_dir.glob("*.npz"))
    return entries


def _projection_garbage(workspace, path: Path) -> None:
    for entry in _projection_entries(workspace, path):
        entry.write_bytes(random.Random(5).randbytes(3000))


def _projection_short(workspace, path: Path) -> None:
    import numpy as np

    for entry in _projection_entries(workspace, path):
        with entry.open("wb") as out:
            np.savez(out, coords=np.zeros((3, 2), dtype=np.float32), method=np.array("pca"))


def _damage(damage: Callable, workspace, path: Path) -> None:
    if damage in (_projection_garbage, _projection_short):
        damage(workspace, path)
    else:
        damage(workspace)


def _damaged_then_built(damage: Callable) -> Callable[[Path, object], Outcome]:
    """The library step of a damaged-cache case: damage the workspace's cache, then build ``path``."""
    def run(path: Path, workspace) -> Outcome:
        from explorer import ProjectionConfig, build_map

        _damage(damage, workspace, path)
        built = build_map(path, model="hashing", projection=ProjectionConfig(method="pca"), workspace=workspace)
        return Outcome(rows=len(built.saved.points), notes=built.notes)
    return run


def _damaged_then_argv(damage: Callable) -> Callable[[Path, Path], list[str]]:
    """The CLI step of a damaged-cache case: the cache damaged again (the library's build mended it), then
    `explorer build`."""
    def argv(path: Path, home: Path) -> list[str]:
        from explorer import Workspace

        _damage(damage, Workspace(home), path)
        return ["--home", str(home), "build", str(path), "--model", "hashing", "--projection", "pca", "-q"]
    return argv


def _unit_vectors_built(path: Path, workspace) -> Outcome:
    """Build with the table's own vectors, and check they were stored as unit vectors, not as zeros."""
    import numpy as np

    from explorer import ProjectionConfig, build_map

    built = build_map(path, vectors="emb", projection=ProjectionConfig(method="pca"), workspace=workspace)
    norms = np.linalg.norm(built.saved.embeddings, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-5):
        raise AssertionError(f"the vectors were stored with lengths {norms.tolist()}, not as unit vectors")
    return Outcome(rows=len(built.saved.points), notes=built.notes)


def _vectors_argv(column: str) -> Callable[[Path, Path], list[str]]:
    return lambda path, home: ["--home", str(home), "build", str(path), "--vector", column, "--projection", "pca",
                               "-q"]


def _parquet_nested_vectors() -> tuple[str, bytes]:
    """Vectors as Parquet lists nested 64 deep (as deep as pyarrow writes them; Arrow refuses to read them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def nested(vector: list[float], depth: int = 64):
        return vector if depth == 0 else [nested(vector, depth - 1)]

    frame = papers(6)
    table = pa.table({"title": frame["title"], "abstract": frame["abstract"],
                      "emb": pa.array([nested(_unit(i)) for i in range(6)])})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return "nested.parquet", buffer.getvalue()


def _vectors_named(column: str) -> Callable[[], tuple[str, bytes]]:
    """Papers with unit vectors in a column of that name (Parquet keeps any name)."""
    return lambda: ("named.parquet", _parquet(papers(6).assign(**{column: [_unit(i) for i in range(6)]})))


# --- issue 24: readers with budgets, and encodings (the inputs of the cases under that anchor) ----------


def xfd_xlsx(rows: int = 500) -> bytes:
    """A sheet of titles and abstracts with one more cell in column XFD (the last of 16,384) on every row:
    about 15 kB whose used range is A1:XFD{rows}."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for i in range(1, rows + 1):
        title, abstract = _TOPICS[i % len(_TOPICS)]
        sheet.cell(i, 1, "title" if i == 1 else f"{title} ({i})")
        sheet.cell(i, 2, "abstract" if i == 1 else abstract)
        sheet.cell(i, 16_384, "far" if i == 1 else i)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def wide_csv(columns: int = 50_000) -> bytes:
    """A header of ``columns`` names and two rows of as many short values."""
    header = ",".join(["title", *(f"c{i}" for i in range(1, columns))])
    return "\n".join([header, *(",".join(["Protein folding", *("1" * (columns - 1))]) for _ in range(2))]).encode()


def bib_many_macros(macros: int = 2_000) -> bytes:
    """A BibTeX file of ``macros`` @string macros (journal names) and half as many entries, each using two
    of them: about 164 kB."""
    lines = [f'@string{{jn{i:04d} = "Journal of Field {i:04d}"}}' for i in range(macros)]
    lines += [f"@article{{key{i:04d}, title = {{Protein folding {i}}}, journal = jn{i:04d} # "
              f'", " # jn{(i + 1) % macros:04d}, year = {2000 + i % 20}}}' for i in range(macros // 2)]
    return ("\n".join(lines) + "\n").encode()


def sniffer_quotes() -> bytes:
    """60 kB of ,"a: csv.Sniffer's quote regex is quadratic in its sample."""
    return b',"a' * 20_000


# Short Russian texts in the three Cyrillic code pages people meet: cp1251 (Windows), KOI8-R (Unix mail and
# old web pages) and mac-cyrillic (classic Mac OS).
RUSSIAN_TITLES = [
    "Космические полёты и орбиты", "Квантовая механика твёрдого тела", "Экономика и рынок труда в России",
    "Белки и их свёртывание в клетке", "Чёрные дыры и гравитационные волны", "Машинное обучение на графах",
    "Языки программирования и компиляторы", "История Древнего Рима", "Физика плазмы и термоядерный синтез",
    "Генетика растений и урожайность", "Нейронные сети для перевода текстов", "Климат Арктики и таяние льдов",
    "Оптика и лазеры в медицине", "Теория чисел и криптография", "Сверхпроводимость в оксидах меди",
    "Эволюция звёзд и сверхновые", "Вулканы Камчатки", "Морская биология и кораллы",
    "Психология восприятия цвета", "Инфляция и денежная политика", "Роботы на производстве",
    "Математическая логика и доказательства", "Археология Сибири", "Химия полимеров и пластмасс",
]


def russian_csv(encoding: str, titles: list[str], *, year: bool = False) -> bytes:
    """A CSV of ``titles`` (and a year column, if asked) in ``encoding``."""
    frame = pd.DataFrame({"title": titles})
    if year:
        frame["year"] = [2000 + i for i in range(len(titles))]
    return frame.to_csv(index=False).encode(encoding)


def _reads_back(titles: list[str]) -> Callable[[Path, object], Outcome]:
    """The library step of a legacy-encoding case: load the file, and its titles must be exactly ``titles``."""
    def run(path: Path, workspace) -> Outcome:
        from explorer import compose_texts, load_table

        table = load_table(path)
        assert table.frame["title"].tolist() == titles, f"read back exactly as written, not {table.frame['title'][0]}"
        return Outcome(rows=len(table.frame), notes=[*table.notes, *compose_texts(table.frame).notes], table=table)
    return run


def _build_argv(path: Path, home: Path) -> list[str]:
    return ["--home", str(home), "build", str(path), "--model", "hashing", "--projection", "pca", "-q"]


def _wide(name: str) -> Callable[[], tuple[str, bytes]]:
    """Four text columns in the format ``name`` says (for a column cap of 3)."""
    def make() -> tuple[str, bytes]:
        frame = pd.DataFrame({f"c{i}": [f"text {i}"] for i in range(4)})
        if name.endswith(".json"):
            return name, frame.to_json(orient="records").encode()
        buffer = io.BytesIO()
        frame.to_excel(buffer, index=False)
        return name, buffer.getvalue()
    return make


PWNED = Path(os.environ.get("TMPDIR", "/tmp")) / "explorer-hostile-pwned"


class _Mkdir:
    """Pickles to a call of os.mkdir(PWNED): what unpickling a hostile Parquet's extension type would run."""

    def __reduce__(self):
        return os.mkdir, (str(PWNED),)


def parquet_pickled_extension() -> bytes:
    """Papers whose 'payload' column is typed arrow.py_extension_type, the type pyarrow < 14.0.1 rebuilt by
    unpickling its serialized form (CVE-2023-47248); the pickle here makes the folder PWNED."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    class Pickled(pa.ExtensionType):
        def __init__(self):
            super().__init__(pa.binary(), "arrow.py_extension_type")

        def __arrow_ext_serialize__(self) -> bytes:
            return pickle.dumps(_Mkdir())

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type, serialized):
            return cls()

    frame = papers(6)
    table = pa.Table.from_pandas(frame, preserve_index=False).append_column(
        "payload", pa.ExtensionArray.from_storage(Pickled(), pa.array([b"x"] * len(frame), pa.binary())))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


# --- issue 24: inputs that must not hold the server (the inputs of the cases under that anchor) -------------


def _table_with_cells(cells: dict[int, str]) -> Callable[[], tuple[str, bytes]]:
    """papers(60) as CSV with the abstracts of the given rows replaced."""
    def make() -> tuple[str, bytes]:
        frame = papers(60)
        for row, text in cells.items():
            frame.loc[row, "abstract"] = text
        return "cells.csv", frame.to_csv(index=False).encode()
    return make


def _built_with_clusters(path: Path, workspace) -> Outcome:
    """Build with clusters found and labelled. The labels are made the same way in any clustering space; the
    2D one keeps UMAP's numba OpenMP pool out of the test process (a budget child forked after it dies)."""
    from explorer import ClusterConfig, ProjectionConfig, build_map

    built = build_map(path, model="hashing", projection=ProjectionConfig(method="pca"),
                      clusters=ClusterConfig(space="2d"), workspace=workspace)
    if not built.saved.manifest.get("clusters"):
        raise AssertionError("no clusters were labelled")
    return Outcome(rows=len(built.saved.points), notes=built.notes)


def _clusters_argv(path: Path, home: Path) -> list[str]:
    return ["--home", str(home), "build", str(path), "--model", "hashing", "--projection", "pca", "--clusters",
            "--cluster-space", "2d", "-q"]


def _texts_csv(texts: list[str]) -> Callable[[], tuple[str, bytes]]:
    return lambda: ("texts.csv", pd.DataFrame({"text": texts}).to_csv(index=False).encode())


def _filtered(pattern: str) -> Callable[[Path, object], Outcome]:
    """The map page's keyword filter with "regular expression" ticked, over the table's texts."""
    def run(path: Path, workspace) -> Outcome:
        from explorer import compose_texts, keyword_mask, load_table

        texts = compose_texts(load_table(path).frame).texts
        kept = int(keyword_mask(texts, pattern, regex=True).sum())
        return Outcome(rows=kept, notes=[f"{kept:,} of {len(texts):,} rows match the filter"])
    return run


def _templated(template: str, *, first: str | None = None) -> Callable[[Path, object], Outcome]:
    """A build whose text is the template; ``first``: the text its first row must get."""
    def run(path: Path, workspace) -> Outcome:
        from explorer import ProjectionConfig, build_map

        built = build_map(path, template=template, model="hashing", projection=ProjectionConfig(method="pca"),
                          workspace=workspace)
        text = built.saved.texts()[0]
        if first is not None and text != first:
            raise AssertionError(f"the template made {text!r}, not {first!r}")
        return Outcome(rows=len(built.saved.points), notes=built.notes)
    return run


def _template_argv(template: str) -> Callable[[Path, Path], list[str]]:
    return lambda path, home: ["--home", str(home), "build", str(path), "--template", template, "--model", "hashing",
                               "--projection", "pca", "-q"]


def _two_titles() -> tuple[str, bytes]:
    """Papers with a second "title" column (read back as title.1, the name a template must use)."""
    frame = papers()
    frame.insert(1, "title_2", [f"Second title {i}" for i in range(len(frame))])
    return "two_titles.csv", frame.to_csv(index=False).encode().replace(b"title_2", b"title", 1)


def _sql(condition: str) -> Callable[[Path, object], Outcome]:
    """The map page's SQL condition (and `explorer query`) over a map built from the table."""
    def run(path: Path, workspace) -> Outcome:
        from explorer import ProjectionConfig, build_map
        from explorer.sql_filter import sql_mask

        saved = build_map(path, name=QUERY_MAP, model="hashing", projection=ProjectionConfig(method="pca"),
                          workspace=workspace).saved
        kept = int(sql_mask(saved.points, condition).sum())
        return Outcome(rows=kept, notes=[f"{kept:,} of {len(saved.points):,} rows match the filters"])
    return run


def _sql_argv(condition: str) -> Callable[[Path, Path], list[str]]:
    """`explorer query` on the map the library step built (it runs first)."""
    return lambda path, home: ["--home", str(home), "query", QUERY_MAP, condition]


def _sql_case(case_id: str, what: str, condition: str, **outcome) -> Case:
    """A SQL condition typed into the filter over papers(6) (years 2000 to 2005): refused, or the rows it keeps."""
    return Case(case_id, what, lambda: ("papers.csv", papers_csv()), kind=QUERY, run=_sql(condition),
                cli=_sql_argv(condition), **outcome)


_CROSS_JOIN = "row_id IN (SELECT p0.row_id FROM " + ", ".join(f"points p{i}" for i in range(14)) + ")"
_OTHER_TABLE = "reads something other than the map's table"
_ONE_CONDITION = "is not one condition"


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
    Case("label_regex_dots", "a 60-row table with one 60 kB cell of a.a.a…, built with clusters",
         _table_with_cells({7: "a." * 30_000}), rows=60, run=_built_with_clusters, cli=_clusters_argv),
    Case("label_regex_mix", "a 60-row table with 20 kB cells of a@a.a…, .a.a…@, a-a-…, www.www.… and http://…",
         _table_with_cells({1: "a@" + "a." * 10_000, 2: ".a" * 10_000 + "@", 3: "a-" * 10_000, 4: "www." * 5_000,
                            5: "http://" * 2_900}), rows=60, run=_built_with_clusters, cli=_clusters_argv),
    Case("filter_nested_quantifier", "the filter regex (a+)+$ over 10,000 texts of 27 characters",
         _texts_csv(["a" * 26 + "!"] * 10_000), rows=0, run=_filtered(r"(a+)+$"),
         message="0 of 10,000 rows match the filter"),
    Case("filter_cubic", "the filter regex .*.*.*= over 10 texts of 20,000 characters",
         _texts_csv(["x" * 20_000] * 10), rows=0, run=_filtered(".*.*.*="), message="0 of 10 rows match the filter"),
    Case("filter_nested_parentheses", "the filter regex a nested in 499 parentheses",
         lambda: ("papers.csv", papers_csv()), rows=6, run=_filtered("(" * 499 + "a" + ")" * 499),
         message="6 of 6 rows match the filter"),
    Case("filter_long_pattern", r"the filter regex \w repeated 100,000 times", lambda: ("papers.csv", papers_csv()),
         run=_filtered("\\w" * 100_000), error=InputError,
         message="is 200,000 characters long: a regular expression filter takes at most 1,000"),
    Case("filter_backreference", r"the filter regex (\w)\1 (a back-reference)", lambda: ("papers.csv", papers_csv()),
         run=_filtered(r"(\w)\1"), error=InputError, message="is not supported by the filter: back-references"),
    Case("filter_lookbehind", "the filter regex (?<=a)b (a look-behind)", lambda: ("papers.csv", papers_csv()),
         run=_filtered("(?<=a)b"), error=InputError, message="is not supported by the filter"),
    Case("filter_unclosed", "the filter regex [unclosed", lambda: ("papers.csv", papers_csv()),
         run=_filtered("[unclosed"), error=InputError, message="is not a valid regular expression"),
    Case("template_padding", "the template {title:#>100000000} (pads each text to 100 MB)",
         lambda: ("papers.csv", papers_csv()), run=_templated("{title:#>100000000}"),
         cli=_template_argv("{title:#>100000000}"), error=InputError,
         message="The template field '{title:#>100000000}' is not a plain column name"),
    Case("template_huge_width", "the template {title:>99999999999999999999}", lambda: ("papers.csv", papers_csv()),
         run=_templated("{title:>99999999999999999999}"), cli=_template_argv("{title:>99999999999999999999}"),
         error=InputError, message="'{title:>99999999999999999999}' is not a plain column name"),
    Case("template_conversion", "the template {title!r}", lambda: ("papers.csv", papers_csv()),
         run=_templated("{title!r}"), cli=_template_argv("{title!r}"), error=InputError,
         message="'{title!r}' is not a plain column name"),
    Case("template_index", "the template {abstract[0]}", lambda: ("papers.csv", papers_csv()),
         run=_templated("{abstract[0]}"), cli=_template_argv("{abstract[0]}"), error=InputError,
         message="No column named 'abstract[0]'"),
    Case("template_deduplicated_column", "the template {title.1} on a table with two title columns",
         _two_titles, rows=6, run=_templated("{title.1}", first="Second title 0"), cli=_template_argv("{title.1}")),
    Case("template_literal_braces", "the template {{literal}} {title}", lambda: ("papers.csv", papers_csv()), rows=6,
         run=_templated("{{literal}} {title}", first="{literal} Protein folding pathways in single molecules (0)"),
         cli=_template_argv("{{literal}} {title}")),
    # --- issue 24: readers with budgets, and encodings -----------------------------------------------------
    Case("xlsx_xfd_every_row", "an XLSX of 15 kB with one cell in column XFD on every row",
         lambda: ("xfd.xlsx", xfd_xlsx()), rows=499),
    Case("csv_50000_columns", "a CSV of 50,000 columns", lambda: ("wide.csv", wide_csv()), error=InputError,
         message="50,000 columns is more than the limit of 2,000"),
    Case("json_over_column_cap", "JSON records with more keys than the column cap (EXPLORER_MAX_COLUMNS=3)",
         _wide("wide.json"), error=InputError, message="4 columns is more than the limit of 3",
         env={"EXPLORER_MAX_COLUMNS": "3"}),
    Case("xlsx_over_column_cap", "an XLSX with more columns than the column cap (EXPLORER_MAX_COLUMNS=3)",
         _wide("wide.xlsx"), error=InputError, message="4 columns is more than the limit of 3",
         env={"EXPLORER_MAX_COLUMNS": "3"}),
    Case("bib_2000_macros", "a BibTeX file of 2,000 @string macros and 1,000 entries using them",
         lambda: ("macros.bib", bib_many_macros()), rows=1_000),
    Case("sniffer_quotes", 'a CSV of 60 kB of ,"a (csv.Sniffer is quadratic on it)',
         lambda: ("quotes.csv", sniffer_quotes()), error=InputError,
         message="10,001 columns is more than the limit of 2,000"),
    Case("parquet_pickled_extension", "Parquet with a pickled extension type (CVE-2023-47248)",
         lambda: ("pickled.parquet", parquet_pickled_extension()), error=InputError,
         message="holds a pickled Python object, which could run code: it is never read"),
    Case("cp1251_24_rows", "24 Russian titles in cp1251", lambda: ("cp1251.csv", russian_csv("cp1251", RUSSIAN_TITLES)),
         run=_reads_back(RUSSIAN_TITLES), cli=_build_argv, rows=24, message="it was read as cp1251"),
    Case("cp1251_one_line", "one Russian title in cp1251",
         lambda: ("one.csv", russian_csv("cp1251", RUSSIAN_TITLES[:1])), run=_reads_back(RUSSIAN_TITLES[:1]),
         cli=_build_argv, rows=1, message="it was read as cp1251"),
    Case("cp1251_not_mac", "a cp1251 title that mac-cyrillic also reads as Russian (Экономика, Ёкономика)",
         lambda: ("economy.csv", russian_csv("cp1251", ["Экономика и рынок"])),
         run=_reads_back(["Экономика и рынок"]), cli=_build_argv, rows=1, message="it was read as cp1251"),
    Case("koi8r_one_line", "one Russian title in KOI8-R",
         lambda: ("koi8.csv", russian_csv("koi8_r", RUSSIAN_TITLES[:1])), run=_reads_back(RUSSIAN_TITLES[:1]),
         cli=_build_argv, rows=1, message="it was read as koi8-r"),
    Case("koi8r_two_lines_year", "two Russian titles and a year in KOI8-R",
         lambda: ("koi8y.csv", russian_csv("koi8_r", RUSSIAN_TITLES[:2], year=True)),
         run=_reads_back(RUSSIAN_TITLES[:2]), cli=_build_argv, rows=2, message="it was read as koi8-r"),
    Case("mac_cyrillic_one_line_year", "one Russian title and a year in mac-cyrillic",
         lambda: ("mac.csv", russian_csv("mac_cyrillic", RUSSIAN_TITLES[:1], year=True)),
         run=_reads_back(RUSSIAN_TITLES[:1]), cli=_build_argv, rows=1, message="it was read as mac-cyrillic"),
    Case("mac_cyrillic_24_rows", "24 Russian titles in mac-cyrillic",
         lambda: ("mac24.csv", russian_csv("mac_cyrillic", RUSSIAN_TITLES)), run=_reads_back(RUSSIAN_TITLES),
         cli=_build_argv, rows=24, message="it was read as mac-cyrillic"),
    # --- issue 24: links, caches, vectors and names ----------------------------------------------------------
    Case("map_name_markdown_link", "a map name that is a Markdown link and a remote image",
         lambda: ("papers.csv", papers_csv()), kind=MAP_NAME,
         map_name="[verify your session](https://evil.example/phish) ![t](https://evil.example/pixel.png)", rows=6,
         message="was saved as 'verify your session_(https_evil.example_phish) _t_(https_evil.example_pixel.png)'"),
    Case("map_name_html", "a map name that is an HTML tag with a script handler",
         lambda: ("papers.csv", papers_csv()), kind=MAP_NAME, map_name=CANARY, rows=6,
         message="was saved as 'img src_x onerror_window.__pwned_1'"),
    Case("markdown_column_names", "column names that are Markdown links, remote images and HTML", lambda: (
        "markdown_columns.csv", papers().assign(**{
            "[verify your session](https://evil.example/phish) ![t](https://evil.example/pixel.png)": ["a", "b"] * 3,
            f"{CANARY} **BOLD**": ["**x**", "<script>window.__pwned=1</script>"] * 3}).to_csv(index=False).encode()),
         rows=6),
    Case("query_markdown_titles", "a search for a Markdown link among titles that are Markdown links", lambda: (
        "papers.csv", papers().assign(title=lambda f: "[verify your session](https://evil.example/phish) " + f["title"])
        .to_csv(index=False).encode()), kind=QUERY, query="[verify your session](https://evil.example/phish)", rows=6),
    Case("zip_markdown_folders", "a ZIP whose folder names (the labels) are Markdown and HTML", lambda: (
        "labels.zip", make_zip({"[x](https:__evil.example)/a.png": png(), f"{CANARY}/b.png": png(colour="blue"),
                                "**BOLD**/c.png": png(colour="green")})), kind=IMAGES, rows=3),
    Case("cache_random_bytes", "the embedding cache overwritten with random bytes", _papers_file, rows=6,
         run=_damaged_then_built(_cache_random_bytes), cli=_damaged_then_argv(_cache_random_bytes),
         message="was moved aside as embeddings.sqlite.corrupt-"),
    Case("cache_truncated", "the embedding cache cut short after its first two pages", _papers_file, rows=6,
         run=_damaged_then_built(_cache_truncated), cli=_damaged_then_argv(_cache_truncated),
         message="was moved aside as embeddings.sqlite.corrupt-"),
    Case("cache_wrong_schema", "an embedding cache whose table 'vectors' has other columns", _papers_file, rows=6,
         run=_damaged_then_built(_cache_wrong_schema), cli=_damaged_then_argv(_cache_wrong_schema),
         message="was moved aside as embeddings.sqlite.corrupt-"),
    Case("cache_is_folder", "a folder where the embedding cache file should be", _papers_file, rows=6,
         run=_damaged_then_built(_cache_folder), cli=_damaged_then_argv(_cache_folder),
         message="was moved aside as embeddings.sqlite.corrupt-"),
    Case("cache_dir_is_file", "a file where the workspace's cache folder should be", _papers_file, rows=6,
         run=_damaged_then_built(_cache_dir_file), cli=_damaged_then_argv(_cache_dir_file),
         message="The cache folder"),
    Case("projection_entry_garbage", "projection cache entries overwritten with random bytes", _papers_file, rows=6,
         run=_damaged_then_built(_projection_garbage), cli=_damaged_then_argv(_projection_garbage),
         message="The projection cache entry"),
    Case("projection_entry_shape", "projection cache entries holding the layout of 3 rows", _papers_file, rows=6,
         run=_damaged_then_built(_projection_short), cli=_damaged_then_argv(_projection_short),
         message="The projection cache entry"),
    Case("vectors_nested_deep", "a vector cell nested 100,000 levels deep (CSV)", _with_vectors(
         "deep.csv", [_unit(i) for i in range(5)] + ["[" * 100_000 + "]" * 100_000]), kind=VECTORS,
         given={"vectors": "emb"}, error=InputError, message="Row 6 of 'emb' is nested too deeply"),
    Case("vectors_parquet_nested_deep", "a Parquet vector column of lists nested 64 levels deep",
         _parquet_nested_vectors, kind=VECTORS, given={"vectors": "emb"}, error=InputError,
         message="a column is nested more than 32 levels deep"),
    Case("neighbors_nested_deep", "a neighbours cell nested 100,000 levels deep (CSV)", _with_vectors(
         "deepnb.csv", [_unit(i) for i in range(6)], nb=["[" * 100_000 + "]" * 100_000] * 6), kind=VECTORS,
         given={"vectors": "emb", "neighbors": "nb"}, error=InputError,
         message="Row 1 of 'nb' is not neighbours as Embedding Atlas writes them"),
    Case("vectors_huge_integer", "a vector holding a 400-digit integer (CSV)", _with_vectors(
         "bigint.csv", ["[1, 2, 3, 4]"] * 5 + ["[" + "9" * 400 + ", 1, 2, 3]"]), kind=VECTORS,
         given={"vectors": "emb"}, error=InputError, message="Row 6 of 'emb' holds a number too large"),
    Case("vectors_norm_overflow", "vectors of 1e200 (their length overflows float64) and of mixed magnitudes",
         _with_vectors("huge.parquet", [[1e200] * 4, [-1e308, 1e308, 0.0, 1.0], [1e200, 1e-200, 1.0, 0.0]]
                       + [_unit(i) for i in range(3)]), kind=VECTORS, rows=6,
         run=_unit_vectors_built, cli=_vectors_argv("emb")),
    Case("vectors_subnormal", "vectors of 1e-320 (subnormal numbers)", _with_vectors(
         "tiny.parquet", [[1e-320] * 4, [3e-310, 4e-310, 0.0, 0.0]] + [_unit(i) for i in range(4)]), kind=VECTORS,
         rows=6, run=_unit_vectors_built, cli=_vectors_argv("emb")),
    Case("vector_column_escapes", "terminal escape codes and a bidi override in the vectors' column name",
         _vectors_named(f"emb{ESCAPES}\u202e"), kind=VECTORS, given={"vectors": f"emb{ESCAPES}\u202e"}, rows=6),
    # --- issue 24: found by fuzzing (tests/test_fuzz_readers.py) ---------------------------------------------
    Case("fuzz_layout_beyond_float32", "a layout coordinate of 1e300 (finite, but infinite in 32 bits)",
         lambda: _fuzz_layout_huge(1e300), kind=VECTORS, given={"vectors": "emb", "x": "px", "y": "py"},
         error=InputError, message="beyond ±3.4e38, the largest coordinate a map keeps (row 3 first)"),
    Case("fuzz_image_16bit_huge", "a 157 kB PNG of 9,000 x 9,000 16-bit grey pixels (2.5 GB once converted)",
         lambda: _huge_image_zip("I;16", "PNG", 0), kind=IMAGES, rows=3),
    Case("fuzz_image_rgba_huge", "a 0.3 MB PNG of 9,000 x 9,000 half-transparent pixels (1 GB once converted)",
         lambda: _huge_image_zip("RGBA", "PNG", (10, 20, 30, 128)), kind=IMAGES, rows=3),
    Case("fuzz_image_gif_huge", "a 60 kB GIF of 9,000 x 9,000 pixels (0.85 GB once converted)",
         lambda: _huge_image_zip("P", "GIF", 0), kind=IMAGES, rows=3),
    Case("fuzz_sniffer_cubic", "a 4.6 kB CSV on which csv.Sniffer's quote guess, given the first 4 kB, took 11 s",
         lambda: ("data.csv", ('"é"\t"x"\t"ü@\n' + '€"૾가∠︀\n' * 150 + '"\u20fe' * 260 + '૾가∠︀\n€"' * 60).encode()),
         rows=211),
    Case("fuzz_json_long_integer", "JSON holding a number of 4,301 digits (kept as its digits)",
         lambda: _fuzz_long_number("json"), rows=3),
    Case("fuzz_jsonl_long_integer", "JSONL with a number of 4,301 digits on one line (kept as its digits)",
         lambda: _fuzz_long_number("jsonl"), rows=3),
    Case("fuzz_parquet_page_header", "Parquet whose page header is corrupt (a two-line pyarrow error)",
         lambda: ("page.parquet", FUZZ_PARQUET), error=InputError, message="cannot read this Parquet file"),
    Case("fuzz_zip_nameless_member", "a ZIP with a member whose name is empty", lambda: _fuzz_nameless_member(),
         kind=IMAGES, rows=2, skipped=1, message="refused: a file without a name"),
    Case("fuzz_layout_huge_integer", "a layout column holding a 400-digit integer (JSON)",
         lambda: _fuzz_layout_huge(),
         kind=VECTORS, given={"vectors": "emb", "x": "px", "y": "py"}, error=InputError,
         message="that is not a finite number"),
    Case("fuzz_utf8_broken_one_line", "a 1 MB row of UTF-8 broken every 5 bytes (the bad-line count was quadratic)",
         lambda: _fuzz_broken_utf8(), rows=1, message="invalid byte sequence(s) on line 2"),
    Case("fuzz_column_name_newline", "a JSON column name holding a line break, every text empty",
         lambda: ("newline.json", b'{"1\\n1": [""]}'), error=InputError,
         message="Every row's text is empty in column(s) 1 1."),
    Case("fuzz_json_lone_surrogate", "JSON escaping half a UTF-16 pair (\\ud800) in a title",
         lambda: _fuzz_lone_surrogate("json"), rows=2),
    Case("fuzz_jsonl_lone_surrogate", "JSONL escaping half a UTF-16 pair (\\udc00) in a title",
         lambda: _fuzz_lone_surrogate("jsonl"), rows=2),
    Case("fuzz_zip_corrupt_lzma", "a ZIP with a corrupt LZMA-compressed member between good ones",
         lambda: _fuzz_corrupt_lzma_zip(), kind=IMAGES, rows=2, skipped=1,
         message="cannot be unpacked from the ZIP"),
    Case("fuzz_ris_parser_key_error", "RIS whose entry makes rispy raise KeyError (an empty TI, then stray tags)",
         lambda: ("refs.ris", _lines(*_RIS_GOOD, "TY  - JOUR", "TI  - ", "ER  -1", "TY  -1", "1", "ER  - ", "",
                                     *_RIS_LAST)),
         rows=2, skipped=1, message="Skipped 1 RIS entry that could not be read (line 7)"),
    Case("fuzz_zip_dot_member", "a ZIP with a member named '.'",
         lambda: ("dot.zip", make_zip({".": png(), "red/a.png": png(), "blue/b.png": png(colour="blue")})),
         kind=IMAGES, rows=2, skipped=1, message=". (refused: a file without a name)"),
    # --- issue 26: SQL conditions ---------------------------------------------------------------------------
    _sql_case("sql_read_csv", "a SQL condition reading /etc/passwd with read_csv",
              "row_id IN (SELECT row_id FROM read_csv('/etc/passwd'))", error=InputError, message=_OTHER_TABLE),
    _sql_case("sql_read_text", "a SQL condition reading a file with read_text",
              "EXISTS (SELECT * FROM read_text('/etc/passwd'))", error=InputError, message=_OTHER_TABLE),
    _sql_case("sql_read_parquet", "a SQL condition reading another Parquet file",
              "row_id IN (SELECT row_id FROM read_parquet('/tmp/other.parquet'))", error=InputError,
              message=_OTHER_TABLE),
    _sql_case("sql_file_as_table", "a SQL condition naming a file as a table",
              "EXISTS (SELECT * FROM '/etc/passwd')", error=InputError, message=_OTHER_TABLE),
    _sql_case("sql_glob", "a SQL condition listing files with glob('/*')",
              "1=1) UNION SELECT 1 FROM glob('/*') WHERE (1=1", error=InputError, message=_OTHER_TABLE),
    _sql_case("sql_copy", "a SQL condition followed by COPY points TO a file",
              "1=1; COPY points TO '/tmp/x.csv'", error=InputError, message="is not valid SQL"),
    _sql_case("sql_attach", "a SQL condition closing its parenthesis to ATTACH a database",
              "1=1); ATTACH '/tmp/x.db'; SELECT 1 WHERE (1=1", error=InputError, message=_ONE_CONDITION),
    _sql_case("sql_install_load", "a SQL condition that installs and loads httpfs",
              "1=1); INSTALL httpfs; LOAD httpfs; SELECT 1 WHERE (1=1", error=InputError, message=_ONE_CONDITION),
    _sql_case("sql_drop", "a SQL condition followed by DROP TABLE points", "1=1; DROP TABLE points",
              error=InputError, message="is not valid SQL"),
    _sql_case("sql_comment_hides_statement", "a SQL condition whose comment holds a statement",
              "1=1 -- ); DROP TABLE points; SELECT (1", rows=6),
    _sql_case("sql_block_comment", "a SQL condition whose block comment holds a statement",
              "year >= 2003 /* ); DROP TABLE points; */", rows=3),
    _sql_case("sql_cross_join", "a SQL subquery over the table cross-joined with itself 14 times (6^14 rows)",
              _CROSS_JOIN, error=InputError, message="took too long (over 1 s) and was stopped"),
    _sql_case("sql_range", "a SQL subquery over range(1e12)", "row_id IN (SELECT range FROM range(1000000000000))",
              error=InputError, message=_OTHER_TABLE),
    _sql_case("sql_repeat", "a SQL condition making a 2 GB string with repeat()",
              "length(repeat(title, 2000000000)) > 0", error=InputError, message="uses repeat()"),
    _sql_case("sql_set", "a SQL condition that turns file access back on with SET",
              "1=1); SET enable_external_access = true; SELECT 1 WHERE (1=1", error=InputError,
              message=_ONE_CONDITION),
    _sql_case("sql_pragma", "a SQL condition reading pragma_database_list()",
              "EXISTS (SELECT * FROM pragma_database_list())", error=InputError, message=_OTHER_TABLE),
    _sql_case("sql_semicolon_in_string", "a SQL condition with a ';' inside a quoted string",
              "title = 'a; DROP TABLE points' OR year >= 2003", rows=3),
    _sql_case("sql_nested_lists", "a SQL condition of a list nested 900 levels deep",
              "[" * 900 + "1" + "]" * 900 + " IS NOT NULL", error=InputError, message="is nested too deeply"),
    _sql_case("sql_unknown_column", "a SQL condition naming a column the map does not have",
              '"no such column" > 1', error=InputError, message='Referenced column "no such column" not found'),
]


# --- found by fuzzing (tests/test_fuzz_readers.py): the failing inputs, exactly -------------------------------

# Hypothesis' example: a one-column Parquet file whose page header does not deserialise; pyarrow's message
# for it spans two lines.
FUZZ_PARQUET = (
    b"PAR1\x14\x04\x15\x00\x15\x02L\x15\x00\x15\x00\x12\x00\x00\x00\x15\x00\x15\x0e\x15\x12,\x15\x02\x15\x10"
    b"\x15\x06\x15\x06\x1c6\x02\x00\x00\x00\x07\x18\x02\x00\x00\x00\x02\x00\x00\x15\x04\x19,5\x00\x18\x06schema"
    b"\x15\x02\x00\x15\x0c%\x02\x18\x05title%\x00L\x1c\x00\x00\x00\x16\x02\x19\x1c\x19\x1c&\x00\x1c\x15\x0c\x195"
    b"\x00\x06\x10\x19\x18\x05title\x15\x02\x16\x02\x16T\x16Z&&&\x08\x1c6\x02\x00\x19,\x15\x04\x15\x00\x15\x02\x00"
    b"\x15\x00\x15\x10\x15\x02\x00<\x16\x00\x19\x06\x19&\x02\x00\x00\x00\x00\x16T\x16\x02&\x08\x16Z\x00\x19\x1c"
    b"\x18\x0cARROW:schema\x18\xa0\x01/////3AAAAAQAAAAAAAKAAwABgAFAAgACgAAAAABBAAMAAAACAAIAAAABAAIAAAABAAAAAEAAA"
    b"AUAAAAEAAUAAgABgAHAAwAAAAQABAAAAAAAAEFEAAAABwAAAAEAAAAAAAAAAUAAAB0aXRsZQAAAAQABAAEAAAA\x00\x18 parquet-cpp-"
    b"arrow version 26.0.1\x19\x1c\x1c\x00\x00\x00L\x01\x00\x00PAR1"
)


def _fuzz_long_number(fmt: str) -> tuple[str, bytes]:
    """Records with one integer longer than Python's int() reads from text (4,300 digits)."""
    long = "1" + "0" * 4_300
    records = [json.dumps({"title": t, "abstract": a}) for t, a in _TOPICS[:3]]
    records[1] = records[1][:-1] + f', "n": {long}}}'
    text = "[" + ", ".join(records) + "]" if fmt == "json" else "\n".join(records)
    return f"long_number.{fmt}", text.encode()


def _check_long_number(table) -> None:
    assert table.frame["n"].dropna().tolist() == ["1" + "0" * 4_300], "the digits are kept exactly, as text"


def _fuzz_broken_utf8() -> tuple[str, bytes]:
    """One row of 'éé' and a stray byte, repeated to just under a megabyte: 200,000 bad sequences on a line."""
    return "broken_line.csv", b"title\n" + b"\xc3\xa9\xc3\xa9\x85" * 199_990 + b"\n"


def _fuzz_lone_surrogate(fmt: str) -> tuple[str, bytes]:
    """Two records, the first title holding an escaped lone surrogate, which no UTF-8 text can hold."""
    escape = "\\ud800" if fmt == "json" else "\\udc00"
    records = [f'{{"title": "Protein {escape} folding", "abstract": "Chains fold"}}',
               '{"title": "Black holes", "abstract": "Ripples in spacetime"}']
    text = "[" + ", ".join(records) + "]" if fmt == "json" else "\n".join(records)
    return f"surrogate.{fmt}", text.encode()


def _fuzz_corrupt_lzma_zip() -> tuple[str, bytes]:
    """Two good PNGs around an LZMA-compressed one whose stream is overwritten (lzma.LZMAError on reading)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("red/a.png", png(), compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("bad/c.png", png(colour="green"), compress_type=zipfile.ZIP_LZMA)
        archive.writestr("blue/b.png", png(colour="blue"), compress_type=zipfile.ZIP_DEFLATED)
    data = bytearray(buffer.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("bad/c.png")
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    data[start + 9:start + 19] = b"\xff" * 10  # past the 9-byte LZMA properties header: the stream itself
    return "lzma.zip", bytes(data)


@cache
def _huge_image_zip(mode: str, fmt: str, colour) -> tuple[str, bytes]:
    """A ZIP of two small images and one of 9,000 x 9,000 pixels, under the pixel cap, that compresses
    to a few hundred kB: decoding it is unavoidable, every full-size copy after that is not."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, (9000, 9000), colour).save(buffer, fmt)
    members = {f"big/huge.{fmt.lower()}": buffer.getvalue(), "red/a.png": png(), "blue/b.png": png(colour="blue")}
    return "huge.zip", make_zip(members)


def _fuzz_nameless_member() -> tuple[str, bytes]:
    return "nameless.zip", make_zip({"": png(), "red/a.png": png(), "blue/b.png": png(colour="blue")})


def _fuzz_layout_huge(value: float | int = 10**400) -> tuple[str, bytes]:
    rows = [{"title": t, "abstract": a, "emb": _unit(i), "px": float(i), "py": 0.0}
            for i, (t, a) in enumerate(_TOPICS)]
    rows[2]["px"] = value  # JSON has no limit on integers; a float64 ends at 1.8e308, a float32 at 3.4e38
    return "xy.json", json.dumps(rows).encode()


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


# --- measuring a case: time and peak memory, in a child process ------------------------------------------

# The budget of issue 24: no input of at most BUDGET_INPUT_BYTES may cost more than BUDGET_SECONDS of server
# time or BUDGET_PEAK_BYTES of memory above the process it arrives in.
BUDGET_INPUT_BYTES = 1_000_000
BUDGET_SECONDS = 2.0
BUDGET_PEAK_BYTES = 500 * 2**20
MEASURE_TIMEOUT = 30.0


@dataclass
class Measurement:
    """What one case cost, run alone in a forked child: its outcome (None when it never finished), the wall
    and CPU seconds of the library step, and its peak memory above the child's memory at the start."""

    case_id: str
    input_bytes: int
    outcome: Outcome | None = None
    wall: float = 0.0
    cpu: float = 0.0
    peak_bytes: int | None = None  # None where /proc cannot reset the peak (not Linux)
    failure: str = ""  # why there is no outcome: the hard timeout, a crash, or an exception that is a bug

    @property
    def seconds(self) -> float:
        """The server time: the CPU seconds, or the wall seconds where threads made the CPU time exceed
        them (a 2-core machine shared with other work inflates wall time, several threads CPU time)."""
        return min(self.wall, self.cpu)


def _proc_status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_memory() -> int | None:
    """Reset this process's peak resident memory (VmHWM, Linux >= 4.0) and return its resident memory in
    bytes now; None where the peak cannot be reset."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return None
    rss = _proc_status_kb("VmRSS")
    return None if rss is None else rss * 1024


def peak_memory() -> int | None:
    """This process's peak resident memory in bytes since the last reset_peak_memory()."""
    peak = _proc_status_kb("VmHWM")
    return None if peak is None else peak * 1024


def _measure_in_child(case: Case, pipe) -> None:
    import tempfile
    import time
    import traceback

    from explorer import Workspace

    with tempfile.TemporaryDirectory() as folder:
        name, data = case.make()
        path = Path(folder) / "upload" / name
        path.parent.mkdir()
        path.write_bytes(data)
        workspace = Workspace(Path(folder) / "home")
        measured = Measurement(case.id, len(data))
        with case_env(case):
            start_rss = reset_peak_memory()
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                measured.outcome = run_library(case, path, workspace)
            except BaseException as exc:  # any other exception is a bug: the parent reports it
                measured.failure = "".join(traceback.format_exception_only(exc)).strip()
            measured.wall, measured.cpu = time.perf_counter() - wall, time.process_time() - cpu
            peak = peak_memory()
            measured.peak_bytes = None if start_rss is None or peak is None else max(0, peak - start_rss)
    if measured.outcome is not None:
        measured.outcome.table = None  # the table stays in the child: only what was measured travels
        error = measured.outcome.error
        try:
            pickle.dumps(error)
        except Exception:  # an exception whose arguments do not pickle comes back as its message
            measured.outcome.error = ExplorerError(str(error))
    pipe.send(measured)
    pipe.close()


# Inputs that load, one of each reader and step, run once in the parent before any case is measured: a
# server has imported its readers long before an upload arrives, so no case pays for the imports.
_WARM_UP = ("one_row", "jsonl_broken_line", "cp1251", "bib_malformed_middle", "ris_malformed_middle",
            "xlsx_sheets_merged", "parquet_nested", "zip_some_corrupt", "vectors_zero", "query_terminal_escapes")


@cache
def warm_up() -> None:
    """Run one input of each reader in this process, so a forked child starts with everything imported."""
    import tempfile

    from explorer import Workspace

    by_id = {case.id: case for case in CASES}
    with tempfile.TemporaryDirectory() as folder:
        for number, case_id in enumerate(c for c in _WARM_UP if c in by_id):
            name, data = by_id[case_id].make()
            path = Path(folder) / str(number) / name
            path.parent.mkdir()
            path.write_bytes(data)
            run_library(by_id[case_id], path, Workspace(Path(folder) / f"home{number}"))


def measure_case(case: Case, *, timeout: float = MEASURE_TIMEOUT) -> Measurement:
    """Run ``case`` through the library in a forked child (so its peak memory is its own) and return its
    outcome, wall and CPU seconds and peak memory; a child still running after ``timeout`` seconds is
    killed and reported as a failure."""
    import multiprocessing

    warm_up()
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_measure_in_child, args=(case, send), daemon=True)
    child.start()
    send.close()
    try:
        if receive.poll(timeout):
            measured = receive.recv()
        else:
            measured = Measurement(case.id, -1, wall=timeout, cpu=timeout,
                                   failure=f"still running after {timeout:.0f} s: killed")
    except EOFError:
        measured = Measurement(case.id, -1, failure="the child process died without a result")
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()
    if measured.input_bytes < 0:
        measured.input_bytes = len(case.make()[1])
        if child.exitcode not in (0, None) and not measured.failure.startswith("still running"):
            measured.failure += f" (exit code {child.exitcode})"
    return measured


CHECKS: dict[str, Callable] = {
    "five_mb_cell": _check_five_mb_cell, "five_mb_cell_ragged": _check_five_mb_cell, "pandas_internals": _check_internals, "emoji_rtl": _check_emoji_rtl,
    "parquet_nested": _check_nested, "xlsx_sheets_merged": _check_merged, "xlsx_named_csv": _check_merged,
    "html_titles": _check_html, "formula_cells": _check_formulas, "bib_malformed_middle": _check_bib,
    "shift_jis": _check_legacy(_JAPANESE), "cp1251": _check_legacy(_RUSSIAN), "gb18030": _check_legacy(_CHINESE),
    "fuzz_json_long_integer": _check_long_number, "fuzz_jsonl_long_integer": _check_long_number,
    "mixed_encodings": _check_legacy([("Café in UTF-8", "Naïve crème brûlée"), ("Café in cp1252", "Naïve crème brûlée")]),
}
