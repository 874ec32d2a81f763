"use strict";
// Picking: the points of the last frame bucketed in a grid, and the nearest one to a pixel.
(function (M) {
  function buildGrid(painted) {
    // A counting sort of the drawn points by GRID_PX cells.
    const w = painted.w, cell = painted.cell, n = painted.layer.n, size = M.C.GRID_PX;
    const gw = Math.ceil(w / size), gh = Math.ceil(painted.h / size);
    const start = new Int32Array(gw * gh + 1), order = new Int32Array(painted.drawn);
    const bucket = p => Math.floor(Math.floor(p / w) / size) * gw + Math.floor((p % w) / size);
    for (let i = 0; i < n; i++) if (cell[i] >= 0) start[bucket(cell[i]) + 1]++;
    for (let g = 0; g < gw * gh; g++) start[g + 1] += start[g];
    const fill = start.slice(0, gw * gh);
    for (let i = 0; i < n; i++) if (cell[i] >= 0) order[fill[bucket(cell[i])]++] = i;
    return { gw: gw, gh: gh, start: start, order: order };
  }

  function createPicker(painted, view) {
    let grid = null;
    function nearest(px, py, prefer) {
      // The position of the drawn point nearest to (px, py) within PICK_RADIUS, or -1; on a tie the one
      // on top (drawn last, or ``prefer``red: a search hit is drawn over the rest).
      const layer = painted.layer, r = M.C.PICK_RADIUS;
      if (!layer || !painted.drawn || px < -r || py < -r || px > painted.w + r || py > painted.h + r) return -1;
      if (!grid) grid = buildGrid(painted);
      let best = -1, bestD = r * r;
      const size = M.C.GRID_PX;
      const g0 = Math.max(0, Math.floor((px - r) / size)), g1 = Math.min(grid.gw - 1, Math.floor((px + r) / size));
      const h0 = Math.max(0, Math.floor((py - r) / size)), h1 = Math.min(grid.gh - 1, Math.floor((py + r) / size));
      for (let gy = h0; gy <= h1; gy++) {
        for (let gx = g0; gx <= g1; gx++) {
          const b = gy * grid.gw + gx;
          for (let k = grid.start[b]; k < grid.start[b + 1]; k++) {
            const i = grid.order[k], dx = view.px(layer.x[i]) - px, dy = view.py(layer.y[i]) - py;
            const d = dx * dx + dy * dy;
            const top = prefer && prefer[i] && !(best >= 0 && prefer[best]);
            if (d < bestD || (d === bestD && (i > best || top))) { best = i; bestD = d; }
          }
        }
      }
      return best;
    }
    return { nearest: nearest, invalidate: () => { grid = null; } };
  }

  M.pick = { create: createPicker };
})(globalThis.ExplorerMap = globalThis.ExplorerMap || {});
