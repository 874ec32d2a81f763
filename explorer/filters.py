"""Filters of a map view (keyword, regular expression, categories) and row look-ups, free of any UI."""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import re2

from .errors import InputError
from .limits import Limits

# The user's pattern runs on RE2 (google-re2), whose automata take time linear in the text whatever the
# pattern: Python's re backtracks, and `(a+)+$` on one 27-character text held the server 4.8 s, doubling
# with each character, on every rerun of every session. A deadline alone (the regex package's timeout=)
# would spend itself on every rerun of such a pattern, which RE2 answers at once. RE2 refuses up front only
# what it cannot run in linear time (the message says what); _regex_mask's deadline stops the rare pattern
# that is linear but slow.
_UNSUPPORTED = ("back-references, look-ahead and look-behind, atomic groups, possessive quantifiers and "
                "repeats over 1,000 are left out so that no pattern can hold the server")
_TOO_LARGE = "it would take more memory than a filter may; use fewer or shorter repeats"
# Python's \w, \d and \s know every script; RE2's know ASCII only ("caf\w" would miss "café", "\w+" all of
# Russian): each becomes its Unicode class. \b stays RE2's, which counts ASCII letters only.
_CLASSES = {"w": r"[\p{L}\p{N}_]", "W": r"[^\p{L}\p{N}_]", "d": r"\p{Nd}", "D": r"\P{Nd}",
            "s": r"[\s\x{85}\p{Z}\x{1c}-\x{1f}]", "S": r"[^\s\x{85}\p{Z}\x{1c}-\x{1f}]", "Z": r"\z"}
_IN_CLASS = {"w": r"\p{L}\p{N}_", "d": r"\p{Nd}", "D": r"\P{Nd}", "s": r"\s\x{85}\p{Z}\x{1c}-\x{1f}"}
SHOWN_PATTERN_CHARS = 80
# RE2 parses some long patterns slowly (200,000 "\w" took 46 s to refuse); one of 1,000 takes < 0.2 s.
MAX_PATTERN_CHARS = 1_000
# A regular expression filter gives up after this long, plus the allowance per row: a plain pattern reads
# a million texts of 1 kB in about 2 s (5 s allowed).
FILTER_SECONDS = 1.5
FILTER_SECONDS_PER_ROW = 5e-6


def keyword_mask(texts: Sequence[str], pattern: str, *, regex: bool = False) -> np.ndarray:
    """Rows whose text contains ``pattern`` (case-insensitive substring, or a regular expression)."""
    if not pattern:
        return np.ones(len(texts), dtype=bool)
    # The filter reads what was embedded: each text up to the text limit (a map keeps its texts whole, and
    # one 5 MB cell would otherwise cost a hostile pattern minutes).
    limit = Limits.from_env().max_text_chars
    if regex:
        return _regex_mask(texts, compile_filter(pattern), limit, pattern)
    needle = pattern.casefold()
    return np.fromiter((needle in t[:limit].casefold() for t in texts), dtype=bool, count=len(texts))


def _regex_mask(texts: Sequence[str], compiled, limit: int, pattern: str) -> np.ndarray:
    # RE2 is linear in the text, but a pattern whose automaton outgrows RE2's memory runs on its slower
    # simulation: up to 0.9 s per 20,000 characters measured. The clock is read between rows, so no
    # pattern holds the server much past FILTER_SECONDS (and a little more per row on a big map).
    allowed = FILTER_SECONDS + FILTER_SECONDS_PER_ROW * len(texts)
    deadline = time.perf_counter() + allowed
    mask = np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        # RE2 reads UTF-8; "surrogatepass" keeps a text holding a lone surrogate searchable.
        mask[i] = compiled.search(text[:limit].encode("utf-8", "surrogatepass")) is not None
        if time.perf_counter() > deadline and i + 1 < len(texts):
            raise InputError(
                f"The pattern '{_shown(pattern)}' took too long on this map's texts (over {allowed:.1f} s, "
                f"{i + 1:,} of {len(texts):,} rows read): use fewer optional parts and repeats, or untick "
                "'regular expression' to filter by plain text."
            )
    return mask


