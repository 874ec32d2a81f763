"use strict";
// The offline HTML export's page (explorer/html_export.py writes the data blocks this reads).
//
// Points: a plain loop over typed arrays stamps each point's disc into an ImageData, as the app's map
// widget does (explorer/ui/frontend/map/index.html): 100k points take a few ms, without WebGL.
// Labels: every level's cluster labels arrive once; on each pan and zoom the ones that fit are
// placed again, highest priority first, coarse levels giving way to finer ones as the map is zoomed
// in (the widget's rules: draw.level_zooms, RETIRE_FACTOR, MAX_LABELS).
// Every text shown comes from the file and is set with textContent: nothing is parsed as HTML.
// What is drawn is exposed for tests on window.explorerExport and as data-* attributes on #map.
(function () {
  // At most this many cluster labels at once: more would hide the points they name.
  const MAX_LABELS = 50;
  // A level's labels give way to finer ones from this many times the next level's zoom on.
  const RETIRE_FACTOR = 4;
  // The full view leaves about 5% of the map's extent free on each side (plotly's autorange pad).
  const PAD = 1.1;
  // Titles show beside the points once a zoom leaves at most this many in view (draw.TITLE_POINTS, POINT_TITLE_CHARS).
  const TITLE_POINTS = 25, TITLE_CHARS = 48;
  const PICK_RADIUS = 10;
  const GRID_PX = 16;
  const ALPHA = 0.85;
  // While a search is shown, the rows that do not match keep this share of their colour.
  const FADED_ALPHA = 0.15;
  const HIT_COLOUR = [255, 215, 0], HIT_RING = [183, 28, 28];
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  const LEVEL_STYLE = [{ size: 13, weight: 600 }, { size: 12, weight: 400 }, { size: 11, weight: 400 }];

  const meta = JSON.parse(document.getElementById("meta").textContent);
  const box = document.getElementById("map"), canvas = document.getElementById("points");
  const labelsBox = document.getElementById("labels"), hoverBox = document.getElementById("hover");
  const statusLine = document.getElementById("status"), query = document.getElementById("query");
  const countLine = document.getElementById("count");
  const ctx = canvas.getContext("2d", { alpha: false });
  const n = meta.drawn;
  const state = window.explorerExport = {
    ready: false, textsReady: false, total: n, drawn: 0, zoom: 1, labels: [], levels: [], matches: null,
    query: "", drawMs: 0, hoverRow: -1, error: null,
  };

  function bytesOf(id) {
    const text = atob(document.getElementById(id).textContent.trim());
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }

  // x (float32), y (float32), colour index (uint16), little-endian: html_export.pack_points.
  const packed = bytesOf("points-data").buffer;
  const xs = new Float32Array(packed, 0, n), ys = new Float32Array(packed, 4 * n, n);
  const colour = new Uint16Array(packed, 8 * n, n);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = xs[i], y = ys[i];
    if (x < x0) x0 = x; if (x > x1) x1 = x;
    if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  if (!(x1 >= x0)) { x0 = -1; x1 = 1; y0 = -1; y1 = 1; }

  const legend = meta.legend;
  const hidden = new Uint8Array(legend.length + 1);
  const rgb = legend.map(entry => {
    const h = entry.colour.replace("#", "");
    return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
  });
  const over = (c, a) => (255 << 24) | (Math.round(255 + (c[2] - 255) * a) << 16)
    | (Math.round(255 + (c[1] - 255) * a) << 8) | Math.round(255 + (c[0] - 255) * a);
  const solid = new Uint32Array(rgb.map(c => over(c, ALPHA)));
  const faded = new Uint32Array(rgb.map(c => over(c, FADED_ALPHA)));
  // Discs get smaller as more points are in view, so a dense region still shows its structure.
  const discPx = inView => inView > 50000 ? 3 : inView > 5000 ? 4 : 6;

  let texts = null, haystack = null, match = null, matchList = [];
  let w = 1, h = 1, dpr = 1, image = null, pixels = null, cell = new Int32Array(n), grid = null;
  const view = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale: 1, fit: 1, moved: false };

  function discOffsets(diameter, width) {
    // Pixel centres within r less half a pixel: round discs, where r² alone gives small crosses.
    const r = Math.max(0.5, diameter / 2), reach = Math.ceil(r), out = [], limit = Math.max(0.25, r * r - r / 2);
    for (let dy = -reach; dy <= reach; dy++) {
      for (let dx = -reach; dx <= reach; dx++) if (dx * dx + dy * dy <= limit) out.push(dx, dy, dy * width + dx);
    }
    return out.length ? out : [0, 0, 0];
  }

  function resize() {
    const rect = box.getBoundingClientRect();
    const nw = Math.max(1, Math.round(rect.width)), nh = Math.max(1, Math.round(rect.height));
    const nd = window.devicePixelRatio || 1;
    if (nw === w && nh === h && nd === dpr && image) return;
    w = nw; h = nh; dpr = nd;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    image = ctx.createImageData(canvas.width, canvas.height);
    pixels = new Uint32Array(image.data.buffer);
    view.fit = Math.min(w / ((x1 - x0) * PAD || 1), h / ((y1 - y0) * PAD || 1));
    if (!view.moved) fitView();
  }

  function fitView() {
    Object.assign(view, { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale: view.fit, moved: false });
  }

  function stamp(offsets, p, px, py, value, W, H, reach) {
    if (px >= reach && py >= reach && px < W - reach && py < H - reach) {
      for (let j = 2; j < offsets.length; j += 3) pixels[p + offsets[j]] = value;
      return;
    }
    for (let j = 0; j < offsets.length; j += 3) {
      const x = px + offsets[j], y = py + offsets[j + 1];
      if (x >= 0 && y >= 0 && x < W && y < H) pixels[y * W + x] = value;
    }
  }

  function draw() {
    const started = performance.now();
    resize();
    const W = canvas.width, H = canvas.height, s = view.scale * dpr;
    const ox = W / 2 - view.cx * s, oy = H / 2 + view.cy * s;
    pixels.fill(0xffffffff);
    // One pass finds each point's pixel (and how many are in view, which sets the disc size), one draws.
    let drawn = 0;
    for (let i = 0; i < n; i++) {
      const px = (xs[i] * s + ox) | 0, py = (oy - ys[i] * s) | 0;
      if (px < 0 || py < 0 || px >= W || py >= H || hidden[colour[i]]) { cell[i] = -1; continue; }
      cell[i] = py * W + px;
      drawn++;
    }
    const pointPx = discPx(drawn);
    const disc = discOffsets(pointPx * dpr, W), reach = Math.ceil(pointPx * dpr / 2);
    const searching = match !== null;
    for (let i = 0; i < n; i++) {
      const p = cell[i];
      if (p < 0) continue;
      const px = p % W, k = colour[i];
      stamp(disc, p, px, (p - px) / W, searching && !match[i] ? faded[k] : solid[k], W, H, reach);
    }
    if (searching) {
      // Matches on top of everything, gold with a dark red ring (as the app shows search hits).
      const ringPx = Math.max(pointPx + 3, 7) * dpr;
      const ring = discOffsets(ringPx, W), inner = discOffsets(ringPx - 2.5 * dpr, W), r = Math.ceil(ringPx / 2);
      const ringValue = over(HIT_RING, 1), innerValue = over(HIT_COLOUR, 1);
      for (const i of matchList) {
        const p = cell[i];
        if (p < 0) continue;
        const px = p % W, py = (p - px) / W;
        stamp(ring, p, px, py, ringValue, W, H, r);
        stamp(inner, p, px, py, innerValue, W, H, r);
      }
    }
    ctx.putImageData(image, 0, 0);
    grid = null;
    state.drawn = drawn;
    state.zoom = view.scale / view.fit;
    placeLabels();
    state.drawMs = performance.now() - started;
    box.dataset.pointsDrawn = String(drawn);
    box.dataset.zoom = state.zoom.toFixed(3);
    box.dataset.drawMs = state.drawMs.toFixed(1);
  }

  let scheduled = false;
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => { scheduled = false; draw(); });
  }

  // ------------------------------------------------------------------ labels

  const measure = document.createElement("canvas").getContext("2d");
  function textWidth(text, style) {
    measure.font = style.weight + " " + style.size + "px " + FONT;
    return measure.measureText(text).width;
  }

  function boxAt(cx, cy, bw, bh, pad) {
    return { x0: cx - bw / 2 - pad, x1: cx + bw / 2 + pad, y0: cy - bh / 2 - pad, y1: cy + bh / 2 + pad };
  }

  function free(b, taken) {
    for (const t of taken) if (b.x0 < t.x1 && t.x0 < b.x1 && b.y0 < t.y1 && t.y0 < b.y1) return false;
    return true;
  }

  function placeLabels() {
    // Highest priority first (coarse levels, then big clusters): each label at its cluster's centre,
    // else just below or above it, inside the view and overlapping none placed before it, or left out.
    const L = meta.labels, levels = L.levels.length, z = state.zoom;
    const taken = [], shown = [], shownLevels = [], placed = new Set(), frag = document.createDocumentFragment();
    taken.push(boxAt(w - 50, 20, 100, 30, 0));  // the reset button
    // Labels must not hide search matches (the app keeps its hits' markers clear the same way).
    if (match && matchList.length <= 100) {
      for (const i of matchList) if (cell[i] >= 0) { const [px, py] = state.at(i); taken.push(boxAt(px, py, 8, 8, 0)); }
    }
    for (const [x, y, text, level] of L.rows) {
      if (shown.length >= MAX_LABELS) break;
      if (level > 0 && z < L.zooms[level]) continue;  // the coarsest level shows from the full view on
      if (level + 1 < levels && z >= L.zooms[level + 1] * RETIRE_FACTOR) continue;
      const cx = (x - view.cx) * view.scale + w / 2, cy = h / 2 - (y - view.cy) * view.scale;
      if (cx < 0 || cy < 0 || cx > w || cy > h || placed.has(text)) continue;
      const style = LEVEL_STYLE[Math.min(level, LEVEL_STYLE.length - 1)];
      const bw = textWidth(text, style) + 10, bh = style.size * 1.3 + 4;
      for (const dy of [0, bh + 2, -(bh + 2)]) {
        const bx = Math.min(Math.max(cx, bw / 2 + 2), w - bw / 2 - 2);
        const by = Math.min(Math.max(cy + dy, bh / 2 + 2), h - bh / 2 - 2);
        const b = boxAt(bx, by, bw, bh, 2);
        if (!free(b, taken)) continue;
        taken.push(b);
        const div = document.createElement("div");
        div.className = "label level-" + Math.min(level, 2);
        div.textContent = text;
        div.style.left = bx + "px";
        div.style.top = by + "px";
        frag.appendChild(div);
        placed.add(text);
        shown.push(text);
        shownLevels.push(L.levels[level]);
        break;
      }
    }
    // Once few points are in view, their titles beside them (right, else left, above or below), as in the app.
    const titles = [];
    if (texts && state.drawn && state.drawn <= TITLE_POINTS) {
      const style = { size: 11, weight: 400 };
      for (let i = 0; i < n; i++) {
        if (cell[i] < 0) continue;
        const full = texts.title[i], text = full.length > TITLE_CHARS ? full.slice(0, TITLE_CHARS - 1).trimEnd() + "…" : full;
        const [cx, cy] = state.at(i), bw = textWidth(text, style) + 6, bh = 11 * 1.3 + 2;
        for (const [dx, dy] of [[bw / 2 + 7, 0], [-(bw / 2 + 7), 0], [0, -(bh / 2 + 7)], [0, bh / 2 + 7]]) {
          const b = boxAt(cx + dx, cy + dy, bw, bh, 1);
          if (b.x0 < 0 || b.y0 < 0 || b.x1 > w || b.y1 > h || !free(b, taken)) continue;
          taken.push(b);
          const div = document.createElement("div");
          div.className = "label title";
          div.textContent = text;
          div.style.left = cx + dx + "px";
          div.style.top = cy + dy + "px";
          frag.appendChild(div);
          titles.push(text);
          break;
        }
      }
    }
    state.titles = titles;
    labelsBox.replaceChildren(frag);
    state.labels = shown;
    state.levels = shownLevels;
    box.dataset.labels = JSON.stringify(shown);
  }

  // ------------------------------------------------------------------ hover

  function buildGrid() {
    // The points drawn in the last frame, bucketed by cells of GRID_PX (a counting sort on their pixels).
    const W = canvas.width, size = GRID_PX * dpr, gw = Math.ceil(W / size), gh = Math.ceil(canvas.height / size);
    const start = new Int32Array(gw * gh + 1), order = new Int32Array(state.drawn);
    const bucket = p => Math.floor(Math.floor(p / W) / size) * gw + Math.floor((p % W) / size);
    for (let i = 0; i < n; i++) if (cell[i] >= 0) start[bucket(cell[i]) + 1]++;
    for (let g = 0; g < gw * gh; g++) start[g + 1] += start[g];
    const fill = start.slice(0, gw * gh);
    for (let i = 0; i < n; i++) if (cell[i] >= 0) order[fill[bucket(cell[i])]++] = i;
    return { gw: gw, gh: gh, size: size, start: start, order: order };
  }

  function nearest(cssX, cssY) {
    // The row drawn nearest to the pointer within PICK_RADIUS pixels (on a tie the one drawn on top), or -1.
    if (!state.drawn) return -1;
    if (!grid) grid = buildGrid();
    const W = canvas.width, px = cssX * dpr, py = cssY * dpr, r = PICK_RADIUS * dpr;
    let best = -1, bestD = r * r;
    const g0 = Math.max(0, Math.floor((px - r) / grid.size)), g1 = Math.min(grid.gw - 1, Math.floor((px + r) / grid.size));
    const h0 = Math.max(0, Math.floor((py - r) / grid.size)), h1 = Math.min(grid.gh - 1, Math.floor((py + r) / grid.size));
    for (let gy = h0; gy <= h1; gy++) {
      for (let gx = g0; gx <= g1; gx++) {
        const b = gy * grid.gw + gx;
        for (let k = grid.start[b]; k < grid.start[b + 1]; k++) {
          const i = grid.order[k], p = cell[i], dx = p % W - px, dy = Math.floor(p / W) - py;
          const d = dx * dx + dy * dy;
          // A search match is drawn on top, so it wins a tie as well.
          const top = match && match[i] && !(match[best] === 1);
          if (d < bestD || (d === bestD && (i > best || top))) { best = i; bestD = d; }
        }
      }
    }
    return best;
  }

  function line(parent, cls, text, name) {
    const div = document.createElement("div");
    div.className = cls;
    if (name) {
      const i = document.createElement("i");
      i.textContent = name + ": ";
      div.appendChild(i);
    }
    div.appendChild(document.createTextNode(text));
    parent.appendChild(div);
  }

  function showHover(i, cssX, cssY) {
    const group = legend[colour[i]];
    hoverBox.replaceChildren();
    if (!texts) {
      line(hoverBox, "t", group ? group.name : "");
    } else {
      line(hoverBox, "t", texts.title[i]);
      for (const name of meta.fields) {
        const field = texts.fields[name];
        const value = field.values[field.codes[i]];
        if (value) line(hoverBox, "f", value, name);
      }
      if (texts.text && texts.text[i]) line(hoverBox, "x", texts.text[i]);
    }
    hoverBox.style.display = "block";
    const bw = hoverBox.offsetWidth, bh = hoverBox.offsetHeight;
    hoverBox.style.left = Math.max(0, cssX + 14 + bw > w ? cssX - 14 - bw : cssX + 14) + "px";
    hoverBox.style.top = Math.max(0, Math.min(h - bh, cssY - bh / 2)) + "px";
    state.hoverRow = i;
    box.dataset.hoverRow = String(i);
  }

  function hideHover() {
    hoverBox.style.display = "none";
    state.hoverRow = -1;
    box.dataset.hoverRow = "";
  }

  // ------------------------------------------------------------------ pan and zoom

  let drag = null, hoverFrame = 0;
  box.addEventListener("pointerdown", ev => {
    if (ev.button !== 0 || ev.target.closest("#reset")) return;
    drag = { x: ev.clientX, y: ev.clientY, cx: view.cx, cy: view.cy };
    box.setPointerCapture(ev.pointerId);
    box.classList.add("dragging");
    hideHover();
  });
  box.addEventListener("pointermove", ev => {
    const rect = box.getBoundingClientRect();
    if (drag) {
      view.cx = drag.cx - (ev.clientX - drag.x) / view.scale;
      view.cy = drag.cy + (ev.clientY - drag.y) / view.scale;
      view.moved = true;
      schedule();
      return;
    }
    const x = ev.clientX - rect.left, y = ev.clientY - rect.top;
    cancelAnimationFrame(hoverFrame);
    hoverFrame = requestAnimationFrame(() => {
      const i = nearest(x, y);
      if (i < 0) hideHover(); else showHover(i, x, y);
    });
  });
  const endDrag = () => { drag = null; box.classList.remove("dragging"); };
  box.addEventListener("pointerup", endDrag);
  box.addEventListener("pointercancel", endDrag);
  box.addEventListener("pointerleave", () => { if (!drag) hideHover(); });
  box.addEventListener("wheel", ev => {
    ev.preventDefault();
    const rect = box.getBoundingClientRect(), mx = ev.clientX - rect.left, my = ev.clientY - rect.top;
    const step = ev.deltaMode === 1 ? 0.05 : ev.deltaMode === 2 ? 1 : 0.0015;
    const scale = Math.min(view.fit * 20000, Math.max(view.fit * 0.5, view.scale * Math.exp(-ev.deltaY * step)));
    // The point under the pointer stays where it is.
    const dx = view.cx + (mx - w / 2) / view.scale, dy = view.cy - (my - h / 2) / view.scale;
    Object.assign(view, { scale: scale, cx: dx - (mx - w / 2) / scale, cy: dy + (my - h / 2) / scale, moved: true });
    hideHover();
    schedule();
  }, { passive: false });
  box.addEventListener("dblclick", () => { fitView(); schedule(); });
  document.getElementById("reset").addEventListener("click", () => { fitView(); schedule(); });
  new ResizeObserver(schedule).observe(box);

  // ------------------------------------------------------------------ legend

  function buildLegend() {
    document.getElementById("legend-title").textContent = meta.colour ? "Colour: " + meta.colour : "Points";
    const list = document.getElementById("legend-items");
    legend.forEach((entry, k) => {
      const li = document.createElement("li");
      li.title = "Click to hide or show";
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = entry.colour;
      const name = document.createElement("span");
      name.textContent = entry.name;
      const count = document.createElement("span");
      count.className = "n";
      count.textContent = entry.count.toLocaleString("en");
      li.append(swatch, name, count);
      li.addEventListener("click", () => {
        hidden[k] = hidden[k] ? 0 : 1;
        li.classList.toggle("off", !!hidden[k]);
        schedule();
      });
      list.appendChild(li);
    });
  }

  // ------------------------------------------------------------------ keyword search

  // Hits of a search by meaning shown at once (the app's default result count).
  const MEANING_K = 10;
  let searchInfo = { mode: "keyword", ready: false, reason: "" }, searchSeq = 0;

  function showMatches(text, list, line) {
    match = list ? new Uint8Array(n) : null;
    matchList = list || [];
    for (const i of matchList) match[i] = 1;
    state.matches = list ? matchList.length : null;
    box.dataset.matches = list ? String(matchList.length) : "";
    countLine.textContent = line;
    schedule();
  }

  // Rows whose title and text (as kept in this file) contain every word, case-insensitive.
  function keywordRows(text) {
    const words = text.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length || !texts) return null;
    if (!haystack) {
      haystack = new Array(n);
      for (let i = 0; i < n; i++) haystack[i] = (texts.title[i] + "\n" + (texts.text ? texts.text[i] : "")).toLowerCase();
    }
    const found = [];
    for (let i = 0; i < n; i++) {
      const hay = haystack[i];
      let all = true;
      for (const word of words) if (!hay.includes(word)) { all = false; break; }
      if (all) found.push(i);
    }
    return { words, found };
  }

  function search(text) {
    state.query = text;
    const seq = ++searchSeq;
    if (searchInfo.mode === "meaning" && searchInfo.ready && text.trim()) {
      window.explorerSearch(text, MEANING_K).then(result => {
        if (seq !== searchSeq) return;  // a newer query was typed meanwhile
        state.hits = { rows: result.rows, scores: result.scores, ms: result.ms };
        showMatches(text, result.index, "the " + result.index.length + " rows nearest in meaning");
      }).catch(error => { state.error = String(error && error.message || error); statusLine.textContent = state.error; });
      return;
    }
    const keyword = keywordRows(text);
    state.hits = null;
    if (!keyword) { showMatches(text, null, ""); return; }
    showMatches(text, keyword.found, keyword.found.length.toLocaleString("en") + " of " + n.toLocaleString("en")
      + " rows contain " + (keyword.words.length > 1 ? "all these words" : "this word"));
  }

  let searchTimer = 0;
  query.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(() => search(query.value), 150); });
  document.getElementById("search").addEventListener("submit", ev => {
    ev.preventDefault();
    clearTimeout(searchTimer);
    search(query.value);
  });

  // The page's search API's keyword answer (maps whose model is not in the file).
  function keywordAnswer(text, k) {
    const keyword = keywordRows(text), index = keyword ? keyword.found.slice(0, k) : [];
    const ids = searchInfo.rowIds || [];
    return { index, rows: index.map(i => ids[i]), scores: index.map(() => 1) };
  }

  function describe() {
    const parts = [n.toLocaleString("en") + " points" + (meta.rows > n ? " (of " + meta.rows.toLocaleString("en")
      + " rows; the others have no place on the map)" : "") + ". Drag to pan, wheel to zoom, double-click to reset."];
    const where = meta.text_columns.length ? [meta.title].concat(meta.text_columns).join(" and ") + " together contain"
      : meta.title + " contains";
    if (searchInfo.mode === "meaning") {
      parts.push("Search by meaning with the map's own model (" + searchInfo.model + "), run inside this file: "
        + "the " + MEANING_K + " rows nearest to what you type light up"
        + (searchInfo.ready ? "." : " (the model is loading…)."));
    } else {
      parts.push((searchInfo.reason ? searchInfo.reason.replace(/\.?$/, ". ") : "")
        + "Keyword search, not a search by meaning: it finds the rows whose " + where
        + " every word you type (case-insensitive, parts of words count).");
    }
    const cut = ["Texts are shortened to keep this file small: titles to " + meta.title_chars + " characters"];
    if (meta.text_columns.length) cut.push(meta.text_columns.join(", ") + " to the first " + meta.text_chars + " characters");
    let note = cut.join(", ") + ".";
    if (meta.omitted_text && meta.omitted_text.length) {
      note += " On a map this big the " + meta.omitted_text.join(", ") + (meta.omitted_text.length > 1 ? " columns are"
        : " column is") + " left out: search and hover use the titles.";
    }
    parts.push(note);
    document.getElementById("about").textContent = parts.join(" ");
  }

  async function loadTexts() {
    if (typeof DecompressionStream === "undefined") {
      throw new Error("this browser cannot unpack the texts (it lacks DecompressionStream): hover shows groups only");
    }
    const stream = new Blob([bytesOf("texts-data")]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    texts = JSON.parse(await new Response(stream).text());
  }

  // For tests: where a place of the map (or row i) is now, in CSS pixels from the map's top left corner.
  state.project = (x, y) => [(x - view.cx) * view.scale + w / 2, h / 2 - (y - view.cy) * view.scale];
  state.at = i => state.project(xs[i], ys[i]);
  // For tests: hover row i at its place on the map and return what the hover says.
  state.hover = i => {
    showHover(i, (xs[i] - view.cx) * view.scale + w / 2, h / 2 - (ys[i] - view.cy) * view.scale);
    return hoverBox.textContent;
  };

  // Search by meaning (explorer/mapjs/page_search.js) where the file carries the map's model.
  const searchMeta = JSON.parse(document.getElementById("search-meta").textContent);
  searchInfo = { mode: searchMeta.kind ? "meaning" : "keyword", ready: false, reason: searchMeta.reason || "",
                 model: searchMeta.model_id || "", rowIds: searchMeta.row_ids || [] };
  state.search = searchInfo;
  if (searchInfo.mode === "meaning") {
    document.querySelector("#search label").textContent = "Search by meaning";
    query.placeholder = "describe what you are looking for";
  }
  window.ExplorerMap.pageSearch.install(document, { keyword: keywordAnswer }).then(done => {
    Object.assign(searchInfo, { ready: true, loadMs: done.loadMs });
    box.dataset.searchReady = searchInfo.mode;
    describe();
    if (query.value) search(query.value);
  }).catch(error => {
    // The model could not start here: the keyword search stands in, and the page says why.
    Object.assign(searchInfo, { mode: "keyword", ready: true, reason: "Search by meaning failed to start ("
      + String(error && error.message || error) + ")" });
    document.querySelector("#search label").textContent = "Keyword search";
    box.dataset.searchReady = "keyword";
    describe();
  });

  describe();
  buildLegend();
  draw();
  state.ready = true;
  box.dataset.ready = "1";
  statusLine.textContent = "Unpacking titles for hover and search…";
  loadTexts().then(() => {
    state.textsReady = true;
    box.dataset.textsReady = "1";
    statusLine.textContent = "";
    schedule();  // titles beside the points, if few are in view
    if (query.value) search(query.value);
  }).catch(error => {
    state.error = String(error && error.message || error);
    statusLine.textContent = state.error;
  });
})();
