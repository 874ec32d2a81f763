/* The facet strip: a histogram you can brush for each number or date column, clickable top bars for each category
   column; every facet filters the map and the other facets (cross-filter). The rule a state keeps is the one of
   explorer/facets.py's facet_mask, and the columns come in its encoding (decode below). A classic script: it
   attaches ExplorerMap.facets, loads nothing and needs no network. */
(function () {
  "use strict";
  const root = (globalThis.ExplorerMap = globalThis.ExplorerMap || {});
  const OTHER = "*"; // the "Other" bar's name in a state (explorer.facets.OTHER)
  const MAX_BINS = 40; // a histogram's bars at most; integers get unit bins up to UNIT_BINS values
  const UNIT_BINS = 60;
  const HIST_WIDTH = 200;
  const HIST_HEIGHT = 56;
  const DAY_MS = 86400000;
  const CSS = `
.em-facets { display: flex; flex-wrap: wrap; gap: 8px 14px; font: 12px system-ui, sans-serif; color: #333; }
.em-facet { width: ${HIST_WIDTH}px; }
.em-facet-head { display: flex; justify-content: space-between; gap: 4px; font-weight: 600; }
.em-facet-head span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.em-facet-clear { border: 0; background: none; cursor: pointer; color: #888; padding: 0 2px; visibility: hidden; }
.em-facet[data-active] .em-facet-clear { visibility: visible; }
.em-facet canvas { display: block; cursor: crosshair; touch-action: none; }
.em-facet-axis { display: flex; justify-content: space-between; color: #777; font-size: 11px; }
.em-facet-bar { position: relative; height: 15px; margin: 1px 0; cursor: pointer; }
.em-facet-bar div { position: absolute; left: 0; top: 0; bottom: 0; }
.em-facet-bar .em-all { background: #ddd; }
.em-facet-bar .em-shown { background: #4c78a8; opacity: .55; }
.em-facet-bar[data-on] .em-shown { opacity: 1; }
.em-facet-bar span { position: relative; padding-left: 3px; white-space: nowrap; font-size: 11px; line-height: 15px; }
`;

  /** The columns of explorer.facets.encode_facets' header (JSON text) and blob (ArrayBuffer or bytes). */
  function decode(headerJson, bytes) {
    const header = typeof headerJson === "string" ? JSON.parse(headerJson) : headerJson;
    const buffer = bytes instanceof ArrayBuffer ? bytes : bytes.buffer.slice(bytes.byteOffset,
      bytes.byteOffset + bytes.byteLength);
    return header.map((h) => ({
      name: h.name, kind: h.kind, categories: h.categories || [], other: h.other || 0,
      values: h.dtype === "int32" ? new Int32Array(buffer, h.offset, h.length)
        : new Float64Array(buffer, h.offset, h.length),
    }));
  }

  /** A pack_facets file (ArrayBuffer): {columns, ids}, the facets' columns and each row's id. */
  function unpack(buffer) {
    const head = new DataView(buffer, 0, 8);
    if (head.getUint32(0, true) !== 0x31464d45) throw new Error("not a facets file");  // "EMF1"
    const size = head.getUint32(4, true);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, size)));
    const rows = header.length ? header[0].length : (buffer.byteLength - 8 - size) / 4;
    const end = buffer.byteLength - 4 * rows;
    return { columns: decode(header, buffer.slice(8 + size, end)), ids: new Int32Array(buffer.slice(end)) };
  }

  /** The strip on ``map``'s facet slot for a pack_facets file: it dims the map's points (by row id) and
   * tells ``onChange(state)`` what was chosen. Returns the strip, with ``relayer()`` for a new points layer. */
  function attach(map, buffer, options) {
    const { columns, ids } = unpack(buffer);
    let toLayer = null;
    function relayer() {
      // Facet row k is the map's point toLayer[k] (-1: not drawn).
      const layer = map.root.pointsLayer;
      toLayer = layer ? Int32Array.from(ids, (id) => root.layer.positionOf(layer, id)) : null;
      apply();
    }
    function apply() {
      const mask = strip.mask(), layer = map.root.pointsLayer;
      if (!mask || !layer || !toLayer) { map.setMask(null); return; }
      const shown = new Uint8Array(layer.n);
      for (let k = 0; k < toLayer.length; k++) if (toLayer[k] >= 0 && mask[k]) shown[toLayer[k]] = 1;
      map.setMask(shown);
    }
    // Folded under one button until opened, so the strip never hides the map unasked.
    const slot = map.facets;
    slot.textContent = "";
    const toggle = document.createElement("button");
    toggle.className = "em-facets-toggle";
    toggle.setAttribute("data-facets-toggle", "");
    const body = document.createElement("div");
    body.className = "em-facets-body";
    slot.append(toggle, body);
    function label() {
      const active = Object.keys(strip.state()).length, open = slot.hasAttribute("data-open");
      toggle.textContent = (open ? "\u25BE " : "\u25B8 ") + "Facets" + (active ? " \u00B7 " + active + " active" : "");
    }
    toggle.addEventListener("click", () => { slot.toggleAttribute("data-open"); label(); });
    const strip = create(body, columns, { onChange: (mask, state) => {
      apply();
      label();
      if (options && options.onChange) options.onChange(state);
    } });
    const setState = strip.setState;
    strip.setState = (next) => { setState(next); label(); };
    strip.relayer = relayer;
    strip.apply = apply;
    relayer();
    label();
    return strip;
  }

  /** Bins for a number column: unit bins for few integers, else at most MAX_BINS of equal width. */
  function histogramBins(values) {
    let min = Infinity, max = -Infinity, integer = true;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== v) continue; // NaN: missing
      if (v < min) min = v;
      if (v > max) max = v;
      if (integer && v !== Math.floor(v)) integer = false;
    }
    if (min === Infinity) { min = 0; max = 0; }
    let width, count;
    if (integer) {
      const span = max - min + 1;
      width = span <= UNIT_BINS ? 1 : Math.ceil(span / MAX_BINS);
      count = Math.ceil(span / width);
    } else {
      count = MAX_BINS;
      width = (max - min) / count || 1;
    }
    const index = new Int16Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      index[i] = v !== v ? -1 : Math.min(count - 1, Math.floor((v - min) / width));
    }
    return { min, width, count, integer, index };
  }

  function installCss(doc) {
    if (doc.getElementById("em-facets-css")) return;
    const style = doc.createElement("style");
    style.id = "em-facets-css";
    style.textContent = CSS;
    doc.head.appendChild(style);
  }

  function element(doc, tag, className, parent) {
    const el = doc.createElement(tag);
    if (className) el.className = className;
    if (parent) parent.appendChild(el);
    return el;
  }

  /** The text a bound is shown as (dates as ISO days), and the one a state's range is written with. */
  function boundText(facet, v) {
    if (facet.kind === "date") return new Date(Math.round(v * DAY_MS)).toISOString().slice(0, 10);
    return Number.isInteger(v) ? String(v) : String(+v.toPrecision(4));
  }

  /** The facet strip in ``container``; ``onChange(mask, state)`` hears every brush and click. */
  function create(container, columns, options) {
    const onChange = (options && options.onChange) || (() => {});
    const doc = container.ownerDocument;
    installCss(doc);
    const n = columns.length ? columns[0].values.length : 0;
    const fails = new Uint8Array(n); // how many facets a row fails
    const failXor = new Uint8Array(n); // XOR of (index + 1) of the facets it fails: the one, when it fails one
    const mask = new Uint8Array(n).fill(1);
    let external = null; // Uint8Array of the rows search, keyword and SQL keep; null: all
    let shown = n;

    const strip = element(doc, "div", "em-facets", container);
    const facets = columns.map((column, f) => {
      const facet = { ...column, f, pass: new Uint8Array(n).fill(1), selection: null };
      if (column.kind === "category") {
        facet.bins = { count: column.categories.length + (column.other > 0 ? 1 : 0), index: column.values };
      } else {
        facet.bins = histogramBins(column.values);
      }
      facet.totals = new Float64Array(facet.bins.count);
      facet.counts = new Float64Array(facet.bins.count);
      const index = facet.bins.index;
      for (let i = 0; i < n; i++) if (index[i] >= 0) facet.totals[index[i]]++;
      facet.el = element(doc, "div", "em-facet", strip);
      facet.el.dataset.facet = column.name;
      facet.el.dataset.kind = column.kind;
      const head = element(doc, "div", "em-facet-head", facet.el);
      element(doc, "span", "", head).textContent = column.name;
      const clear = element(doc, "button", "em-facet-clear", head);
      clear.textContent = "×";
      clear.title = "Clear this facet";
      clear.addEventListener("click", () => { select(facet, null); changed(); });
      if (column.kind === "category") buildBars(facet); else buildHistogram(facet);
      return facet;
    });

    function buildBars(facet) {
      facet.rows = [];
      const names = facet.categories.slice();
      if (facet.bins.count > names.length) names.push(OTHER);
      names.forEach((name, code) => {
        const bar = element(doc, "div", "em-facet-bar", facet.el);
        bar.dataset.category = name;
        const all = element(doc, "div", "em-all", bar);
        const part = element(doc, "div", "em-shown", bar);
        const label = element(doc, "span", "", bar);
        bar.title = name === OTHER ? `${facet.other} other values` : name;
        bar.addEventListener("click", () => {
          const chosen = new Set([...(facet.selection || [])].filter((c) => c >= 0));
          if (chosen.has(code)) chosen.delete(code); else chosen.add(code);
          select(facet, chosen.size ? chosen : null);
          changed();
        });
        facet.rows.push({ bar, all, part, label, name: name === OTHER ? `Other (${facet.other})` : name });
      });
    }

    function buildHistogram(facet) {
      const canvas = element(doc, "canvas", "", facet.el);
      const ratio = globalThis.devicePixelRatio || 1;
      canvas.width = HIST_WIDTH * ratio;
      canvas.height = HIST_HEIGHT * ratio;
      canvas.style.width = `${HIST_WIDTH}px`;
      canvas.style.height = `${HIST_HEIGHT}px`;
      facet.canvas = canvas;
      const axis = element(doc, "div", "em-facet-axis", facet.el);
      const b = facet.bins;
      element(doc, "span", "", axis).textContent = boundText(facet, b.min);
      facet.rangeLabel = element(doc, "span", "", axis);
      element(doc, "span", "", axis).textContent = boundText(facet, b.min + b.width * b.count - (b.integer ? 1 : 0));
      facet.el.dataset.bins = JSON.stringify(Array.from({ length: b.count + 1 }, (_, k) => b.min + k * b.width));
      const binAt = (event) => {
        const box = canvas.getBoundingClientRect();
        return Math.max(0, Math.min(b.count - 1, Math.floor(((event.clientX - box.left) / box.width) * b.count)));
      };
      let drag = null;
      canvas.addEventListener("pointerdown", (event) => {
        const bin = binAt(event);
        const range = facet.selection && binsOf(facet, facet.selection);
        drag = range && bin >= range[0] && bin <= range[1] ? { move: true, from: bin, range } : { move: false, from: bin };
        canvas.setPointerCapture(event.pointerId);
        if (!drag.move) { select(facet, rangeOfBins(facet, bin, bin)); changed(); }
      });
      canvas.addEventListener("pointermove", (event) => {
        if (!drag) return;
        const bin = binAt(event);
        let next;
        if (drag.move) {
          const shift = Math.max(-drag.range[0], Math.min(b.count - 1 - drag.range[1], bin - drag.from));
          next = rangeOfBins(facet, drag.range[0] + shift, drag.range[1] + shift);
        } else {
          next = rangeOfBins(facet, Math.min(drag.from, bin), Math.max(drag.from, bin));
        }
        if (next[0] !== facet.selection[0] || next[1] !== facet.selection[1]) { select(facet, next); changed(); }
      });
      const end = () => { drag = null; };
      canvas.addEventListener("pointerup", end);
      canvas.addEventListener("pointercancel", end);
      canvas.addEventListener("dblclick", () => { select(facet, null); changed(); });
    }

    /** The inclusive [low, high] a brush over bins first..last keeps (integers: the last bin's last integer). */
    function rangeOfBins(facet, first, last) {
      const b = facet.bins;
      const high = b.min + (last + 1) * b.width;
      return [b.min + first * b.width, b.integer ? high - 1 : high];
    }

    function binsOf(facet, range) {
      const b = facet.bins;
      const at = (v) => Math.max(0, Math.min(b.count - 1, Math.floor((v - b.min) / b.width)));
      return [at(range[0]), at(range[1])];
    }

    /** Set a facet's selection (a [low, high] range, a Set of codes, or null) and update who passes it. */
    function select(facet, selection, unmatched) {
      facet.selection = selection;
      facet.unmatched = unmatched || []; // names a state chose that have no bar here (they keep no row)
      const values = facet.values, pass = facet.pass, bit = facet.f + 1;
      // One loop per kind of test, with no call per row: a brush move at 1M rows runs this once.
      const flip = (i, p) => {
        pass[i] = p;
        fails[i] += p ? -1 : 1;
        failXor[i] ^= bit;
      };
      if (selection === null) {
        for (let i = 0; i < n; i++) if (!pass[i]) flip(i, 1);
      } else if (facet.kind === "category") {
        const wanted = new Uint8Array(facet.bins.count + 1);
        selection.forEach((code) => { if (code >= 0 && code < facet.bins.count) wanted[code] = 1; });
        for (let i = 0; i < n; i++) {
          const v = values[i];
          const p = v >= 0 ? wanted[v] : 0;
          if (p !== pass[i]) flip(i, p);
        }
      } else {
        const low = selection[0], high = selection[1];
        for (let i = 0; i < n; i++) {
          const v = values[i];
          const p = v >= low && v <= high ? 1 : 0; // NaN fails both comparisons
          if (p !== pass[i]) flip(i, p);
        }
      }
    }

    /** Counts of every facet over the rows passing the external mask and every OTHER facet; the mask. */
    function recount() {
      for (const facet of facets) facet.counts.fill(0);
      const indexes = facets.map((facet) => facet.bins.index);
      const counts = facets.map((facet) => facet.counts);
      const k = facets.length;
      shown = 0;
      for (let i = 0; i < n; i++) {
        if (external !== null && !external[i]) { mask[i] = 0; continue; }
        const failed = fails[i];
        if (failed === 0) {
          mask[i] = 1;
          shown++;
          for (let f = 0; f < k; f++) {
            const bin = indexes[f][i];
            if (bin >= 0) counts[f][bin]++;
          }
        } else {
          mask[i] = 0;
          if (failed === 1) {
            const f = failXor[i] - 1;
            const bin = indexes[f][i];
            if (bin >= 0) counts[f][bin]++;
          }
        }
      }
    }

    function draw() {
      container.dataset.shownCount = String(shown);
      for (const facet of facets) {
        const el = facet.el;
        el.dataset.counts = JSON.stringify(Array.from(facet.counts));
        el.dataset.totals = JSON.stringify(Array.from(facet.totals));
        if (facet.selection) el.dataset.active = ""; else delete el.dataset.active;
        if (facet.kind === "category") drawBars(facet); else drawHistogram(facet);
      }
    }

    function drawBars(facet) {
      const top = Math.max(1, ...facet.totals);
      const chosen = facet.selection;
      facet.rows.forEach((row, code) => {
        row.all.style.width = `${(100 * facet.totals[code]) / top}%`;
        row.part.style.width = `${(100 * facet.counts[code]) / top}%`;
        row.label.textContent = `${row.name} · ${facet.counts[code].toLocaleString("en")}`;
        if (chosen && chosen.has(code)) row.bar.dataset.on = ""; else delete row.bar.dataset.on;
      });
      const names = chosen ? [...chosen].filter((code) => code >= 0)
        .map((code) => (code < facet.categories.length ? facet.categories[code] : OTHER)).concat(facet.unmatched) : [];
      if (chosen) facet.el.dataset.selected = JSON.stringify(sortNames(names));
      else delete facet.el.dataset.selected;
    }

    function drawHistogram(facet) {
      const canvas = facet.canvas, ctx = canvas.getContext("2d"), b = facet.bins;
      const w = canvas.width, h = canvas.height, barW = w / b.count;
      const top = Math.max(1, ...facet.totals);
      ctx.clearRect(0, 0, w, h);
      const range = facet.selection && binsOf(facet, facet.selection);
      for (let k = 0; k < b.count; k++) {
        const inRange = !range || (k >= range[0] && k <= range[1]);
        ctx.fillStyle = "#ddd";
        const full = (h * facet.totals[k]) / top;
        ctx.fillRect(k * barW + 0.5, h - full, Math.max(1, barW - 1), full);
        ctx.fillStyle = inRange ? "#4c78a8" : "#9fb3c8";
        const part = (h * facet.counts[k]) / top;
        ctx.fillRect(k * barW + 0.5, h - part, Math.max(1, barW - 1), part);
      }
      if (range) {
        ctx.strokeStyle = "#1f4e79";
        ctx.lineWidth = 2;
        ctx.strokeRect(range[0] * barW + 1, 1, (range[1] - range[0] + 1) * barW - 2, h - 2);
        const text = `${boundText(facet, facet.selection[0])}..${boundText(facet, facet.selection[1])}`;
        facet.rangeLabel.textContent = text;
        facet.el.dataset.range = `${facet.selection[0]}..${facet.selection[1]}`;
      } else {
        facet.rangeLabel.textContent = "";
        delete facet.el.dataset.range;
      }
    }

    function sortNames(names) {
      // The order of explorer.facets.format_state: names, then Other.
      return names.sort((a, b) => (a === OTHER) - (b === OTHER) || (a < b ? -1 : a > b ? 1 : 0));
    }

    function state() {
      const out = {};
      for (const facet of facets) {
        if (!facet.selection) continue;
        if (facet.kind === "category") out[facet.name] = { selected: JSON.parse(facet.el.dataset.selected) };
        else out[facet.name] = { range: [facet.selection[0], facet.selection[1]] };
      }
      return out;
    }

    function changed() {
      recount();
      draw();
      onChange(mask, state());
    }

    recount();
    draw();
    return {
      mask: () => mask,
      state,
      shownCount: () => shown,
      /** Apply a state ({column: {range: [low, high]} | {selected: [names]}}); columns not here are ignored. */
      setState(next) {
        for (const facet of facets) {
          const chosen = next && next[facet.name];
          let selection = null;
          const unmatched = [];
          if (chosen && facet.kind === "category" && chosen.selected) {
            selection = new Set();
            for (const name of chosen.selected) {
              const code = name === OTHER ? facet.categories.length : facet.categories.indexOf(name);
              if (code >= 0 && code < facet.bins.count) selection.add(code); else unmatched.push(String(name));
            }
            // A choice of values this map has no bar for keeps nothing, as in Python.
            if (!selection.size) selection.add(-1);
          } else if (chosen && facet.kind !== "category" && chosen.range) {
            selection = [Number(chosen.range[0]), Number(chosen.range[1])];
          }
          select(facet, selection, unmatched);
        }
        recount();
        draw();
      },
      /** The rows search, keyword and SQL keep (a Uint8Array or bools; null for all): facets count within them. */
      update(externalMask) {
        external = externalMask ? Uint8Array.from(externalMask, (v) => (v ? 1 : 0)) : null;
        recount();
        draw();
      },
    };
  }

  root.facets = { create, decode, unpack, attach, histogramBins, OTHER };
})();
