"""Search by meaning inside the shared HTML file (explorer/html_search.py, explorer/mapjs/semantic.js,
vectors.js, page_search.js): the blocks, the ONNX export of the bundled model, and in Chromium over
file:// the page's tokens, query vectors and top-10 against Python's, with no request of any kind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_PAPERS
from test_html_export import _wait

from explorer import HashingEmbedder, ProjectionConfig, Workspace, build_map
from explorer.embedders import embedder_for
from explorer.errors import InputError, ModelError
from explorer.html_export import build_page, to_html
from explorer.html_search import (
    KEYWORD,
    MEANING,
    TFIDF,
    classic,
    pack_vectors,
    search_blocks,
    unpack,
    unpack_vectors,
)
from explorer.placement import place_query
from explorer.search import search_map

QUERIES = ["neural networks that learn from data", "protein folding", "the price of money and trade",
           "quantum mechanics of particles", "how cells divide", "evolution of species", "computer algorithms",
           "market economics inflation", "gene expression", "theory of computation"]


def _meta(html: str, element: str) -> dict:
    return json.loads(re.search(rf'<script type="application/json" id="{element}">(.*?)</script>', html, re.S)[1])


@pytest.fixture(scope="module")
def fast_map(tmp_path_factory):
    """The sample papers' titles built in the fast mode (TF-IDF + SVD fitted on them), PCA layout."""
    workspace = Workspace(tmp_path_factory.mktemp("fast-html-home"))
    frame = pd.read_csv(SAMPLE_PAPERS)
    return build_map(frame, name="fast papers", mode="fast", text_columns=["title"],
                     projection=ProjectionConfig(method="pca"), workspace=workspace).saved


@pytest.fixture(scope="module")
def hashing_map(tmp_path_factory):
    workspace = Workspace(tmp_path_factory.mktemp("hashing-html-home"))
    return build_map(pd.read_csv(SAMPLE_PAPERS).head(120), name="hashed", model=HashingEmbedder(dimension=32),
                     text_columns=["title"], projection=ProjectionConfig(method="pca"), workspace=workspace).saved


def test_int8_vectors_keep_the_exact_top_10():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows, back = unpack_vectors(pack_vectors(np.arange(3000) + 7, vectors), 3000, 64)
    assert rows.tolist() == list(range(7, 3007))
    assert np.abs(back - vectors).max() < np.abs(vectors).max(axis=0).max() / 127
    queries = vectors[:50] + rng.normal(scale=0.3, size=(50, 64)).astype(np.float32)
    exact, page = np.argsort(-queries @ vectors.T)[:, :10], np.argsort(-queries @ back.T)[:, :10]
    assert np.mean([len(set(a) & set(b)) for a, b in zip(exact, page, strict=True)]) >= 9.5


def test_classic_turns_a_bundle_into_a_global_and_refuses_anything_else():
    script = classic('var a=1,b=function(){return import.meta.url};export{a as one,b};', "Lib")
    assert "export" not in script and "import.meta" not in script
    assert script.endswith("globalThis.Lib={one:a,b:b};})();")
    with pytest.raises(ModelError):
        classic('import x from "y";export{x};', "Lib")
    with pytest.raises(ModelError):
        classic("var a=1;", "Lib")


def test_a_map_without_a_page_model_gets_keyword_search_and_says_why(hashing_map):
    html = to_html(hashing_map).decode()
    info = _meta(html, "search-meta")
    assert info["kind"] is None and "cannot run in the page" in info["reason"]
    assert "wasm-unsafe-eval" not in html and 'id="search-model"' not in html
    with pytest.raises(InputError, match="cannot go into this file"):
        to_html(hashing_map, search=MEANING)


def test_a_fast_map_carries_its_fitted_pieces_and_keyword_leaves_them_out(fast_map):
    html, sizes, _ = build_page(fast_map)
    info = _meta(html.decode(), "search-meta")
    assert info["kind"] == TFIDF and info["rows"] == len(fast_map.points) and info["model_id"] == fast_map.meta.model_id
    vocabulary = json.loads(unpack(re.search(r'id="search-words">([^<]*)<', html.decode())[1]))
    assert vocabulary == embedder_for(fast_map)._vectorizer.get_feature_names_out().tolist()
    assert sizes["model"] > 0 and sizes["vectors"] > 0 and sizes["runtime"] == 0 and sum(
        v for k, v in sizes.items() if k != "total") == sizes["total"] == len(html)
    assert "wasm-unsafe-eval" not in html.decode()  # no WebAssembly in a fast map's file
    plain, plain_sizes, described = build_page(fast_map, search=KEYWORD)
    assert described["kind"] is None and "--search keyword" in described["reason"]
    assert _meta(plain.decode(), "search-meta")["kind"] is None and plain_sizes["model"] == 0
    with pytest.raises(InputError):
        search_blocks(fast_map, np.arange(3), search="exact")


