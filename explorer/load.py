"""Step 1, load: read a table from CSV/TSV, JSON, JSONL, Parquet or XLSX into a DataFrame."""

from __future__ import annotations

import csv
import io
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from .errors import InputError
from .hashing import bytes_hash

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
}
# Columns the saved map adds; a user column with one of these names is renamed, never overwritten.
RESERVED_COLUMNS = ("row_id", "x", "y", "embedded")
DEFAULT_MAX_BYTES = 500 * 1024 * 1024
DEFAULT_MAX_ROWS = 2_000_000


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


def load_table(
    source: str | Path | bytes | BinaryIO,
    *,
    name: str | None = None,
    sheet: str | int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> LoadedTable:
    """Read a table; ``name`` gives the file name (and so the format) when ``source`` is bytes."""
    data, source_name = _read_source(source, name=name, max_bytes=max_bytes)
    fmt = detect_format(source_name, data)
    notes: list[str] = []
    skipped: list[int] = []
    encoding: str | None = None
    if not data.strip():
        raise InputError(f"{source_name}: the file is empty. Choose a file with a header and rows.")
    if fmt == "csv":
        text, encoding = decode_text(data, notes=notes)
        frame = _read_delimited(text, source_name, notes=notes, skipped=skipped)
    elif fmt == "json":
        text, encoding = decode_text(data, notes=notes)
        frame = _read_json(text, source_name)
    elif fmt == "jsonl":
        text, encoding = decode_text(data, notes=notes)
        frame = _read_jsonl(text, source_name, notes=notes, skipped=skipped)
    elif fmt == "parquet":
        frame = _read_binary(lambda: pd.read_parquet(io.BytesIO(data)), source_name, "Parquet")
    else:
        frame = _read_xlsx(data, source_name, sheet=sheet, notes=notes)
    frame = tidy_columns(frame, notes=notes)
    if frame.shape[1] == 0:
        raise InputError(
            f"{source_name}: no columns were found. Check that the file has a header row."
        )
    if len(frame) == 0:
        raise InputError(f"{source_name}: the file has a header but no rows.")
    if len(frame) > max_rows:
        raise InputError(
            f"{source_name}: {len(frame):,} rows is more than the limit of {max_rows:,}. "
            "Split the file or raise the row limit."
        )
    return LoadedTable(
        frame=frame.reset_index(drop=True),
        source_name=source_name,
        format=fmt,
        content_hash=bytes_hash(data),
        encoding=encoding,
        notes=notes,
        skipped_lines=skipped,
    )


def detect_format(name: str, data: bytes) -> str:
    """The table format from the file's magic bytes, else its extension."""
    if data[:4] == b"PAR1":
        return "parquet"
    if data[:4] == b"PK\x03\x04" and Path(name).suffix.lower() in (".xlsx", ""):
        return "xlsx"
    suffix = Path(name).suffix.lower()
    if suffix in TABLE_FORMATS:
        fmt = TABLE_FORMATS[suffix]
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


def decode_text(data: bytes, *, notes: list[str]) -> tuple[str, str]:
    """Decode bytes as UTF-8 (with or without BOM) or UTF-16, falling back to cp1252/latin-1."""
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
    for fallback in ("cp1252", "latin-1"):
        try:
            text = data.decode(fallback)
        except UnicodeDecodeError:
            continue
        line = data[:bad_at].count(b"\n") + 1
        notes.append(
            f"The file is not valid UTF-8 (first bad byte on line {line}); it was read as "
            f"{fallback}. If accents look wrong, save the file as UTF-8 and upload it again."
        )
        return _strip_nul(text, notes), fallback
    raise AssertionError("latin-1 decodes every byte string")


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


def _too_big(name: str, size: int, limit: int) -> str:
    return (
        f"{name}: the file is {size / 1e6:,.1f} MB, more than the limit of {limit / 1e6:,.0f} MB. "
        "Upload a smaller file or raise the limit."
    )


def _sniff_delimiter(text: str, name: str) -> str:
    if Path(name).suffix.lower() in (".tsv", ".tab"):
        return "\t"
    sample = "\n".join(text[:65536].splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in ",\t;|"}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _read_delimited(text: str, name: str, *, notes: list[str], skipped: list[int]) -> pd.DataFrame:
    delimiter = _sniff_delimiter(text, name)
    if delimiter != ",":
        named = _DELIMITER_NAMES.get(delimiter, repr(delimiter))
        notes.append(f"Columns are separated by {named}.")
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


_DELIMITER_NAMES = {"\t": "tabs", ";": "semicolons", "|": "pipes"}


def _read_delimited_tolerant(
    text: str, name: str, delimiter: str, *, notes: list[str], skipped: list[int]
) -> pd.DataFrame:
    """Parse with the csv module, keeping every row and reporting the lines that needed repair."""
    # newline="" splits on \n, \r\n and \r only, as the csv module does (not on U+2028 and such).
    lines = list(io.StringIO(text, newline=""))
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
            f"A quote is opened and never closed on line {_shown(unclosed)}: the quote was read "
            "as a plain character so the lines after it stay separate rows. Check those rows."
        )
    if long_lines:
        notes.append(
            f"{len(long_lines):,} line(s) have more fields than the header "
            f"(line {_shown(long_lines)}): the extra fields were joined into the last column "
            f"'{header[-1]}'. Quote fields that contain the delimiter to avoid this."
        )
    if skipped:
        notes.append(
            f"Skipped {len(skipped):,} unreadable line(s) (line {_shown(skipped)}). "
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


def _shown(line_numbers: list[int]) -> str:
    return ", ".join(str(n) for n in line_numbers[:10]) + (" …" if len(line_numbers) > 10 else "")


def _infer_column(column: pd.Series) -> pd.Series:
    converted = pd.to_numeric(column, errors="coerce")
    if converted.notna().sum() == column.notna().sum() and column.notna().any():
        return converted
    return column.astype("string")


def _read_json(text: str, name: str) -> pd.DataFrame:
    try:
        payload = json.loads(text)
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
        return pd.json_normalize(payload, max_level=0)
    if isinstance(payload, dict) and payload and all(
        isinstance(v, (list, dict)) for v in payload.values()
    ):
        try:
            return pd.DataFrame(payload)
        except ValueError as exc:
            raise InputError(f"{name}: the JSON columns have different lengths ({exc}).") from exc
    raise InputError(
        f"{name}: the JSON is neither a list of records nor an object of columns. Use "
        '[{"title": ...}, ...] or {"title": [...], "abstract": [...]}.'
    )


def _read_jsonl(text: str, name: str, *, notes: list[str], skipped: list[int]) -> pd.DataFrame:
    records = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            skipped.append(line_no)
            continue
        if not isinstance(item, dict):
            skipped.append(line_no)
            continue
        records.append(item)
    if skipped:
        notes.append(
            f"Skipped {len(skipped):,} line(s) that are not JSON objects (line {_shown(skipped)})."
        )
    if not records:
        raise InputError(f"{name}: no line is a JSON object. Each line must be one {{...}} record.")
    return pd.json_normalize(records, max_level=0)


def _read_binary(reader, name: str, kind: str) -> pd.DataFrame:
    try:
        return reader()
    except Exception as exc:  # pyarrow and openpyxl raise many unrelated types
        raise InputError(
            f"{name}: cannot read this {kind} file ({type(exc).__name__}: {exc})."
        ) from exc


def _read_xlsx(
    data: bytes, name: str, *, sheet: str | int | None, notes: list[str]
) -> pd.DataFrame:
    sheets = _read_binary(
        lambda: pd.read_excel(io.BytesIO(data), sheet_name=None, engine="openpyxl"), name, "Excel"
    )
    if not sheets:
        raise InputError(f"{name}: the workbook has no sheets.")
    names = list(sheets)
    chosen = names[0] if sheet is None else (names[sheet] if isinstance(sheet, int) else sheet)
    listed = ", ".join(map(str, names))
    if chosen not in sheets:
        raise InputError(f"{name}: no sheet named '{chosen}'. Sheets: {listed}.")
    if len(names) > 1:
        notes.append(f"Read sheet '{chosen}'; the workbook has {len(names)} sheets: {listed}.")
    return sheets[chosen]


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
        return json.dumps(value, ensure_ascii=False, default=str)
    if hasattr(value, "tolist") and not isinstance(value, str):
        return json.dumps(value.tolist(), ensure_ascii=False, default=str)
    return value
