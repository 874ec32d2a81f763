"use strict";
// Search by meaning in the shared page, the documents' side: every drawn row's vector as int8 with one
// scale per dimension (explorer/html_search.py: pack_vectors), scanned whole for each query. The
// query is multiplied by the scales once, so the scan is one int8 × float dot product per row.
// Nothing here draws: ExplorerMap.vectors.create(payload) → {search(queryVector, k) → {index, rows, scores}}.
(function (root) {
  const ExplorerMap = root.ExplorerMap = root.ExplorerMap || {};

  function create(p) {
    const n = p.rows.length, d = p.dimension, codes = p.codes, scale = p.scale, rowIds = p.rows;
    const scores = new Float32Array(n), q = new Float32Array(d);
    /** The k rows nearest to a unit query vector: page indices, row ids and approximate cosines, best first. */
    function search(vector, k) {
      for (let j = 0; j < d; j++) q[j] = vector[j] * scale[j];
      for (let i = 0, o = 0; i < n; i++, o += d) {
        let s = 0;
        for (let j = 0; j < d; j++) s += q[j] * codes[o + j];
        scores[i] = s;
      }
      return top(scores, Math.min(k, n));
    }
    function top(values, k) {
      // A sorted list of the best k so far: k is small (tens), so an insertion beats sorting n scores.
      const best = [], worst = () => values[best[best.length - 1]];
      for (let i = 0; i < values.length; i++) {
        const s = values[i];
        if (best.length === k && !(s > worst())) continue;
        let at = best.length === k ? k - 1 : best.length;
        while (at > 0 && values[best[at - 1]] < s) { best[at] = best[at - 1]; at--; }
        best[at] = i;
      }
      return { index: best, rows: best.map(i => rowIds[i]), scores: best.map(i => values[i]) };
    }
    return { size: n, dimension: d, search };
  }

  ExplorerMap.vectors = { create };
})(globalThis);
