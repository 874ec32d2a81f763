"use strict";
// What is drawn over the points: the veil behind search hits, lines from the query to its hits, the
// neighbours' rings, the hits, the focused point's ring and the query's star (a canvas over the points).
(function (M) {
  function star(ctx, x, y, outer) {
    ctx.beginPath();
    for (let k = 0; k < 10; k++) {
      const r = k % 2 ? outer * 0.45 : outer, a = -Math.PI / 2 + k * Math.PI / 5;
      ctx.lineTo(x + r * Math.cos(a), y + r * Math.sin(a));
    }
    ctx.closePath();
  }

  function ring(ctx, x, y, r, colour, width, fill) {
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    if (fill) { ctx.fillStyle = fill; ctx.fill(); }
    ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.stroke();
  }

  function drawOverlays(canvas, layer, view, overlay) {
    // ``overlay``: {hits, neighbours (positions), focus (a position or -1), query ({x, y} or null), fade};
    // returns the hits' boxes in pixels (labels keep clear of them).
    const v = view.state, ctx = canvas.getContext("2d");
    if (canvas.width !== v.w || canvas.height !== v.h) { canvas.width = v.w; canvas.height = v.h; }
    ctx.clearRect(0, 0, v.w, v.h);
    const markers = [];
    if (!layer) return markers;
    const at = i => [view.px(layer.x[i]), view.py(layer.y[i])];
    const seen = (x, y, m) => x >= -m && y >= -m && x <= v.w + m && y <= v.h + m;
    const hits = overlay.hits || [];
    if (overlay.fade) { ctx.fillStyle = M.C.VEIL; ctx.fillRect(0, 0, v.w, v.h); }
    const q = overlay.query;
    if (q && hits.length) {
      const qx = view.px(q.x), qy = view.py(q.y);
      ctx.beginPath();
      for (const i of hits) { const [x, y] = at(i); ctx.moveTo(qx, qy); ctx.lineTo(x, y); }
      ctx.strokeStyle = M.C.LINK; ctx.lineWidth = 1; ctx.stroke();
    }
    for (const i of overlay.neighbours || []) {
      const [x, y] = at(i);
      if (seen(x, y, 10)) ring(ctx, x, y, 7, M.C.NEIGHBOUR_RING, 1.3);
    }
    // Many hits (a keyword search on a big map) are drawn as small marks; a few as the app's gold discs.
    const r = hits.length > 2000 ? 3 : M.C.HIT_PX / 2;
    for (let k = hits.length - 1; k >= 0; k--) {
      const [x, y] = at(hits[k]);
      if (!seen(x, y, r)) continue;
      ring(ctx, x, y, r, M.C.HIT_RING, hits.length > 2000 ? 1 : 2, M.C.HIT_FILL);
      if (hits.length <= 100) markers.push({ x0: x - r, x1: x + r, y0: y - r, y1: y + r });
    }
    if (overlay.focus >= 0) {
      const [x, y] = at(overlay.focus);
      if (seen(x, y, 12)) ring(ctx, x, y, 11, M.C.FOCUS_RING, 3);
    }
    if (q) {
      const x = view.px(q.x), y = view.py(q.y);
      if (seen(x, y, 10)) {
        star(ctx, x, y, 10);
        ctx.fillStyle = M.C.QUERY_STAR; ctx.fill();
        ctx.strokeStyle = "white"; ctx.lineWidth = 1.5; ctx.stroke();
      }
    }
    return markers;
  }

  M.overlays = { draw: drawOverlays };
})(globalThis.ExplorerMap = globalThis.ExplorerMap || {});
