"""Step 1, load: read a table from CSV/TSV, JSON, JSONL, Parquet, XLSX, BibTeX or RIS into a DataFrame."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import logging
import re
import unicodedata
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from .errors import InputError, shown_lines
from .hashing import bytes_hash
from .limits import Limits, too_big_message

log = logging.getLogger(__name__)

TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
    ".bib": "bibtex",
    ".bibtex": "bibtex",
    ".ris": "ris",
}
# Columns the saved map adds; a user column with one of these names is renamed, never overwritten.
# "neighbors": the map stores its own neighbour lists under that name (explorer.neighbor_column).
RESERVED_COLUMNS = ("row_id", "x", "y", "embedded", "neighbors")
TEXT_FORMATS = ("csv", "json", "jsonl", "bibtex", "ris")
SUPPORTED = "a CSV, TSV, JSON, JSONL, Parquet, XLSX, BibTeX or RIS file"
# Content that is no table whatever its name says, by its first bytes (Parquet and ZIP are handled apart).
NOT_A_TABLE = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"%PDF": "a PDF document",
    b"\x1f\x8b": "gzip-compressed: decompress it first", b"\xd0\xcf\x11\xe0": "an old-style Excel (.xls) or "
    "Office file: save it as .xlsx or CSV",
}
# A decoded text with more control characters than this share is binary data, not a table.
MAX_CONTROL_SHARE = 0.05
_RIS_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*TY\s{1,2}- ")


@dataclass
class LoadedTable:
    """A table read from a file, with what the reader had to do to read it."""

    frame: pd.DataFrame
    source_name: str
    format: str
    content_hash: str
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)
    skipped_lines: list[int] = field(default_factory=list)
    # The text columns the reader knows best (a bibliography's title and abstract); None: detect them.
    text_columns: list[str] | None = None


def load_table(
    source: str | Path | bytes | BinaryIO,
    *,
    name: str | None = None,
    sheet: str | int | None = None,
    max_bytes: int | None = None,
    max_rows: int | None = None,
) -> LoadedTable:
    """Read a table; ``name`` gives the file name (and so the format) when ``source`` is bytes.
    The caps default to ``Limits.from_env()``."""
    limits = Limits.from_env()
    max_bytes = limits.max_upload_bytes if max_bytes is None else max_bytes
    max_rows = limits.max_rows if max_rows is None else max_rows
    max_columns = limits.max_columns
    if isinstance(source, (str, Path)):
        streamed = _load_streamed(Path(source), name=name or Path(source).name, max_bytes=max_bytes,
                                  max_rows=max_rows, max_columns=max_columns)
        if streamed is not None:
            release_arrow_memory()
            return streamed
    data, source_name = _read_source(source, name=name, max_bytes=max_bytes)
    notes: list[str] = []
    fmt = detect_format(source_name, data, notes=notes)
    skipped: list[int] = []
    encoding: str | None = None
    text_columns: list[str] | None = None
    text = ""
    if fmt in TEXT_FORMATS:
        text, encoding = decode_text(data, notes=notes)
        _check_is_text(text, source_name)
    if not (text if fmt in TEXT_FORMATS else data).strip():
        raise InputError(f"{source_name}: the file is empty. Choose a file with a header and rows.")
    if fmt == "csv":
        frame = _read_delimited(text, source_name, notes=notes, skipped=skipped, max_columns=max_columns)
    elif fmt == "json":
        frame = _read_json(text, source_name, max_columns=max_columns)
    elif fmt == "jsonl":
        frame = _read_jsonl(text, source_name, notes=notes, skipped=skipped, max_columns=max_columns)
    elif fmt in ("bibtex", "ris"):
        from .bibliography import TEXT_COLUMNS, read_bibtex, read_ris

        read = read_bibtex if fmt == "bibtex" else read_ris
        bibliography = read(text, source_name)
        frame, text_columns = bibliography.frame, list(TEXT_COLUMNS)
        notes.extend(bibliography.notes)
        skipped.extend(bibliography.skipped_lines)
    elif fmt == "parquet":
        frame = _read_binary(lambda: _read_parquet(data, source_name, max_columns), source_name, "Parquet")
    else:
        frame = _read_xlsx(data, source_name, sheet=sheet, notes=notes, max_rows=max_rows, max_columns=max_columns)
    return _finish_table(frame, source_name, fmt, bytes_hash(data), encoding=encoding, notes=notes,
                         skipped=skipped, text_columns=text_columns, max_rows=max_rows, max_columns=max_columns)


def _finish_table(
    frame: pd.DataFrame, source_name: str, fmt: str, content_hash: str, *, encoding: str | None, notes: list[str],
    skipped: list[int], text_columns: list[str] | None, max_rows: int, max_columns: int,
) -> LoadedTable:
    """The rules every reader's table ends with: the column cap, tidy names, at least one row, the row cap."""
    # Every reader checks the cap before it builds its table; this catches any shape one did not foresee.
    check_columns(frame.shape[1], source_name, max_columns)
    frame = tidy_columns(frame, notes=notes)
    if frame.shape[1] == 0:
        raise InputError(
            f"{source_name}: no columns were found. Check that the file has a header row."
        )
    if len(frame) == 0:
        raise InputError(f"{source_name}: the file has a header but no rows.")
    if len(frame) > max_rows:
        raise InputError(_too_many_rows(source_name, len(frame), max_rows))
    return LoadedTable(
        frame=frame.reset_index(drop=True),
        source_name=source_name,
        format=fmt,
        content_hash=content_hash,
        encoding=encoding,
        notes=notes,
        skipped_lines=skipped,
        text_columns=text_columns,
    )


def _too_many_rows(name: str, rows: int, limit: int) -> str:
    return (f"{name}: {rows:,} rows is more than the limit of {limit:,}. "
            "Split the file, or raise the limit (EXPLORER_MAX_ROWS).")


def detect_format(name: str, data: bytes, *, notes: list[str] | None = None) -> str:
    """The table format from the file's magic bytes, else its extension; a note says when they disagree."""
    suffix = Path(name).suffix.lower()
    if data[:4] == b"PAR1":
        if suffix not in (".parquet", ".pq") and notes is not None:
            notes.append(f"{name} is a Parquet file: it was read as one.")
        return "parquet"
    if data[:4] == b"PK\x03\x04" and suffix in (".xlsx", ""):
        return "xlsx"
    if suffix in TABLE_FORMATS:
        if data[:4] == b"PK\x03\x04":
            if not _is_workbook(data):
                raise InputError(f"{name}: the file is a ZIP archive, not a table. Unzip it and upload the "
                                 "table inside it.")
            if notes is not None:
                notes.append(f"{name} is an Excel workbook: it was read as one.")
            return "xlsx"
        for magic, what in NOT_A_TABLE.items():
            if data.startswith(magic):
                raise InputError(f"{name}: the file is {what}, not a table. Upload {SUPPORTED}.")
        fmt = TABLE_FORMATS[suffix]
        if suffix == ".txt" and _RIS_START.match(data[:64]):
            # Many databases (Web of Science, Scopus, PubMed) hand RIS out as .txt.
            if notes is not None:
                notes.append(f"{name} is a RIS bibliography: it was read as one.")
            return "ris"
        if fmt in ("parquet", "xlsx"):
            raise InputError(
                f"{name}: the name says {fmt.upper()} but the content is not. "
                "Rename the file to its real type or export it again."
            )
        return fmt
    supported = ", ".join(sorted(TABLE_FORMATS))
    raise InputError(
        f"{name}: unsupported file type '{suffix or '(none)'}'. Supported: {supported}."
    )


