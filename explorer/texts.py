"""Step 1b, texts: pick the text columns of a table and combine them into the text that is embedded."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError
from .limits import Limits

# Characters of a user's text never meant to be shown as they are: controls (an escape sequence can move a
# terminal's cursor; a newline or a tab can fake a line or a column), bidi controls (U+202E shows what follows
# reversed, so "txt.exe" reads as "exe.txt") and line separators. The CLI prints them escaped, the app as spaces.
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")

# Column names that hold prose even when they are short (a title beside a long abstract).
TEXT_COLUMN_NAMES = {
    "title", "name", "headline", "subject", "abstract", "text", "body", "content",
    "description", "summary", "sentence", "question", "answer", "comment", "review", "caption",
}
DEFAULT_SEPARATOR = ". "
# A column that names each row in a few words (a paper's title): what a refinement embeds first. Named so, or
# the shortest of the text's columns; its median at most this long, and the rest of the text at least twice it.
TITLE_NAMES = ("title", "headline", "name", "subject")
TITLE_MAX_CHARS = 200
TITLE_SAMPLE_ROWS = 2_000
# A template's own text is copied into every row: 1 MB of it on 100,000 rows would be 100 GB of texts.
MAX_TEMPLATE_CHARS = 2_000
# Texts are composed (and read back out of Arrow) this many rows at a time: the Python strings of one
# batch at most, ~50 MB of abstracts, never those of a million rows (1.1 GB, plus the cells they come from).
TEXT_BATCH_ROWS = 10_000


class TextColumn(Sequence[str]):
    """Texts in Arrow, in chunks: a Python str exists only for the rows being read.

    A column's chunks are held (Arrow arrays), or made again from the table each time they are read
    (``TextColumn.composed``): the table already holds every cell, and a million composed abstracts
    would be 1.4 GB more. A composed column read row by row out of order is composed once and held from
    then on, since each random read would compose a whole chunk."""

    def __init__(self, array):
        self._array = array  # a pyarrow ChunkedArray of large_string, or None while composed on reading
        self._compose: Callable[[int], Any] | None = None
        self._starts = np.cumsum([0, *(len(c) for c in array.chunks)])
        self._last: tuple[int, Any] | None = None  # the chunk composed last, for reads that go in order

    @classmethod
    def composed(cls, lengths: Sequence[int], compose: Callable[[int], Any]) -> TextColumn:
        """A column whose chunk i (``lengths[i]`` texts) is ``compose(i)``, an Arrow array made when read."""
        column = cls.__new__(cls)
        column._array, column._compose, column._last = None, compose, None
        column._starts = np.cumsum([0, *lengths])
        return column

    @property
    def array(self):
        """Every text as one Arrow ChunkedArray (a composed column is held from now on)."""
        if self._array is None:
            import pyarrow as pa

            self._array = pa.chunked_array([self._compose(i) for i in range(len(self._starts) - 1)],
                                           type=pa.large_string())
            self._compose, self._last = None, None
        return self._array

    def _chunk(self, i: int):
        # Locals, not attributes, between the test and the use: another thread may read another chunk meanwhile.
        compose, last = self._compose, self._last
        if compose is None:
            return self._array.chunk(i)
        if last is None or last[0] != i:
            last = (i, compose(i))
            self._last = last
        return last[1]

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index):
        if not isinstance(index, slice):
            return self.array[int(index)].as_py()
        start, stop, step = index.indices(len(self))
        if step != 1:
            return [self[i] for i in range(start, stop, step)]
        texts: list[str] = []
        first = max(int(np.searchsorted(self._starts, start, side="right")) - 1, 0)
        for i in range(first, len(self._starts) - 1):
            begin, end = self._starts[i], self._starts[i + 1]
            if begin >= stop:
                break
            if end > start:
                texts += self._chunk(i)[max(start - begin, 0) : min(stop, end) - begin].to_pylist()
        return texts

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self._starts) - 1):
            chunk = self._chunk(i)
            for start in range(0, len(chunk), TEXT_BATCH_ROWS):
                yield from chunk[start : start + TEXT_BATCH_ROWS].to_pylist()

    def take(self, indices) -> TextColumn:
        """The texts at ``indices``, held in Arrow: each chunk is read once, whatever the order asked for."""
        import pyarrow as pa

        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < -len(self) or indices.max() >= len(self)):
            raise IndexError(f"text index out of range for {len(self):,} texts")
        indices = np.where(indices < 0, indices + len(self), indices)
        order = None if np.all(indices[:-1] <= indices[1:]) else np.argsort(indices, kind="stable")
        ordered = indices if order is None else indices[order]
        bounds = np.searchsorted(ordered, self._starts)
        parts = [self._chunk(i).take(pa.array(ordered[lo:hi] - self._starts[i]))
                 for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)) if hi > lo]
        taken = pa.chunked_array(parts, type=pa.large_string())
        if order is not None:
            taken = taken.take(pa.array(np.argsort(order)))  # back into the order asked for
        return TextColumn(taken)

    def filter(self, mask: np.ndarray) -> TextColumn:
        """The texts where ``mask`` is true, filtered as each chunk is read (no copy of the column)."""
        import pyarrow as pa

        mask = np.asarray(mask, dtype=bool)
        if len(mask) != len(self):
            raise ValueError(f"a mask of {len(mask):,} for {len(self):,} texts")
        if mask.all():
            return self
        masks = [mask[a:b] for a, b in zip(self._starts[:-1], self._starts[1:], strict=True)]
        return TextColumn.composed([int(m.sum()) for m in masks],
                                   lambda i: self._chunk(i).filter(pa.array(masks[i])))


def pick_texts(texts: Sequence[str], indices) -> Sequence[str]:
    """The texts at ``indices`` (in Arrow when they are, else a list)."""
    if isinstance(texts, TextColumn):
        return texts.take(indices)
    return [texts[i] for i in indices]


@dataclass
class TextSelection:
    """The text embedded for each row, and which rows have any."""

    texts: list[str] | TextColumn
    embedded: np.ndarray
    columns: list[str]
    template: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_embedded(self) -> int:
        """How many rows have non-empty text."""
        return int(self.embedded.sum())


def detect_text_columns(frame: pd.DataFrame, *, max_columns: int = 3) -> list[str]:
    """The columns that look like prose: the longest string column plus known text names."""
    stats = []
    for col in frame.columns:
        values = frame[col].dropna()
        if not isinstance(values.dtype, pd.StringDtype):
            # A string column holds only strings: asking each of them would make a Python object per row.
            values = values[values.map(lambda v: isinstance(v, str))]
        if values.empty:
            continue
        lengths = values.str.len()
        words = values.str.count(r"\s+") + 1
        stats.append((col, float(lengths.mean()), float(words.mean())))
    if not stats:
        return []
    prose = [s for s in stats if s[2] >= 3] or stats
    longest = max(prose, key=lambda s: s[1])[0]
    chosen = {longest}
    for col, _, mean_words in prose:
        if str(col).strip().lower() in TEXT_COLUMN_NAMES and mean_words >= 2:
            chosen.add(col)
    ordered = [c for c in frame.columns if c in chosen]
    return ordered[:max_columns]


def template_fields(template: str) -> list[str]:
    """The column names a template such as ``"{title}. {abstract}"`` refers to."""
    return [text for text, is_field in parse_template(template) if is_field]


# A template's parts: escaped braces, a field (anything between single braces), a stray brace, plain
# text. Linear: no part can match text another part already failed on more than once.
_TEMPLATE_PART = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|([{}])|[^{}]+")


def parse_template(template: str) -> list[tuple[str, bool]]:
    """The template as (text, is_field) parts in order; ``{{`` and ``}}`` are literal braces.

    Not str.format: a field is a column's exact name ("title.1" is a column, not an attribute), and no
    format spec runs (``{title:#>100000000}`` padded five rows to 611 MB)."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise InputError(
            f"The template is {len(template):,} characters long; at most {MAX_TEMPLATE_CHARS:,} are taken, as its "
            "text is repeated on every row. Use {column} placeholders for what differs from row to row."
        )
    parts: list[tuple[str, bool]] = []
    for match in _TEMPLATE_PART.finditer(template):
        text, field_name, stray = match.group(0), match.group(1), match.group(2)
        if stray is not None:
            raise InputError(f"The template '{template}' is malformed: a single '{stray}' (write "
                             f"'{stray * 2}' for a brace). Use {{column}} placeholders.")
        if field_name is not None:
            parts.append((field_name, True))
        else:
            parts.append((text[0] if text in ("{{", "}}") else text, False))
    return parts


def compose_texts(
    frame: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    template: str | None = None,
    separator: str = DEFAULT_SEPARATOR,
    max_chars: int | None = None,
    arrow: bool = False,
) -> TextSelection:
    """Build each row's text from ``columns`` (joined) or ``template``; empty rows are marked, not dropped.
    Texts longer than ``max_chars`` (default ``Limits.from_env().max_text_chars``) are cut for embedding.
    With ``arrow`` the texts come as a TextColumn composed from the frame's cells TEXT_BATCH_ROWS rows at a
    time, each time they are read: no text is held beside the table."""
    max_chars = Limits.from_env().max_text_chars if max_chars is None else max_chars
    notes: list[str] = []
    if template:
        parts = parse_template(template)
        names = [text for text, is_field in parts if is_field]
        if not names:
            raise InputError(f"The template '{template}' names no column. Use placeholders like {{title}}.")
        _check_fields(frame, names)
        columns = list(dict.fromkeys(names))

        def build(rows):
            return [_fill_template(parts, row) for row in rows]
    else:
        if columns is None:
            columns = detect_text_columns(frame)
            if not columns:
                raise InputError(
                    "No text column was found: every column holds numbers or is empty. "
                    "Choose a column with text, or upload a file with a text column."
                )
        if not columns:
            raise InputError("Choose at least one text column.")
        _check_columns(frame, columns)

        def build(rows):
            return [_join(row, separator) for row in rows]
    # The cells the texts are made of (a column set on the frame later changes no text made from them).
    cells = frame[columns]

    def compose(start: int) -> tuple[list[str], int]:
        """The texts of TEXT_BATCH_ROWS rows from ``start``, each cut as it is made, and how many were cut."""
        batch = build(_rows(cells.iloc[start : start + TEXT_BATCH_ROWS], columns))
        long = [i for i, text in enumerate(batch) if len(text) > max_chars]
        for i in long:
            batch[i] = batch[i][:max_chars]
        return batch, len(long)

    batches: list[list[str]] = []
    masks: list[np.ndarray] = []
    truncated = 0
    for start in range(0, len(frame), TEXT_BATCH_ROWS):
        batch, cut = compose(start)
        truncated += cut
        masks.append(np.fromiter((bool(t.strip()) for t in batch), dtype=bool, count=len(batch)))
        if not arrow:
            batches.append(batch)
    if truncated:
        notes.append(
            f"{truncated:,} row(s) have more than {max_chars:,} characters of text: only the first "
            f"{max_chars:,} are embedded; the table keeps the full text."
        )
    if arrow:
        import pyarrow as pa

        # Composed again from the cells whenever read: the batches made above are already freed.
        texts = TextColumn.composed([len(m) for m in masks], lambda i: pa.array(
            compose(i * TEXT_BATCH_ROWS)[0], type=pa.large_string()))
    else:
        texts = [t for batch in batches for t in batch]
    embedded = np.concatenate(masks) if masks else np.zeros(0, dtype=bool)
    empty = len(texts) - int(embedded.sum())
    if empty == len(texts):
        raise InputError(
            f"Every row's text is empty in column(s) {', '.join(columns)}. "
            "Choose other text columns."
        )
    if empty:
        notes.append(
            f"{empty:,} of {len(texts):,} row(s) have no text in {', '.join(columns)}: they stay in "
            "the table but are not embedded or drawn on the map."
        )
    return TextSelection(texts=texts, embedded=embedded, columns=list(columns), template=template, notes=notes)


def _check_fields(frame: pd.DataFrame, names: list[str]) -> None:
    """Every template field is a column; one with a format spec or conversion gets its own line."""
    for name in names:
        if name not in frame.columns and (base := re.split(r"[:!]", name, maxsplit=1)[0]) in frame.columns:
            raise InputError(
                f"The template field '{{{name}}}' is not a plain column name: templates take no format specs "
                f"or conversions. Write {{{base}}}."
            )
    _check_columns(frame, names)


def _check_columns(frame: pd.DataFrame, names: list[str]) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns[:30]))
        raise InputError(f"No column named {', '.join(map(repr, missing))}. Available columns: {available}.")


