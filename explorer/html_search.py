"""Search by meaning inside the shared HTML map: the blocks the page's search reads (explorer/mapjs/page_search.js,
semantic.js and vectors.js, part of the map core; the export's host, mapjs/hosts/export.js, installs it).

A transformer map carries its model exported to ONNX (embedders/onnx_export.py, int8), onnxruntime-web's
WebAssembly and the model's tokenizer.json; a fast (TF-IDF + SVD) map its vocabulary, idf weights and
components. Both carry every drawn row's vector as int8 with one scale per dimension. Each block is
raw-deflated and base64 (unpacked by the browser's DecompressionStream). A map whose model cannot run
in the page (your own vectors, hashing, pixels, CLIP) keeps the keyword search, and the page says why.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .corpus import TEXT
from .draw import QUERY_LABEL_CHARS, RANK_TEXT_HITS
from .embedders.onnx_export import export_onnx, onnx_cache_dir
from .errors import InputError, ModelError
from .placement import PLACE_NEIGHBORS
from .search import KEYWORD as KEYWORD_MAP
from .search import MAX_QUERY_CHARS

log = logging.getLogger(__name__)

MEANING, KEYWORD = "meaning", "keyword"
SEARCH_MODES = (MEANING, KEYWORD)
TRANSFORMER, TFIDF = "transformer", "tfidf"
# npm's files, copied by `make` (Makefile: VENDOR) into explorer/mapjs/vendor/.
VENDOR_ORT = "ort.wasm.bundle.min.mjs"
VENDOR_WASM = "ort-wasm-simd-threaded.wasm"
VENDOR_TOKENIZERS = "tokenizers.min.mjs"
# The hits shown for a query (the app's default result count).
PAGE_K = 10
# The hits as the app shows them: how many, ranks written beside the first ones, the query's label and the
# best hits its star is placed from (explorer/placement.place_query).
HITS_SHOWN = {"k": PAGE_K, "ranks": RANK_TEXT_HITS, "query_label_chars": QUERY_LABEL_CHARS,
              "place_neighbors": PLACE_NEIGHBORS}
# WebAssembly may compile only with this in script-src; nothing else is opened up.
WASM_CSP = "'wasm-unsafe-eval'"


@dataclass
class SearchBlocks:
    """What the page's search needs: its description (JSON), the data blocks by element id, the runtime's
    scripts (inlined before the map core, whose semantic.js, vectors.js and page_search.js use them), and each
    part's size in the file (bytes)."""

    info: dict
    blocks: dict[str, str] = field(default_factory=dict)
    scripts: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def needs_wasm(self) -> bool:
        """Whether the page runs WebAssembly (the transformer's runtime)."""
        return self.info.get("kind") == TRANSFORMER


def search_blocks(saved, positions: np.ndarray, *, search: str | None = None,
                  cache_root: str | Path | None = None, quantise: bool = True) -> SearchBlocks:
    """The search blocks for the rows at ``positions`` of ``saved`` (in the page's order). ``search``
    "meaning" insists on the map's model (InputError when it cannot run in the page), "keyword" leaves
    it out, None takes the model where it can run and the keyword search otherwise; ``quantise`` False puts
    the transformer in at full precision (four times the size, for checks)."""
    if search not in (None, *SEARCH_MODES):
        raise InputError(f"Unknown search '{search}': use one of {', '.join(SEARCH_MODES)}.")
    positions = np.asarray(positions, dtype=np.int64)
    if search == KEYWORD:
        return keyword_blocks("The file was exported with keyword search only (--search keyword).")
    try:
        return _meaning_blocks(saved, positions, cache_root=cache_root, quantise=quantise)
    except ModelError as exc:
        if search == MEANING:
            raise InputError(f"Search by meaning cannot go into this file: {exc}") from exc
        log.info("html export without search by meaning: %s", exc)
        return keyword_blocks(str(exc))


def _meaning_blocks(saved, positions: np.ndarray, *, cache_root, quantise: bool) -> SearchBlocks:
    embedder, kind = _page_model(saved)
    rows = saved.points["row_id"].to_numpy()[positions]
    vectors = np.asarray(saved.embeddings, dtype=np.float32)[positions]
    found = SearchBlocks(info={"kind": kind, "reason": "", "rows": int(len(positions)),
                               "dimension": int(vectors.shape[1]), "model_id": saved.meta.model_id,
                               "max_query_chars": MAX_QUERY_CHARS, **HITS_SHOWN})
    if kind == TFIDF:
        _tfidf(found, embedder)
    else:
        _transformer(found, embedder, cache_root or onnx_cache_dir(Path(saved.path).parent.parent), quantise)
    found.blocks["search-vectors"] = pack(pack_vectors(rows, vectors))
    found.sizes["vectors"] = len(found.blocks["search-vectors"])
    return found


def keyword_blocks(reason: str) -> SearchBlocks:
    """The search of a file without a model: the page's keyword search, and why."""
    return SearchBlocks(info={"kind": None, "reason": reason, "rows": 0, "dimension": 0, **HITS_SHOWN})


def _page_model(saved):
    """The map's query embedder and the page's kind for it; ModelError when the page cannot run it."""
    from .embedders import embedder_for
    from .embedders.tfidf import CorpusEmbedder, is_corpus_model
    from .embedders.transformer import ClipEmbedder, SentenceTransformerEmbedder

    if saved.kind != TEXT or saved.meta.text_search == KEYWORD_MAP:
        raise ModelError(saved.meta.text_search_reason or "this map has no text model")
    embedder = embedder_for(saved)
    inner = getattr(embedder, "_inner", embedder)  # the registry's adapter around a caller's own embedder
    if is_corpus_model(saved.meta.model) and isinstance(inner, CorpusEmbedder):
        return inner, TFIDF
    if isinstance(inner, SentenceTransformerEmbedder) and not isinstance(inner, ClipEmbedder):
        return inner, TRANSFORMER
    raise ModelError(f"this map's model ({saved.meta.model_id}) cannot run in the page, so the search matches words")


