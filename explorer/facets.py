"""Facets of a map (draw step): which columns get a chart, their one binary encoding for the browser, the filter
state's URL text, and the mask a state keeps (the same rule as explorer/mapjs/facets.js)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import InputError

NUMBER, DATE, CATEGORY = "number", "date", "category"
FACET_KINDS = (NUMBER, DATE, CATEGORY)
MAX_FACETS = 8
TOP_CATEGORIES = 20
# The map's own bookkeeping, never a facet (cluster id columns are passed in by the caller: the labels stand for them).
INTERNAL_COLUMNS = frozenset({"row_id", "x", "y", "embedded", "neighbors", "bibtex", "ris"})
# A text column whose values run longer than this on average is free text (titles, abstracts), not categories.
MAX_CATEGORY_CHARS = 60
# Columns with more distinct values than this share of their rows are ids or free text, not categories.
MAX_DISTINCT_SHARE = 0.5
TYPE_SAMPLE_ROWS = 5_000
# The "Other" bar's token in a state: "*" is escaped inside names and values, so no value can read as it.
OTHER_VALUES = "*"
# Characters that carry the URL text's structure; inside names and values they are written as %XX.
_SPECIAL = frozenset("%;|=:*")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ][0-9:.]+)?$")
MAX_STATE_CHARS = 4_000
SHOWN_STATE_CHARS = 80
_EPOCH = pd.Timestamp("1970-01-01")
_DAY = pd.Timedelta(days=1)

# A state: column -> (low, high) for numbers and dates (inclusive; dates in days since 1970-01-01), or the
# chosen category names (OTHER_VALUES for the rows outside the top categories).
Range = tuple[float, float]
FacetState = dict[str, "Range | frozenset[str]"]


@dataclass(frozen=True)
class Facet:
    """One column's chart: its kind, and for categories the top values (codes 0..n-1; n is "Other")."""

    name: str
    kind: str
    categories: tuple[str, ...] = ()
    other: int = field(default=0)  # how many distinct values the "Other" bar groups


# ---------------------------------------------------------------- which columns


def facet_columns(points: pd.DataFrame, *, skip: Iterable[str] = (), max_facets: int = MAX_FACETS) -> list[Facet]:
    """The columns worth a facet, at most ``max_facets`` of the most useful, in the table's order."""
    skipped = INTERNAL_COLUMNS | set(skip)
    scored = []
    for position, name in enumerate(points.columns):
        if name in skipped or not isinstance(name, str):
            continue
        found = _facet_of(points[name], name)
        if found is not None:
            facet, score = found
            scored.append((score, -position, facet))
    best = sorted(scored, key=lambda item: item[:2], reverse=True)[:max_facets]
    return [facet for _, _, facet in sorted(best, key=lambda item: -item[1])]


def _facet_of(series: pd.Series, name: str) -> tuple[Facet, float] | None:
    """The column's facet and its usefulness (the share of rows a chart shows), or None for no facet."""
    present = series.notna()
    rows = int(present.sum())
    if rows < 2:
        return None
    kind = column_kind(series)
    if kind is None:
        return None
    if kind == CATEGORY:
        values = _strings(series)
        counts = _ranked_counts(values)
        if len(counts) < 2 or len(counts) > MAX_DISTINCT_SHARE * rows:
            return None
        top = counts.iloc[:TOP_CATEGORIES]
        # Shown share: the rows the named bars cover; a column of a thousand values is mostly "Other".
        return Facet(name, CATEGORY, tuple(top.index), other=max(len(counts) - TOP_CATEGORIES, 0)), \
            float(top.sum()) / len(series)
    finite = np.isfinite(_numbers(series, kind))
    distinct = pd.Series(_numbers(series, kind)[finite]).nunique()
    if distinct < 2 or (kind == NUMBER and _is_id(series, name, distinct)):
        return None
    return Facet(name, kind), float(finite.sum()) / len(series)


