"use strict";
// Search by meaning in the shared page, the query's side: text → unit vector, as the map's model makes it
// in Python (explorer/html_search.py writes the payload). Two models:
//   transformer: the model's tokenizer.json read by npm @huggingface/tokenizers (globalThis.HFTokenizers),
//     the ONNX graph run by onnxruntime-web's WebAssembly build (globalThis.ort, one thread: a file://
//     page cannot be cross-origin isolated, which threads need), then mean (or CLS) pooling and
//     normalising, as sentence-transformers' Pooling and Normalize modules do;
//   tfidf: sklearn's TfidfVectorizer (lowercase, accents stripped, words of 2+ letters, sublinear tf,
//     idf) and the SVD components, stored word by word as int8 with one scale per word.
// Nothing here draws: the map's core calls ExplorerMap.semantic.create(payload) → {embed(text)}.
(function (root) {
  const ExplorerMap = root.ExplorerMap = root.ExplorerMap || {};

  function normalise(v) {
    let s = 0;
    for (let j = 0; j < v.length; j++) s += v[j] * v[j];
    s = Math.sqrt(s);
    if (s > 0) for (let j = 0; j < v.length; j++) v[j] /= s;
    return v;
  }

  // sentence-transformers strips each text (str.strip) before tokenising it.
  const pyStrip = text => text.replace(/^[\s\x1c-\x1f\x85]+|[\s\x1c-\x1f\x85]+$/gu, "");

  async function transformer(p) {
    const ort = root.ort, Tokenizers = root.HFTokenizers;
    if (!ort || !Tokenizers) throw new Error("this file lacks the model's runtime");
    // The runtime's WebAssembly comes from the file itself: nothing is fetched, no worker is started.
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmBinary = p.wasm;
    const session = await ort.InferenceSession.create(p.model, { executionProviders: ["wasm"] });
    const tokenizer = new Tokenizers.Tokenizer(p.tokenizer, p.tokenizerConfig || {});
    const max = p.max_seq_length, d = p.dimension;
    // The ids Python's tokenizer gives with truncation at max_seq_length: the text's first tokens,
    // then the closing special token ([SEP] for BERT), as transformers' "longest_first" does for one text.
    function tokenize(text) {
      const ids = tokenizer.encode(pyStrip(String(text))).ids;
      return ids.length > max ? ids.slice(0, max - 1).concat(ids[ids.length - 1]) : ids;
    }
    async function embed(text) {
      const ids = tokenize(text), L = ids.length;
      const feeds = {
        input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, L]),
        attention_mask: new ort.Tensor("int64", new BigInt64Array(L).fill(1n), [1, L]),
      };
      const hidden = (await session.run(feeds)).last_hidden_state.data;
      const v = new Float32Array(d);
      if (p.pooling === "cls") {
        v.set(hidden.subarray(0, d));
      } else {
        for (let t = 0; t < L; t++) for (let j = 0; j < d; j++) v[j] += hidden[t * d + j];
        for (let j = 0; j < d; j++) v[j] /= L;
      }
      return normalise(v);
    }
    return { kind: "transformer", dimension: d, embed, tokenize };
  }

  // sklearn's strip_accents="unicode": NFKD, then combining marks dropped.
  const stripAccents = text => {
    const split = text.normalize("NFKD");
    return split === text ? text : split.replace(/\p{M}/gu, "");
  };
  // sklearn's default token_pattern (?u)\b\w\w+\b: Python's \w is letters, digits and the underscore.
  const WORD = /[\p{L}\p{N}_]{2,}/gu;

  function tfidf(p) {
    const index = new Map(p.vocabulary.map((word, i) => [word, i]));
    const k = p.dimension, idf = p.idf, codes = p.components, scale = p.scale;
    function words(text) {
      let t = String(text);
      if (p.lowercase) t = t.toLowerCase();
      if (p.strip_accents) t = stripAccents(t);
      return t.match(WORD) || [];
    }
    async function embed(text) {
      const counts = new Map();
      for (const word of words(text)) {
        const i = index.get(word);
        if (i !== undefined) counts.set(i, (counts.get(i) || 0) + 1);
      }
      const v = new Float32Array(k);
      for (const [i, tf] of counts) {
        const weight = (p.sublinear_tf ? 1 + Math.log(tf) : tf) * idf[i] * scale[i];
        for (let j = 0, o = i * k; j < k; j++) v[j] += weight * codes[o + j];
      }
      return normalise(v);
    }
    return { kind: "tfidf", dimension: k, embed, words };
  }

  ExplorerMap.semantic = {
    /** The query embedder for a payload: a Promise of {kind, dimension, embed(text) → Promise<Float32Array>}. */
    async create(payload) {
      if (payload.kind === "transformer") return transformer(payload);
      if (payload.kind === "tfidf") return tfidf(payload);
      throw new Error("this map's model cannot run in the page");
    },
    normalise,
  };
})(globalThis);