def compile_filter(pattern: str):
    """The user's filter pattern compiled for RE2 (case-insensitive), or one InputError line saying why not."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InputError(f"The pattern '{_shown(pattern)}' is {len(pattern):,} characters long: a regular "
                         f"expression filter takes at most {MAX_PATTERN_CHARS:,}.")
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # RE2 would print each refused pattern to stderr
    # Only whether a text matches counts: without capture groups every search can run on the DFA (a pattern
    # of 5,000 nested groups took 0.4 s per 100-character text with them).
    options.never_capture = True
    try:
        return re2.compile(_unicode_classes(pattern), options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
    shown = _shown(pattern)
    try:
        with warnings.catch_warnings():  # "possible nested set" and the like: the user sees the message below
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as exc:
        raise InputError(f"The filter '{shown}' is not a valid regular expression: {exc}.") from None
    except (RecursionError, OverflowError, ValueError):
        pass  # Python's parser gives up too: RE2's reason stands
    why = _TOO_LARGE if "too large" in reason else _UNSUPPORTED
    raise InputError(f"The pattern '{shown}' is not supported by the filter: {why} (RE2: {reason}).")


def _shown(pattern: str) -> str:
    return pattern if len(pattern) <= SHOWN_PATTERN_CHARS else pattern[: SHOWN_PATTERN_CHARS - 1] + "…"


def _unicode_classes(pattern: str) -> str:
    """``pattern`` with \\w, \\d, \\s and their negations spelled as RE2's Unicode classes (and \\Z as \\z)."""
    out: list[str] = []
    i, class_start = 0, -1  # class_start: where the open character class's members begin, -1 outside one
    close = -2  # where the next ":]" is (-1: none is left, -2: not looked for), so the pattern is read once
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escape = pattern[i + 1]
            out.append((_IN_CLASS if class_start >= 0 else _CLASSES).get(escape, char + escape))
            i += 2
            continue
        if class_start >= 0:
            if pattern.startswith("[:", i):  # [[:alpha:]]
                if close == -2 or 0 <= close < i + 2:
                    close = pattern.find(":]", i + 2)
                if close > 0:
                    out.append(pattern[i : close + 2])
                    i = close + 2
                    continue
            if char == "]" and i > class_start:  # a "]" first in the class is one of its members
                class_start = -1
        elif char == "[":
            class_start = i + 1 + pattern.startswith("^", i + 1)
        out.append(char)
        i += 1
    return "".join(out)


def category_mask(points: pd.DataFrame, filters: Mapping[str, Iterable]) -> np.ndarray:
    """Rows whose value in each filtered column is among the chosen values (no choice = no filter)."""
    mask = np.ones(len(points), dtype=bool)
    for column, values in filters.items():
        values = list(values)
        if values and column in points.columns:
            mask &= points[column].astype("string").fillna("(missing)").isin([str(v) for v in values]).to_numpy()
    return mask


DISTINCT_SAMPLE_ROWS = 5_000


def filterable_columns(points: pd.DataFrame, *, max_values: int = 50) -> list[str]:
    """Columns that hold categories: few distinct values, each shared by several rows."""
    skip = {"row_id", "x", "y", "embedded"}
    columns = []
    for col in points.columns:
        if col in skip:
            continue
        # A sample with too many values rules a column out without hashing every long abstract.
        if points[col].head(DISTINCT_SAMPLE_ROWS).nunique(dropna=True) > max_values:
            continue
        distinct = points[col].nunique(dropna=True)
        if 1 < distinct <= max_values and distinct <= 0.5 * points[col].notna().sum():
            columns.append(col)
    return columns


def positions_of(points: pd.DataFrame, row_ids: Iterable[int]) -> np.ndarray:
    """Positions in ``points`` of the given row ids (unknown ids dropped)."""
    index = pd.Index(points["row_id"])
    pos = index.get_indexer(list(row_ids))
    return pos[pos >= 0]


def display_columns(points: pd.DataFrame) -> list[str]:
    """The user's own columns, in order (without the map's bookkeeping columns)."""
    return [c for c in points.columns if c not in ("x", "y", "embedded")]
