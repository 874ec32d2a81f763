"""Step 6, draw: what the map core (explorer/mapjs/) draws, built in Python: the points layer (typed
arrays, colours and legend), the overlay (search hits, query, focus, neighbours), every level's cluster
labels and the titles and thumbnails shown close up; the same payloads for the app, the offline export
and the notebook widget."""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .filters import filterable_columns
from .map_clusters import CLUSTER_LABEL_COLUMN, label_layers
from .store import SavedMap
from .texts import title_column  # noqa: F401 - the draw step's callers name it here

HOVER_CHARS = 150
MAX_CATEGORIES = 40
OTHER = "(other)"
MISSING = "(missing)"
# Glasbey-style palette: 40 colours that stay distinguishable side by side (Alphabet + Dark24 hues).
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f", "#AA0DFE", "#3283FE", "#85660D", "#782AB6", "#565656", "#1C8356",
    "#16FF32", "#F7E1A0", "#1CBE4F", "#C4451C", "#DEA0FD", "#FE00FA", "#325A9B", "#FEAF16",
    "#F8A19F", "#90AD1C", "#F6222E", "#1CFFCE", "#2ED9FF", "#B10DA1", "#C075A6", "#FC1CBF",
    "#B00068", "#FBE426", "#FA0087", "#0D2A63", "#AF0038", "#6C4516", "#E2E2E2", "#620042",
]
DIM_COLOUR = "rgba(160,160,160,0.35)"
# Above this many points the base layer carries no per-point hover text: for 100k arXiv titles it
# was 8.9 of the figure's 10.7 MB of JSON, sent again on every rerun. Its hover then names the
# point's group; search hits, the selection and the focused point keep their full labels, and a
# click opens the row.
LEAN_HOVER_POINTS = 20_000
# A selection ring above this many points names only "selection" on hover: titles for 10k selected
# rows cost 0.2 s and a megabyte on every rerun, and the selection table lists them anyway.
LEAN_SELECTION_POINTS = 2_000
# Search hits with their rank as text on the map; the others have it in their hover, since ten
# numbers on a tight group of hits pile up on each other and on the query star.
RANK_TEXT_HITS = 3
QUERY_LABEL_CHARS = 40
# Titles sent for the browser to draw beside the points close up are cut to this length.
POINT_TITLE_CHARS = 48
# The browser shows a level's labels from this zoom factor on: the zoom at which as many of its
# labels fall in view as the coarsest level shows at full view (n labels, 1/z² of the map in view).
MIN_LEVEL_STEP = 1.5


@dataclass
class MapStyle:
    """What the map shows on top of the points: colour, hover fields, dimming and highlights."""

    color_by: str | None = None
    hover_fields: Sequence[str] = ()
    title_column: str | None = None
    dimmed: np.ndarray | None = None
    hits: np.ndarray | None = None
    hit_scores: np.ndarray | None = None
    similarity: np.ndarray | None = None
    # What the numbers on the similarity scale are (a search's similarity, screening's likely relevance).
    scale_title: str = "similarity"
    query_xy: np.ndarray | None = None
    query_label: str = ""
    selected: np.ndarray | None = None
    focus: int | None = None
    point_size: float = 5.0
    # Cluster labels of every level (map_clusters.label_layers: x, y, text, level, priority, ...);
    # the app's browser places them on every zoom, exports place the coarsest level once.
    labels: pd.DataFrame | None = None
    # Row positions of the focused point's nearest neighbours, ringed on the map.
    neighbours: np.ndarray | None = None
    # Every row's short name, row-aligned (else the title column): drawn beside the points when few are in view.
    titles: Sequence[str] | None = None
    # Image maps: gives every row's thumbnail as a data: URI by row id (called once per map, for the hover).
    thumbnails: Callable[[], Mapping[int, str]] | None = None