def column_kind(series: pd.Series) -> str | None:
    """number, date or category by the column's type (None: lists, long free text)."""
    if pd.api.types.is_bool_dtype(series):
        return CATEGORY
    if pd.api.types.is_datetime64_any_dtype(series):
        return DATE
    if pd.api.types.is_numeric_dtype(series):
        return NUMBER
    sample = series.dropna().head(TYPE_SAMPLE_ROWS)
    if sample.map(lambda v: isinstance(v, list | tuple | dict | np.ndarray | bytes)).any():
        return None
    text = sample.astype(str)
    if len(text) and text.str.match(_ISO_DATE).all() and pd.to_datetime(text, errors="coerce").notna().all():
        return DATE
    if text.str.len().mean() > MAX_CATEGORY_CHARS or text.nunique() > MAX_DISTINCT_SHARE * max(len(text), 1):
        return None
    return CATEGORY


def _is_id(series: pd.Series, name: str, distinct: int) -> bool:
    """Identifiers are numbers a chart says nothing about: named so, or one distinct integer per row."""
    lowered = name.casefold()
    if lowered in ("id", "index", "key") or lowered.endswith(("_id", " id")):
        return True
    return distinct == series.notna().sum() and distinct > 20 and pd.api.types.is_integer_dtype(series)


def _strings(series: pd.Series) -> pd.Series:
    """A category column's values as strings, missing (and blank) as NA."""
    values = series.astype("string")
    return values.mask(values.str.strip() == "")


def _ranked_counts(values: pd.Series) -> pd.Series:
    """Each value's count, most frequent first, ties by value: the one order Python and the browser share."""
    counts = values.value_counts(dropna=True)
    order = sorted(zip(counts.index, counts.to_numpy(), strict=True), key=lambda kv: (-kv[1], kv[0]))
    return pd.Series([c for _, c in order], index=[str(v) for v, _ in order], dtype="int64")


def _numbers(series: pd.Series, kind: str) -> np.ndarray:
    """Float64 values, NaN for missing (and for ±inf, which no histogram can bin); dates as days since 1970-01-01."""
    if kind == DATE:
        stamps = pd.to_datetime(series, errors="coerce", utc=True).dt.tz_localize(None)
        values = ((stamps - _EPOCH) / _DAY).to_numpy(dtype="float64", na_value=np.nan)
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isinf(values), np.nan, values)


def facet_codes(series: pd.Series, facet: Facet) -> np.ndarray:
    """A category column as Int32 codes: the index in ``facet.categories``, len(categories) for "Other",
    -1 for missing."""
    values = _strings(series)
    lookup = {name: code for code, name in enumerate(facet.categories)}
    codes = values.map(lookup).astype("Int32")
    other = values.notna().to_numpy() & codes.isna().to_numpy()
    out = codes.to_numpy(dtype="int32", na_value=-1)
    out[other] = len(facet.categories)
    return out


def facet_values(series: pd.Series, facet: Facet) -> np.ndarray:
    """The column as the browser reads it: Float64 (numbers, dates) or Int32 codes (categories)."""
    return facet_codes(series, facet) if facet.kind == CATEGORY else _numbers(series, facet.kind)


# ---------------------------------------------------------------- the browser's format


def encode_facets(points: pd.DataFrame, facets: list[Facet]) -> tuple[str, bytes]:
    """A JSON header [{name, kind, categories?, other?, dtype, offset, length}] and one blob of every column
    (little-endian Float64 with NaN for missing, or Int32 codes with -1 for missing), each 8-byte aligned."""
    header, parts, offset = [], [], 0
    for facet in facets:
        values = facet_values(points[facet.name], facet)
        data = values.astype("<f8" if facet.kind != CATEGORY else "<i4").tobytes()
        entry = {"name": facet.name, "kind": facet.kind, "dtype": "float64" if facet.kind != CATEGORY else "int32",
                 "offset": offset, "length": len(values)}
        if facet.kind == CATEGORY:
            entry["categories"] = list(facet.categories)
            entry["other"] = facet.other
        header.append(entry)
        padding = -len(data) % 8  # a Float64Array over the blob needs its offset a multiple of 8
        parts.extend([data, b"\0" * padding])
        offset += len(data) + padding
    return json.dumps(header, ensure_ascii=False, separators=(",", ":")), b"".join(parts)


