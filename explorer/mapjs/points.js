"use strict";
// The points, drawn on the CPU into a canvas: a plain loop over typed arrays into an ImageData draws
// 1M points in a few tens of ms without WebGL (which falls back to SwiftShader without a GPU). Where
// many points share a pixel the layer shows density instead of overlapping discs: each pixel takes its
// points' mean colour, its opacity growing with log(count).
(function (M) {
  const LOG = Float32Array.from({ length: 4096 }, (_, k) => Math.log1p(k));

  function discOffsets(size) {
    // The pixel offsets of a disc of diameter ``size``, at least one pixel.
    const r = Math.max(0.5, size / 2), offsets = [], reach = Math.ceil(r);
    for (let dy = -reach; dy <= reach; dy++) {
      for (let dx = -reach; dx <= reach; dx++) if (dx * dx + dy * dy <= r * r) offsets.push(dx, dy);
    }
    return offsets.length ? offsets : [0, 0];
  }

  function createPainter(canvas) {
    const ctx = canvas.getContext("2d", { alpha: false });
    let image = null, pixels32 = null, w = 0, h = 0, lastOccupied = 0;
    let occupiedAt = new Int32Array(0), counts = new Uint32Array(0);
    let sumR = new Float32Array(0), sumG = new Float32Array(0), sumB = new Float32Array(0), sumA = new Float32Array(0);
    // Each point's pixel in the last frame (-1: not drawn), read by the picker.
    const state = { cell: new Int32Array(0), w: 0, h: 0, drawn: 0, density: false, ms: 0, layer: null };

    function resize(width, height) {
      if (width === w && height === h) return;
      w = width; h = height;
      canvas.width = w; canvas.height = h;
      image = ctx.createImageData(w, h);
      pixels32 = new Uint32Array(image.data.buffer);
      lastOccupied = 0;
      const n = w * h;
      occupiedAt = new Int32Array(n); counts = new Uint32Array(n);
      sumR = new Float32Array(n); sumG = new Float32Array(n); sumB = new Float32Array(n); sumA = new Float32Array(n);
    }

    function draw(layer, view, look) {
      // ``look``: {selected, mask} (Uint8Array over positions or null): unselected and masked points fade.
      const started = performance.now(), v = view.state;
      resize(v.w, v.h);
      state.w = w; state.h = h; state.layer = layer;
      pixels32.fill(0xffffffff);
      if (!layer || !layer.n) {
        ctx.putImageData(image, 0, 0);
        return Object.assign(state, { drawn: 0, density: false, ms: performance.now() - started });
      }
      const n = layer.n, xs = layer.x, ys = layer.y, colour = layer.colour, hidden = layer.hidden;
      if (state.cell.length < n) state.cell = new Int32Array(n);
      const cell = state.cell, selected = look.selected, mask = look.mask;
      for (let j = 0; j < lastOccupied; j++) counts[occupiedAt[j]] = 0;
      const s = v.scale, x0 = v.cx - w / (2 * s), y1 = v.cy + h / (2 * s), palette = layer.palette;
      // One pass finds each point's pixel and sums what density needs (colours weighted by opacity).
      const pr = new Float32Array(256), pg = new Float32Array(256), pb = new Float32Array(256), pa = new Float32Array(256);
      palette.forEach((c, k) => { pa[k] = c[3]; pr[k] = c[0] * c[3]; pg[k] = c[1] * c[3]; pb[k] = c[2] * c[3]; });
      const fade = (selected || mask) ? i => (selected && !selected[i] ? M.C.UNSELECTED_ALPHA : 1)
        * (mask && !mask[i] ? M.C.MASKED_ALPHA : 1) : null;
      let drawn = 0, occupied = 0;
      for (let i = 0; i < n; i++) {
        const px = (xs[i] - x0) * s, py = (y1 - ys[i]) * s, k = colour[i];
        if (!(px >= 0 && px < w && py >= 0 && py < h) || hidden[k]) { cell[i] = -1; continue; }
        const p = (py | 0) * w + (px | 0);
        cell[i] = p;
        drawn++;
        const f = fade ? fade(i) : 1;
        if (counts[p]++ === 0) {
          occupiedAt[occupied++] = p;
          sumR[p] = pr[k] * f; sumG[p] = pg[k] * f; sumB[p] = pb[k] * f; sumA[p] = pa[k] * f;
        } else {
          sumR[p] += pr[k] * f; sumG[p] += pg[k] * f; sumB[p] += pb[k] * f; sumA[p] += pa[k] * f;
        }
      }
      const area = Math.PI * Math.pow(Math.max(...palette.map(c => c[4])) / 2, 2);
      const density = drawn * area > M.C.DENSITY_COVER * w * h
        || (drawn >= M.C.DENSITY_MIN_POINTS && occupied > 0 && drawn / occupied >= M.C.DENSITY_OVERLAP);
      if (density) drawDensity(occupied);
      else drawDiscs(n, palette, colour, cell, fade);
      ctx.putImageData(image, 0, 0);
      lastOccupied = occupied;
      return Object.assign(state, { drawn: drawn, density: density, ms: performance.now() - started });
    }

    function drawDensity(occupied) {
      // Each pixel: its points' mean colour (weighted by opacity), opaque in proportion to log(count).
      let most = 1;
      for (let j = 0; j < occupied; j++) if (counts[occupiedAt[j]] > most) most = counts[occupiedAt[j]];
      const scale = 1 / Math.log1p(most), px = pixels32;
      for (let j = 0; j < occupied; j++) {
        const p = occupiedAt[j], k = counts[p], weight = sumA[p];
        if (weight <= 0) continue;
        const level = (k < LOG.length ? LOG[k] : Math.log1p(k)) * scale;
        const alpha = Math.min(1, (0.45 + 0.55 * level) * Math.min(1, weight / k / 0.85));
        // Dense pixels darken a little, so a dense core reads as one against its lighter halo.
        const f = (1 - 0.3 * level) * alpha / weight, white = 255 * (1 - alpha);
        px[p] = (255 << 24) | ((white + sumB[p] * f) << 16) | ((white + sumG[p] * f) << 8) | (white + sumR[p] * f);
      }
    }

    function drawDiscs(n, palette, colour, cell, fade) {
      // Every point a disc of its size, in draw order (rarer groups on top). Nearly opaque colours are
      // written as they look over white, one 32-bit store a pixel; faint ones blend.
      const shapes = palette.map(c => discOffsets(c[4])), reach = palette.map(c => Math.ceil(Math.max(0.5, c[4] / 2)));
      const over = (c, a) => (255 << 24) | (Math.round(255 + (c[2] - 255) * a) << 16)
        | (Math.round(255 + (c[1] - 255) * a) << 8) | Math.round(255 + (c[0] - 255) * a);
      const packed = new Uint32Array(palette.map(c => over(c, c[3])));
      const opaque = palette.map(c => c[3] >= M.C.SOLID_ALPHA), px = pixels32;
      for (let i = 0; i < n; i++) {
        const p = cell[i];
        if (p < 0) continue;
        const k = colour[i], offsets = shapes[k], cx = p % w, cy = (p - cx) / w, e = reach[k];
        const f = fade ? fade(i) : 1, solid = opaque[k] && f === 1;
        if (solid && cx >= e && cy >= e && cx < w - e && cy < h - e) {
          const value = packed[k];
          for (let j = 0; j < offsets.length; j += 2) px[p + offsets[j + 1] * w + offsets[j]] = value;
          continue;
        }
        const c = palette[k], a = c[3] * f, b = 1 - a, r = c[0] * a, g = c[1] * a, bl = c[2] * a;
        for (let j = 0; j < offsets.length; j += 2) {
          const x = cx + offsets[j], y = cy + offsets[j + 1];
          if (x < 0 || x >= w || y < 0 || y >= h) continue;
          const q = y * w + x;
          if (solid) { px[q] = packed[k]; continue; }
          const d = px[q];
          px[q] = (255 << 24) | (((bl + ((d >>> 16) & 255) * b) & 255) << 16)
            | (((g + ((d >>> 8) & 255) * b) & 255) << 8) | ((r + (d & 255) * b) & 255);
        }
      }
    }

    return { draw: draw, state: state };
  }

  M.points = { createPainter: createPainter };
})(globalThis.ExplorerMap = globalThis.ExplorerMap || {});
