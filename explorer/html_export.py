"""A map as one self-contained HTML file that opens offline: the app's map core (explorer/mapjs/,
inlined) with the offline page's host (mapjs/hosts/export.js): points, labels by zoom, hover, box and
lasso, a legend and keyword search, with nothing fetched from the network.

The data travels inside the page, in the app's formats: the points layer (draw.PointsLayer's bytes,
base64), the labels of every level (draw.label_payload), the texts for hover and search as
raw-deflated JSON (base64, unpacked by the browser's DecompressionStream) in the layer's point order,
and what the page says about them (JSON). At 100k rows the texts are the bulk of the file: they are
shortened, and the page says so.
"""

from __future__ import annotations

import base64
import html
import json
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import mapjs
from .draw import (
    MapStyle,
    default_colour_column,
    drawn_rows,
    hover_thumbnails,
    label_payload,
    points_layer,
    shorten,
    title_column,
)
from .facets import encode_facets, facet_columns, pack_facets
from .html_search import WASM_CSP, SearchBlocks, keyword_blocks, search_blocks
from .map_clusters import (
    CLUSTER_LABEL_COLUMN,
    cluster_id_columns,
    cluster_levels,
    label_layers,
    named_points,
    point_labels,
)

# Texts kept for hover and search: each text column cut to this many characters (the page says so).
TEXT_CHARS = 300
# Above this many drawn rows the text columns other than the title are left out by default: at 100k
# arXiv rows their first 300 characters alone were 13 MB of base64 after deflate, the title 4 MB.
TEXT_ROWS = 20_000
TITLE_CHARS = 160
FIELD_CHARS = 60
# Hover fields chosen when the caller names none: the colour, the cluster, then a date-like column.
DEFAULT_FIELDS = ("year", "date", "listing_date", "published", "venue", "authors")
MAX_FIELDS = 4
# An image map's thumbnails go into the file (data: URIs, for the hover) up to this many bytes, in the
# layer's order; the rest are left out and the page says how many. The sample digits' are ~0.3 KB each.
THUMBNAIL_BYTES = 10_000_000
# No network of any kind: inline script and style only, images only from data: and blob: URIs.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
       "base-uri 'none'; form-action 'none'")


def to_html(saved, *, color_by: str | None = None, fields: Sequence[str] | None = None,
            text_chars: int | None = None, search: str | None = None) -> bytes:
    """The map as one offline HTML page (UTF-8): the app's map core with hover, labels by zoom, legend, search.

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
    # The app's layer (colours, legend, draw order); the page's texts carry the hover, so the layer's is left out.
    layer = points_layer(points, MapStyle(color_by=colour, title_column=title), hover=False)
    order = pd.Index(points["row_id"].to_numpy()).get_indexer(layer.ids)
    points = points.iloc[order].reset_index(drop=True)
    # Each drawn row's place in the map, in the layer's order: where the search's vectors are read.
    found = search_blocks(saved, np.flatnonzero(drawn)[order], search=search, quantise=quantise)
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
        "title_chars": TITLE_CHARS, "colour": colour, "fields": hover,
        "labels": label_payload(label_layers(saved)),
    }
    chosen = facet_columns(points, skip=cluster_id_columns(saved))  # their names are the cluster label column
    facets = pack_facets(*encode_facets(points, chosen), points["row_id"].to_numpy()) if chosen else b""
    thumbnails = page_thumbnails(saved, points["row_id"].to_numpy())
    meta["thumbnails"] = {"shown": len(thumbnails["ids"]), "left_out": thumbnails.pop("left_out")}
    packed_points, packed_texts = base64.b64encode(layer.to_bytes()).decode("ascii"), pack_texts(texts)
    packed_facets, packed_thumbnails = base64.b64encode(facets).decode("ascii"), _script_json(thumbnails)
    html_page = page(saved.name, meta=meta, points=packed_points, texts=packed_texts, facets=packed_facets,
                     search=found, thumbnails=packed_thumbnails)
    sizes = {"model": 0, "runtime": 0, "vectors": 0, **found.sizes, "points": len(packed_points),
             "texts": len(packed_texts), "facets": len(packed_facets), "thumbnails": len(packed_thumbnails)}
    sizes["page"] = len(html_page) - sum(sizes.values())
    sizes["total"] = len(html_page)
    return html_page, sizes, {k: v for k, v in found.info.items() if k != "row_ids"}


def page_thumbnails(saved, row_ids: np.ndarray, budget: int = THUMBNAIL_BYTES) -> dict:
    """An image map's thumbnails as data: URIs for the page's hover ({ids, uris}), in ``row_ids``' order until
    ``budget`` bytes are spent, and how many were left out (no thumbnails: empty lists)."""
    source = hover_thumbnails(saved)
    uris = source() if source is not None else {}
    ids, kept, spent = [], [], 0
    for row in row_ids:
        uri = uris.get(int(row))
        if uri is None:
            continue
        if spent + len(uri) > budget:
            break
        ids.append(int(row))
        kept.append(uri)
        spent += len(uri)
    return {"ids": ids, "uris": kept, "left_out": sum(1 for row in row_ids if int(row) in uris) - len(ids)}


def export_frame(saved) -> pd.DataFrame:
    """The points as the app shows them: cluster columns hold names, CLUSTER_LABEL_COLUMN the coarsest level's."""
    points = named_points(saved)
    levels = cluster_levels(saved)
    if levels and CLUSTER_LABEL_COLUMN not in points.columns:
        points = points.assign(**{CLUSTER_LABEL_COLUMN: point_labels(saved, levels[0]).to_numpy()})
    return points


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


def pack_texts(texts: dict) -> str:
    """The texts as JSON, raw-deflated (the browser's DecompressionStream("deflate-raw")), base64."""
    raw = json.dumps(texts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(packer.compress(raw) + packer.flush()).decode("ascii")


def unpack_texts(block: str) -> dict:
    """The texts back from `pack_texts`' base64."""
    return json.loads(zlib.decompress(base64.b64decode(block), -15).decode("utf-8"))


def page(name: str, *, meta: dict, points: str, texts: str, facets: str = "", search: SearchBlocks | None = None,
         thumbnails: str = '{"ids":[],"uris":[]}') -> bytes:
    """The HTML page: CSP, title, the data blocks, the search's runtime, the map core and its host script, as UTF-8."""
    script = mapjs.host_script("export")
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
  <div id="map" data-testid="export-map"></div>
  <p id="status">Loading the map…</p>
</main>
<script type="application/json" id="meta">{_script_json(meta)}</script>
<script type="application/octet-stream" id="points-data">{points}</script>
<script type="application/octet-stream" id="texts-data">{texts}</script>
<script type="application/octet-stream" id="facets-data">{facets}</script>
<script type="application/json" id="thumbnails">{thumbnails}</script>
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
  main { flex: 1; position: relative; min-height: 0; }
  #map { position: absolute; inset: 0; }
  #status { position: absolute; left: 10px; bottom: 4px; margin: 0; color: #757575; font-size: 12px;
            pointer-events: none; }
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