def pack_facets(header: str, blob: bytes, row_ids: np.ndarray) -> bytes:
    """One file for the browser: b"EMF1", the header's byte length (uint32), the header (UTF-8, padded to
    8 bytes), the blob, then each row's id (Int32), so a host lines the facets' rows up with the map's points."""
    text = header.encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    return b"".join([b"EMF1", len(text).to_bytes(4, "little"), text, blob,
                     np.asarray(row_ids, dtype="<i4").tobytes()])


def unpack_facets(data: bytes) -> tuple[str, bytes, np.ndarray]:
    """The header, blob and row ids of a ``pack_facets`` file."""
    if data[:4] != b"EMF1":
        raise ValueError("not a facets file")
    size = int.from_bytes(data[4:8], "little")
    header = data[8:8 + size].decode("utf-8")
    entries = json.loads(header)
    rows = entries[0]["length"] if entries else (len(data) - 8 - size) // 4
    end = len(data) - 4 * rows
    return header, data[8 + size:end], np.frombuffer(data, dtype="<i4", offset=end)


def decode_facets(header: str, blob: bytes) -> list[tuple[Facet, np.ndarray]]:
    """The facets and their columns back from ``encode_facets``' header and blob."""
    out = []
    for entry in json.loads(header):
        dtype = {"float64": "<f8", "int32": "<i4"}[entry["dtype"]]
        values = np.frombuffer(blob, dtype=dtype, count=entry["length"], offset=entry["offset"])
        facet = Facet(entry["name"], entry["kind"], tuple(entry.get("categories", ())), entry.get("other", 0))
        out.append((facet, values))
    return out


# ---------------------------------------------------------------- the state's URL text


def format_state(state: Mapping[str, Range | Iterable[str]], *, dates: Iterable[str] = ()) -> str:
    """The state as compact URL text, e.g. ``year:2019..2023;venue=NeurIPS|ICML`` (columns in ``dates`` get
    their whole-day bounds written as ISO dates)."""
    dates = set(dates)
    parts = []
    for name, chosen in state.items():
        if isinstance(chosen, tuple) and len(chosen) == 2 and not isinstance(chosen[0], str):
            low, high = (_bound_text(v, date=name in dates) for v in chosen)
            parts.append(f"{_escape(name)}:{low}..{high}")
        else:
            values = sorted(chosen, key=lambda v: (v == OTHER_VALUES, v))
            parts.append(f"{_escape(name)}=" + "|".join(v if v == OTHER_VALUES else _escape(v) for v in values))
    return ";".join(parts)


def parse_state(text: str) -> FacetState:
    """The state a URL text holds; anything malformed is refused in one InputError line."""
    text = text.strip()
    if len(text) > MAX_STATE_CHARS:
        raise _refuse(text, f"it is {len(text):,} characters long, and a facet filter takes at most "
                            f"{MAX_STATE_CHARS:,}")
    state: FacetState = {}
    for part in filter(None, text.split(";")):
        range_at, set_at = part.find(":"), part.find("=")
        if range_at < 0 and set_at < 0:
            raise _refuse(text, f"'{_shown(part)}' is neither a range (column:low..high) nor a choice "
                                "(column=value|value)")
        if range_at >= 0 and (set_at < 0 or range_at < set_at):
            name, chosen = _unescape(part[:range_at], text), _parse_range(part[range_at + 1:], text)
        else:
            name = _unescape(part[:set_at], text)
            values = part[set_at + 1:].split("|")
            if values == [""]:
                raise _refuse(text, f"'{_shown(name)}' chooses no value")
            chosen = frozenset(v if v == OTHER_VALUES else _unescape(v, text) for v in values)
        if not name:
            raise _refuse(text, "a part names no column")
        if name in state:
            raise _refuse(text, f"the column '{_shown(name)}' is named twice")
        state[name] = chosen
    return state


