"""A map as one self-contained HTML file that opens offline: points on a canvas, labels by zoom, hover,
a legend and keyword search, with nothing fetched from the network.

The page's script is ``html_export.js`` beside this module. The data travels inside the page: the
points as one base64 block of little-endian float32 x, float32 y and uint16 colour index (the drawn
rows, in draw order), the texts for hover and search as raw-deflated JSON (base64, unpacked by the
browser's DecompressionStream), and the rest (legend, labels of every level, what was shortened) as
JSON. At 100k rows the texts are the bulk of the file: they are shortened, and the page says so.
"""

from __future__ import annotations

import base64
import html
import json
import zlib
from collections.abc import Sequence
from importlib import resources

import numpy as np
import pandas as pd

from .draw import (
    MISSING,
    OTHER,
    PALETTE,
    category_values,
    default_colour_column,
    drawn_rows,
    is_categorical,
    level_zooms,
    levels_of_labels,
    shorten,
    title_column,
)
from .html_search import WASM_CSP, SearchBlocks, keyword_blocks, search_blocks
from .map_clusters import CLUSTER_LABEL_COLUMN, cluster_levels, label_layers, named_points, point_labels

# Texts kept for hover and search: each text column cut to this many characters (the page says so).
TEXT_CHARS = 300
# Above this many drawn rows the text columns other than the title are left out by default: at 100k
# arXiv rows their first 300 characters alone were 13 MB of base64 after deflate, the title 4 MB.
TEXT_ROWS = 20_000
TITLE_CHARS = 160
FIELD_CHARS = 60
LABEL_CHARS = 60
# Hover fields chosen when the caller names none: the colour, the cluster, then a date-like column.
DEFAULT_FIELDS = ("year", "date", "listing_date", "published", "venue", "authors")
MAX_FIELDS = 4
# A numeric colour with many values is drawn in this many quantile bins of the Viridis scale.
NUMERIC_BINS = 8
VIRIDIS = ["#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#fde725"]
GREY = "#9e9e9e"
# No network of any kind: inline script and style only, images only from data: and blob: URIs.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
       "base-uri 'none'; form-action 'none'")
SCRIPT = "html_export.js"


def to_html(saved, *, color_by: str | None = None, fields: Sequence[str] | None = None,
            text_chars: int | None = None, search: str | None = None) -> bytes:
    """The map as one offline HTML page (UTF-8): canvas points, zoom-dependent labels, hover, legend, search.

    ``color_by`` defaults to the app's colour (draw.default_colour_column, cluster names not ids);
    ``fields`` are the hover's fields after the title (default: the colour, the cluster, a year);
    ``text_chars`` cuts every text column for hover and search (default 300, and on maps above
    TEXT_ROWS rows only the title is kept, so that the file stays small); ``search`` "meaning" puts the
    map's model in the page, "keyword" leaves it out, None (default) does the first where the model can
    run in the page (html_search.search_blocks)."""
    return build_page(saved, color_by=color_by, fields=fields, text_chars=text_chars, search=search)[0]


def build_page(saved, *, color_by: str | None = None, fields: Sequence[str] | None = None,
               text_chars: int | None = None, search: str | None = None,
               quantise: bool = True) -> tuple[bytes, dict[str, int], dict]:
    """`to_html`'s page, its size broken down in bytes (model, runtime, vectors, points, texts, page, total) and
    its search's description (kind: "transformer", "tfidf" or None for keyword, reason, model_id); ``quantise``
    False puts the transformer in at full precision (for checks)."""
    points = export_frame(saved)
    drawn = drawn_rows(points)
    points = points[drawn].reset_index(drop=True)
    text_columns = [c for c in saved.meta.text_columns or [] if c in points.columns]
    title = title_column(points, text_columns)
    colour = color_by if color_by and color_by in points.columns else default_colour_column(points)
    codes, legend = colour_codes(points, colour)
    # The most frequent group first, the rarest last, so rare ones lie on top (as the app draws them).
    order = np.argsort(codes, kind="stable") if legend and not legend[0].get("range") else np.arange(len(points))
    points, codes = points.iloc[order].reset_index(drop=True), codes[order]
    # Each drawn row's place in the map, in the page's order: where the search's vectors are read.
    positions = np.flatnonzero(drawn)[order]
    found = search_blocks(saved, positions, search=search, quantise=quantise)
    if text_chars is None:
        text_chars = TEXT_CHARS if len(points) <= TEXT_ROWS else 0
    others = [c for c in text_columns if c != title] if text_chars > 0 else []
    hover = hover_fields(points, fields, colour=colour, exclude={title, *text_columns})
    texts = {"title": _strings(points, title, TITLE_CHARS) if title else [str(r) for r in points["row_id"]],
             "text": _joined(points, others, text_chars), "fields": {f: _field(points[f]) for f in hover}}
    meta = {
        "name": saved.name, "rows": int(len(saved.points)), "drawn": int(len(points)),
        "title": title or "row id", "text_columns": others, "text_chars": int(text_chars),
        "omitted_text": [c for c in text_columns if c != title and c not in others],
        "title_chars": TITLE_CHARS, "colour": colour, "legend": legend, "fields": hover,
        "labels": packed_labels(label_layers(saved)),
    }
    packed_points, packed_texts = pack_points(points, codes), pack_texts(texts)
    html_page = page(saved.name, meta=meta, points=packed_points, texts=packed_texts, search=found)
    sizes = {"model": 0, "runtime": 0, "vectors": 0, **found.sizes, "points": len(packed_points),
             "texts": len(packed_texts)}
    sizes["page"] = len(html_page) - sum(sizes.values())
    sizes["total"] = len(html_page)
    return html_page, sizes, {k: v for k, v in found.info.items() if k != "row_ids"}


