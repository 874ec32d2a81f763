"use strict";
// Box and lasso selection: the outline drawn while dragging (SVG over the map) and the points inside it.
(function (M) {
  function inPolygon(x, y, xs, ys) {
    // Even-odd rule over the polygon's edges.
    let inside = false;
    for (let k = 0, j = xs.length - 1; k < xs.length; j = k++) {
      if ((ys[k] > y) !== (ys[j] > y) && x < (xs[j] - xs[k]) * (y - ys[k]) / (ys[j] - ys[k]) + xs[k]) inside = !inside;
    }
    return inside;
  }

  function pointsInside(layer, shape) {
    // Positions inside a box ({box: {x: [a, b], y: [c, d]}}) or a lasso ({lasso: {x: [...], y: [...]}}), in
    // map units, leaving out the groups hidden in the legend.
    const out = [], xs = layer.x, ys = layer.y, colour = layer.colour, hidden = layer.hidden;
    const px = shape.box ? shape.box.x : shape.lasso.x, py = shape.box ? shape.box.y : shape.lasso.y;
    const a = Math.min(...px), b = Math.max(...px), c = Math.min(...py), d = Math.max(...py);
    const bands = shape.lasso ? edgeBands(px, py, c, d) : null;
    for (let i = 0; i < layer.n; i++) {
      const x = xs[i], y = ys[i];
      if (!(x >= a && x <= b && y >= c && y <= d) || hidden[colour[i]]) continue;
      if (bands && !inBands(x, y, px, py, bands)) continue;
      out.push(i);
    }
    return out;
  }

  // A lasso of many vertices over a million points: each point tests only the edges that span its
  // horizontal band (the same even-odd rule, so the same answer as testing every edge).
  const BANDS = 256;
  function edgeBands(px, py, c, d) {
    const scale = BANDS / ((d - c) || 1), lists = Array.from({ length: BANDS }, () => []);
    const band = y => Math.min(BANDS - 1, Math.max(0, Math.floor((y - c) * scale)));
    for (let k = 0, j = px.length - 1; k < px.length; j = k++) {
      for (let g = band(Math.min(py[k], py[j])); g <= band(Math.max(py[k], py[j])); g++) lists[g].push(k, j);
    }
    return { lists: lists, band: band };
  }

  function inBands(x, y, px, py, bands) {
    const edges = bands.lists[bands.band(y)];
    let inside = false;
    for (let e = 0; e < edges.length; e += 2) {
      const k = edges[e], j = edges[e + 1];
      if ((py[k] > y) !== (py[j] > y) && x < (px[j] - px[k]) * (y - py[k]) / (py[j] - py[k]) + px[k]) inside = !inside;
    }
    return inside;
  }

  function createSelector(svg, view) {
    // One outline at a time; ``shape`` is the last one finished, in map units (kept across pans and zooms).
    let drawing = null, shape = null;
    const path = svg.querySelector("path.outline");

    function begin(mode, x, y) { drawing = { mode: mode, xs: [x], ys: [y] }; shape = null; render(); }
    function move(x, y) {
      if (!drawing) return;
      if (drawing.mode === "box") { drawing.xs[1] = x; drawing.ys[1] = y; } else { drawing.xs.push(x); drawing.ys.push(y); }
      render();
    }
    function end() {
      // The finished shape in map units, or null when it encloses nothing (a click).
      const d = drawing;
      drawing = null;
      if (!d || d.xs.length < 2) { render(); return null; }
      const xs = d.xs.map(view.dataX), ys = d.ys.map(view.dataY);
      shape = d.mode === "box" ? { box: { x: [xs[0], xs[1]], y: [ys[0], ys[1]] } } : { lasso: { x: xs, y: ys } };
      if (d.mode === "lasso" && xs.length < 3) shape = null;
      render();
      return shape;
    }
    function clear() { drawing = null; shape = null; render(); }

    function render() {
      // The outline of the shape being drawn (pixels), else of the last one (map units, following the view).
      let xs = [], ys = [], box = false;
      if (drawing) { xs = drawing.xs; ys = drawing.ys; box = drawing.mode === "box"; }
      else if (shape) {
        const s = shape.box || shape.lasso;
        xs = s.x.map(view.px); ys = s.y.map(view.py); box = !!shape.box;
      }
      if (box && xs.length >= 2) { xs = [xs[0], xs[1], xs[1], xs[0]]; ys = [ys[0], ys[0], ys[1], ys[1]]; }
      const d = xs.length >= 2 ? "M" + xs.map((x, k) => x.toFixed(1) + "," + ys[k].toFixed(1)).join("L") + "Z" : "";
      path.setAttribute("d", d);
      svg.setAttribute("data-outlines", d ? "1" : "0");
    }

    return { begin: begin, move: move, end: end, clear: clear, render: render, active: () => !!drawing,
             shape: () => shape };
  }

  M.select = { create: createSelector, pointsInside: pointsInside, inPolygon: inPolygon };
})(globalThis.ExplorerMap = globalThis.ExplorerMap || {});
