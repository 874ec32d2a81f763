"""Step 6, draw: the map's points (a plotly WebGL scatter for exports, typed arrays for the app's canvas),
search hits, query marker and selection overlays."""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .filters import filterable_columns
from .map_clusters import CLUSTER_LABEL_COLUMN, cluster_table, label_layers
from .store import SavedMap

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
# Label boxes are estimated from the character count: about 7 px per character at 12 px font, 18 px tall.
LABEL_CHAR_PX = 7.0
LABEL_HEIGHT_PX = 18.0
# Search hits with their rank as text on the map; the others have it in their hover, since ten
# numbers on a tight group of hits pile up on each other and on the query star.
RANK_TEXT_HITS = 3
QUERY_LABEL_CHARS = 40
# Titles drawn beside the points once a zoom leaves at most this many in view (cut to this length).
TITLE_POINTS = 25
TITLE_CHARS = 48
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
    extra_traces: list = field(default_factory=list)


def escape_text(value) -> str:
    """User text made inert for plotly's HTML-like labels (so `<img onerror=…>` shows as text)."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    # Plotly decodes &lt; &gt; &amp; in labels but shows &quot; literally, so quotes stay as they are.
    return html.escape(text, quote=False)


def shorten(text: str, limit: int = HOVER_CHARS) -> str:
    """Collapse whitespace and cut to ``limit`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def title_column(points: pd.DataFrame, text_columns: Sequence[str]) -> str | None:
    """The column that names a row best: `title` or `name` if present, else the first text column."""
    for candidate in ("title", "Title", "name", "file"):
        if candidate in points.columns:
            return candidate
    return text_columns[0] if text_columns else None


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


def build_figure(points: pd.DataFrame, *, style: MapStyle | None = None, height: int = 720):
    """The whole map in one figure: the base layer, the selection ring and the overlays (for exports and tests)."""
    style = style or MapStyle()
    fig = base_figure(points, style=style, height=height, faded=style.hits is not None)
    fig.add_traces(selection_ring(points, style=style) + overlay_traces(points, style=style))
    placed = static_labels(points, style.labels)
    if placed is not None and len(placed):
        fig.update_layout(annotations=_label_annotations(placed))
    return fig


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
                                 colorbar="similarity", showlegend=False))
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


def map_layout(*, height: int = 720, revision: str = "map") -> dict:
    """The map's plotly layout: square aspect, no axes, lasso by default, the legend below the plot."""
    return {
        "height": height, "margin": {"l": 0, "r": 0, "t": 10, "b": 0}, "dragmode": "lasso", "hovermode": "closest",
        "plot_bgcolor": "white", "paper_bgcolor": "white", "uirevision": revision,
        "legend": {"itemsizing": "constant", "bgcolor": "rgba(255,255,255,0.7)", "title": {"text": ""},
                   "orientation": "h", "yanchor": "top", "y": -0.01, "xanchor": "left", "x": 0},
        "xaxis": {"visible": False, "showgrid": False, "zeroline": False},
        "yaxis": {"visible": False, "showgrid": False, "zeroline": False, "scaleanchor": "x", "scaleratio": 1},
    }


def base_figure(points: pd.DataFrame, *, style: MapStyle | None = None, height: int = 720, faded: bool = False,
                revision: str = "map"):
    """The base layer as plotly WebGL traces (exports and static figures; the app draws `points_layer`).

    It depends only on colour, hover fields, filters and similarity colouring, never on hits,
    selection, focus or labels."""
    import plotly.graph_objects as go

    style = style or MapStyle()
    fig = go.Figure()
    drawn = drawn_rows(points)
    row_ids = points["row_id"].to_numpy()
    # Above LEAN_HOVER_POINTS the base carries no per-point text; overlays label their own points.
    hover = None if int(drawn.sum()) > LEAN_HOVER_POINTS else np.asarray(
        hover_texts(points, title=style.title_column, fields=style.hover_fields), dtype=object)
    for group in point_groups(points, style, faded=faded):
        mask = group.mask
        kw = {"hovertemplate": "%{fullData.name}<extra></extra>"} if hover is None else {
            "hovertext": hover[mask], "hoverinfo": "text"}
        marker = {"size": group.size, "opacity": group.opacity}
        if group.values is not None:
            marker.update(color=group.values[mask], colorscale="Viridis",
                          colorbar={"title": group.colorbar, "thickness": 12})
        else:
            marker["color"] = group.colour
        if group.legendrank is not None:
            kw["legendrank"] = group.legendrank
        if group.legendgroup is not None:
            kw["legendgroup"] = group.legendgroup
        fig.add_trace(go.Scattergl(
            x=points["x"].to_numpy()[mask], y=points["y"].to_numpy()[mask], mode="markers", name=group.name,
            customdata=row_ids[mask].reshape(-1, 1), marker=marker, showlegend=group.showlegend, **kw,
        ))
    fig.update_layout(**map_layout(height=height, revision=revision))
    return fig


@dataclass
class PointsLayer:
    """The base layer for the app's canvas: every drawn point in draw order, as typed arrays.

    ``colour`` indexes ``palette`` (one [r, g, b, alpha, size] per entry); ``legend`` names the
    groups plotly shows in its legend or colour bar; ``hover`` holds every point's hover label on
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


def frame_figure(layer: PointsLayer, *, height: int = 720, revision: str = "map") -> dict:
    """The plotly figure the app's canvas lies under: no points, one empty trace per layer group for the
    legend (and a colour bar's scale), the map's layout. Trace i is ``layer.legend[i]``."""
    traces = []
    for entry in layer.legend:
        r, g, b, alpha, size = layer.palette[entry["colours"][0]]
        trace = {"type": "scatter", "x": [None], "y": [None], "mode": "markers", "name": entry["name"],
                 "showlegend": entry["showlegend"], "hoverinfo": "skip",
                 "marker": {"color": f"rgba({r},{g},{b},{max(alpha, 0.6)})", "size": size}}
        for key in ("legendrank", "legendgroup"):
            if entry[key] is not None:
                trace[key] = entry[key]
        if "colorbar" in entry:
            bar = entry["colorbar"]
            trace.update(x=[None, None], y=[None, None], marker={
                "color": [bar["cmin"], bar["cmax"]], "colorscale": "Viridis", "cmin": bar["cmin"], "cmax": bar["cmax"],
                "showscale": True, "colorbar": {"title": {"text": bar["title"]}, "thickness": 12}})
        traces.append(trace)
    finite = np.isfinite(layer.x) & np.isfinite(layer.y)
    if finite.any():
        # Two invisible corners, so that plotly's autorange (the first view, a double-click, "Reset
        # axes") frames the points as it framed its own traces.
        x, y = layer.x[finite], layer.y[finite]
        size = max((entry[4] for entry in layer.palette), default=5.0)
        traces.append({"type": "scatter", "x": [float(x.min()), float(x.max())], "y": [float(y.min()), float(y.max())],
                       "mode": "markers", "name": "extent", "showlegend": False, "hoverinfo": "skip",
                       "marker": {"size": size, "opacity": 0}})
    return {"data": traces, "layout": map_layout(height=height, revision=revision)}


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


def overlay_traces(points: pd.DataFrame, *, style: MapStyle, query_text: bool = True) -> list:
    """What is drawn over the base layer: search hits, query star and links, the focused point, its neighbours.

    All SVG traces of a few dozen points, so the app can redraw them without touching the WebGL
    layer. ``query_text=False`` leaves the query's label off its star: the app's browser places it."""
    row_ids = points["row_id"].to_numpy()
    rows = np.zeros(len(points), dtype=bool)
    if style.hits is not None:
        rows[np.asarray(style.hits, dtype=np.int64)] = True
    if style.focus is not None:
        rows |= row_ids == style.focus
    neighbours = _drawn_positions(points, style.neighbours)
    rows[neighbours] = True
    hover = _hover_of(points, style, rows)
    return (_hits(points, style, hover, row_ids, query_text=query_text)
            + _neighbours(points, neighbours, hover, row_ids) + _focus(points, style, hover, row_ids)
            + list(style.extra_traces))


def selection_ring(points: pd.DataFrame, *, style: MapStyle) -> list:
    """A ring around every selected point (the app shows plotly's own selection instead)."""
    import plotly.graph_objects as go

    if style.selected is None or len(style.selected) == 0:
        return []
    row_ids = points["row_id"].to_numpy()
    drawn = drawn_rows(points)
    mask = drawn & np.isin(row_ids, np.asarray(style.selected))
    labels = ({"hovertemplate": "selection<extra></extra>"} if mask.sum() > LEAN_SELECTION_POINTS
              else {"hovertext": _hover_of(points, style, mask)[mask], "hoverinfo": "text"})
    return [go.Scattergl(
        x=points["x"].to_numpy()[mask], y=points["y"].to_numpy()[mask], mode="markers", name="selection",
        customdata=row_ids[mask].reshape(-1, 1), showlegend=True, **labels,
        marker={"color": "rgba(0,0,0,0)", "size": style.point_size + 4, "line": {"color": "#111111", "width": 1.2}},
    )]


def base_key(points: pd.DataFrame, style: MapStyle, *, revision: str = "map") -> str:
    """A digest of everything `base_figure` draws from: equal keys mean an identical base layer."""
    digest = hashlib.sha256()
    digest.update(json.dumps([revision, len(points), style.color_by, list(style.hover_fields), style.title_column,
                              style.point_size], default=str).encode())
    for array in (style.dimmed, style.similarity):
        digest.update(b"-" if array is None else np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:24]


def overlay_json(points: pd.DataFrame, style: MapStyle) -> str:
    """The overlay traces as plotly JSON, whether the base layer is veiled behind search hits, and the query's label."""
    import plotly.io as pio

    figure = {"data": [t.to_plotly_json() for t in overlay_traces(points, style=style, query_text=False)],
              "fade": style.hits is not None, "query": query_label(style)}
    return pio.to_json(figure, validate=False)


def query_label(style: MapStyle) -> dict | None:
    """The query's label for the browser to place: its star's position and the shortened, escaped query."""
    if style.hits is None or style.query_xy is None or not np.isfinite(style.query_xy).all() or not style.query_label:
        return None
    return {"x": float(style.query_xy[0]), "y": float(style.query_xy[1]),
            "text": escape_text(shorten(style.query_label, QUERY_LABEL_CHARS))}


def label_levels(labels: pd.DataFrame) -> list[str]:
    """The levels of ``labels``, coarsest first (coarser levels outrank finer ones in label_layers)."""
    order = labels.groupby("level", sort=False)["priority"].max().sort_values(ascending=False)
    return [str(level) for level in order.index]


def level_zooms(labels: pd.DataFrame) -> list[float]:
    """The zoom factor from which each level's labels may show, coarsest level first (1: at full view).

    A level of n labels shows from the zoom at which about as many of them are in view as the
    coarsest level's n0 at full view (a zoom of z shows 1/z² of the map): sqrt(n / n0), and at
    least MIN_LEVEL_STEP beyond the level above it."""
    counts = labels.groupby("level", sort=False).size()
    levels = label_levels(labels)
    zooms: list[float] = []
    for i, level in enumerate(levels):
        if i == 0:
            zooms.append(1.0)
            continue
        zooms.append(round(max(zooms[-1] * MIN_LEVEL_STEP, math.sqrt(counts[level] / counts[levels[0]])), 3))
    return zooms


def label_payload(labels: pd.DataFrame | None) -> dict:
    """Every level's labels for the browser's placement on each zoom: rows of [x, y, text, level, priority].

    Texts are escaped for plotly; levels are indices into ``levels`` (coarsest first), each shown
    from its ``zooms`` factor on. Compact rows keep a few hundred labels to a few tens of kB."""
    labels = _label_frame(labels)
    if labels is None or labels.empty:
        return {"levels": [], "zooms": [], "labels": []}
    labels = labels[np.isfinite(labels["x"].to_numpy(float)) & np.isfinite(labels["y"].to_numpy(float))]
    levels = label_levels(labels)
    index = {level: i for i, level in enumerate(levels)}
    ordered = labels.sort_values("priority", ascending=False, kind="stable")
    rows = [[round(float(x), 5), round(float(y), 5), escape_text(shorten(text, 60)), index[str(level)],
             round(float(priority), 5)]
            for x, y, text, level, priority in ordered[["x", "y", "text", "level", "priority"]].itertuples(index=False)]
    return {"levels": levels, "zooms": level_zooms(labels), "labels": rows}


def static_labels(points: pd.DataFrame, labels: pd.DataFrame | None) -> pd.DataFrame | None:
    """For a figure drawn once (exports): the coarsest level's labels that fit the full view (x, y, label, size)."""
    labels = _label_frame(labels)
    if labels is None or labels.empty:
        return None
    top = labels[labels["level"].astype(str) == label_levels(labels)[0]].rename(columns={"text": "label"})
    if "size" not in top:
        top = top.assign(size=top["priority"])
    drawn = drawn_rows(points)
    x, y = points["x"].to_numpy(float)[drawn], points["y"].to_numpy(float)[drawn]
    if not len(x):
        return None
    return place_labels(top, x_range=(x.min(), x.max()), y_range=(y.min(), y.max()), width_px=760, height_px=680)


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
    texts = [escape_text(shorten("" if v is None or v is pd.NA or v != v else v, TITLE_CHARS)) for v in names]
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


def _neighbours(points: pd.DataFrame, positions: np.ndarray, hover, row_ids) -> list:
    import plotly.graph_objects as go

    if not len(positions):
        return []
    # Thin grey rings: they must not compete with the search hits' gold markers or the focus ring.
    return [go.Scatter(
        x=points["x"].to_numpy()[positions], y=points["y"].to_numpy()[positions], mode="markers",
        name="neighbours", customdata=row_ids[positions].reshape(-1, 1), showlegend=False,
        hovertext=[f"neighbour {i}<br>{h}" for i, h in enumerate(hover[positions], start=1)], hoverinfo="text",
        marker={"size": 14, "color": "rgba(0,0,0,0)", "line": {"color": "#37474f", "width": 1.3}},
    )]


def _hover_of(points: pd.DataFrame, style: MapStyle, rows: np.ndarray) -> np.ndarray:
    """Hover labels for ``rows`` only (empty elsewhere): a big map's overlays label just their own points."""
    hover = np.full(len(points), "", dtype=object)
    if rows.any():
        hover[rows] = hover_texts(points[rows], title=style.title_column, fields=style.hover_fields)
    return hover


def _hits(points: pd.DataFrame, style: MapStyle, hover, row_ids, *, query_text: bool = True) -> list:
    import plotly.graph_objects as go

    if style.hits is None or len(style.hits) == 0:
        return []
    traces = []
    idx = np.asarray(style.hits)
    idx = idx[points["x"].to_numpy()[idx] == points["x"].to_numpy()[idx]]  # drop NaN positions
    x, y = points["x"].to_numpy()[idx], points["y"].to_numpy()[idx]
    query_drawn = style.query_xy is not None and np.isfinite(style.query_xy).all()
    if query_drawn:
        qx, qy = float(style.query_xy[0]), float(style.query_xy[1])
        lines_x = np.column_stack([np.full(len(x), qx), x, np.full(len(x), np.nan)]).ravel()
        lines_y = np.column_stack([np.full(len(y), qy), y, np.full(len(y), np.nan)]).ravel()
        traces.append(go.Scatter(x=lines_x, y=lines_y, mode="lines", hoverinfo="skip", showlegend=False,
                                   line={"color": "rgba(214,39,40,0.45)", "width": 1}, name="links"))
    ranks = np.arange(1, len(idx) + 1)
    scores = np.asarray(style.hit_scores)[: len(idx)] if style.hit_scores is not None else None
    labels = [f"#{r}" + (f" · {s:.2f}" if scores is not None else "") for r, s in
              zip(ranks, scores if scores is not None else ranks, strict=True)]
    traces.append(go.Scatter(
        x=x, y=y, mode="markers+text", name="search hits",
        text=[str(r) if r <= RANK_TEXT_HITS else "" for r in ranks],
        textposition="top center", textfont={"size": 11, "color": "#b71c1c"},
        customdata=row_ids[idx].reshape(-1, 1),
        hovertext=[f"{lab}<br>{h}" for lab, h in zip(labels, hover[idx], strict=True)], hoverinfo="text",
        marker={"size": 12, "color": "rgba(255,215,0,0.95)", "line": {"color": "#b71c1c", "width": 2}},
    ))
    if query_drawn:
        text = {"text": [escape_text(shorten(style.query_label, QUERY_LABEL_CHARS))], "textposition": "bottom center",
                "textfont": {"size": 13, "color": "#b71c1c"}} if query_text else {}
        traces.append(go.Scatter(
            x=[style.query_xy[0]], y=[style.query_xy[1]], mode="markers+text" if query_text else "markers",
            name="query", hoverinfo="text", **text,
            hovertext=[f"query: {escape_text(shorten(style.query_label, 80))}"],
            marker={"symbol": "star", "size": 20, "color": "#d62728", "line": {"color": "white", "width": 1.5}},
        ))
    return traces


def _focus(points: pd.DataFrame, style: MapStyle, hover, row_ids) -> list:
    import plotly.graph_objects as go

    if style.focus is None:
        return []
    pos = np.flatnonzero(row_ids == style.focus)
    if len(pos) == 0 or not np.isfinite(points["x"].to_numpy()[pos[0]]):
        return []
    i = pos[0]
    return [go.Scatter(
        x=[points["x"].iloc[i]], y=[points["y"].iloc[i]], mode="markers", name="focused",
        customdata=[[row_ids[i]]], hovertext=[hover[i]], hoverinfo="text", showlegend=False,
        marker={"size": 22, "color": "rgba(0,0,0,0)", "line": {"color": "#000000", "width": 3}},
    )]


def visible_labels(saved: SavedMap, level: str, *, width_px: float = 760, height_px: float = 680) -> pd.DataFrame:
    """A level's cluster labels at their centres, thinned so none overlaps another (largest clusters win)."""
    table = cluster_table(saved, level)
    coords = saved.coords[np.isfinite(saved.coords).all(axis=1)]
    if not len(coords) or table.empty:
        return table
    return place_labels(table, x_range=(coords[:, 0].min(), coords[:, 0].max()),
                        y_range=(coords[:, 1].min(), coords[:, 1].max()), width_px=width_px, height_px=height_px)


def place_labels(
    labels: pd.DataFrame, *, x_range: tuple[float, float], y_range: tuple[float, float],
    width_px: float = 800, height_px: float = 720, max_labels: int = 40,
) -> pd.DataFrame:
    """The labels (columns x, y, label, size) that fit without overlapping, biggest clusters first."""
    if labels is None or labels.empty:
        return labels
    # The map keeps a square aspect, so one scale (the tighter axis's) maps data units to pixels.
    scale = min(width_px / max(x_range[1] - x_range[0], 1e-9), height_px / max(y_range[1] - y_range[0], 1e-9))
    sx = sy = scale
    placed: list[tuple[float, float, float, float]] = []
    keep = []
    for idx, row in labels.sort_values("size", ascending=False).iterrows():
        half_w = len(str(row["label"])) * LABEL_CHAR_PX / 2 + 6
        half_h = LABEL_HEIGHT_PX / 2 + 4
        cx, cy = (row["x"] - x_range[0]) * sx, (row["y"] - y_range[0]) * sy
        box = (cx - half_w, cx + half_w, cy - half_h, cy + half_h)
        if any(box[0] < b[1] and b[0] < box[1] and box[2] < b[3] and b[2] < box[3] for b in placed):
            continue
        placed.append(box)
        keep.append(idx)
        if len(keep) == max_labels:
            break
    return labels.loc[keep]


def _label_annotations(labels: pd.DataFrame) -> list[dict]:
    return [
        {"x": float(row["x"]), "y": float(row["y"]), "text": escape_text(row["label"]), "showarrow": False,
         "font": {"size": 12, "color": "#111111"}, "bgcolor": "rgba(255,255,255,0.78)",
         "bordercolor": "rgba(0,0,0,0.25)", "borderwidth": 1, "borderpad": 2}
        for _, row in labels.iterrows()
    ]
