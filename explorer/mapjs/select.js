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
    for (let i = 0; i < layer.n; i++) {
      const x = xs[i], y = ys[i];
      if (!(x >= a && x <= b && y >= c && y <= d) || hidden[colour[i]]) continue;
      if (shape.lasso && !inPolygon(x, y, px, py)) continue;
      out.push(i);
    }
    return out;
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