def state_from_json(data: Mapping[str, Mapping]) -> FacetState:
    """A state from the browser's form ({column: {range: [low, high]} or {selected: [names]}})."""
    state: FacetState = {}
    for name, chosen in data.items():
        if "range" in chosen:
            low, high = (float(v) for v in chosen["range"])
            state[str(name)] = (low, high)
        else:
            state[str(name)] = frozenset(str(v) for v in chosen["selected"])
    return state


def state_to_json(state: FacetState) -> dict:
    """The browser's form of a state (the inverse of ``state_from_json``)."""
    return {name: {"range": list(chosen)} if isinstance(chosen, tuple) else {"selected": sorted(chosen)}
            for name, chosen in state.items()}


def _parse_range(text: str, whole: str) -> Range:
    low, sep, high = text.partition("..")
    if not sep:
        raise _refuse(whole, f"'{_shown(text)}' is not a range low..high")
    bounds = (_bound(low, whole), _bound(high, whole))
    if bounds[0] > bounds[1]:
        raise _refuse(whole, f"the range '{_shown(text)}' ends before it starts")
    return bounds


def _bound(text: str, whole: str) -> float:
    if _ISO_DATE.match(text):
        stamp = pd.to_datetime(text, errors="coerce")
        if not pd.isna(stamp):
            return float((stamp - _EPOCH) / _DAY)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or text.strip() != text or not text:
        raise _refuse(whole, f"'{_shown(text)}' is not a number or a date (YYYY-MM-DD)")
    return value


def _bound_text(value: float, *, date: bool) -> str:
    value = float(value)
    if date and value.is_integer():
        return (_EPOCH + pd.Timedelta(days=int(value))).strftime("%Y-%m-%d")
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _escape(value: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in _SPECIAL else c for c in str(value))


def _unescape(value: str, whole: str) -> str:
    stray = _ESCAPE.sub("", value)
    if any(c in _SPECIAL for c in stray):
        raise _refuse(whole, f"'{_shown(value)}' holds a '%', '*', '|', ':' or '=' that is not escaped as %XX")
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)


def _refuse(text: str, why: str) -> InputError:
    return InputError(f"The facet filter '{_shown(text)}' cannot be read: {why}.")


def _shown(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= SHOWN_STATE_CHARS else flat[: SHOWN_STATE_CHARS - 1] + "…"


# ---------------------------------------------------------------- the mask


def facet_mask(points: pd.DataFrame, state: Mapping[str, Range | Iterable[str]]) -> np.ndarray:
    """Rows of ``points`` kept by every facet of the state: a range keeps low <= value <= high (missing is
    out), a choice keeps the chosen top categories (OTHER_VALUES: every value outside them; missing is out)."""
    keep = np.ones(len(points), dtype=bool)
    for name, chosen in state.items():
        if name not in points.columns:
            raise InputError(f"The facet filter names the column '{_shown(name)}', which this map does not have.")
        series = points[name]
        kind = column_kind(series)
        if isinstance(chosen, tuple):
            if kind not in (NUMBER, DATE):
                raise InputError(f"The facet filter gives the column '{_shown(name)}' a range, but it holds no "
                                 "numbers or dates.")
            values = _numbers(series, kind)
            with np.errstate(invalid="ignore"):
                keep &= (values >= chosen[0]) & (values <= chosen[1])
        else:
            chosen = set(chosen)
            facet = Facet(name, CATEGORY, tuple(_ranked_counts(_strings(series)).index[:TOP_CATEGORIES]))
            codes = facet_codes(series, facet)
            wanted = [code for code, value in enumerate(facet.categories) if value in chosen]
            if OTHER_VALUES in chosen:
                wanted.append(len(facet.categories))
            # A value beyond the top ones has no bar of its own: it is chosen through "Other", as in the browser.
            keep &= np.isin(codes, wanted)
    return keep