@pytest.mark.slow
def test_the_bundled_model_exported_to_onnx_embeds_as_python(real_embedder, tmp_path):
    import onnxruntime

    from explorer.embedders.onnx_export import export_onnx

    texts = ["A short query", "Graph neural networks for molecules, with accents: café naïve 東京 🙂",
             " ".join(["word"] * 400)]
    expected = real_embedder.embed(texts)
    # int8 moves single vectors more than it moves rankings (benchmarks/browser_search.py measures those).
    for quantise, floor in ((False, 0.999), (True, 0.98)):
        model = export_onnx(real_embedder, tmp_path / "onnx", quantise=quantise)
        again = export_onnx(real_embedder, tmp_path / "onnx", quantise=quantise)
        assert again.folder == model.folder and again.model_path.stat().st_mtime_ns == model.model_path.stat().st_mtime_ns
        assert (model.max_seq_length, model.pooling, model.normalise) == (256, "mean", True)
        session = onnxruntime.InferenceSession(str(model.model_path))
        for text, want in zip(texts, expected, strict=True):
            ids = real_embedder.model.tokenize([text])
            hidden = session.run(None, {"input_ids": ids["input_ids"].numpy(),
                                        "attention_mask": ids["attention_mask"].numpy()})[0][0]
            vector = hidden.mean(axis=0)
            assert float(vector @ want / np.linalg.norm(vector)) >= floor, (quantise, text[:20])
    assert model.model_path.stat().st_size < 30e6  # int8: a quarter of the 90 MB float graph


# ---------------------------------------------------------------------------------------------- Chromium


def _open(browser, html: bytes, path: Path):
    """The page opened from disk, every request recorded, its search ready."""
    path.write_bytes(html)
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    _wait(page, "document.getElementById('map').dataset.searchReady", timeout_s=120)
    return page, requests, errors


def _no_request_but_the_page(requests: list[str], path: Path) -> None:
    assert requests == [path.as_uri()], requests


def _top10_overlap(saved, page, queries) -> list[int]:
    ids = saved.points["row_id"].to_numpy()
    overlaps = []
    for query in queries:
        found = page.evaluate(f"window.explorerSearch({json.dumps(query)}, 10)")
        assert found["mode"] == "meaning" and len(found["rows"]) == len(found["scores"]) == 10
        assert found["scores"] == sorted(found["scores"], reverse=True)
        python = search_map(saved, query, k=10)
        overlaps.append(len(set(found["rows"]) & set(ids[python.indices].tolist())))
    return overlaps


@pytest.mark.slow
@pytest.mark.browser
def test_a_fast_maps_page_embeds_and_ranks_as_python(fast_map, tmp_path, browser):
    path = tmp_path / "fast.html"
    page, requests, errors = _open(browser, to_html(fast_map), path)
    try:
        assert page.evaluate("window.explorerExport.search.mode") == "meaning"
        embedder = embedder_for(fast_map)
        for query in [*QUERIES, "Ünïcödé ACCENTS and numbers 1950", "an unknown zzqx word"]:
            page_vector = np.array(page.evaluate(f"window.explorerEmbed({json.dumps(query)})"))
            python = embedder.embed([query])[0]
            assert float(page_vector @ python) >= 0.999 or not python.any(), query
        overlaps = _top10_overlap(fast_map, page, QUERIES)
        assert np.mean(overlaps) >= 9, overlaps
        # Typing in the box lights the hits up on the map as the app does: ranks, the query's star placed by
        # placement.place_query from the hits, its label.
        page.fill("#query", "protein folding")
        _wait(page, "window.explorerExport.matches === 10")
        _wait(page, "document.getElementById('map').dataset.queryLabel === 'protein folding'")
        shown = page.evaluate("window.explorerExport.hits")
        assert page.get_attribute("#map", "data-hit-count") == "10"
        assert json.loads(page.get_attribute("#map", "data-ranks-shown")) != []
        python = search_map(fast_map, "protein folding", k=10)
        ids = fast_map.points["row_id"].to_numpy()
        assert set(shown["rows"]) == set(ids[python.indices].tolist()) or len(
            set(shown["rows"]) & set(ids[python.indices].tolist())) >= 9
        at = pd.Index(ids).get_indexer(shown["rows"])
        star = place_query(fast_map.coords, at)
        assert np.allclose([shown["query"]["x"], shown["query"]["y"]], star, atol=1e-4), (shown["query"], star)
        assert page.locator("#search label").inner_text() == "Search by meaning"
        assert "Search by meaning with the map's own model" in page.locator("#about").inner_text()
        assert errors == []
        _no_request_but_the_page(requests, path)
    finally:
        page.close()


