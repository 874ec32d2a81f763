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
  const thumbs = JSON.parse(document.getElementById("thumbnails").textContent);
  const thumbnails = new Map(thumbs.ids.map((id, k) => [id, thumbs.uris[k]]));
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
    // An image map's thumbnails, inlined by html_export.page_thumbnails (within its size budget).
    thumbnail: id => thumbnails.get(id) || null,
    onSelect: ids => { state.selected = ids.length; },
    onView: () => {
      const d = box.dataset;
      Object.assign(state, { drawn: Number(d.pointsDrawn), zoom: Number(d.zoom), drawMs: Number(d.drawMs),
                             labels: JSON.parse(d.labels), levels: JSON.parse(d.labelLevels), titles: JSON.parse(d.titles) });
    },
  });
  new MutationObserver(() => { state.hoverRow = box.dataset.hoverRow ? Number(box.dataset.hoverRow) : -1; })
    .observe(box, { attributes: true, attributeFilter: ["data-hover-row"] });

  // Search by meaning (mapjs/page_search.js) where the file carries the map's model: the hits light up as in
  // the app, ranks written beside the first ones, the query's star placed as the app places it (the per-axis
  // median of its best hits' places: explorer/placement.place_query) with lines to the hits.
  const searchMeta = JSON.parse(document.getElementById("search-meta").textContent);
  const searchInfo = state.search = { mode: searchMeta.kind ? "meaning" : "keyword", ready: false,
                                      reason: searchMeta.reason || "", model: searchMeta.model_id || "" };
  let searchSeq = 0;

  // Rows whose title and text (as kept in this file) contain every word, case-insensitive (positions).
  function keywordRows(text) {
    const words = text.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length || !texts) return null;
    if (!haystack) {
      haystack = new Array(n);
      for (let i = 0; i < n; i++) haystack[i] = (texts.title[i] + "\n" + (texts.text ? texts.text[i] : "")).toLowerCase();
    }
    const found = [];
    for (let i = 0; i < n; i++) if (words.every(word => haystack[i].includes(word))) found.push(i);
    return { words, found };
  }

  function placeQuery(index) {
    const best = index.slice(0, searchMeta.place_neighbors || 10);
    const median = values => {
      const v = values.slice().sort((a, b) => a - b), m = v.length >> 1;
      return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
    };
    return best.length ? { x: median(best.map(i => layer.x[i])), y: median(best.map(i => layer.y[i])) } : null;
  }

  function queryText(text) {
    // As draw.query_label writes it: whitespace collapsed, shortened, escaped (the core unescapes it once).
    const short = M.labels.shorten(text.split(/\s+/).filter(Boolean).join(" "), searchMeta.query_label_chars || 40);
    return short.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function search(text) {
    state.query = text;
    const seq = ++searchSeq;
    if (searchInfo.mode === "meaning" && searchInfo.ready && text.trim()) {
      window.explorerSearch(text, searchMeta.k || 10).then(result => {
        if (seq !== searchSeq) return;  // a newer query was typed meanwhile
        const place = placeQuery(result.index);
        state.hits = { rows: result.rows, scores: result.scores, ms: result.ms, query: place };
        state.matches = result.rows.length;
        box.dataset.matches = String(result.rows.length);
        countLine.textContent = "the " + result.rows.length + " rows nearest in meaning";
        map.setOverlay({ hits: result.rows, scores: result.scores, ranks: searchMeta.ranks || 3,
                         query: place ? { ...place, text: queryText(text) } : null });
      }).catch(error => { state.error = String(error && error.message || error); statusLine.textContent = state.error; });
      return;
    }
    const keyword = keywordRows(text);
    state.hits = null;
    if (!keyword) {
      state.matches = null; countLine.textContent = ""; box.dataset.matches = "";
      map.setOverlay({});
      return;
    }
    const found = keyword.found;
    state.matches = found.length;
    box.dataset.matches = String(found.length);
    countLine.textContent = found.length.toLocaleString("en") + " of " + n.toLocaleString("en")
      + " rows contain " + (keyword.words.length > 1 ? "all these words" : "this word");
    map.setOverlay({});
    map.setHits(found, null, 0, true);
  }

  // The page's search API's keyword answer (a map whose model is not in the file): positions and row ids.
  function keywordAnswer(text, k) {
    const keyword = keywordRows(text), index = keyword ? keyword.found.slice(0, k) : [];
    return { index, rows: index.map(i => layer.ids[i]), scores: index.map(() => 1) };
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
    if (searchInfo.mode === "meaning") {
      parts.push("Search by meaning with the map's own model (" + searchInfo.model + "), run inside this file: "
        + "the " + (searchMeta.k || 10) + " rows nearest to what you type light up"
        + (searchInfo.ready ? "." : " (the model is loading…)."));
    } else {
      parts.push((searchInfo.reason ? searchInfo.reason.replace(/\.?$/, ". ") : "")
        + "Keyword search, not a search by meaning: it finds the rows whose " + where
        + " every word you type (case-insensitive, parts of words count).");
    }
    const cut = ["Texts are shortened to keep this file small: titles to " + meta.title_chars + " characters"];
    if (meta.text_columns.length) cut.push(meta.text_columns.join(", ") + " to the first " + meta.text_chars + " characters");
    let note = cut.join(", ") + ".";
    if (meta.omitted_text && meta.omitted_text.length) {
      note += " On a map this big the " + meta.omitted_text.join(", ") + (meta.omitted_text.length > 1 ? " columns are"
        : " column is") + " left out: search and hover use the titles.";
    }
    if (meta.thumbnails && meta.thumbnails.left_out) {
      note += " Thumbnails: " + meta.thumbnails.shown.toLocaleString("en") + " rows have theirs in this file, "
        + meta.thumbnails.left_out.toLocaleString("en") + " are left out to keep it small.";
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

  if (searchInfo.mode === "meaning") {
    document.querySelector("#search label").textContent = "Search by meaning";
    query.placeholder = "describe what you are looking for";
  }
  M.pageSearch.install(document, { keyword: keywordAnswer }).then(done => {
    Object.assign(searchInfo, { ready: true, loadMs: done.loadMs });
    box.dataset.searchReady = searchInfo.mode;
    describe();
    if (query.value) search(query.value);
  }).catch(error => {
    // The model could not start here: the keyword search stands in, and the page says why.
    Object.assign(searchInfo, { mode: "keyword", ready: true, reason: "Search by meaning failed to start ("
      + String(error && error.message || error) + ")" });
    document.querySelector("#search label").textContent = "Keyword search";
    box.dataset.searchReady = "keyword";
    describe();
  });

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