def export_frame(saved) -> pd.DataFrame:
    """The points as the app shows them: cluster columns hold names, CLUSTER_LABEL_COLUMN the coarsest level's."""
    points = named_points(saved)
    levels = cluster_levels(saved)
    if levels and CLUSTER_LABEL_COLUMN not in points.columns:
        points = points.assign(**{CLUSTER_LABEL_COLUMN: point_labels(saved, levels[0]).to_numpy()})
    return points


def colour_codes(points: pd.DataFrame, column: str | None) -> tuple[np.ndarray, list[dict]]:
    """Each row's colour index and the legend: categories most frequent first (rare ones folded into
    "(other)"), or quantile bins of a numeric column ("range" set on each entry)."""
    n = len(points)
    if not column or column not in points.columns or not n:
        return np.zeros(n, dtype=np.uint16), [{"name": "points", "colour": PALETTE[0], "count": n}]
    series = points[column]
    if is_categorical(series):
        values = category_values(series)
        counts = values.value_counts()
        index = {value: i for i, value in enumerate(counts.index)}
        legend = [{"name": shorten(value, 40), "count": int(counts[value]),
                   "colour": GREY if value in (OTHER, MISSING) else PALETTE[i % len(PALETTE)]}
                  for value, i in index.items()]
        return values.map(index).to_numpy(dtype=np.uint16), legend
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(numbers)
    if not finite.any():
        return np.zeros(n, dtype=np.uint16), [{"name": MISSING, "colour": GREY, "count": n}]
    edges = np.unique(np.quantile(numbers[finite], np.linspace(0, 1, NUMERIC_BINS + 1)))
    bins = np.clip(np.searchsorted(edges, numbers, side="right") - 1, 0, max(len(edges) - 2, 0))
    legend = [{"name": f"{edges[i]:.4g} – {edges[i + 1]:.4g}", "colour": VIRIDIS[round(i * 7 / max(len(edges) - 2, 1))],
               "count": int(((bins == i) & finite).sum()), "range": True} for i in range(max(len(edges) - 1, 1))]
    codes = np.where(finite, bins, len(legend)).astype(np.uint16)
    if not finite.all():
        legend.append({"name": MISSING, "colour": GREY, "count": int((~finite).sum()), "range": True})
    return codes, legend


def hover_fields(points: pd.DataFrame, fields: Sequence[str] | None, *, colour: str | None,
                 exclude: set) -> list[str]:
    """The hover's fields after the title: the caller's (that exist), else the colour, the cluster and a year."""
    if fields is not None:
        chosen = [f for f in fields if f in points.columns]
    else:
        chosen = [colour, CLUSTER_LABEL_COLUMN] + [f for f in DEFAULT_FIELDS if f in points.columns][:1]
    seen: list[str] = []
    for name in chosen:
        if name and name in points.columns and name not in exclude and name not in seen:
            seen.append(name)
    return seen[:MAX_FIELDS]