def pack(data: bytes) -> str:
    """Raw deflate (the browser's DecompressionStream("deflate-raw")), then base64."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(packer.compress(data) + packer.flush()).decode("ascii")


def unpack(block: str) -> bytes:
    """The bytes back from `pack`."""
    return zlib.decompress(base64.b64decode(block), -15)


def quantise_columns(matrix: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes and float32 scales (one per slice along ``axis``): value ≈ code × scale."""
    top = np.abs(matrix).max(axis=axis, keepdims=True) if matrix.size else np.ones((1, 1), np.float32)
    scale = np.where(top > 0, top / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(matrix / scale), -127, 127).astype(np.int8)
    return codes, scale.reshape(-1)


def pack_vectors(rows: np.ndarray, vectors: np.ndarray) -> bytes:
    """Row ids (int32), one scale per dimension (float32), int8 codes row by row, little-endian."""
    codes, scale = quantise_columns(vectors, axis=0)
    return b"".join([np.asarray(rows).astype("<i4").tobytes(), scale.astype("<f4").tobytes(), codes.tobytes()])


def unpack_vectors(data: bytes, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Row ids and the dequantised vectors back from `pack_vectors` (what the page scans)."""
    rows = np.frombuffer(data, "<i4", n, 0)
    scale = np.frombuffer(data, "<f4", d, 4 * n)
    codes = np.frombuffer(data, np.int8, n * d, 4 * n + 4 * d).reshape(n, d)
    return rows, codes.astype(np.float32) * scale


def _tfidf(found: SearchBlocks, embedder) -> None:
    """A fast map's fitted pieces: vocabulary (JSON), idf, per-word scales and int8 components word by word."""
    vectorizer = embedder._vectorizer
    params = vectorizer.get_params()
    if tuple(params["ngram_range"]) != (1, 1) or params["token_pattern"] != r"(?u)\b\w\w+\b" or params["norm"] != "l2":
        raise ModelError("this fast map's vectorizer has settings the page does not implement.")
    vocabulary = vectorizer.get_feature_names_out().tolist()
    codes, scale = quantise_columns(np.asarray(embedder._components, dtype=np.float32).T, axis=1)
    numbers = b"".join([np.asarray(vectorizer.idf_, dtype="<f4").tobytes(), scale.astype("<f4").tobytes(),
                        np.ascontiguousarray(codes).tobytes()])
    found.blocks["search-words"] = pack(json.dumps(vocabulary, ensure_ascii=False).encode("utf-8"))
    found.blocks["search-model"] = pack(numbers)
    found.info["model"] = {"dimension": int(codes.shape[1]), "lowercase": bool(params["lowercase"]),
                           "strip_accents": params["strip_accents"] == "unicode",
                           "sublinear_tf": bool(params["sublinear_tf"])}
    found.sizes["model"] = len(found.blocks["search-words"]) + len(found.blocks["search-model"])


def _transformer(found: SearchBlocks, embedder, cache_root: Path, quantise: bool) -> None:
    """The transformer map's ONNX model (int8), tokenizer.json and onnxruntime-web (script and WebAssembly)."""
    vendor = [_vendor(VENDOR_ORT), _vendor(VENDOR_TOKENIZERS)]
    model = export_onnx(embedder, cache_root, quantise=quantise)
    found.blocks["search-model"] = pack(model.model_path.read_bytes())
    found.blocks["search-tokenizer"] = pack(model.tokenizer_path.read_bytes())
    found.blocks["search-wasm"] = pack(_vendor_path(VENDOR_WASM).read_bytes())
    found.info["model"] = {"dimension": model.dimension, "max_seq_length": model.max_seq_length,
                           "pooling": model.pooling, "normalise": model.normalise, "quantised": model.quantised}
    found.scripts = [classic(vendor[0], "ort"), classic(vendor[1], "HFTokenizers")]
    found.sizes["model"] = len(found.blocks["search-model"]) + len(found.blocks["search-tokenizer"])
    found.sizes["runtime"] = len(found.blocks["search-wasm"]) + sum(len(s) for s in found.scripts)


def classic(module: str, name: str) -> str:
    """An npm ES module bundle as a classic inline script that sets globalThis[name] to its exports: an inline
    module could not hand its exports to the page's scripts. Its import.meta.url becomes the page's URL."""
    text = module.replace("import.meta.url", "document.baseURI")
    exports = list(re.finditer(r"export\s*\{([^}]*)\};?", text))
    if len(exports) != 1 or "import.meta" in text or re.search(r"^\s*import[\s{]", text, re.M):
        raise ModelError(f"The vendored script for {name} is not the single-export bundle this export reads: "
                         "run `make` again with the versions in package-lock.json.")
    pairs = [part.strip().split(" as ") for part in exports[0].group(1).split(",") if part.strip()]
    names = ",".join(f"{(p[1] if len(p) > 1 else p[0]).strip()}:{p[0].strip()}" for p in pairs)
    start, end = exports[0].span()
    return f"(function(){{{text[:start]}globalThis.{name}={{{names}}};{text[end:]}}})();"


def _vendor_path(name: str) -> Path:
    path = Path(str(resources.files(__package__).joinpath("mapjs", "vendor", name)))
    if not path.is_file():
        raise ModelError(f"The page's model runtime is not installed ({path} is missing): run `make` "
                         "(it copies onnxruntime-web and the tokenizer from npm).")
    return path


def _vendor(name: str) -> str:
    return _vendor_path(name).read_text(encoding="utf-8")