def _is_workbook(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _check_is_text(text: str, name: str) -> None:
    """Refuse binary data that decoded to text: it would make a table of garbage."""
    sample = text[:8192]
    controls = sum(1 for ch in sample if ch < " " and ch not in "\t\n\r")
    if controls > MAX_CONTROL_SHARE * len(sample):
        raise InputError(
            f"{name}: this is binary data, not text ({controls:,} control characters in the first "
            f"{len(sample):,}). Upload {SUPPORTED}."
        )


def decode_text(data: bytes, *, notes: list[str]) -> tuple[str, str]:
    """Decode bytes as UTF-8 (with or without BOM) or UTF-16, else in the encoding guess_encoding finds."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _strip_nul(data.decode("utf-16", errors="replace"), notes), "utf-16"
    bom_less = _guess_utf16(data)
    if bom_less:
        notes.append(f"The file was read as {bom_less.upper()} (no byte-order mark).")
        return _strip_nul(data.decode(bom_less, errors="replace"), notes), bom_less
    try:
        return _strip_nul(data.decode("utf-8"), notes), "utf-8"
    except UnicodeDecodeError as exc:
        bad_at = exc.start
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    non_ascii = len(text) - len(text.encode("ascii", errors="ignore"))
    if non_ascii - bad > bad:
        # Mostly valid UTF-8 with a few broken bytes: cp1252 would garble every other accent.
        notes.append(
            f"The file is UTF-8 except for {bad:,} invalid byte sequence(s) on line {shown_lines(_bad_lines(text))}: "
            "they were replaced by \ufffd. Check those rows."
        )
        return _strip_nul(text, notes), "utf-8"
    mixed = _decode_mixed(data, notes)
    if mixed is not None:
        return mixed
    line = data[:bad_at].count(b"\n") + 1
    encoding = guess_encoding(data)
    notes.append(
        f"The file is not valid UTF-8 (first bad byte on line {line}); it was read as {encoding}. If the "
        "text looks wrong, save the file as UTF-8 and upload it again."
    )
    return _strip_nul(data.decode(encoding, errors="replace"), notes), encoding


def _decode_mixed(data: bytes, notes: list[str]) -> tuple[str, str] | None:
    """A file whose lines are partly UTF-8 with accents and partly another encoding (rows pasted together
    from two sources): each line in its own encoding. None when no valid line has a non-ASCII character."""
    lines = data.splitlines(keepends=True)
    bad: list[int] = []
    utf8_accents = False
    for i, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(i)
            continue
        utf8_accents = utf8_accents or not line.isascii()
    if not utf8_accents:
        return None
    encoding = guess_encoding(b"".join(lines[i] for i in bad))
    others = set(bad)
    text = "".join(line.decode(encoding if i in others else "utf-8", errors="replace")
                   for i, line in enumerate(lines))
    notes.append(
        f"The file mixes encodings: {len(bad):,} line(s) are not UTF-8 (line {shown_lines([i + 1 for i in bad])}) and "
        f"were read as {encoding}, the others as UTF-8. If the text looks wrong, save the file as UTF-8 and "
        "upload it again."
    )
    return _strip_nul(text, notes), f"utf-8+{encoding}"


# charset-normalizer's "chaos" of one short text varies by up to ~0.09 between readings that are
# equally right (a 57-character cp1252 French text scores 0.087 as cp1252 and 0.0 as cp1257), so a
# reading this close to the best one, and as coherent, counts as equally good.
_EQUALLY_GOOD_CHAOS = 0.1
_SAME_CHAOS = 0.005


def guess_encoding(data: bytes) -> str:
    """The encoding of bytes that are not UTF-8: charset-normalizer's best guess, unless the code page
    common for the language reads them as well: cp1252 for short Western European texts, which it often
    takes for Baltic or Central European code pages, and cp1251 or KOI8-R for short Russian ones, which it
    takes for cp1250, Shift_JIS or mac-cyrillic; latin-1 when nothing fits."""
    return _common_for_the_language(data, _charset_guess(data))


def _charset_guess(data: bytes) -> str:
    import charset_normalizer

    if sum(1 for b in data[:8192] if b < 0x20 and b not in b"\t\n\r") > MAX_CONTROL_SHARE * len(data[:8192]):
        return "latin-1"  # binary data: _check_is_text refuses it with its own message
    results = list(charset_normalizer.from_bytes(data))
    # Of the readings as little chaotic as the least, the most coherent: charset-normalizer ranks by chaos
    # alone, and so takes ISO-8859-7 Greek for cp1253 (which has Ά elsewhere) when both score 0.001.
    least = min((m.chaos for m in results), default=0.0)
    best = max((m for m in results if m.chaos <= least + _SAME_CHAOS), key=lambda m: m.coherence, default=None)
    western_name, western_bytes = "cp1252", data
    if _stray_controls_only(data):
        # Western text with a few stray C1 control bytes (which cp1252 leaves undefined): latin-1 keeps them.
        western_name, western_bytes = "latin-1", data.translate(None, _UNDEFINED_IN_CP1252)
    western = charset_normalizer.from_bytes(western_bytes, cp_isolation=["cp1252"]).best()
    if western is not None and (best is None or (
            western.chaos <= best.chaos + _EQUALLY_GOOD_CHAOS and western.coherence >= best.coherence - 1e-9)):
        return western_name
    return "latin-1" if best is None else codecs.lookup(best.encoding).name


_UNDEFINED_IN_CP1252 = b"\x81\x8d\x8f\x90\x9d"
# The Cyrillic code pages, the most used first: of readings that look equally right the earliest is taken
# (cp1251 and mac-cyrillic read lowercase Russian alike; they differ in capitals, ё and я).
_CYRILLIC_PAGES = ("cp1251", "koi8-r", "mac-cyrillic")
_LETTERS = re.compile(r"[^\W\d_]+")
# Letters of Russian (ы, э, ъ, ё) and of Serbian and Macedonian only: no text holds both, but a Russian text
# read in the wrong Cyrillic code page does (mac-cyrillic's capitals are cp1251's Љ, Њ, Џ...).
_RUSSIAN_ONLY = re.compile("[ыэъёЫЭЪЁ]")
_SOUTH_SLAVIC_ONLY = re.compile("[ђјљњћџѓќѕЂЈЉЊЋЏЃЌЅ]")
# What may stand before a word's first, lowercase letter: opening quotes and brackets.
_OPENERS = "«„“‘\"'([{"


def _common_for_the_language(data: bytes, guess: str) -> str:
    """``guess``, unless a Cyrillic code page reads the bytes as Russian with fewer odd words (or as few,
    and it is the more common page): charset-normalizer's chaos score is noise on a line or two."""
    if guess == "latin-1" and not _stray_controls_only(data):
        return guess  # binary data, or nothing else fitted
    sample = data[:65536]
    if len(data) > len(sample) and sample.rfind(b"\n") > 0:
        sample = sample[: sample.rfind(b"\n")]

    def rank(encoding: str) -> tuple:
        text = sample.decode(encoding, errors="replace")
        capitals = sum(1 for ch in text if "\u0400" <= ch <= "\u04ff" and ch.isupper())
        lower = sum(1 for ch in text if "\u0400" <= ch <= "\u04ff" and ch.islower())
        # Mostly capitals is how KOI8-R reads cp1251's lowercase letters, and the reverse.
        order = _CYRILLIC_PAGES.index(encoding) if encoding in _CYRILLIC_PAGES else len(_CYRILLIC_PAGES)
        return _odd_words(text), capitals > lower, order

    best, best_rank = guess, rank(guess)
    for page in _CYRILLIC_PAGES:
        if page != guess and _mostly_cyrillic(sample.decode(page, errors="replace")):
            page_rank = rank(page)
            if page_rank < best_rank:
                best, best_rank = page, page_rank
    return best


def _mostly_cyrillic(text: str) -> bool:
    """Whether a quarter of the letters or more are Cyrillic (a Russian text with English column names)."""
    cyrillic = sum(1 for ch in text if "\u0400" <= ch <= "\u04ff")
    return cyrillic >= 2 and cyrillic >= 0.25 * sum(1 for ch in text if ch.isalpha())


def _odd_words(text: str) -> int:
    """How many words of a reading show the wrong code page: a replacement character, half-width katakana,
    a symbol glued before a lowercase letter (Ęîńěč÷ĺ), capitals inside a word (поЯс), Latin and Cyrillic or
    Greek letters in one word, a Latin word of accented letters only (îđáčňű), Russian and Serbian letters
    in one text."""
    russian = bool(_RUSSIAN_ONLY.search(text))
    odd = 0
    for token in text.split():
        if not token.isascii():
            odd += _odd_token(token, russian)
    return odd


def _odd_token(token: str, russian: bool) -> int:
    if "\ufffd" in token or any("\uff61" <= ch <= "\uff9f" for ch in token):
        return 1
    for i, ch in enumerate(token[:-1]):
        if not ch.isascii() and not ch.isalnum() and ch not in _OPENERS and token[i + 1].islower():
            return 1
    for match in _LETTERS.finditer(token):
        word = match.group()
        if word.isascii():
            continue
        if not (word.islower() or word.isupper() or (word[0].isupper() and word[1:].islower())) and any(
                ch.islower() or ch.isupper() for ch in word):
            return 1
        scripts = {"LATIN" if ch.isascii() else unicodedata.name(ch, "?").split()[0] for ch in word}
        if len(scripts & {"LATIN", "CYRILLIC", "GREEK"}) > 1:
            return 1
        if scripts == {"LATIN"} and len(word) >= 3 and not any(ch.isascii() for ch in word):
            return 1
        if russian and _SOUTH_SLAVIC_ONLY.search(word):
            return 1
    return 0


def _stray_controls_only(data: bytes) -> bool:
    """Whether the bytes cp1252 cannot decode all stand alone between ASCII spaces or punctuation (so
    they are stray control characters, not letters of another code page, such as cp1250's ť)."""
    at = [i for i, b in enumerate(data) if b in _UNDEFINED_IN_CP1252]
    if not at:
        return False
    def apart(i: int) -> bool:
        return i < 0 or i >= len(data) or (data[i] < 0x80 and not chr(data[i]).isalnum())
    return all(apart(i - 1) and apart(i + 1) for i in at)


def _bad_lines(text: str, *, most: int = 11) -> list[int]:
    """The line numbers of the first few replacement characters."""
    lines: list[int] = []
    line, counted = 1, 0
    at = text.find("\ufffd")
    while at >= 0 and len(lines) < most:
        # Counted on from the last one, and on to the next line: once over the text, not once per character.
        line, counted = line + text.count("\n", counted, at), at
        lines.append(line)
        end = text.find("\n", at)
        at = -1 if end < 0 else text.find("\ufffd", end)
    return lines


def _guess_utf16(data: bytes) -> str | None:
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even_nul = sample[0::2].count(0) / max(1, len(sample[0::2]))
    odd_nul = sample[1::2].count(0) / max(1, len(sample[1::2]))
    if odd_nul > 0.4 and even_nul < 0.05:
        return "utf-16-le"
    if even_nul > 0.4 and odd_nul < 0.05:
        return "utf-16-be"
    return None


def _strip_nul(text: str, notes: list[str]) -> str:
    if "\x00" in text:
        notes.append(f"Removed {text.count(chr(0)):,} NUL characters from the file.")
        return text.replace("\x00", "")
    return text


def _read_source(
    source: str | Path | bytes | BinaryIO, *, name: str | None, max_bytes: int
) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        source_name = name or "upload"
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{path}: no such file. Check the path and try again.")
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(_too_big(path.name, size, max_bytes))
        data = path.read_bytes()
        source_name = name or path.name
    else:
        data = source.read(max_bytes + 1)
        source_name = name or getattr(source, "name", None) or "upload"
    if len(data) > max_bytes:
        raise InputError(_too_big(source_name, len(data), max_bytes))
    return data, str(source_name)


def check_columns(count: int, name: str, limit: int) -> None:
    """Refuse a table of more than ``limit`` columns, in one line."""
    if count > limit:
        raise InputError(f"{name}: {count:,} columns is more than the limit of {limit:,}. Keep the columns you "
                         "need, or raise the limit (EXPLORER_MAX_COLUMNS).")


def _too_big(name: str, size: int, limit: int) -> str:
    return too_big_message(name, size, limit)  # the app's upload refuses with the same line


# A CSV/TSV, JSON Lines or Parquet file read from a path and larger than this is read in blocks of about
# READ_BLOCK_BYTES (CSV by pyarrow; JSON Lines line by line, at most JSONL_BLOCK_LINES records a block) straight
# into Arrow arrays: the whole-file read holds the bytes, their decoded text and pandas' Python strings at
# once (a 146 MB CSV peaked at 1.7 GB, a 1.46 GB one would near 12 GB; JSON Lines a dict per row besides).
# Smaller files, and any file the block read cannot give the same table for (not UTF-8, NUL bytes, rows
# wider or narrower than the header, JSON columns of mixed or nested values), keep the whole-file read and
# every repair it makes.
STREAM_BYTES = 16 * 2**20
PARQUET_BUFFER_BYTES = 4 * 2**20
READ_BLOCK_BYTES = 16 * 2**20
JSONL_BLOCK_LINES = 20_000
_HEAD_BYTES = 1 << 16
# pandas' default missing-value markers, so both reads agree on which cells are empty.
NA_STRINGS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
              "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
# The cells pandas' C parser reads as integers, floats and booleans (spaces and tabs around them allowed).
_INTEGER = r"^[ \t]*[+-]?[0-9]+[ \t]*$"
_FLOAT = r"^[ \t]*[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|(?i:inf|infinity))[ \t]*$"
_BOOLEANS = ("True", "TRUE", "true", "False", "FALSE", "false")


def _load_streamed(path: Path, *, name: str, max_bytes: int, max_rows: int, max_columns: int) -> LoadedTable | None:
    """A big CSV/TSV, JSON Lines or Parquet file read from its path in blocks into Arrow; None where the whole-file
    read applies (a small file, another format, or a file the block read cannot give the same table for)."""
    if not path.is_file() or (size := path.stat().st_size) <= STREAM_BYTES:
        return None
    if size > max_bytes:
        raise InputError(_too_big(name, size, max_bytes))
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    if head[:4] == b"PK\x03\x04":
        return None  # a workbook or a ZIP: told apart from the whole file
    notes: list[str] = []
    fmt = detect_format(name, head, notes=notes)
    if fmt not in ("csv", "jsonl", "parquet"):
        return None
    digest, has_nul = _scan_file(path)
    if fmt == "parquet":
        frame = _read_binary(lambda: _read_parquet(path, name, max_columns), name, "Parquet")
        return _finish_table(frame, name, fmt, digest, encoding=None, notes=notes, skipped=[], text_columns=None,
                             max_rows=max_rows, max_columns=max_columns)
    text = _utf8_head(head)
    if text is None or has_nul:
        return None
    _check_is_text(text, name)
    skipped: list[int] = []
    if fmt == "csv":
        frame = _stream_delimited(path, text, name, notes=notes, max_rows=max_rows, max_columns=max_columns)
    else:
        frame = _stream_jsonl(path, name, notes=notes, skipped=skipped, max_rows=max_rows, max_columns=max_columns)
    if frame is None:
        return None
    encoding = "utf-8-sig" if head.startswith(b"\xef\xbb\xbf") else "utf-8"
    return _finish_table(frame, name, fmt, digest, encoding=encoding, notes=notes, skipped=skipped,
                         text_columns=None, max_rows=max_rows, max_columns=max_columns)


def _scan_file(path: Path) -> tuple[str, bool]:
    """The file's sha256 (as bytes_hash gives it) and whether it holds a NUL byte, in one pass of 1 MB reads."""
    import hashlib

    digest, nul = hashlib.sha256(), False
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            nul = nul or b"\x00" in block
    return digest.hexdigest(), nul


def _utf8_head(head: bytes) -> str | None:
    """The first bytes as text when they are UTF-8 (a character cut at the end aside), else None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _guess_utf16(head):
        return None
    head = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return head[: exc.start].decode("utf-8") if exc.start >= len(head) - 3 else None


def _stream_delimited(
    path: Path, head: str, name: str, *, notes: list[str], max_rows: int, max_columns: int
) -> pd.DataFrame | None:
    """The table pyarrow reads in blocks, every cell as text, then typed per column as pandas types it;
    None when pyarrow refuses a row (the whole-file read repairs it and says so)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    delimiter = _sniff_delimiter(head, name)
    header = _header(head, delimiter)
    # A header longer than the head, or one with a line break in a name: the whole-file read counts it.
    if not header or any("\n" in h or "\r" in h for h in header) or not ("\n" in head or "\r" in head):
        return None
    check_columns(len(header), name, max_columns)
    # pandas names the columns (Unnamed: i for a blank name, a.1 for a repeated one), as the small read does.
    names = [str(c) for c in pd.read_csv(io.StringIO(head), sep=delimiter, index_col=False, nrows=0).columns]
    if len(names) != len(header):
        return None
    options = {
        "read_options": pa_csv.ReadOptions(block_size=READ_BLOCK_BYTES),
        "parse_options": pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        "convert_options": pa_csv.ConvertOptions(column_types={h: pa.large_string() for h in header},
                                                 null_values=list(NA_STRINGS), strings_can_be_null=True),
    }
    batches, rows = [], 0
    try:
        with pa_csv.open_csv(path, **options) as reader:
            for batch in reader:
                rows += batch.num_rows
                if rows <= max_rows:  # past the cap the rows are only counted, for the message
                    batches.append(batch)
            schema = reader.schema
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        log.info("pyarrow's block read refused %s (%s); reading it whole", name, exc)
        return None
    if rows > max_rows:
        raise InputError(_too_many_rows(name, rows, max_rows))
    table = pa.Table.from_batches(batches, schema=schema)
    del batches
    if delimiter != ",":
        notes.append(f"Columns are separated by {_DELIMITER_NAMES.get(delimiter, repr(delimiter))}.")
    repeated = _repeated_names(header)
    if repeated:
        notes.append(f"Renamed repeated column name(s): {', '.join(repeated)} (the second is now "
                     f"{repeated[0]}.1, and so on).")
    typed = pa.table([_typed(column) for column in table.columns], names=[f"c{i}" for i in range(len(names))])
    del table
    frame = typed.to_pandas(types_mapper=_PANDAS_TYPES.get, self_destruct=True)
    frame.columns = names
    return frame


def _stream_jsonl(
    path: Path, name: str, *, notes: list[str], skipped: list[int], max_rows: int, max_columns: int
) -> pd.DataFrame | None:
    """The JSON Lines file parsed line by line as the whole-file read parses it, each block's records turned
    into Arrow columns; None when the whole-file read could give another table (a line not UTF-8, a column
    of mixed or nested values, no object at all): it reads the file again and says what it did."""
    columns = _JsonlColumns(max_rows=max_rows, max_columns=max_columns)
    block: list[dict] = []
    size = 0
    try:
        for record, length in _jsonl_records(_utf8_lines(path), skipped):
            block.append(record)
            size += length
            if len(block) >= JSONL_BLOCK_LINES or size >= READ_BLOCK_BYTES:
                if not columns.add(block):
                    return None
                block, size = [], 0
    except UnicodeDecodeError:
        return None  # the whole-file read finds the encoding, or replaces the bad bytes with a note
    if block and not columns.add(block):
        return None
    if not columns.rows or not columns.kinds:
        return None  # no object, or only empty ones: the whole-file read refuses the file in its words
    _note_skipped(skipped, notes)
    check_columns(len(columns.kinds), name, max_columns)
    if columns.rows > max_rows:
        raise InputError(_too_many_rows(name, columns.rows, max_rows))
    return columns.frame()


def _utf8_lines(path: Path) -> Iterator[str]:
    """The file's lines as str.splitlines cuts its decoded text (\\r, U+2028 and such end a line too), one
    line of bytes decoded at a time; UnicodeDecodeError at the first line that is not UTF-8."""
    with open(path, "rb") as fh:
        for i, raw in enumerate(fh):
            # b"\n" never occurs inside a UTF-8 character and ends a line for splitlines too: cutting the bytes
            # there first and the text of each piece then gives the lines of the whole text.
            yield from (raw[3:] if i == 0 and raw.startswith(b"\xef\xbb\xbf") else raw).decode("utf-8").splitlines()


class _Absent:
    """A key a record does not have: pandas makes it NaN where a JSON null is None."""


_ABSENT = _Absent()
# What a column of values of these Python types (nulls aside) is in the table pandas builds from the records.
_JSON_KINDS = {frozenset(): "null", frozenset({int}): "int", frozenset({float}): "float",
               frozenset({int, float}): "float", frozenset({bool}): "bool", frozenset({str}): "str"}


class _JsonlColumns:
    """A JSON Lines table's columns in Arrow, block by block, typed as pandas types the whole-file read's
    list of records: columns in the order their keys first appear, integers (int64, float64 with a null),
    floats, booleans (object with a null), text, and null-only columns (objects, float64 where a key lacks)."""

    def __init__(self, *, max_rows: int, max_columns: int):
        self.rows = 0
        self.max_rows, self.max_columns = max_rows, max_columns
        self.kinds: dict[str, str] = {}
        self.missing: dict[str, bool] = {}
        self.chunks: dict[str, list] = {}
        # Per block: None (every row has the key), True (none has) or an Arrow mask of the rows without it.
        self.absent: dict[str, list] = {}

    def add(self, block: list[dict]) -> bool:
        """Add a block of records; False when one of its columns cannot be typed as the whole-file read's."""
        import pyarrow as pa

        start = self.rows
        self.rows += len(block)
        for record in block:
            if not record.keys() <= self.kinds.keys():
                for key in record:
                    if key not in self.kinds:
                        self.kinds[key], self.missing[key] = "null", start > 0
                        self.chunks[key] = [pa.nulls(start)] if start else []
                        self.absent[key] = [(start, True)] if start else []
        if self.rows > self.max_rows or len(self.kinds) > self.max_columns:
            # Refused at the end with the counts the whole-file read gives: only keys and rows are counted on.
            self.chunks.clear()
            self.absent.clear()
            return True
        for key, chunks in self.chunks.items():
            values = [record.get(key, _ABSENT) for record in block]
            types = set(map(type, values))
            absent = _Absent in types
            null = type(None) in types
            kind = _JSON_KINDS.get(frozenset(types - {_Absent, type(None)}))
            kind = kind and _merged_kind(self.kinds[key], kind)
            if kind is None:
                log.info("JSON Lines column %r mixes types or nests values; reading the file whole", key)
                return False
            mask = None
            if absent:
                mask = pa.array(np.fromiter((v is _ABSENT for v in values), bool, len(values)))
                values = [None if v is _ABSENT else v for v in values]
            try:
                array = pa.array(values, type=_jsonl_type(kind))
            except (pa.ArrowInvalid, OverflowError, UnicodeEncodeError) as exc:
                # Beyond int64 (pandas: uint64 or objects), an int beyond 2**53 among floats, a lone surrogate.
                log.info("JSON Lines column %r has a value Arrow cannot hold as pandas does (%s)", key, exc)
                return False
            chunks.extend(getattr(array, "chunks", [array]))
            self.absent[key].append((len(block), True if mask is not None and mask.true_count == len(block)
                                     else mask))
            self.kinds[key] = kind
            self.missing[key] = self.missing[key] or absent or null
        return True

    def frame(self) -> pd.DataFrame:
        """The table, each column built and its blocks let go one at a time."""
        import pyarrow as pa
        import pyarrow.compute as pc

        data = {}
        for key, kind in self.kinds.items():
            absent = self.absent.pop(key)
            if kind == "null":  # only nulls: pandas keeps them as None, unless a record lacks the key (NaN)
                kind = "float" if any(mask is not None for _, mask in absent) else "null"
            elif kind == "int" and self.missing[key]:
                kind = "float"
            target = _jsonl_type(kind)
            chunks = [c if c.type == target else pc.cast(c, target, safe=False) for c in self.chunks.pop(key)]
            series = pa.chunked_array(chunks, type=target).to_pandas()
            del chunks
            if series.dtype == object and any(mask is not None for _, mask in absent):
                # Booleans with a null (and text where pandas keeps it as objects): None, NaN where absent.
                values = series.to_numpy(dtype=object, copy=True)
                values[np.concatenate([np.zeros(n, bool) if mask is None else np.ones(n, bool) if mask is True
                                       else mask.to_numpy(zero_copy_only=False) for n, mask in absent])] = np.nan
                series = pd.Series(values, dtype=object)
            data[key] = series
        return pd.DataFrame(data, copy=False)


def _merged_kind(seen: str, kind: str) -> str | None:
    """The kind of a column whose earlier blocks were ``seen`` and whose next is ``kind``; None when pandas
    would make it a mixed column."""
    if seen == "null" or seen == kind:
        return kind
    if kind == "null":
        return seen
    return "float" if {seen, kind} == {"int", "float"} else None


def _jsonl_type(kind: str):
    """The Arrow type of a block of one kind (pyarrow imported only once a JSON Lines file streams)."""
    import pyarrow as pa

    return {"null": pa.null, "int": pa.int64, "float": pa.float64, "bool": pa.bool_, "str": pa.string}[kind]()


_PANDAS_TYPES = {}


def _typed(column):
    """A column of text cells as pandas' C parser types it: integers, floats, booleans, else text (a column
    with no value at all is Int64, as pandas makes it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not _PANDAS_TYPES:
        _PANDAS_TYPES.update({pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype(),
                              pa.bool_(): pd.BooleanDtype(), pa.string(): pd.StringDtype()})
    if column.null_count == len(column):
        return pa.nulls(len(column), pa.int64())
    def number(kind):
        # Arrow's casts take neither the spaces around a number nor a leading plus sign; pandas does.
        return pc.cast(pc.replace_substring_regex(pc.utf8_trim(column, " \t"), r"^\+", ""), kind)

    if pc.all(pc.match_substring_regex(column, _INTEGER)).as_py():
        try:
            return number(pa.int64())
        except pa.ArrowInvalid:
            return _text(column)  # beyond int64: pandas keeps the digits as text
    if pc.all(pc.match_substring_regex(column, _FLOAT)).as_py():
        return number(pa.float64())
    if pc.all(pc.is_in(column, value_set=pa.array(_BOOLEANS, pa.large_string()))).as_py():
        return pc.equal(pc.utf8_lower(column), "true")
    return _text(column)


def _text(column):
    """A text column as pandas takes it: Arrow ``string`` (older pandas refuse ``large_string``; 16 MB blocks
    keep every chunk far below its 2 GB), into pandas' default string dtype as the whole-file read's."""
    import pyarrow as pa

    return column.cast(pa.string())


# The delimiter is guessed from this many characters (cut at a line end) and at most this many records.
SNIFF_CHARS = 4096
SNIFF_RECORDS = 50
_DELIMITERS = ",\t;|"


def _sniff_delimiter(text: str, name: str) -> str:
    """The delimiter that splits the first records into the same number of fields most consistently.

    Each candidate is tried with the csv module's reader, which is linear in the sample: csv.Sniffer's quote
    pattern is not (60 kB of ,"a took 11 s, and fuzzing found 4.6 kB that took 11 s)."""
    if Path(name).suffix.lower() in (".tsv", ".tab"):
        return "\t"
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and sample.rfind("\n") > 0:
        sample = sample[: sample.rfind("\n")]
    best, best_score = ",", (0.0, 0, 0)
    for order, delimiter in enumerate(_DELIMITERS):
        try:
            records = itertools.islice(csv.reader(io.StringIO(sample), delimiter=delimiter), SNIFF_RECORDS)
            widths = [len(record) for record in records if record]
        except csv.Error:
            continue
        if not widths:
            continue
        width, times = Counter(widths).most_common(1)[0]
        # Consistency first (a comma inside an abstract does not make a TSV comma-separated), then the
        # number of fields, then the order above.
        score = (times / len(widths), width, -order)
        if width > 1 and score > best_score:
            best, best_score = delimiter, score
    return best


def _read_delimited(
    text: str, name: str, *, notes: list[str], skipped: list[int], max_columns: int
) -> pd.DataFrame:
    delimiter = _sniff_delimiter(text, name)
    if delimiter != ",":
        named = _DELIMITER_NAMES.get(delimiter, repr(delimiter))
        notes.append(f"Columns are separated by {named}.")
    header = _header(text, delimiter)
    # Rows wider than the header go to the tolerant reader, which folds their extra fields into the last column.
    check_columns(len(header), name, max_columns)
    repeated = _repeated_names(header)
    if repeated:
        notes.append(f"Renamed repeated column name(s): {', '.join(repeated)} (the second is now "
                     f"{repeated[0]}.1, and so on).")
    try:
        # A row with more fields than the header makes pandas either shift the first column into
        # the index or (with index_col=False) drop the extra fields with only a ParserWarning: both
        # lose data silently, so the warning is an error here and such files go to the tolerant
        # reader.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                io.StringIO(text), sep=delimiter, index_col=False, dtype_backend="numpy_nullable"
            )
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{name}: the file has no columns or rows.") from exc
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as exc:
        log.info("C parser failed on %s (%s); retrying line by line", name, exc)
    return _read_delimited_tolerant(text, name, delimiter, notes=notes, skipped=skipped)


def _header(text: str, delimiter: str) -> list[str]:
    """The fields of the first record (the csv module reads that record only)."""
    try:
        return next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error:
        return []


def _repeated_names(header: list[str]) -> list[str]:
    """Header names given to more than one column (pandas and the tolerant reader number them)."""
    counts = Counter(h.strip() for h in header if h.strip())
    return [n for n, count in counts.items() if count > 1]


_DELIMITER_NAMES = {"\t": "tabs", ";": "semicolons", "|": "pipes"}


def _read_delimited_tolerant(
    text: str, name: str, delimiter: str, *, notes: list[str], skipped: list[int]
) -> pd.DataFrame:
    """Parse with the csv module, keeping every row and reporting the lines that needed repair."""
    # newline="" splits on \n, \r\n and \r only, as the csv module does (not on U+2028 and such).
    lines = list(io.StringIO(text, newline=""))
    # The csv module refuses fields over 128 kB by default; the upload cap already bounds them.
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    records, unclosed = _parse_records(lines, delimiter, skipped=skipped)
    if not records:
        raise InputError(f"{name}: the file has no header row.")
    (_, header), body = records[0], records[1:]
    width = len(header)
    long_lines: list[int] = []
    rows: list[list[str]] = []
    for line_no, row in body:
        if len(row) > width:
            overflow = row[width - 1 :]
            if any(field.strip() for field in row[width:]):
                # Most often an unquoted delimiter inside the last (free-text) field: keep it there.
                long_lines.append(line_no)
                row = row[: width - 1] + [delimiter.join(overflow)]
            else:
                row = row[:width]
        rows.append(row + [""] * (width - len(row)))
    if unclosed:
        notes.append(
            f"A quote is opened and never closed on line {shown_lines(unclosed)}: the quote was read "
            "as a plain character so the lines after it stay separate rows. Check those rows."
        )
    if long_lines:
        notes.append(
            f"{len(long_lines):,} line(s) have more fields than the header "
            f"(line {shown_lines(long_lines)}): the extra fields were joined into the last column "
            f"'{header[-1]}'. Quote fields that contain the delimiter to avoid this."
        )
    if skipped:
        notes.append(
            f"Skipped {len(skipped):,} unreadable line(s) (line {shown_lines(skipped)}). "
            "Fix them in the file to include them."
        )
    if not rows:
        raise InputError(f"{name}: no row could be read. Check the delimiter and the quoting.")
    frame = pd.DataFrame(rows, columns=_dedupe(header))
    frame = frame.replace("", pd.NA)
    return frame.apply(_infer_column)


def _parse_records(
    lines: list[str], delimiter: str, *, skipped: list[int]
) -> tuple[list[tuple[int, list[str]]], list[int]]:
    """(line number, fields) of each non-blank record, and the lines with an unclosed quote."""
    records: list[tuple[int, list[str]]] = []
    unclosed: list[int] = []
    start = 0
    while start < len(lines):
        consumed = _CountingLines(lines, start)
        reader = csv.reader(consumed, delimiter=delimiter)
        while True:
            first = consumed.position
            try:
                row = next(reader)
            except StopIteration:
                start = len(lines)
                break
            except csv.Error:
                skipped.append(first + 1)
                continue
            span = "".join(lines[first : consumed.position])
            at_end = consumed.position == len(lines)
            if at_end and consumed.position - first > 1 and span.count('"') % 2:
                # A quote left open swallowed every later line: read its line with quotes as plain
                # text and start again on the next line.
                unclosed.append(first + 1)
                plain = next(
                    csv.reader([lines[first]], delimiter=delimiter, quoting=csv.QUOTE_NONE), []
                )
                if plain:
                    records.append((first + 1, plain))
                start = first + 1
                break
            if row:
                records.append((first + 1, row))
    return records, unclosed


class _CountingLines:
    """An iterator over ``lines[start:]`` that knows how many lines the csv reader has taken."""

    def __init__(self, lines: list[str], start: int):
        self.lines = lines
        self.position = start

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.position >= len(self.lines):
            raise StopIteration
        self.position += 1
        return self.lines[self.position - 1]


def _infer_column(column: pd.Series) -> pd.Series:
    converted = pd.to_numeric(column, errors="coerce")
    if converted.notna().sum() == column.notna().sum() and column.notna().any():
        return converted
    return column.astype("string")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def _json_loads(text: str):
    """json.loads, except that half a UTF-16 pair escaped alone ("\\ud800"), which no UTF-8 text (nor a
    saved map) can hold, is read as U+FFFD."""
    value = json.loads(text, parse_int=_json_int)
    if _SURROGATE_ESCAPE.search(text):  # rare: only then the value is written out and read once more
        value = json.loads(_SURROGATES.sub("\ufffd", json.dumps(value, ensure_ascii=False)), parse_int=_json_int)
    return value


def _json_int(digits: str) -> int | str:
    """A JSON integer, or its digits as text past 300 of them: no float can hold it, int() refuses past 4,300
    digits, and pandas 2.1 raised OverflowError building a column of one."""
    return int(digits) if len(digits) <= 300 else digits


def _read_json(text: str, name: str, *, max_columns: int) -> pd.DataFrame:
    try:
        payload = _json_loads(text)
    except RecursionError as exc:
        raise InputError(f"{name}: the JSON is nested too deeply to be a table. Use a list of records such "
                         'as [{"title": "...", "abstract": "..."}].') from exc
    except json.JSONDecodeError as exc:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) > 1 and all(ln.lstrip().startswith("{") for ln in lines[:5]):
            raise InputError(
                f"{name}: this looks like JSON Lines (one object per line). Rename it to .jsonl."
            ) from exc
        raise InputError(
            f"{name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from exc
    if isinstance(payload, dict):
        for key in ("data", "records", "rows", "items"):
            if isinstance(payload.get(key), list):
                payload = payload[key]
                break
    if isinstance(payload, list):
        if not payload:
            raise InputError(f"{name}: the JSON list is empty.")
        if not all(isinstance(item, dict) for item in payload):
            raise InputError(
                f"{name}: the JSON is a list but not of records. Use a list of objects such as "
                '[{"title": "...", "abstract": "..."}].'
            )
        check_columns(_key_count(payload), name, max_columns)
        return pd.json_normalize(payload, max_level=0)
    if isinstance(payload, dict) and payload and all(
        isinstance(v, (list, dict)) for v in payload.values()
    ):
        check_columns(len(payload), name, max_columns)
        try:
            return pd.DataFrame(payload)
        except ValueError as exc:
            raise InputError(f"{name}: the JSON columns have different lengths ({exc}).") from exc
    raise InputError(
        f"{name}: the JSON is neither a list of records nor an object of columns. Use "
        '[{"title": ...}, ...] or {"title": [...], "abstract": [...]}.'
    )


def _read_jsonl(
    text: str, name: str, *, notes: list[str], skipped: list[int], max_columns: int
) -> pd.DataFrame:
    records = [record for record, _ in _jsonl_records(text.splitlines(), skipped)]
    _note_skipped(skipped, notes)
    if not records:
        raise InputError(f"{name}: no line is a JSON object. Each line must be one {{...}} record.")
    check_columns(_key_count(records), name, max_columns)
    return pd.json_normalize(records, max_level=0)


def _jsonl_records(lines: Iterable[str], skipped: list[int]) -> Iterator[tuple[dict, int]]:
    """Each line's JSON object with the line's length, blank lines passed over; the numbers of the lines
    that are no JSON object go in ``skipped``."""
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = _json_loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested too deep
            skipped.append(line_no)
            continue
        if not isinstance(item, dict):
            skipped.append(line_no)
            continue
        yield item, len(line)


def _note_skipped(skipped: list[int], notes: list[str]) -> None:
    if skipped:
        notes.append(
            f"Skipped {len(skipped):,} line(s) that are not JSON objects (line {shown_lines(skipped)})."
        )


def _key_count(records: list[dict]) -> int:
    """How many columns the records make: the keys they hold, each counted once."""
    keys: set = set()
    for record in records:
        keys.update(record)
    return len(keys)


def _read_binary(reader, name: str, kind: str) -> pd.DataFrame:
    try:
        return reader()
    except InputError:
        raise
    except Exception as exc:  # pyarrow and openpyxl raise many unrelated types
        raise InputError(
            f"{name}: cannot read this {kind} file ({type(exc).__name__}: {exc})."
        ) from exc


# Lists inside lists beyond this depth are no table's: refused with one line on every pyarrow (newer ones stop
# at 64 levels themselves, with their own words; older ones read any depth).
MAX_PARQUET_DEPTH = 32


def _read_parquet(data: bytes | Path, name: str, max_columns: int) -> pd.DataFrame:
    import pyarrow.parquet as pq

    # A path is read by pyarrow itself (its strings straight into Arrow), never held as bytes first.
    source = io.BytesIO(data) if isinstance(data, bytes) else data

    _refuse_pickled_extension_type()
    deep = InputError(f"{name}: a column is nested more than {MAX_PARQUET_DEPTH} levels deep, which no table "
                      "column is. Write the values flat (a list of numbers at most).")
    try:
        schema = pq.read_schema(source)
    except OSError as exc:
        if "too deeply nested" in str(exc):
            raise deep from exc
        raise
    check_columns(len(schema.names), name, max_columns)
    if any(_depth(field.type) > MAX_PARQUET_DEPTH for field in schema):
        raise deep
    # Read a column chunk as its pages are decoded, not the whole row group's bytes first: a million abstracts'
    # 831 MB file peaked ~700 MB higher with pyarrow's pre-buffering.
    return pd.read_parquet(source, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)


def release_arrow_memory() -> None:
    """Give the pages Arrow's allocator keeps after a big read back to the system: it holds them for Arrow's
    next allocation, while the vectors and the layout that follow are numpy's (300k rows: 1,122 → 579 MB)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _depth(arrow_type) -> int:
    """How many levels of lists and structs an Arrow type holds (0 for a plain value)."""
    children = [arrow_type.field(i).type for i in range(arrow_type.num_fields)] if arrow_type.num_fields else []
    return 1 + max(map(_depth, children)) if children else 0


_PICKLED_TYPE = "arrow.py_extension_type"


def _refuse_pickled_extension_type() -> None:
    """Have pyarrow refuse a column typed arrow.py_extension_type, whatever its version: pyarrow < 14.0.1
    rebuilt that type by unpickling what the file holds, so a Parquet upload could run code
    (CVE-2023-47248). Its registration is replaced by one that refuses, before every read in case it was
    replaced back (pyarrow 14.0.1 to 20 unregister the name at exit, so it must stay registered)."""
    import pyarrow as pa

    try:
        pa.unregister_extension_type(_PICKLED_TYPE)
    except KeyError:  # pyarrow's ArrowKeyError: not registered (pyarrow 21 and later have no such type)
        pass
    pa.register_extension_type(_refusing_type())


@lru_cache(maxsize=1)
def _refusing_type():
    import pyarrow as pa

    class RefusedPickledType(pa.ExtensionType):
        def __init__(self):
            super().__init__(pa.null(), _PICKLED_TYPE)

        def __arrow_ext_serialize__(self) -> bytes:
            return b""

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type, serialized):
            raise ValueError(f"a column of type {_PICKLED_TYPE} holds a pickled Python object, which could run "
                             "code: it is never read")

    return RefusedPickledType()


def _read_xlsx(
    data: bytes, name: str, *, sheet: str | int | None, notes: list[str], max_rows: int, max_columns: int
) -> pd.DataFrame:
    from openpyxl import load_workbook

    book = _read_binary(lambda: load_workbook(io.BytesIO(data), read_only=True, data_only=True), name, "Excel")
    try:
        names = [ws.title for ws in book.worksheets]
        if not names:
            raise InputError(f"{name}: the workbook has no sheets.")
        listed = ", ".join(names)
        if isinstance(sheet, int) and not -len(names) <= sheet < len(names):
            raise InputError(f"{name}: no sheet number {sheet}. Sheets: {listed}.")
        chosen = names[0] if sheet is None else (names[sheet] if isinstance(sheet, int) else sheet)
        if chosen not in names:
            raise InputError(f"{name}: no sheet named '{chosen}'. Sheets: {listed}.")
        if len(names) > 1:
            notes.append(f"Read sheet '{chosen}'; the workbook has {len(names)} sheets: {listed}.")
        grid = _read_binary(lambda: _sheet_grid(book[chosen], name, max_rows, max_columns), name, "Excel")
    finally:
        book.close()
    return _sheet_table(grid, _merged_ranges(data, chosen), notes=notes)


# Rows above the header (titles, blank rows) that the streaming row check allows beyond the row cap; the
# exact count is checked once the header is known.
_ROWS_ABOVE_HEADER = 100


def _sheet_grid(sheet, name: str, max_rows: int, max_columns: int) -> pd.DataFrame:
    """One sheet's cells as a grid (row 1, column A at [0, 0]) of the rows up to the last filled one and the
    columns that hold a cell only: memory follows the cells the sheet holds, not its used range (one cell in
    column XFD on every row makes that 16,384 columns wide; pandas built the whole grid, 26 s and 983 MB
    for 15 kB). The row cap is checked while reading, the column cap before the grid is built."""
    from openpyxl.worksheet._reader import WorkSheetParser
    from pandas.io.parsers import TextParser

    book = sheet.parent
    # openpyxl's read-only rows are padded to the used range; its parser (what read-only mode reads with)
    # yields only the cells the XML holds.
    filled: dict[int, dict[int, object]] = {}
    columns: set[int] = set()
    with sheet._get_source() as source:
        parser = WorkSheetParser(source, sheet._shared_strings, data_only=True, epoch=book.epoch,
                                 date_formats=book._date_formats,
                                 timedelta_formats=getattr(book, "_timedelta_formats", set()))
        for row, cells in parser.parse():
            values = {cell["column"]: _excel_value(cell) for cell in cells
                      if cell["value"] is not None and cell["value"] != "" and cell["data_type"] != "e"}
            if not values:
                continue
            columns.update(values)
            if len(columns) <= max_columns:  # past the cap, only the columns are counted, for the message
                filled[row] = values
            if len(filled) > max_rows + _ROWS_ABOVE_HEADER:
                raise InputError(f"{name}: sheet '{sheet.title}' has more than {max_rows:,} rows, the limit. "
                                 "Split the file, or raise the limit (EXPLORER_MAX_ROWS).")
    check_columns(len(columns), name, max_columns)
    if not filled:
        return pd.DataFrame()
    used = sorted(columns)
    # pandas' own parser of sheet cells, so numbers, dates and markers such as "N/A" read as read_excel reads them.
    grid = TextParser([[values.get(c, "") for c in used] for values in filled.values()], header=None,
                      skip_blank_lines=False).read()
    grid.index = [row - 1 for row in filled]
    grid.columns = [c - 1 for c in used]
    return grid.reindex(range(max(filled)))


def _excel_value(cell: dict):
    """A cell's value as pandas' openpyxl reader gives it: whole numbers as int."""
    value = cell["value"]
    if cell["data_type"] == "n" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _sheet_table(grid: pd.DataFrame, merged: list[str], *, notes: list[str]) -> pd.DataFrame:
    """A sheet's cells (row 1, column A at [0, 0]) as a table: a cell merged down several rows gives its
    value to each of them, and the header is the first non-blank row that is not a title merged across
    the table, so blank rows and columns and such a title are not taken for it."""
    from openpyxl.utils.cell import range_boundaries

    grid = grid.copy()
    spread, banners = [], set()
    for ref in merged:
        try:
            first_col, first_row, last_col, last_row = range_boundaries(ref)
        except (TypeError, ValueError):
            continue
        if last_col > first_col:
            banners.add(first_row - 1)
        # The grid's columns are the sheet's column numbers from 0, only those that hold a cell.
        if last_row > first_row and first_row <= len(grid) and first_col - 1 in grid.columns:
            column = grid.columns.get_loc(first_col - 1)
            grid.iloc[first_row:last_row, column] = grid.iat[first_row - 1, column]
            spread.append(ref)
    if spread:
        notes.append(f"{len(spread):,} merged cell(s) ({', '.join(spread[:5])}{' …' if len(spread) > 5 else ''}) "
                     "span several rows: their value was given to each row.")
    grid = grid.loc[:, grid.notna().any()]
    filled = grid.notna().sum(axis=1).tolist()
    header_at = next((i for i, n in enumerate(filled) if n > 1 or (n == 1 and i not in banners)), None)
    if header_at is None:
        return pd.DataFrame()
    titles = [str(v) for v in grid.iloc[:header_at].to_numpy().ravel() if not pd.isna(v)]
    if titles:
        notes.append(f"Took sheet row {header_at + 1} as the header; the title above it was left out: "
                     f"{'; '.join(titles)[:200]}.")
    header = [f"Unnamed: {i}" if pd.isna(v) else v for i, v in enumerate(grid.iloc[header_at])]
    frame = grid.iloc[header_at + 1 :].reset_index(drop=True)
    frame.columns = header
    return frame.infer_objects()


_SPREADSHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELATIONSHIP_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def _merged_ranges(data: bytes, sheet: str) -> list[str]:
    """The merged-cell ranges (such as "C2:C3") of one sheet, read from the workbook's XML: pandas
    reads sheets in openpyxl's read-only mode, which does not report them."""
    from xml.etree import ElementTree

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
            links = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
            link = next(s.get(f"{_RELATIONSHIP_NS}id") for s in workbook.iter(f"{_SPREADSHEET_NS}sheet")
                        if s.get("name") == sheet)
            target = next(r.get("Target") for r in links if r.get("Id") == link)
            path = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            ranges = []
            with book.open(path) as xml:
                for _, element in ElementTree.iterparse(xml):
                    if element.tag == f"{_SPREADSHEET_NS}mergeCell":
                        ranges.append(element.get("ref", ""))
                    elif element.tag == f"{_SPREADSHEET_NS}row":
                        element.clear()  # keep memory flat on a large sheet
            return ranges
    except Exception as exc:  # merged cells are a refinement: never fail a sheet pandas could read
        log.info("could not read the merged cells of sheet %s (%s)", sheet, exc)
        return []


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for raw in names:
        base = str(raw).strip() or "column"
        candidate = base
        while candidate in seen:
            seen[base] += 1
            candidate = f"{base}.{seen[base]}"
        seen.setdefault(candidate, 0)
        seen.setdefault(base, 0)
        out.append(candidate)
    return out


def tidy_columns(frame: pd.DataFrame, *, notes: list[str]) -> pd.DataFrame:
    """String column names, unique, none clashing with the columns a saved map adds."""
    names = [
        f"column_{i + 1}" if str(c).startswith("Unnamed: ") else str(c)
        for i, c in enumerate(frame.columns)
    ]
    renamed = []
    for i, col in enumerate(names):
        if col in RESERVED_COLUMNS:
            names[i] = f"{col}_original"
            renamed.append(col)
    if renamed:
        notes.append(
            f"Renamed column(s) {', '.join(renamed)} to *_original: the map uses those names "
            "itself."
        )
    frame = frame.copy()
    frame.columns = _dedupe(names)
    for col in frame.columns:
        if frame[col].dtype == object:
            values = frame[col].map(_cell_to_scalar)
            # A saved map is Parquet, one type per column: a column mixing numbers and text (common
            # in spreadsheets and JSON) is kept as text rather than failing at the save.
            if pd.api.types.infer_dtype(values, skipna=True) in ("mixed", "mixed-integer"):
                values = values.map(lambda v: None if pd.isna(v) else str(v))
            frame[col] = values
    return frame


def _cell_to_scalar(value):
    """Nested values (lists, dicts) become JSON text so every column can be shown and saved."""
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    if hasattr(value, "tolist") and not isinstance(value, str):
        return json.dumps(value.tolist(), ensure_ascii=False, default=_json_default)
    return value


def _json_default(value):
    # Parquet's lists inside structs arrive as numpy arrays: numbers stay numbers, not their repr.
    return value.tolist() if hasattr(value, "tolist") else str(value)