@pytest.mark.slow
@pytest.mark.browser
def test_a_keyword_maps_page_answers_by_keyword_and_says_so(hashing_map, tmp_path, browser):
    path = tmp_path / "hashed.html"
    page, requests, errors = _open(browser, to_html(hashing_map), path)
    try:
        _wait(page, "window.explorerExport.textsReady")
        found = page.evaluate("window.explorerSearch('the', 5)")
        titles = hashing_map.points["title"].str.lower()
        expected = hashing_map.points["row_id"][titles.str.contains("the", regex=False)].tolist()
        assert found["mode"] == "keyword" and "cannot run in the page" in found["reason"]
        assert set(found["rows"]) <= set(expected) and len(found["rows"]) == min(5, len(expected))
        about = page.locator("#about").inner_text()
        assert "cannot run in the page" in about and "not a search by meaning" in about
        assert page.locator("#search label").inner_text() == "Keyword search"
        assert errors == []
        _no_request_but_the_page(requests, path)
    finally:
        page.close()


def tokenizer_strings(titles: list[str]) -> list[str]:
    """Over 200 strings: real titles and the hard cases (accents, CJK, emoji, long words, punctuation, long texts)."""
    hard = ["café naïve résumé Ångström façade", "ÉCOLE NORMALE SUPÉRIEURE", "東京大学の研究", "深度学习模型",
            "한국어 문장입니다", "emoji 🙂🚀 and 👩‍🔬 scientists", "antidisestablishmentarianism",
            "pneumonoultramicroscopicsilicovolcanoconiosis", "Supercalifragilisticexpialidocious-ness",
            "well-known, state-of-the-art (SOTA) models: 3.14159!?", "C++ & C# vs. F#; x_1 + y^2 = z", "   padded   ",
            "tab\tseparated\nnew line", "Ünïcödé ÑOÑO", "Zürich Straße", "Москва и Санкт-Петербург", "Ελληνικά γράμματα",
            "مرحبا بالعالم", "हिन्दी पाठ", "ａｂｃ full-width ＡＢＣ", "ﬁ ligature ﬂ", "½ ² ³ №", "don't won't it's",
            "URL https://example.org/path?q=1", "e-mail a.b@example.com", "“quotes” ‘single’ «guillemets»",
            " ".join(["long"] * 300), "word " * 150 + "ending", "x" * 500, ("abc " * 100) + "東京 " * 50]
    return hard + [t for t in titles if t][: max(0, 230 - len(hard))]


@pytest.mark.slow
@pytest.mark.browser
def test_a_transformer_maps_page_tokenises_embeds_and_ranks_as_python(real_map, real_embedder, tmp_path, browser):
    real_map = real_map.saved
    path = tmp_path / "real.html"
    html, sizes, _ = build_page(real_map)
    assert sizes["model"] > 15e6 and sizes["runtime"] > 3e6
    assert "'wasm-unsafe-eval'" in html.decode()[:2000]
    page, requests, errors = _open(browser, html, path)
    try:
        assert page.evaluate("window.explorerExport.search.mode") == "meaning"
        strings = tokenizer_strings(real_map.points["title"].tolist())
        assert len(strings) >= 200
        page_ids = page.evaluate(f"{json.dumps(strings)}.map(s => window.explorerTokenize(s))")
        tokenizer = real_embedder.model
        for text, ids in zip(strings, page_ids, strict=True):
            expected = tokenizer.tokenize([text])["input_ids"][0].tolist()
            assert ids == expected, text[:60]
        assert max(len(ids) for ids in page_ids) == 256  # long texts cut at max_seq_length
        cosines = []
        for query in QUERIES:
            page_vector = np.array(page.evaluate(f"window.explorerEmbed({json.dumps(query)})"))
            cosines.append(float(page_vector @ real_embedder.embed([query])[0]))
        assert min(cosines) >= 0.98, cosines  # int8
        overlaps = _top10_overlap(real_map, page, QUERIES)
        assert np.mean(overlaps) >= 8, overlaps
        print(f"int8 page vs Python: cosine min {min(cosines):.4f} mean {np.mean(cosines):.4f}, "
              f"top-10 overlap {np.mean(overlaps):.1f}")
        assert errors == []
        _no_request_but_the_page(requests, path)
    finally:
        page.close()
    # A query asked as the page opens waits for the model rather than failing.
    page = browser.new_page()
    try:
        page.goto(path.as_uri())
        early = page.evaluate("window.explorerSearch('protein folding', 5)")
        assert early["mode"] == "meaning" and len(early["rows"]) == 5
    finally:
        page.close()
    # Full precision: the page's tokens, pooling and normalising give Python's vector.
    path32 = tmp_path / "real32.html"
    page, requests, errors = _open(browser, build_page(real_map, quantise=False)[0], path32)
    try:
        for query in QUERIES[:4]:
            page_vector = np.array(page.evaluate(f"window.explorerEmbed({json.dumps(query)})"))
            assert float(page_vector @ real_embedder.embed([query])[0]) >= 0.999, query
        assert errors == []
        _no_request_but_the_page(requests, path32)
    finally:
        page.close()


