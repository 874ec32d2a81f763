"use strict";
// The view: which part of the map fills the element (centre and scale), fitted, panned and zoomed.
(function (M) {
  function createView(element) {
    const v = { cx: 0, cy: 0, scale: 1, fit: 1, w: 1, h: 1, moved: false, extent: [-1, 1, -1, 1] };

    function resize() {
      // The element's size in CSS pixels; the full view's scale follows it (and the view, until moved).
      const rect = element.getBoundingClientRect();
      const w = Math.max(1, Math.round(rect.width)), h = Math.max(1, Math.round(rect.height));
      const [x0, x1, y0, y1] = v.extent, zoom = v.scale / v.fit;
      v.w = w; v.h = h;
      v.fit = Math.min(w / (((x1 - x0) || 1) * M.C.PAD), h / (((y1 - y0) || 1) * M.C.PAD));
      if (!v.moved) fit(); else v.scale = v.fit * zoom;
    }

    function setExtent(extent) {
      v.extent = extent.slice();
      v.moved = false;
      resize();
    }

    function fit() {
      const [x0, x1, y0, y1] = v.extent;
      Object.assign(v, { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale: v.fit, moved: false });
    }

    // Map units <-> CSS pixels from the element's top left corner.
    const px = x => (x - v.cx) * v.scale + v.w / 2;
    const py = y => v.h / 2 - (y - v.cy) * v.scale;
    const dataX = p => v.cx + (p - v.w / 2) / v.scale;
    const dataY = p => v.cy - (p - v.h / 2) / v.scale;

    function zoomAt(mx, my, factor) {
      // The place under the pointer stays where it is.
      const scale = Math.min(v.fit * M.C.MAX_ZOOM, Math.max(v.fit * M.C.MIN_ZOOM, v.scale * factor));
      const x = dataX(mx), y = dataY(my);
      Object.assign(v, { scale: scale, cx: x - (mx - v.w / 2) / scale, cy: y + (my - v.h / 2) / scale, moved: true });
    }

    function panBy(dx, dy) {
      v.cx -= dx / v.scale; v.cy += dy / v.scale; v.moved = true;
    }

    function bounds() {
      // The view's data rectangle: {x0, x1, y0, y1}.
      return { x0: dataX(0), x1: dataX(v.w), y0: dataY(v.h), y1: dataY(0) };
    }

    function get() { return { cx: v.cx, cy: v.cy, zoom: v.scale / v.fit }; }
    function set(state) {
      // A view saved by get() (the app keeps it in the URL): centre and zoom.
      if (!state || !Number.isFinite(state.cx) || !Number.isFinite(state.cy) || !(state.zoom > 0)) return;
      Object.assign(v, { cx: state.cx, cy: state.cy, scale: v.fit * state.zoom, moved: true });
    }

    return { state: v, resize: resize, setExtent: setExtent, fit: fit, px: px, py: py, dataX: dataX, dataY: dataY,
             zoomAt: zoomAt, panBy: panBy, bounds: bounds, zoom: () => v.scale / v.fit, get: get, set: set };
  }

  M.view = { create: createView };
})(globalThis.ExplorerMap = globalThis.ExplorerMap || {});
