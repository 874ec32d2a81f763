"use strict";
// Every constant of the map core, declared once (the app, the offline page and the notebook load this file).
(function (M) {
  M.C = Object.freeze({
    // At most this many cluster labels at once: more would hide the points they name.
    MAX_LABELS: 50,
    // A level's labels give way to finer ones from this many times the next level's zoom on, so that a
    // fine cluster sitting on its coarse parent's centre still gets its own label further in.
    RETIRE_FACTOR: 4,
    // The full view leaves about 5% of the map's extent free on each side.
    PAD: 1.1,
    // Titles show beside the points once a zoom leaves at most this many in view, cut to this length.
    TITLE_POINTS: 25,
    TITLE_CHARS: 48,
    // Hover and click find the nearest point within this many pixels, through a grid of this cell size.
    PICK_RADIUS: 10,
    GRID_PX: 16,
    // Density takes over once the points in view average this many per occupied pixel, or once their
    // discs would cover the view this many times over (drawing them would cost more than a frame).
    DENSITY_OVERLAP: 2,
    // ...but a small map stays discs, however its points pile up (a few hundred duplicates would be specks).
    DENSITY_MIN_POINTS: 5000,
    DENSITY_COVER: 4,
    // Colours at least this opaque are drawn as they look over white (one store a pixel).
    SOLID_ALPHA: 0.8,
    // A selection leaves the other points at this share of their opacity; a facet's dimming at this one.
    UNSELECTED_ALPHA: 0.2,
    MASKED_ALPHA: 0.12,
    // A press that moves less than this many pixels is a click, not a drag.
    CLICK_SLOP: 3,
    // Zoom limits, as multiples of the full view's scale.
    MIN_ZOOM: 0.5,
    MAX_ZOOM: 20000,
    FONT: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
    LEVEL_STYLE: [
      { size: 13, weight: 600, color: "#111111", bg: "rgba(255,255,255,0.82)" },
      { size: 12, weight: 400, color: "#263238", bg: "rgba(255,255,255,0.78)" },
      { size: 11, weight: 400, color: "#37474f", bg: "rgba(255,255,255,0.74)" },
    ],
    // Search hits: gold discs ringed in dark red; the base layer behind them veiled.
    HIT_FILL: "rgba(255,215,0,0.95)",
    HIT_RING: "#b71c1c",
    HIT_PX: 12,
    VEIL: "rgba(255,255,255,0.55)",
    LINK: "rgba(214,39,40,0.45)",
    NEIGHBOUR_RING: "#37474f",
    FOCUS_RING: "#000000",
    QUERY_STAR: "#d62728",
    // The name of the layer group holding the rows a filter dims (draw.point_groups).
    DIMMED_GROUP: "filtered out",
  });
})(globalThis.ExplorerMap = globalThis.ExplorerMap || {});
