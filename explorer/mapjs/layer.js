"use strict";
// The points layer: draw.PointsLayer.to_bytes (magic, header JSON, x and y float32, row ids int32, colour uint8).
(function (M) {
  function bytesFromBase64(text) {
    // A host that can only carry text (the offline page, a notebook) sends the same bytes as base64.
    const raw = atob(String(text).trim()), bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function parseLayer(buffer) {
    // The header and the four arrays, without copying them; plus what the core derives once per layer.
    const bytes = new Uint8Array(buffer);
    if (String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]) !== "EXPL") throw new Error("not a points layer");
    const size = new DataView(buffer).getUint32(4, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + size)));
    const n = header.n, at = 8 + size;
    const layer = {
      n: n, palette: header.palette, legend: header.legend, hover: header.hover || null,
      x: new Float32Array(buffer, at, n), y: new Float32Array(buffer, at + 4 * n, n),
      ids: new Int32Array(buffer, at + 8 * n, n), colour: new Uint8Array(buffer, at + 12 * n, n),
      bytes: buffer.byteLength,
    };
    // Each colour's legend group, the colours a filter dims, and the colours hidden from the legend.
    layer.groupOf = new Int16Array(256).fill(-1);
    layer.dimmedColour = new Uint8Array(256);
    layer.legend.forEach((entry, g) => entry.colours.forEach(c => {
      layer.groupOf[c] = g;
      if (entry.name === M.C.DIMMED_GROUP) layer.dimmedColour[c] = 1;
    }));
    layer.hidden = new Uint8Array(256);
    layer.counts = new Uint32Array(256);
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, maxId = -1;
    for (let i = 0; i < n; i++) {
      const x = layer.x[i], y = layer.y[i], id = layer.ids[i];
      if (x < x0) x0 = x; if (x > x1) x1 = x;
      if (y < y0) y0 = y; if (y > y1) y1 = y;
      if (id > maxId) maxId = id;
      layer.counts[layer.colour[i]]++;
    }
    layer.extent = Number.isFinite(x0) ? [x0, x1, y0, y1] : [-1, 1, -1, 1];
    // Row id -> position, for what hosts send as row ids (selection, hits, focus, neighbours).
    layer.position = new Int32Array(maxId + 1).fill(-1);
    for (let i = 0; i < n; i++) layer.position[layer.ids[i]] = i;
    return layer;
  }

  function positionOf(layer, id) {
    return layer && id >= 0 && id < layer.position.length ? layer.position[id] : -1;
  }

  M.layer = { parse: parseLayer, fromBase64: text => parseLayer(bytesFromBase64(text)), bytesFromBase64: bytesFromBase64,
              positionOf: positionOf };
})(globalThis.ExplorerMap = globalThis.ExplorerMap || {});