def _rows(frame: pd.DataFrame, columns: list[str]):
    # tolist, not Series.map: map on an Arrow string column is 14x slower (2.1 s against 0.15 s per 100k cells).
    cells = [[_cell_text(v) for v in frame[c].tolist()] for c in columns]
    return (dict(zip(columns, values, strict=True)) for values in zip(*cells, strict=True))


def _cell_text(value) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float) and np.isnan(value):
        return ""
    return str(value).strip()


def _join(row: dict[str, str], separator: str) -> str:
    return separator.join(v for v in row.values() if v)


def _fill_template(parts: list[tuple[str, bool]], row: dict[str, str]) -> str:
    if not any(row.values()):
        return ""
    return "".join(row[text] if is_field else text for text, is_field in parts).strip()


def title_column(points: pd.DataFrame, text_columns: Sequence[str]) -> str | None:
    """The column that names a row best: `title` or `name` if present, else the first text column."""
    for candidate in ("title", "Title", "name", "file"):
        if candidate in points.columns:
            return candidate
    return text_columns[0] if text_columns else None


def title_stage_column(frame: pd.DataFrame, columns: Sequence[str]) -> str | None:
    """The column of the map's text that names each row in a few words, when the text has more beside it
    (a title beside its abstract), else None: a title reads in a fraction of the time of the whole text."""
    columns = [c for c in dict.fromkeys(columns) if c in frame.columns]
    if len(columns) < 2:
        return None
    sample = frame[columns].head(TITLE_SAMPLE_ROWS)
    lengths = {c: float(sample[c].map(_cell_text).str.len().median()) for c in columns}
    named = [c for c in columns if str(c).strip().lower() in TITLE_NAMES]
    candidate = named[0] if named else min(columns, key=lengths.__getitem__)
    rest = sum(length for c, length in lengths.items() if c != candidate)
    return candidate if 0 < lengths[candidate] <= TITLE_MAX_CHARS and rest >= 2 * lengths[candidate] else None


def column_texts(frame: pd.DataFrame, column: str, *, max_chars: int) -> list[str]:
    """One column's cells as the texts to embed (empty for a missing value), cut at ``max_chars``."""
    return [_cell_text(v)[:max_chars] for v in frame[column].tolist()]


def mean_title_chars(frame: pd.DataFrame, columns: Sequence[str]) -> float | None:
    """The mean length of the titles a refinement reads first (title_stage_column), None without one;
    from the first rows, as the column's choice is (an estimate's input: a million rows need not be read)."""
    column = title_stage_column(frame, columns)
    if column is None:
        return None
    return float(frame[column].head(TITLE_SAMPLE_ROWS).map(_cell_text).str.len().mean())