def packed_labels(labels: pd.DataFrame) -> dict:
    """Every level's labels for the page's placement: rows of [x, y, text, level index, priority],
    highest priority first; ``zooms`` gives the zoom from which each level shows (draw.level_zooms)."""
    if labels is None or labels.empty:
        return {"levels": [], "zooms": [], "rows": []}
    labels = labels[np.isfinite(labels["x"].to_numpy(float)) & np.isfinite(labels["y"].to_numpy(float))]
    if labels.empty:
        return {"levels": [], "zooms": [], "rows": []}
    levels = levels_of_labels(labels)
    index = {level: i for i, level in enumerate(levels)}
    ordered = labels.sort_values("priority", ascending=False, kind="stable")
    # Plain text: the page sets it with textContent, so nothing here is HTML.
    rows = [[round(float(x), 5), round(float(y), 5), shorten(text, LABEL_CHARS), index[str(level)], round(float(p), 5)]
            for x, y, text, level, p in ordered[["x", "y", "text", "level", "priority"]].itertuples(index=False)]
    return {"levels": levels, "zooms": level_zooms(labels), "rows": rows}


def pack_points(points: pd.DataFrame, codes: np.ndarray) -> str:
    """x (float32), y (float32) and colour index (uint16), little-endian, one after the other, base64."""
    data = b"".join([points["x"].to_numpy().astype("<f4").tobytes(), points["y"].to_numpy().astype("<f4").tobytes(),
                     codes.astype("<u2").tobytes()])
    return base64.b64encode(data).decode("ascii")


