"use strict";
// Search by meaning in the shared page: reads the blocks explorer/html_search.py wrote (each one base64
// of raw-deflated bytes, unpacked by the browser's DecompressionStream), builds the query embedder
// (semantic.js) and the document vectors (vectors.js), and installs the page's API
//   window.explorerSearch(query, k) → Promise<{mode, rows, scores, index, ms}>
// rows: the map's row ids, best first; scores: cosines (approximate: the vectors are int8); index: the
// rows' places in the page's points block. A map whose model cannot run in the page answers by keyword
// (mode "keyword", through the host's own keyword search) and says why in `reason`.
(function (root) {
  const ExplorerMap = root.ExplorerMap = root.ExplorerMap || {};

  function base64Bytes(text) {
    // The browser's own decoder where it has one (Chromium 140 on): a 46 MB block in a fraction of atob's time.
    if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(text.trim());
    const raw = atob(text.trim()), bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  /** The bytes of a `<script type="application/octet-stream">` block, inflated (deflate-raw). */
  async function inflate(doc, id) {
    const stream = new Blob([base64Bytes(doc.getElementById(id).textContent)]).stream()
      .pipeThrough(new DecompressionStream("deflate-raw"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  const json = bytes => JSON.parse(new TextDecoder().decode(bytes));
  // Typed arrays over packed little-endian blocks; a copy where the offset breaks their alignment.
  const view = (Type, bytes, offset, count) => (offset % Type.BYTES_PER_ELEMENT === 0
    ? new Type(bytes.buffer, bytes.byteOffset + offset, count)
    : new Type(bytes.slice(offset, offset + count * Type.BYTES_PER_ELEMENT).buffer));

  /** The document vectors: row ids (int32), one scale per dimension (float32), codes (int8), row by row. */
  function unpackVectors(bytes, n, d) {
    return { rows: view(Int32Array, bytes, 0, n), scale: view(Float32Array, bytes, 4 * n, d),
             codes: view(Int8Array, bytes, 4 * n + 4 * d, n * d), dimension: d };
  }

  async function payload(doc, info) {
    if (info.kind === "transformer") {
      const [model, wasm, tokenizer] = await Promise.all([
        inflate(doc, "search-model"), inflate(doc, "search-wasm"), inflate(doc, "search-tokenizer")]);
      return { ...info.model, kind: info.kind, model, wasm, tokenizer: json(tokenizer) };
    }
    const [words, numbers] = await Promise.all([inflate(doc, "search-words"), inflate(doc, "search-model")]);
    const vocabulary = json(words), V = vocabulary.length, k = info.model.dimension;
    return { ...info.model, kind: info.kind, vocabulary, idf: view(Float32Array, numbers, 0, V),
             scale: view(Float32Array, numbers, 4 * V, V), components: view(Int8Array, numbers, 8 * V, V * k) };
  }

  /** Read the page's search blocks and install window.explorerSearch; `keyword(query, k)` answers when
   * the map's model is not in the file. Resolves to the state: {mode, ready, reason, loadMs}. */
  async function install(doc, { keyword } = {}) {
    const started = performance.now();
    const info = JSON.parse(doc.getElementById("search-meta").textContent);
    const state = { mode: info.kind ? "meaning" : "keyword", ready: false, reason: info.reason || "", loadMs: 0 };
    let embedder = null, vectors = null;
    // The model loads as the page opens; a query asked meanwhile waits for it rather than failing.
    const loading = state.mode !== "meaning" ? Promise.resolve() : (async () => {
      const [model, bytes] = await Promise.all([payload(doc, info), inflate(doc, "search-vectors")]);
      vectors = ExplorerMap.vectors.create(unpackVectors(bytes, info.rows, info.dimension));
      embedder = await ExplorerMap.semantic.create(model);
      root.explorerTokenize = embedder.tokenize || embedder.words;
      root.explorerEmbed = async text => Array.from(await embedder.embed(text));
    })();
    root.explorerSearch = async (query, k = 10) => {
      const t0 = performance.now();
      if (state.mode !== "meaning") {
        return { mode: "keyword", reason: state.reason, ...(await keyword(String(query), k)), ms: performance.now() - t0 };
      }
      await loading;
      const vector = await embedder.embed(String(query).trim().slice(0, info.max_query_chars || 2000));
      return { mode: "meaning", ...vectors.search(vector, k), ms: performance.now() - t0 };
    };
    try {
      await loading;
    } catch (error) {
      // The model could not start here: the page's API answers by keyword from now on.
      Object.assign(state, { mode: "keyword", reason: "Search by meaning failed to start (" + (error && error.message || error) + ")" });
      throw error;
    }
    state.ready = true;
    state.loadMs = performance.now() - started;
    return state;
  }

  ExplorerMap.pageSearch = { install, inflate, unpackVectors };
})(globalThis);
