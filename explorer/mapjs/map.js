"use strict";
// The map: one element holding the points, the overlays, the labels, the selection outline, the hover
// card, a tool bar, the legend and a slot for the facet strip, wired to the view. Hosts (the app's
// component, the offline page, the notebook widget) feed it and hear its events; what it shows is
// written on the element as data-* attributes, for tests and benchmarks.
(function (M) {
  const STYLE = `
.explorer-map { position: relative; overflow: hidden; background: white; touch-action: none; user-select: none;
  font: 13px ${M.C.FONT}; color: #212121; }
.explorer-map > canvas, .explorer-map > svg, .explorer-map > .labels { position: absolute; left: 0; top: 0; }
.explorer-map > .labels, .explorer-map > svg, .explorer-map > canvas.overlay { pointer-events: none; width: 100%; height: 100%; }
.explorer-map[data-mode="pan"] { cursor: grab; }
.explorer-map.dragging { cursor: grabbing; }
.explorer-map[data-mode="box"], .explorer-map[data-mode="lasso"] { cursor: crosshair; }
.explorer-map svg .outline { fill: rgba(33,150,243,0.08); stroke: #1565c0; stroke-width: 1.2; stroke-dasharray: 4 3; }
.explorer-map .label { position: absolute; transform: translate(-50%, -50%); white-space: nowrap; padding: 1px 4px;
  border: 1px solid rgba(0,0,0,0.25); border-radius: 2px; line-height: 1.3; }
.explorer-map .label.title { background: rgba(255,255,255,0.7); border: none; padding: 0 3px; }
.explorer-map .label.rank { color: #b71c1c; border: none; padding: 0; background: none; }
.explorer-map .label.query { color: #b71c1c; background: rgba(255,255,255,0.85); border-color: rgba(183,28,28,0.35); }
.explorer-map .hover { position: absolute; display: none; pointer-events: none; z-index: 5; max-width: 380px;
  padding: 6px 8px; background: rgba(255,255,255,0.97); border: 1px solid #9e9e9e; border-left-width: 4px;
  border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,0.25); font-size: 12px; line-height: 1.35; }
.explorer-map .hover .t { font-weight: 600; font-size: 13px; margin-bottom: 2px; }
.explorer-map .hover .f i { color: #616161; }
.explorer-map .hover .x { color: #424242; margin-top: 3px; }
.explorer-map .tip { position: absolute; display: none; pointer-events: none; z-index: 6; background: white;
  border: 1px solid rgba(0,0,0,0.3); border-radius: 3px; padding: 2px; }
.explorer-map .tip img { display: block; width: 96px; height: auto; }
.explorer-map .toolbar { position: absolute; top: 8px; left: 8px; z-index: 4; display: flex; gap: 2px;
  background: rgba(255,255,255,0.9); border: 1px solid #bdbdbd; border-radius: 4px; padding: 2px; }
.explorer-map .toolbar button { font: inherit; font-size: 12px; padding: 2px 8px; border: none; border-radius: 3px;
  background: none; cursor: pointer; color: #333; }
.explorer-map .toolbar button[aria-pressed="true"] { background: #e3f2fd; color: #0d47a1; }
.explorer-map .legend { position: absolute; top: 8px; right: 8px; z-index: 3; max-height: 45%; max-width: 40%;
  overflow-y: auto; background: rgba(255,255,255,0.9); border: 1px solid #e0e0e0; border-radius: 4px; padding: 4px 8px; }
.explorer-map .legend:empty { display: none; }
.explorer-map .legend ul { list-style: none; margin: 0; padding: 0; }
.explorer-map .legend li { display: flex; align-items: center; gap: 6px; padding: 1px 0; cursor: pointer; font-size: 12px; }
.explorer-map .legend li.off { opacity: 0.35; }
.explorer-map .legend .swatch { width: 10px; height: 10px; border-radius: 50%; flex: none; }
.explorer-map .legend .n { margin-left: auto; padding-left: 8px; color: #9e9e9e; }
.explorer-map .legend-title { font-weight: 600; font-size: 12px; margin-bottom: 2px; }
.explorer-map .colorbar .scale { height: 10px; width: 160px; border-radius: 2px; }
.explorer-map .colorbar .ends { display: flex; justify-content: space-between; gap: 6px; font-size: 11px; }
.explorer-map .facets { position: absolute; left: 8px; bottom: 8px; z-index: 3; max-width: calc(100% - 16px);
  max-height: 60%; overflow-y: auto; background: rgba(255,255,255,0.94); border: 1px solid #e0e0e0;
  border-radius: 4px; padding: 2px 6px; }
.explorer-map .facets:empty { display: none; }
.explorer-map .facets .em-facets { flex-direction: column; flex-wrap: nowrap; }
.explorer-map .facets:not([data-open]) .em-facets-body { display: none; }
.explorer-map .facets .em-facets-toggle { font: inherit; font-size: 12px; border: none; background: none; cursor: pointer;
  padding: 2px 0; color: #0d47a1; }
`;

  function injectStyle() {
    if (document.getElementById("explorer-map-style")) return;
    const style = document.createElement("style");
    style.id = "explorer-map-style";
    style.textContent = STYLE;
    document.head.appendChild(style);
  }

  function el(tag, cls, parent) {
    const node = document.createElement(tag);
    node.setAttribute("class", cls);
    parent.appendChild(node);
    return node;
  }

  function create(root, options) {
    // ``options``: describe(i) -> {title, fields, text}; title(i) -> text beside a point close up;
    // thumbnail(id) -> a data: URI or null; onSelect(ids, shape), onClick(id), onView(view); legendTitle.
    const opt = Object.assign({ describe: null, title: null, thumbnail: null, onSelect() {}, onClick() {}, onView() {},
                                legendTitle: "", mode: "pan" }, options || {});
    injectStyle();
    root.classList.add("explorer-map");
    const canvas = el("canvas", "points", root), top = el("canvas", "overlay", root);
    const labelsBox = el("div", "labels", root);
    // The HTML parser makes the SVG element (no namespace URL in the page: the export allows none).
    root.insertAdjacentHTML("beforeend", '<svg class="select"><path class="outline"></path></svg>');
    const svg = root.lastElementChild;
    const card = el("div", "hover", root), tip = el("div", "tip", root);
    tip.appendChild(document.createElement("img")).alt = "";
    const toolbar = el("div", "toolbar", root), legendBox = el("div", "legend", root);
    const facets = el("div", "facets", root);
    facets.setAttribute("data-facets-slot", "");
    const view = M.view.create(root), painter = M.points.createPainter(canvas), picker = M.pick.create(painter.state, view);
    const selector = M.select.create(svg, view), hover = M.hover.create(card, tip);
    const s = { layer: null, labels: null, overlay: { hits: [], neighbours: [], focus: -1, query: null, fade: false },
                hitFlag: null, ranks: [], scores: null, selected: null, selectedCount: 0, own: null, mask: null,
                mode: opt.mode };
    const times = root.drawTimes = [];
    const attr = (name, value) => root.setAttribute("data-" + name, String(value));

    for (const [mode, text, tipText] of [["pan", "Pan", "Drag to pan, wheel to zoom"], ["box", "Box", "Drag a box to select"],
                                         ["lasso", "Lasso", "Draw around points to select"], ["reset", "Reset", "Show the whole map"]]) {
      const button = el("button", "tool", toolbar);
      button.type = "button";
      button.textContent = text;
      button.title = tipText;
      button.setAttribute("data-mode", mode);
      button.addEventListener("click", () => (mode === "reset" ? (view.fit(), schedule()) : setMode(mode)));
    }

    function setMode(mode) {
      s.mode = mode;
      attr("mode", mode);
      toolbar.querySelectorAll("button").forEach(b => b.setAttribute("aria-pressed", String(b.getAttribute("data-mode") === mode)));
    }

    function shownCount() {
      // Points not dimmed: neither by a filter (Python's "filtered out" group) nor by the external mask.
      const layer = s.layer;
      if (!layer) return 0;
      let k = 0;
      for (let i = 0; i < layer.n; i++) if (!layer.dimmedColour[layer.colour[i]] && (!s.mask || s.mask[i])) k++;
      return k;
    }

    function draw() {
      // Nothing is drawn, or written on the element, before the first layer: tests wait for data-points-*.
      if (!s.layer) return 0;
      const started = performance.now();
      view.resize();
      const painted = painter.draw(s.layer, view, { selected: s.selected, mask: s.mask });
      picker.invalidate();
      const markers = M.overlays.draw(top, s.layer, view, s.overlay);
      const shown = M.labels.place(labelsBox, view, {
        labels: s.labels, query: s.overlay.query, ranks: s.ranks, markers: markers, layer: s.layer, painted: painted,
        avoid: [rectOf(toolbar), rectOf(legendBox)].filter(Boolean), title: opt.title,
      });
      selector.render();
      const ms = performance.now() - started;
      times.push(ms);
      if (times.length > 500) times.splice(0, times.length - 500);
      attr("points-drawn", painted.drawn);
      attr("points-total", s.layer.n);
      attr("density", painted.density ? "on" : "off");
      attr("draw-ms", ms.toFixed(1));
      attr("zoom", view.zoom().toFixed(3));
      attr("labels", JSON.stringify(shown.labels));
      attr("label-levels", JSON.stringify(shown.levels));
      attr("titles", JSON.stringify(shown.titles));
      attr("titles-shown", shown.titles.length);
      attr("points-in-view", shown.inView >= 0 ? shown.inView : "many");
      attr("ranks-shown", JSON.stringify(shown.ranks));
      attr("query-label", shown.query);
      attr("selection-outlines", svg.getAttribute("data-outlines") || "0");
      attr("selected-count", s.selected ? s.selectedCount : 0);
      opt.onView(view.get());
      return ms;
    }

    function rectOf(node) {
      // A child's box in the map's pixels (labels keep clear of the tool bar and the legend).
      const a = node.getBoundingClientRect(), b = root.getBoundingClientRect();
      return a.width ? { x0: a.left - b.left, x1: a.right - b.left, y0: a.top - b.top, y1: a.bottom - b.top } : null;
    }

    let scheduled = false;
    function schedule() {
      // Many events (a drag, a wheel) per frame: draw once per frame, from the latest state.
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(() => { scheduled = false; draw(); });
    }

    // ---------------------------------------------------------------- what hosts set

    function positions(ids) {
      const out = [];
      for (const id of ids || []) { const i = M.layer.positionOf(s.layer, id); if (i >= 0) out.push(i); }
      return out;
    }

    function setLayer(layer, keepView) {
      const old = s.layer;
      s.layer = layer;
      root.pointsLayer = layer;
      if (!keepView || !old || old.extent.join() !== layer.extent.join()) view.setExtent(layer.extent);
      M.legend.build(legendBox, layer, opt.legendTitle, schedule);
      s.mask = s.mask && s.mask.length === layer.n ? s.mask : null;
      attr("base-key", layer.key || "");
      attr("layer-bytes", layer.bytes);
      attr("shown-count", shownCount());
      // Row ids are resolved again: a new layer (a recolour) puts the rows in another draw order.
      if (s.overlayIds) setOverlay(s.overlayIds); else setHits(s.hitIds || [], s.scores, s.rankCount);
      setSelection(s.ownIds || s.selectedIds || null, true);
      schedule();
    }

    function setLabels(payload) { s.labels = payload; schedule(); }

    function setHits(ids, scores, rankCount, byPosition) {
      // Search hits, best first (row ids, or positions from a search in the browser); the top
      // ``rankCount`` get their rank written beside them, and the rest of the map is veiled.
      s.hitIds = byPosition ? null : ids;
      s.scores = scores || null;
      s.rankCount = rankCount || 0;
      const hits = byPosition ? Array.from(ids) : positions(ids);
      s.overlay.hits = hits;
      s.overlay.fade = hits.length > 0 || !!s.overlay.query;
      s.hitFlag = null;
      s.hitRank = new Map(hits.length <= 10000 ? hits.map((i, k) => [i, k]) : []);
      if (s.layer && hits.length) { s.hitFlag = new Uint8Array(s.layer.n); for (const i of hits) s.hitFlag[i] = 1; }
      s.ranks = hits.slice(0, s.rankCount).map((i, k) => [i, String(k + 1)]);
      attr("hit-count", hits.length);
      schedule();
    }

    function setOverlay(o) {
      // From Python: {hits, scores, ranks, query: {x, y, text}, focus, neighbours} (row ids).
      o = o || {};
      s.overlay.query = o.query || null;
      s.overlay.focus = o.focus === null || o.focus === undefined ? -1 : M.layer.positionOf(s.layer, o.focus);
      s.overlay.neighbours = positions(o.neighbours);
      s.overlayIds = o;
      setHits(o.hits || [], o.scores, o.ranks);
    }

    function setSelection(ids, quiet) {
      // The points shown as selected (the others faded); the outline stays only while the ids are its own.
      const layer = s.layer;
      s.selectedIds = ids && ids.length ? ids : null;
      if (!sameIds(ids, s.ownIds)) { s.ownIds = null; selector.clear(); }
      if (!layer || !s.selectedIds) { s.selected = null; s.selectedCount = 0; }
      else {
        const chosen = new Uint8Array(layer.n);
        let count = 0;
        for (const id of ids) { const i = M.layer.positionOf(layer, id); if (i >= 0 && !chosen[i]) { chosen[i] = 1; count++; } }
        s.selected = chosen; s.selectedCount = count;
      }
      // Written at once (the frame follows): a host or test reads the state right after setting it.
      attr("selected-count", s.selected ? s.selectedCount : 0);
      attr("selection-outlines", svg.getAttribute("data-outlines") || "0");
      if (!quiet) schedule();
    }

    function setMask(mask) {
      // An external dimming (facets): 1 = shown; combined with the filters Python dims.
      s.mask = mask && s.layer && mask.length === s.layer.n ? mask : null;
      attr("shown-count", shownCount());
      schedule();
    }

    function sameIds(a, b) {
      if (a === b) return !!a;
      if (!a || !b || a.length !== b.length) return false;
      const set = new Set(a);
      return b.every(id => set.has(id));
    }

    // ---------------------------------------------------------------- pointer

    let press = null, hoverFrame = 0;
    const local = ev => { const r = root.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; };
    const onChrome = ev => !!(ev.target.closest && ev.target.closest(".toolbar, .legend, .facets"));

    root.addEventListener("pointerdown", ev => {
      if (ev.button !== 0 || onChrome(ev) || !s.layer) return;
      const [x, y] = local(ev);
      press = { x: x, y: y, cx: view.state.cx, cy: view.state.cy, moved: false };
      root.setPointerCapture(ev.pointerId);
      hideHover();
      if (s.mode === "pan") root.classList.add("dragging");
    });
    root.addEventListener("pointermove", ev => {
      const [x, y] = local(ev);
      if (press) {
        if (!press.moved && Math.hypot(x - press.x, y - press.y) <= M.C.CLICK_SLOP) return;
        if (!press.moved && s.mode !== "pan") selector.begin(s.mode, press.x, press.y);
        press.moved = true;
        if (s.mode === "pan") {
          Object.assign(view.state, { cx: press.cx, cy: press.cy });
          view.panBy(x - press.x, y - press.y);
          schedule();
        } else selector.move(x, y);
        return;
      }
      if (onChrome(ev)) return hideHover();
      cancelAnimationFrame(hoverFrame);
      hoverFrame = requestAnimationFrame(() => showHoverAt(x, y));
    });
    const release = ev => {
      const p = press;
      press = null;
      root.classList.remove("dragging");
      if (!p) return;
      if (!p.moved) {
        const [x, y] = local(ev), i = picker.nearest(x, y, s.hitFlag);
        if (i >= 0) emit("click", [s.layer.ids[i]]);
        return;
      }
      if (s.mode !== "pan") finishShape(selector.end());
    };
    root.addEventListener("pointerup", release);
    root.addEventListener("pointercancel", release);
    root.addEventListener("pointerleave", () => { if (!press) hideHover(); });
    root.addEventListener("wheel", ev => {
      if (onChrome(ev) && ev.target.closest(".legend, .facets")) return;
      ev.preventDefault();
      // One wheel notch zooms by at most e^0.35 (x1.42), whatever the device reports.
      const [x, y] = local(ev), step = ev.deltaMode === 1 ? 0.05 : ev.deltaMode === 2 ? 1 : 0.0015;
      view.zoomAt(x, y, Math.exp(Math.max(-0.35, Math.min(0.35, -ev.deltaY * step))));
      hideHover();
      schedule();
    }, { passive: false });
    root.addEventListener("dblclick", ev => { if (!onChrome(ev)) { view.fit(); schedule(); } });
    new ResizeObserver(schedule).observe(root);

    function finishShape(shape) {
      // The points inside the user's box or lasso: faded around at once, then told to the host.
      if (!shape) return;
      const started = performance.now(), layer = s.layer;
      root.lastShape = shape;
      const inside = M.select.pointsInside(layer, shape), ids = new Array(inside.length);
      const chosen = new Uint8Array(layer.n);
      for (let k = 0; k < inside.length; k++) { chosen[inside[k]] = 1; ids[k] = layer.ids[inside[k]]; }
      s.ownIds = s.selectedIds = ids.length ? ids : null;
      s.selected = ids.length ? chosen : null;
      s.selectedCount = ids.length;
      draw();
      attr("select-ms", (performance.now() - started).toFixed(1));
      emit("selection", ids, shape.box ? "box" : "lasso");
    }

    function clearSelection() {
      // The user's Clear: no fading, no outline, and the host hears an empty selection.
      s.ownIds = null;
      setSelection(null);
      emit("selection", [], "none");
    }

    function emit(kind, ids, shape) {
      const event = { kind: kind, ids: ids };
      if (shape) event.shape = shape;
      root.lastEvent = event;
      (kind === "click" ? opt.onClick : opt.onSelect)(kind === "click" ? ids[0] : ids, shape);
    }

    function describe(i) {
      const layer = s.layer, group = layer.legend[layer.groupOf[layer.colour[i]]];
      // The host's texts, else the layer's own hover labels (small maps), else the point's group.
      const what = (opt.describe && opt.describe(i)) || (layer.hover ? M.hover.fromHtml(layer.hover[i]) : null);
      const out = what || { title: group ? M.labels.plain(group.name) : "", fields: [] };
      const rank = s.hitRank && s.hitRank.get(i);
      if (rank !== undefined) {
        const score = s.scores && s.scores[rank] !== undefined ? " · " + Number(s.scores[rank]).toFixed(2) : "";
        out.fields = [["search hit", "#" + (rank + 1) + score]].concat(out.fields || []);
      }
      return out;
    }

    function showHoverAt(x, y) {
      const i = picker.nearest(x, y, s.hitFlag);
      if (i < 0) return hideHover();
      showHover(i);
    }

    function showHover(i) {
      const layer = s.layer, px = view.px(layer.x[i]), py = view.py(layer.y[i]);
      hover.show(describe(i), px, py, view.state, layer.palette[layer.colour[i]]);
      attr("hover-id", layer.ids[i]);
      attr("hover-row", i);
      const uri = opt.thumbnail ? opt.thumbnail(layer.ids[i]) : null;
      hover.thumbnail(uri, px, py);
      attr("thumbnail", uri ? layer.ids[i] : "");
      return hover.text();
    }

    function hideHover() {
      hover.hide();
      if (root.getAttribute("data-hover-id")) { attr("hover-id", ""); attr("hover-row", ""); attr("thumbnail", ""); }
    }

    setMode(s.mode);
    attr("hit-count", 0);
    attr("selected-count", 0);
    attr("shown-count", 0);
    const api = {
      root: root, view: view, facets: facets, setLayer: setLayer, setLabels: setLabels, setOverlay: setOverlay,
      setHits: setHits, setSelection: setSelection, clearSelection: clearSelection, setMask: setMask, setMode: setMode,
      draw: draw, schedule: schedule, showHover: showHover, hideHover: hideHover, finishShape: finishShape,
      project: (x, y) => [view.px(x), view.py(y)], at: i => [view.px(s.layer.x[i]), view.py(s.layer.y[i])],
      state: s, painted: painter.state, nearest: (x, y) => picker.nearest(x, y, s.hitFlag),
    };
    root.explorerMap = api;  // for tests and benchmarks: the map's state and its pixel of any point
    return api;
  }

  M.create = create;
})(globalThis.ExplorerMap = globalThis.ExplorerMap || {});
