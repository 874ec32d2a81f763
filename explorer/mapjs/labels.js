"use strict";
// Label placement on every pan and zoom, in order of precedence: the query's label, the top hits'
// ranks, cluster labels (coarser levels and bigger clusters first; finer levels as the map is zoomed
// in), then the titles of the few points in view. Each goes where it overlaps nothing placed before
// it, inside the view, or is left out. Every text is set with textContent: nothing is parsed as HTML.
(function (M) {
  const measure = document.createElement("canvas").getContext("2d");

  function plain(text) {
    // Python escapes label and title texts (draw.escape_text); shown as text, they are unescaped once.
    return String(text).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function textWidth(text, style) {
    measure.font = (style.weight || 400) + " " + style.size + "px " + M.C.FONT;
    return measure.measureText(text).width;
  }

  const boxAt = (cx, cy, w, h, pad) => ({ x0: cx - w / 2 - pad, x1: cx + w / 2 + pad, y0: cy - h / 2 - pad, y1: cy + h / 2 + pad });
  const overlaps = (a, b) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
  const free = (box, taken) => !taken.some(b => overlaps(box, b));

  function shorten(text, limit) {
    return text.length > limit ? text.slice(0, limit - 1).trimEnd() + "…" : text;
  }

  function place(container, view, what) {
    // ``what``: {labels ({levels, zooms, labels: [[x, y, text, level, priority]]}), query ({x, y, text}),
    // ranks ([[position, text]]), markers (pixel boxes to keep clear), avoid (more boxes), layer, painted,
    // title (position -> text or null)}. Returns what was shown.
    const v = view.state, z = view.zoom(), frag = document.createDocumentFragment();
    const taken = (what.avoid || []).slice(), shown = { labels: [], levels: [], titles: [], ranks: [], query: "" };
    const visible = (x, y) => x >= 0 && x <= v.w && y >= 0 && y <= v.h;
    const clamp = (cx, cy, w, h) => [Math.min(Math.max(cx, w / 2 + 2), v.w - w / 2 - 2), Math.min(Math.max(cy, h / 2 + 2), v.h - h / 2 - 2)];
    const put = (cls, text, x, y, style) => {
      const div = document.createElement("div");
      div.className = cls;
      div.textContent = text;
      Object.assign(div.style, { left: x + "px", top: y + "px", fontSize: style.size + "px", fontWeight: style.weight || 400 });
      if (style.color) div.style.color = style.color;
      if (style.bg) div.style.background = style.bg;
      frag.appendChild(div);
    };
    const layer = what.layer, q = what.query;
    if (q && visible(view.px(q.x), view.py(q.y))) {
      const sx = view.px(q.x), sy = view.py(q.y), text = plain(q.text), style = { size: 13, weight: 600 };
      taken.push(boxAt(sx, sy, 20, 20, 0));
      const w = textWidth(text, style) + 8, h = 13 * 1.3 + 6, [cx, cy] = clamp(sx, sy + 12 + h / 2, w, h);
      taken.push(boxAt(cx, cy, w, h, 2));
      put("label query", text, cx, cy, style);
      shown.query = text;
    }
    const rankBoxes = [];
    for (const [i, text] of what.ranks || []) {
      const style = { size: 11, weight: 600 }, w = textWidth(text, style) + 2, cx = view.px(layer.x[i]), cy = view.py(layer.y[i]);
      for (const [dx, dy] of [[0, -16], [8 + w / 2, 0], [-(8 + w / 2), 0], [0, 16]]) {
        const box = boxAt(cx + dx, cy + dy, w, 13, 1);
        if (!visible(cx, cy) || !free(box, taken) || !free(box, rankBoxes)) continue;
        rankBoxes.push(box);
        put("label rank", text, cx + dx, cy + dy, style);
        shown.ranks.push(text);
        break;
      }
    }
    taken.push(...rankBoxes, ...(what.markers || []));
    const L = what.labels || { levels: [], zooms: [], labels: [] }, levels = L.levels.length, placed = new Set();
    for (const [x, y, raw, level] of L.labels) {
      if (shown.labels.length >= M.C.MAX_LABELS) break;
      if (level > 0 && z < L.zooms[level]) continue;  // the coarsest level shows from the full view on
      if (level + 1 < levels && z >= L.zooms[level + 1] * M.C.RETIRE_FACTOR) continue;
      const cx = view.px(x), cy = view.py(y), text = plain(raw);
      if (!visible(cx, cy) || placed.has(text)) continue;
      const style = M.C.LEVEL_STYLE[Math.min(level, M.C.LEVEL_STYLE.length - 1)];
      const w = textWidth(text, style) + 10, h = style.size * 1.3 + 4;
      // At its cluster's centre, else just below or above it (a fine cluster may share its parent's centre).
      for (const dy of [0, h + 2, -(h + 2)]) {
        const [bx, by] = clamp(cx, cy + dy, w, h), box = boxAt(bx, by, w, h, 2);
        if (!free(box, taken)) continue;
        taken.push(box);
        put("label level-" + Math.min(level, 2), text, bx, by, style);
        placed.add(text);
        shown.labels.push(text);
        shown.levels.push(L.levels[level]);
        break;
      }
    }
    const painted = what.painted;
    shown.inView = painted && painted.drawn <= M.C.TITLE_POINTS ? painted.drawn : -1;
    if (layer && what.title && shown.inView > 0) {
      const style = { size: 11 }, cell = painted.cell;
      for (let i = 0; i < layer.n; i++) {
        if (cell[i] < 0) continue;
        const full = what.title(i);
        if (!full) continue;
        const text = shorten(full, M.C.TITLE_CHARS), cx = view.px(layer.x[i]), cy = view.py(layer.y[i]);
        const w = textWidth(text, style) + 6, h = 11 * 1.3 + 2;
        // Right of the point, else left, above or below it.
        for (const [dx, dy] of [[w / 2 + 7, 0], [-(w / 2 + 7), 0], [0, -(h / 2 + 7)], [0, h / 2 + 7]]) {
          const box = boxAt(cx + dx, cy + dy, w, h, 1);
          if (box.x0 < 0 || box.y0 < 0 || box.x1 > v.w || box.y1 > v.h || !free(box, taken)) continue;
          taken.push(box);
          put("label title", text, cx + dx, cy + dy, style);
          shown.titles.push(text);
          break;
        }
      }
    }
    container.replaceChildren(frag);
    return shown;
  }

  M.labels = { place: place, plain: plain, shorten: shorten };
})(globalThis.ExplorerMap = globalThis.ExplorerMap || {});