def unpack_points(block: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and colour index back from `pack_points`' base64 (tests read what the page reads)."""
    data = base64.b64decode(block)
    return (np.frombuffer(data, "<f4", n, 0), np.frombuffer(data, "<f4", n, 4 * n),
            np.frombuffer(data, "<u2", n, 8 * n))


def pack_texts(texts: dict) -> str:
    """The texts as JSON, raw-deflated (the browser's DecompressionStream("deflate-raw")), base64."""
    raw = json.dumps(texts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(packer.compress(raw) + packer.flush()).decode("ascii")


def unpack_texts(block: str) -> dict:
    """The texts back from `pack_texts`' base64."""
    return json.loads(zlib.decompress(base64.b64decode(block), -15).decode("utf-8"))


def page(name: str, *, meta: dict, points: str, texts: str, search: SearchBlocks | None = None) -> bytes:
    """The HTML page: CSP, title, the data blocks and the scripts (search's, then html_export.js), as UTF-8."""
    script = resources.files(__package__).joinpath(SCRIPT).read_text(encoding="utf-8")
    title = html.escape(name)
    search = search or keyword_blocks("This file was made without its map's model.")
    # WebAssembly compiles only with 'wasm-unsafe-eval': added where the model's runtime is in the file.
    csp = CSP.replace("'unsafe-inline';", f"'unsafe-inline' {WASM_CSP};", 1) if search.needs_wasm else CSP
    data = "".join(f'<script type="application/octet-stream" id="{key}">{block}</script>\n'
                   for key, block in search.blocks.items())
    scripts = "".join(f"<script>\n{text}\n</script>\n" for text in search.scripts)
    return f"""<!doctype html>
<html>
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="Embedding Explorer">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
  <h1 id="name">{title}</h1>
  <form id="search" role="search" autocomplete="off">
    <label for="query">Keyword search</label>
    <input id="query" type="search" placeholder="words that must all appear (not a search by meaning)">
    <span id="count" aria-live="polite"></span>
  </form>
  <p id="about"></p>
</header>
<main>
  <div id="map" data-testid="export-map"><canvas id="points"></canvas><div id="labels"></div>
    <div id="hover" role="tooltip"></div><button id="reset" type="button" title="Show the whole map">Reset view</button>
    <p id="status">Loading the map…</p></div>
  <aside id="legend"><h2 id="legend-title"></h2><ul id="legend-items"></ul></aside>
</main>
<script type="application/json" id="meta">{_script_json(meta)}</script>
<script type="application/octet-stream" id="points-data">{points}</script>
<script type="application/octet-stream" id="texts-data">{texts}</script>
<script type="application/json" id="search-meta">{_script_json(search.info)}</script>
{data}{scripts}<script>
{script}
</script>
</body>
</html>
""".encode()


STYLE = """
  html, body { margin: 0; height: 100%; font: 14px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
               color: #212121; background: #fafafa; }
  body { display: flex; flex-direction: column; }
  header { padding: 8px 14px 6px; border-bottom: 1px solid #e0e0e0; background: white; }
  h1 { font-size: 18px; margin: 0 0 6px; font-weight: 600; }
  #search { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
  #search label { font-weight: 600; }
  #query { width: min(440px, 60vw); padding: 4px 8px; font: inherit; border: 1px solid #9e9e9e; border-radius: 4px; }
  #count { color: #b71c1c; font-weight: 600; }
  #about { margin: 4px 0 0; color: #616161; font-size: 12px; }
  main { flex: 1; display: flex; min-height: 0; }
  #map { position: relative; flex: 1; min-width: 0; overflow: hidden; background: white; cursor: grab;
         touch-action: none; user-select: none; }
  #map.dragging { cursor: grabbing; }
  #points { position: absolute; inset: 0; width: 100%; height: 100%; display: block; }
  #labels { position: absolute; inset: 0; pointer-events: none; }
  .label { position: absolute; transform: translate(-50%, -50%); white-space: nowrap; padding: 1px 4px;
           border: 1px solid rgba(0,0,0,0.25); border-radius: 2px; line-height: 1.3; }
  .level-0 { font-size: 13px; color: #111; background: rgba(255,255,255,0.82); font-weight: 600; }
  .level-1 { font-size: 12px; color: #263238; background: rgba(255,255,255,0.78); }
  .level-2 { font-size: 11px; color: #37474f; background: rgba(255,255,255,0.74); }
  .title { font-size: 11px; color: #212121; background: rgba(255,255,255,0.7); border: none; padding: 0 3px; }
  #hover { position: absolute; display: none; pointer-events: none; z-index: 5; max-width: 380px; padding: 6px 8px;
           background: rgba(255,255,255,0.97); border: 1px solid #9e9e9e; border-radius: 4px;
           box-shadow: 0 1px 4px rgba(0,0,0,0.25); font-size: 12px; line-height: 1.35; }
  #hover .t { font-weight: 600; font-size: 13px; margin-bottom: 2px; }
  #hover .f i { color: #616161; }
  #hover .x { color: #424242; margin-top: 3px; }
  #reset { position: absolute; top: 8px; right: 8px; z-index: 4; font: inherit; font-size: 12px; padding: 3px 8px;
           background: white; border: 1px solid #bdbdbd; border-radius: 4px; cursor: pointer; }
  #status { position: absolute; left: 10px; bottom: 4px; margin: 0; color: #757575; font-size: 12px;
            pointer-events: none; }
  #legend { width: 240px; overflow-y: auto; padding: 8px 12px; border-left: 1px solid #e0e0e0; background: white; }
  #legend h2 { font-size: 13px; margin: 0 0 6px; }
  #legend ul { list-style: none; margin: 0; padding: 0; }
  #legend li { display: flex; align-items: center; gap: 6px; padding: 2px 0; cursor: pointer; font-size: 12px; }
  #legend li.off { opacity: 0.35; }
  #legend .swatch { width: 11px; height: 11px; border-radius: 50%; flex: none; }
  #legend .n { margin-left: auto; color: #9e9e9e; }
  @media (max-width: 700px) { main { flex-direction: column; } #legend { width: auto; max-height: 30vh; } }
"""


def _script_json(value) -> str:
    """JSON safe inside a <script> element: no "</script>" or "<!--" can end it early."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c").replace(
        ">", "\\u003e").replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _clean(value) -> str:
    return "" if value is None or value is pd.NA or (isinstance(value, float) and value != value) else str(value)


def _strings(points: pd.DataFrame, column: str, limit: int) -> list[str]:
    # A plain loop: pandas' string methods were no faster on 100k titles.
    return [shorten(_clean(v), limit) if v is not None else "" for v in points[column].to_numpy(dtype=object)]


def _joined(points: pd.DataFrame, columns: Sequence[str], limit: int) -> list[str] | None:
    """The text columns other than the title, each cut to ``limit`` characters, joined by " · " (None if none)."""
    if not columns or limit <= 0:
        return None
    parts = [_strings(points, c, limit) for c in columns]
    return [" · ".join(p for p in row if p) for row in zip(*parts, strict=True)]


def _field(series: pd.Series) -> dict:
    """A hover field: its distinct values and each row's index into them (categories repeat: one copy each)."""
    text = [shorten(_clean(v), FIELD_CHARS) for v in series.to_numpy(dtype=object)]
    values, codes = np.unique(np.asarray(text, dtype=object), return_inverse=True)
    return {"values": values.tolist(), "codes": codes.astype(np.int64).tolist()}