def escape_text(value) -> str:
    """User text made inert in the map's payloads (so `<img onerror=…>` shows as text; the core unescapes it once
    and sets it with textContent)."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    # Plotly decodes &lt; &gt; &amp; in labels but shows &quot; literally, so quotes stay as they are.
    return html.escape(text, quote=False)


def shorten(text: str, limit: int = HOVER_CHARS) -> str:
    """Collapse whitespace and cut to ``limit`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def default_colour_column(points: pd.DataFrame) -> str | None:
    """The column to colour by when the user has not chosen: a field/category/label-like column."""
    for name in ("field", "category", "primary_category", "label", CLUSTER_LABEL_COLUMN):
        if name in points.columns:
            return name
    candidates = filterable_columns(points, max_values=MAX_CATEGORIES)
    return candidates[0] if candidates else None


def hover_texts(points: pd.DataFrame, *, title: str | None, fields: Sequence[str] = ()) -> list[str]:
    """Escaped hover labels: the title (≤150 characters) and one or two chosen fields."""
    heads = points[title].map(lambda v: escape_text(shorten(v))) if title else points["row_id"].astype(str)
    lines = [heads.tolist()]
    for col in list(fields)[:2]:
        if col in points.columns and col != title:
            lines.append([f"<i>{escape_text(col)}</i>: {escape_text(shorten(v, 60))}" for v in points[col]])
    return ["<br>".join(parts) for parts in zip(*lines, strict=True)]


def is_categorical(series: pd.Series) -> bool:
    """Numbers with many distinct values get a colour scale; everything else a legend."""
    if pd.api.types.is_bool_dtype(series):
        return True
    if pd.api.types.is_numeric_dtype(series):
        return series.nunique(dropna=True) <= 12
    return True


def category_values(series: pd.Series, *, max_categories: int = MAX_CATEGORIES) -> pd.Series:
    """String categories, the rarest folded into "(other)" beyond ``max_categories``."""
    values = series.astype("string").fillna(MISSING)
    counts = values.value_counts()
    if len(counts) > max_categories:
        keep = set(counts.index[: max_categories - 1])
        values = values.where(values.isin(keep), OTHER)
    return values


def drawn_rows(points: pd.DataFrame) -> np.ndarray:
    """The rows that have a place on the map: embedded, with coordinates."""
    return points["embedded"].to_numpy(dtype=bool) & points["x"].notna().to_numpy()


@dataclass
class PointGroup:
    """One colour group of the base layer (a legend entry, a colour scale, or the dimmed rows)."""

    name: str
    mask: np.ndarray
    size: float
    opacity: float
    colour: str | None = None
    # Numbers on the Viridis scale, row-aligned (colour None): similarity or a numeric column.
    values: np.ndarray | None = None
    colorbar: str | None = None
    showlegend: bool = True
    legendrank: int | None = None
    legendgroup: str | None = None


def point_groups(points: pd.DataFrame, style: MapStyle, *, faded: bool = False) -> list[PointGroup]:
    """The base layer's colour groups in draw order: dimmed rows first, then one group per category
    (most frequent first, so rare ones lie on top), or one group on a colour scale."""
    drawn = drawn_rows(points)
    dimmed = np.zeros(len(points), dtype=bool) if style.dimmed is None else np.asarray(style.dimmed, bool)
    opacity = 0.35 if faded else 0.85
    live = drawn & ~dimmed
    groups = []
    if dimmed.any():
        groups.append(PointGroup("filtered out", drawn & dimmed, style.point_size * 0.8, 1.0, colour=DIM_COLOUR,
                                 legendrank=2000))
    if style.similarity is not None:
        groups.append(PointGroup("similarity", live, style.point_size, 0.9, values=np.asarray(style.similarity, float),
                                 colorbar=style.scale_title, showlegend=False))
    elif style.color_by and style.color_by in points.columns and is_categorical(points[style.color_by]):
        values = category_values(points[style.color_by]).to_numpy()
        order = pd.Series(values[drawn]).value_counts().index
        for i, value in enumerate(order):
            colour = "#9e9e9e" if value in (OTHER, MISSING) else PALETTE[i % len(PALETTE)]
            groups.append(PointGroup(escape_text(shorten(value, 40)), live & (values == value), style.point_size,
                                     opacity, colour=colour, legendgroup=str(i)))
    elif style.color_by and style.color_by in points.columns:
        numbers = pd.to_numeric(points[style.color_by], errors="coerce").to_numpy(dtype=float)
        groups.append(PointGroup(escape_text(style.color_by), live, style.point_size, opacity, values=numbers,
                                 colorbar=escape_text(style.color_by), showlegend=False))
    else:
        groups.append(PointGroup("points", live, style.point_size, opacity, colour=PALETTE[0], showlegend=False))
    return groups


@dataclass
class PointsLayer:
    """The base layer for the app's canvas: every drawn point in draw order, as typed arrays.

    ``colour`` indexes ``palette`` (one [r, g, b, alpha, size] per entry); ``legend`` names the
    groups the map core shows in its legend or colour bar; ``hover`` holds every point's hover label on
    small maps (None above LEAN_HOVER_POINTS, where the browser names the point's group and title)."""

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    colour: np.ndarray
    palette: list[list[float]]
    legend: list[dict]
    hover: list[str] | None = None

    MAGIC = b"EXPL"

    def to_bytes(self) -> bytes:
        """Magic, header length, JSON header (padded to 4 bytes), x, y (float32), ids (int32), colour (uint8)."""
        header = json.dumps({"n": len(self.x), "palette": self.palette, "legend": self.legend, "hover": self.hover},
                            separators=(",", ":")).encode("utf-8")
        header += b" " * (-(len(header) + 8) % 4)
        return b"".join([self.MAGIC, np.uint32(len(header)).tobytes(), header,
                         self.x.astype("<f4").tobytes(), self.y.astype("<f4").tobytes(),
                         self.ids.astype("<i4").tobytes(), self.colour.astype(np.uint8).tobytes()])

    @classmethod
    def from_bytes(cls, data: bytes) -> PointsLayer:
        """The layer written by `to_bytes` (tests read back what the browser gets)."""
        if data[:4] != cls.MAGIC:
            raise ValueError("not a points layer")
        size = int(np.frombuffer(data, "<u4", 1, 4)[0])
        header = json.loads(data[8:8 + size])
        n, at = header["n"], 8 + size
        x, y, ids = (np.frombuffer(data, dt, n, at + i * 4 * n) for i, dt in enumerate(("<f4", "<f4", "<i4")))
        colour = np.frombuffer(data, np.uint8, n, at + 12 * n)
        return cls(x=x, y=y, ids=ids, colour=colour, palette=header["palette"], legend=header["legend"],
                   hover=header["hover"])

    def groups(self) -> dict[str, np.ndarray]:
        """The row ids of each legend group, by name ("filtered out" holds the dimmed rows)."""
        return {entry["name"]: self.ids[np.isin(self.colour, entry["colours"])] for entry in self.legend}


VIRIDIS_STEPS = 240


def points_layer(points: pd.DataFrame, style: MapStyle, *, hover: bool = True) -> PointsLayer:
    """The base layer's points in draw order, coloured by `point_groups`; ``hover=False`` leaves out the
    hover labels (a host that carries its own texts: the offline export)."""
    drawn = drawn_rows(points)
    hover = None if not hover or int(drawn.sum()) > LEAN_HOVER_POINTS else np.asarray(
        hover_texts(points, title=style.title_column, fields=style.hover_fields), dtype=object)
    xs, ys, row_ids = points["x"].to_numpy(np.float32), points["y"].to_numpy(np.float32), points["row_id"].to_numpy()
    parts, palette, legend = [], [], []
    for group in point_groups(points, style):
        rows = np.flatnonzero(group.mask)
        entry = {"name": group.name, "showlegend": group.showlegend, "legendrank": group.legendrank,
                 "legendgroup": group.legendgroup, "colours": []}
        if group.values is None:
            entry["colours"] = [len(palette)]
            entry["colour"] = group.colour
            palette.append(_rgba(group.colour, group.opacity, group.size))
            colour = np.full(len(rows), entry["colours"][0], dtype=np.int64)
        else:
            values = group.values[rows]
            finite = np.isfinite(values)
            low, high = (float(values[finite].min()), float(values[finite].max())) if finite.any() else (0.0, 1.0)
            steps = np.floor((values - low) / max(high - low, 1e-12) * (VIRIDIS_STEPS - 1) + 0.5)
            first = len(palette)
            palette.extend(_rgba(c, group.opacity, group.size) for c in _viridis(VIRIDIS_STEPS))
            palette.append(_rgba("#9e9e9e", group.opacity, group.size))  # no value: grey, as plotly draws NaN
            colour = np.where(finite, first + np.nan_to_num(steps, nan=0).astype(np.int64), first + VIRIDIS_STEPS)
            entry.update(colours=list(range(first, len(palette))), colorbar={"title": group.colorbar, "cmin": low,
                                                                             "cmax": high})
        parts.append((rows, colour))
        legend.append(entry)
    rows = np.concatenate([r for r, _ in parts]) if parts else np.zeros(0, np.int64)
    colour = np.concatenate([c for _, c in parts]) if parts else np.zeros(0, np.int64)
    if len(palette) > 256:
        raise ValueError(f"{len(palette)} colours do not fit the layer's one-byte colour index")
    return PointsLayer(x=xs[rows], y=ys[rows], ids=row_ids[rows].astype(np.int32), colour=colour.astype(np.uint8),
                       palette=palette, legend=legend, hover=None if hover is None else hover[rows].tolist())


def _rgba(colour: str, opacity: float, size: float) -> list[float]:
    """[r, g, b, alpha, size] of a "#rrggbb" or "rgba(r,g,b,a)" colour drawn at ``opacity``."""
    if colour.startswith("#"):
        r, g, b, a = int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), 1.0
    else:
        r, g, b, a = (float(v) for v in colour[colour.index("(") + 1:-1].split(","))
    return [int(r), int(g), int(b), round(a * opacity, 3), float(size)]


def _viridis(steps: int) -> list[str]:
    """``steps`` colours along plotly's Viridis scale, as plotly interpolates it (linearly in RGB)."""
    from plotly.colors import sample_colorscale

    return [_hex(c) for c in sample_colorscale("Viridis", [i / (steps - 1) for i in range(steps)])]


def _hex(colour: str) -> str:
    if colour.startswith("#"):
        return colour
    r, g, b = (round(float(v)) for v in colour[colour.index("(") + 1:-1].split(",")[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def base_key(points: pd.DataFrame, style: MapStyle, *, revision: str = "map") -> str:
    """A digest of everything `points_layer` draws from: equal keys mean an identical base layer."""
    digest = hashlib.sha256()
    digest.update(json.dumps([revision, len(points), style.color_by, list(style.hover_fields), style.title_column,
                              style.point_size, style.scale_title], default=str).encode())
    for array in (style.dimmed, style.similarity):
        digest.update(b"-" if array is None else np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:24]


def overlay_json(points: pd.DataFrame, style: MapStyle) -> str:
    """What the map core draws over the points, as JSON of row ids: the search hits (best first) with their
    scores and how many get their rank written, the query's star and label, the focused point, its neighbours."""
    row_ids = points["row_id"].to_numpy()
    hits, scores = [], None
    if style.hits is not None and len(style.hits):
        idx = np.asarray(style.hits, dtype=np.int64)
        keep = (idx >= 0) & (idx < len(points))
        keep[keep] = drawn_rows(points)[idx[keep]]
        hits = row_ids[idx[keep]].tolist()
        if style.hit_scores is not None:
            values = np.asarray(style.hit_scores, dtype=float)[: len(idx)]
            scores = [round(float(v), 4) for v in values[keep[: len(values)]]]
    focus = None
    if style.focus is not None and (row_ids[drawn_rows(points)] == style.focus).any():
        focus = int(style.focus)
    overlay = {"hits": hits, "scores": scores, "ranks": RANK_TEXT_HITS, "query": query_label(style),
               "focus": focus,
               "neighbours": row_ids[_drawn_positions(points, style.neighbours)].tolist()}
    return json.dumps(overlay, separators=(",", ":"))


def query_label(style: MapStyle) -> dict | None:
    """The query's label for the browser to place: its star's position and the shortened, escaped query."""
    if style.hits is None or style.query_xy is None or not np.isfinite(style.query_xy).all() or not style.query_label:
        return None
    return {"x": float(style.query_xy[0]), "y": float(style.query_xy[1]),
            "text": escape_text(shorten(style.query_label, QUERY_LABEL_CHARS))}


def levels_of_labels(labels: pd.DataFrame) -> list[str]:
    """The levels of ``labels``, coarsest first (coarser levels outrank finer ones in label_layers)."""
    order = labels.groupby("level", sort=False)["priority"].max().sort_values(ascending=False)
    return [str(level) for level in order.index]


def level_zooms(labels: pd.DataFrame) -> list[float]:
    """The zoom factor from which each level's labels may show, coarsest level first (1: at full view).

    A level of n labels shows from the zoom at which about as many of them are in view as the
    coarsest level's n0 at full view (a zoom of z shows 1/z² of the map): sqrt(n / n0), and at
    least MIN_LEVEL_STEP beyond the level above it."""
    counts = labels.groupby("level", sort=False).size()
    levels = levels_of_labels(labels)
    zooms: list[float] = []
    for i, level in enumerate(levels):
        if i == 0:
            zooms.append(1.0)
            continue
        zooms.append(round(max(zooms[-1] * MIN_LEVEL_STEP, math.sqrt(counts[level] / counts[levels[0]])), 3))
    return zooms


def label_payload(labels: pd.DataFrame | None) -> dict:
    """Every level's labels for the browser's placement on each zoom: rows of [x, y, text, level, priority].

    Texts are escaped (escape_text; the browser unescapes them once and sets them as text); levels are
    indices into ``levels`` (coarsest first), each shown from its ``zooms`` factor on. Compact rows keep
    a few hundred labels to a few tens of kB."""
    labels = _label_frame(labels)
    if labels is None or labels.empty:
        return {"levels": [], "zooms": [], "labels": []}
    labels = labels[np.isfinite(labels["x"].to_numpy(float)) & np.isfinite(labels["y"].to_numpy(float))]
    levels = levels_of_labels(labels)
    index = {level: i for i, level in enumerate(levels)}
    ordered = labels.sort_values("priority", ascending=False, kind="stable")
    rows = [[round(float(x), 5), round(float(y), 5), escape_text(shorten(text, 60)), index[str(level)],
             round(float(priority), 5)]
            for x, y, text, level, priority in ordered[["x", "y", "text", "level", "priority"]].itertuples(index=False)]
    return {"levels": levels, "zooms": level_zooms(labels), "labels": rows}


def map_labels(saved: SavedMap) -> pd.DataFrame | None:
    """Every level's cluster labels of a saved map (map_clusters.label_layers), or None without clusters."""
    layers = label_layers(saved)
    return layers if len(layers) else None


def hover_thumbnails(saved: SavedMap) -> Callable[[], dict[int, str]] | None:
    """For an image map: a function giving every row's thumbnail as a data: URI (None for other maps)."""
    from .thumbnails import thumbnail_data_uri

    if saved.kind != "images" or not saved.has_thumbnails:
        return None
    return lambda: {int(r): thumbnail_data_uri(data) for r, data in saved.thumbnails().items()}


def titles_payload(points: pd.DataFrame, style: MapStyle) -> dict:
    """The short name of every drawn row, for the browser to show when few points are in view: {ids, titles}."""
    drawn = drawn_rows(points)
    if style.titles is not None and len(style.titles) == len(points):
        names = np.asarray(style.titles, dtype=object)[drawn]
    elif style.title_column and style.title_column in points.columns:
        names = points[style.title_column].to_numpy(dtype=object)[drawn]
    else:
        names = points["row_id"].to_numpy()[drawn]
    # A plain loop: 100k titles in about half a second (pandas' string dtype doubled it).
    texts = [escape_text(shorten("" if v is None or v is pd.NA or v != v else v, POINT_TITLE_CHARS)) for v in names]
    return {"ids": points["row_id"].to_numpy()[drawn].tolist(), "titles": texts}


def _label_frame(labels: pd.DataFrame | None) -> pd.DataFrame | None:
    """Label layers with columns x, y, text, level, priority (a one-level table of x, y, label, size too)."""
    if labels is None or labels.empty:
        return labels
    if "text" not in labels and "label" in labels:
        labels = labels.rename(columns={"label": "text"})
    if "level" not in labels:
        labels = labels.assign(level="coarse")
    if "priority" not in labels:
        size = labels["size"].to_numpy(float) if "size" in labels else np.ones(len(labels))
        labels = labels.assign(priority=size / max(float(size.sum()), 1.0))
    return labels


def _drawn_positions(points: pd.DataFrame, positions) -> np.ndarray:
    """The positions among ``positions`` that have a place on the map."""
    if positions is None or not len(positions):
        return np.zeros(0, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.int64)
    positions = positions[(positions >= 0) & (positions < len(points))]
    return positions[drawn_rows(points)[positions]]