def test_cli_says_what_the_file_holds_and_its_size(fast_map, hashing_map, tmp_path, capsys):
    from explorer.cli import main

    home = str(fast_map.path.parent.parent)
    out = tmp_path / "fast.html"
    assert main(["--home", home, "export", fast_map.name, "--format", "html", "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"search by meaning ({fast_map.meta.model_id})" in said and "model " in said and "vectors " in said
    assert f"{out.stat().st_size / 1e6:.2f} MB:" in said
    assert main(["--home", home, "export", fast_map.name, "--format", "html", "--search", "keyword",
                 "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "search keyword (The file was exported with keyword search only" in said and "model " not in said
    assert main(["--home", str(hashing_map.path.parent.parent), "export", hashing_map.name, "--format", "html",
                 "--search", "meaning", "-o", str(tmp_path / "h.html")]) != 0
    assert "cannot go into this file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- thumbnails

SAMPLE_IMAGES = Path(__file__).resolve().parents[1] / "sample_data" / "images"


@pytest.fixture(scope="module")
def digits_map(tmp_path_factory):
    workspace = Workspace(tmp_path_factory.mktemp("digits-html-home"))
    files = sorted(SAMPLE_IMAGES.glob("*/*.png"))[:40]
    return build_map([(f"{p.parent.name}/{p.name}", p.read_bytes()) for p in files], kind="images", name="digits",
                     model="pixels", projection=ProjectionConfig(method="pca"), workspace=workspace).saved


def test_an_image_maps_file_carries_its_thumbnails_within_a_budget(digits_map):
    from explorer.html_export import page_thumbnails

    html, sizes, _ = build_page(digits_map)
    thumbs = _meta(html.decode(), "thumbnails")
    stored = {int(k): v for k, v in digits_map.thumbnails().items()}
    assert len(thumbs["ids"]) == len(stored) == len(digits_map.points) and sizes["thumbnails"] > 0
    assert all(uri.startswith("data:image/") for uri in thumbs["uris"])
    assert _meta(html.decode(), "meta")["thumbnails"] == {"shown": len(stored), "left_out": 0}
    one = len(thumbs["uris"][0])
    cut = page_thumbnails(digits_map, digits_map.points["row_id"].to_numpy(), budget=one * 5 + 1)
    assert len(cut["ids"]) <= 5 and cut["left_out"] == len(stored) - len(cut["ids"])
    assert _meta(to_html(hashing_map_like(digits_map)).decode(), "thumbnails") == {"ids": [], "uris": []}


def hashing_map_like(saved):
    """A text map has no thumbnails: the sample papers, hashed."""
    workspace = Workspace(Path(saved.path).parent.parent)
    return build_map(pd.read_csv(SAMPLE_PAPERS).head(30), name="texts", model=HashingEmbedder(dimension=16),
                     text_columns=["title"], projection=ProjectionConfig(method="pca"), workspace=workspace).saved


@pytest.mark.slow
@pytest.mark.browser
def test_an_image_maps_page_shows_thumbnails_on_hover(digits_map, tmp_path, browser):
    path = tmp_path / "digits.html"
    page, requests, errors = _open(browser, to_html(digits_map), path)
    try:
        _wait(page, "window.explorerExport.ready")
        page.evaluate("window.explorerExport.hover(3)")
        row = page.get_attribute("#map", "data-hover-id")
        assert page.get_attribute("#map", "data-thumbnail") == row != ""
        src = page.evaluate("Array.from(document.querySelectorAll('#map img')).map(i => i.getAttribute('src'))")
        assert digits_map.thumbnails() and any(s and s.startswith("data:image/") for s in src)
        assert errors == []
        _no_request_but_the_page(requests, path)
    finally:
        page.close()


def test_without_the_export_extra_a_transformer_map_keeps_keyword_search(real_map_free_transformer, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else
                        real_find_spec(name, *a))
    found = search_blocks(real_map_free_transformer, np.arange(len(real_map_free_transformer.points)),
                          cache_root=real_map_free_transformer.path / "no-cache")
    assert found.info["kind"] is None and "embedding-explorer[export]" in found.info["reason"]
    with pytest.raises(InputError, match=r"embedding-explorer\[export\]"):
        search_blocks(real_map_free_transformer, np.arange(3), search=MEANING,
                      cache_root=real_map_free_transformer.path / "no-cache")


@pytest.fixture
def real_map_free_transformer(hashing_map, monkeypatch):
    """The hashed map, presented as a map of the bundled transformer (the model is never loaded: the export
    stops before it)."""
    from explorer import html_search
    from explorer.embedders.transformer import SentenceTransformerEmbedder

    monkeypatch.setattr(html_search, "_page_model", lambda saved: (SentenceTransformerEmbedder(), "transformer"))
    return hashing_map


@pytest.mark.browser
def test_the_pages_scan_returns_the_exact_top_k_best_first_ties_in_row_order(browser):
    script = (Path(__file__).resolve().parents[1] / "explorer" / "mapjs" / "vectors.js").read_text(encoding="utf-8")
    page = browser.new_page()
    try:
        page.set_content("<html></html>")
        page.add_script_tag(content=script)
        rng = np.random.default_rng(1)
        codes = rng.integers(-127, 128, size=(500, 12)).astype(np.int8)
        codes[7] = codes[3]  # a tie: the earlier row first
        scale = rng.uniform(0.001, 0.01, 12).astype(np.float32)
        query = rng.normal(size=12).astype(np.float32)
        found = page.evaluate("""([codes, scale, query]) => ExplorerMap.vectors.create({rows: Int32Array.from(
            {length: 500}, (_, i) => 1000 + i), scale: Float32Array.from(scale), codes: Int8Array.from(codes),
            dimension: 12}).search(Float32Array.from(query), 25)""", [codes.ravel().tolist(), scale.tolist(), query.tolist()])
        scores = (codes.astype(np.float64) * scale) @ query
        expected = np.argsort(-scores, kind="stable")[:25]
        assert found["index"] == expected.tolist() and found["rows"] == (expected + 1000).tolist()
        assert np.allclose(found["scores"], scores[expected], atol=1e-4)
    finally:
        page.close()


@pytest.mark.slow
def test_a_map_refined_in_int8_exports_its_model_from_the_fp32_weights(real_embedder, tmp_path):
    import onnxruntime

    from explorer import load_embedder
    from explorer.embedders.onnx_export import export_onnx

    # The refinement's step: torch's dynamic int8 layers have no ONNX form, so the export failed on them.
    step = load_embedder(f"{real_embedder.model_name}#int8", max_seq_length=128, device="cpu")
    assert step.quantize == "int8"
    model = export_onnx(step, tmp_path / "onnx")
    assert model.max_seq_length == 128 and model.quantised
    assert export_onnx(step.full_precision(), tmp_path / "onnx").folder == model.folder  # one export, shared
    session = onnxruntime.InferenceSession(str(model.model_path))
    texts = ["Graph neural networks for molecules", "A survey of reinforcement learning"]
    # The page's graph is the fp32 model's, quantised by the export: its vectors are fp32's to 0.98, as the bundled
    # model's page is (the map's own int8 vectors are ~0.94 from fp32, their queries in Python embedded alike).
    for text, want in zip(texts, step.full_precision().embed(texts), strict=True):
        ids = step.model.tokenize([text])
        vector = session.run(None, {"input_ids": ids["input_ids"].numpy(),
                                    "attention_mask": ids["attention_mask"].numpy()})[0][0].mean(axis=0)
        assert float(vector @ want / np.linalg.norm(vector)) >= 0.98, text
