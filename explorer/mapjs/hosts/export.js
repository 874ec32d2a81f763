"use strict";
// The offline HTML export's host (explorer/html_export.py writes the data blocks this reads): the map
// core on #map, the texts for hover, titles and keyword search, and the page's search form.
// What is drawn is exposed for tests on window.explorerExport and as data-* attributes on #map.
(function () {
  const M = globalThis.ExplorerMap;
  const meta = JSON.parse(document.getElementById("meta").textContent);
  const box = document.getElementById("map"), statusLine = document.getElementById("status");
  const query = document.getElementById("query"), countLine = document.getElementById("count");
  const layer = M.layer.fromBase64(document.getElementById("points-data").textContent);
  const n = layer.n;
  let texts = null, haystack = null;
  const state = window.explorerExport = {
    ready: false, textsReady: false, total: n, drawn: 0, zoom: 1, labels: [], levels: [], titles: [], matches: null,
    query: "", drawMs: 0, hoverRow: -1, selected: 0, error: null,
  };

  const map = M.create(box, {
    legendTitle: meta.colour ? "Colour: " + meta.colour : "",
    describe: i => texts ? {
      title: texts.title[i], text: texts.text ? texts.text[i] : "",
      fields: meta.fields.map(name => [name, texts.fields[name].values[texts.fields[name].codes[i]]]),
    } : null,
    title: i => (texts ? texts.title[i] : null),
    onSelect: ids => { state.selected = ids.length; },
    onView: () => {
      const d = box.dataset;
      Object.assign(state, { drawn: Number(d.pointsDrawn), zoom: Number(d.zoom), drawMs: Number(d.drawMs),
                             labels: JSON.parse(d.labels), levels: JSON.parse(d.labelLevels), titles: JSON.parse(d.titles) });
    },
  });
  new MutationObserver(() => { state.hoverRow = box.dataset.hoverRow ? Number(box.dataset.hoverRow) : -1; })
    .observe(box, { attributes: true, attributeFilter: ["data-hover-row"] });

  function search(text) {
    // Rows whose title and text (as kept in this file) contain every word, case-insensitive.
    const words = text.toLowerCase().split(/\s+/).filter(Boolean);
    state.query = text;
    if (!words.length || !texts) {
      state.matches = null; countLine.textContent = ""; box.dataset.matches = "";
      map.setHits([], null, 0, true);
      return;
    }
    if (!haystack) {
      haystack = new Array(n);
      for (let i = 0; i < n; i++) haystack[i] = (texts.title[i] + "\n" + (texts.text ? texts.text[i] : "")).toLowerCase();
    }
    const found = [];
    for (let i = 0; i < n; i++) if (words.every(word => haystack[i].includes(word))) found.push(i);
    state.matches = found.length;
    box.dataset.matches = String(found.length);
    countLine.textContent = found.length.toLocaleString("en") + " of " + n.toLocaleString("en")
      + " rows contain " + (words.length > 1 ? "all these words" : "this word");
    map.setHits(found, null, 0, true);
  }

  let searchTimer = 0;
  query.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(() => search(query.value), 150); });
  document.getElementById("search").addEventListener("submit", ev => {
    ev.preventDefault();
    clearTimeout(searchTimer);
    search(query.value);
  });

  function describe() {
    const parts = [n.toLocaleString("en") + " points" + (meta.rows > n ? " (of " + meta.rows.toLocaleString("en")
      + " rows; the others have no place on the map)" : "") + ". Drag to pan, wheel to zoom, double-click to reset;"
      + " Box and Lasso select."];
    const where = meta.text_columns.length ? [meta.title].concat(meta.text_columns).join(" and ") + " together contain"
      : meta.title + " contains";
    parts.push("Keyword search, not a search by meaning: it finds the rows whose " + where
      + " every word you type (case-insensitive, parts of words count).");
    const cut = ["Texts are shortened to keep this file small: titles to " + meta.title_chars + " characters"];
    if (meta.text_columns.length) cut.push(meta.text_columns.join(", ") + " to the first " + meta.text_chars + " characters");
    let note = cut.join(", ") + ".";
    if (meta.omitted_text && meta.omitted_text.length) {
      note += " On a map this big the " + meta.omitted_text.join(", ") + (meta.omitted_text.length > 1 ? " columns are"
        : " column is") + " left out: search and hover use the titles.";
    }
    parts.push(note);
    document.getElementById("about").textContent = parts.join(" ");
  }

  async function loadTexts() {
    if (typeof DecompressionStream === "undefined") {
      throw new Error("this browser cannot unpack the texts (it lacks DecompressionStream): hover shows groups only");
    }
    const stream = new Blob([M.layer.bytesFromBase64(document.getElementById("texts-data").textContent)]).stream()
      .pipeThrough(new DecompressionStream("deflate-raw"));
    texts = JSON.parse(await new Response(stream).text());
  }

  // For tests: where a place of the map (or row i) is now, in CSS pixels from the map's top left corner,
  // and what row i's hover says.
  state.project = map.project;
  state.at = map.at;
  state.hover = i => map.showHover(i);

  describe();
  map.setLayer(layer);
  map.setLabels(meta.labels);
  const facets = document.getElementById("facets-data").textContent.trim();
  if (facets) M.facets.attach(map, M.layer.bytesFromBase64(facets));
  map.draw();
  state.ready = true;
  box.dataset.ready = "1";
  statusLine.textContent = "Unpacking titles for hover and search…";
  loadTexts().then(() => {
    state.textsReady = true;
    box.dataset.textsReady = "1";
    statusLine.textContent = "";
    map.schedule();  // titles beside the points, if few are in view
    if (query.value) search(query.value);
  }).catch(error => {
    state.error = String(error && error.message || error);
    statusLine.textContent = state.error;
  });
})();
