"""Step 2, embed: the embedders, the model loader, its integrity check, and the embedding cache."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
import pytest

from explorer import (
    EmbeddingCache,
    HashingEmbedder,
    ModelError,
    SentenceTransformerEmbedder,
    embed_cached,
    load_embedder,
)
from explorer.embedders import (
    BUNDLED_MODEL_SHA256,
    DEFAULT_BATCH_SIZE,
    Embedder,
    bundled_model_path,
    l2_normalise,
    verify_bundled_model,
)
from explorer.embedders import transformer as embed_module

# The bundled model reads 256 tokens by default, under its bare id; another length gets a "#len" suffix.
BUNDLED_ID = f"sentence-transformers/all-MiniLM-L6-v2@{BUNDLED_MODEL_SHA256[:16]}"
TEXTS = [
    "Protein folding and the energy landscape",
    "Quantum field theory of particles",
    "Inflation, prices and the labour market",
    "Protein folding and the energy landscape",  # a duplicate: embedded once, vector shared
]


class CountingEmbedder:
    """Wraps an embedder and records every text it is asked to embed."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE, progress=None):
        self.seen.extend(texts)
        return self.inner.embed(texts, batch_size=batch_size)


@pytest.fixture
def cache(tmp_path) -> EmbeddingCache:
    return EmbeddingCache(tmp_path / "cache" / "embeddings.sqlite")


# --- the fake embedder and the helpers ------------------------------------------------------------


def test_hashing_embedder_is_deterministic_and_normalised(fake_embedder):
    first = fake_embedder.embed(TEXTS)
    again = HashingEmbedder(dimension=64).embed(TEXTS)
    assert first.shape == (4, 64) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(first[0], first[3])
    assert not np.allclose(first[0], first[1])


def test_hashing_embedder_relates_similar_texts(fake_embedder):
    query, near, far = fake_embedder.embed(
        ["protein folding", "folding of a protein chain", "inflation and trade"]
    )
    assert query @ near > query @ far


def test_hashing_embedder_reports_progress(fake_embedder):
    calls = []
    fake_embedder.embed(["a"] * 5, batch_size=2, progress=lambda *a: calls.append(a[:2]))
    assert calls == [("embed", 0.4), ("embed", 0.8), ("embed", 1.0)]


def test_text_without_words_is_a_zero_vector(fake_embedder):
    vectors = fake_embedder.embed(["...", "word"])
    assert not vectors[0].any()
    assert np.linalg.norm(vectors[1]) == pytest.approx(1.0)


def test_l2_normalise_keeps_zero_rows():
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_embedders_follow_the_protocol(fake_embedder):
    assert isinstance(fake_embedder, Embedder)
    assert isinstance(SentenceTransformerEmbedder(), Embedder)


@pytest.mark.parametrize(
    ("spec", "kind", "model_id"),
    [
        ("hashing", HashingEmbedder, "hashing-256"),
        ("hashing-32", HashingEmbedder, "hashing-32"),
        (None, SentenceTransformerEmbedder, BUNDLED_ID),
        ("bundled", SentenceTransformerEmbedder, BUNDLED_ID),
        ("sentence-transformers/all-MiniLM-L6-v2", SentenceTransformerEmbedder, BUNDLED_ID),
    ],
)
def test_load_embedder_specs(spec, kind, model_id):
    embedder = load_embedder(spec)
    assert type(embedder) is kind
    assert embedder.model_id == model_id


def test_load_embedder_passes_an_embedder_through(fake_embedder):
    assert load_embedder(fake_embedder) is fake_embedder


def test_load_embedder_does_not_load_the_model():
    # Building the embedder must be instant: the weights load on first use.
    assert load_embedder(None)._model is None


def test_bad_hashing_dimension_is_a_model_error():
    with pytest.raises(ModelError, match="hashing-abc"):
        load_embedder("hashing-abc")


@pytest.mark.slow  # imports torch and sentence-transformers
def test_unknown_model_is_a_model_error_fast(monkeypatch):
    import sentence_transformers  # noqa: F401  (the import is not what this test times)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedder = load_embedder("no-such-org/no-such-model-for-tests")
    started = time.perf_counter()
    with pytest.raises(ModelError, match="Cannot load the model 'no-such-org/no-such-") as caught:
        embedder.embed(["hello"])
    assert time.perf_counter() - started < 10, "offline, a missing model must fail without retrying"
    assert "\n" not in str(caught.value)


@pytest.mark.slow  # imports torch and sentence-transformers
def test_missing_local_model_folder_is_a_model_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="Cannot load the model"):
        load_embedder(str(tmp_path / "no-model-here")).embed(["hello"])


# --- the transformer's speed settings: tokens, device (no torch needed) ------------------------------


def test_bundled_model_reads_256_tokens_by_default():
    embedder = SentenceTransformerEmbedder()
    assert embedder.seq_length == 256 and embedder.max_seq_length is None
    assert embedder.model_id == BUNDLED_ID


@pytest.mark.parametrize(
    ("model", "length", "model_id"),
    [
        ("bundled", 256, BUNDLED_ID),  # the default's own length: the same vectors, the same id and cache
        ("bundled", 128, f"{BUNDLED_ID}#len128"),
        ("some-org/some-model", None, "some-org/some-model"),  # another model keeps its own config
        ("some-org/some-model", 200, "some-org/some-model#len200"),
    ],
)
def test_model_id_changes_with_the_token_length(model, length, model_id):
    assert SentenceTransformerEmbedder(model, max_seq_length=length).model_id == model_id


def test_max_seq_length_of_reads_the_model_id():
    assert embed_module.max_seq_length_of(f"{BUNDLED_ID}#len128") == 128
    assert embed_module.max_seq_length_of(BUNDLED_ID) == 256
    assert embed_module.max_seq_length_of("some-org/some-model#len200") == 200
    assert embed_module.max_seq_length_of("some-org/some-model") is None
    assert embed_module.max_seq_length_of(None) is None


@pytest.mark.parametrize(("model_id", "length"), [(BUNDLED_ID, 256), (f"{BUNDLED_ID}#len128", 128)])
def test_a_saved_map_is_queried_with_its_own_token_length(tmp_path, model_id, length):
    from explorer.embedders import embedder_for
    from explorer.manifest import Manifest

    manifest = {"model": "all-MiniLM-L6-v2", "model_id": model_id}
    saved = SimpleNamespace(manifest=manifest, meta=Manifest.from_dict(manifest), kind="text",
                            path=tmp_path / "maps" / "papers")
    embedder = embedder_for(saved)
    assert embedder.seq_length == length
    assert embedder.model_id == model_id  # so the search check passes for a map built with another length


def fake_torch(*, cuda: bool, mps: bool = False) -> SimpleNamespace:
    """Just enough of torch for choosing a device."""
    return SimpleNamespace(__version__="fake", cuda=SimpleNamespace(is_available=lambda: cuda),
                           backends=SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps)))


@pytest.mark.parametrize(
    ("cuda", "mps", "asked", "device"),
    [
        (True, False, None, "cuda"),
        (True, False, "auto", "cuda"),
        (False, False, "auto", "cpu"),
        (False, True, "auto", "mps"),
        (True, False, "cpu", "cpu"),
        (True, False, "CUDA", "cuda"),
        (True, False, "cuda:1", "cuda:1"),
    ],
)
def test_device_choice(monkeypatch, cuda, mps, asked, device):
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda=cuda, mps=mps))
    monkeypatch.delenv("EXPLORER_DEVICE", raising=False)
    assert embed_module.resolve_device(asked) == device


def test_device_from_the_environment(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda=True))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    assert embed_module.resolve_device(None) == "cpu"
    assert embed_module.resolve_device("cuda") == "cuda"  # an explicit choice wins over the environment


@pytest.mark.parametrize(("asked", "message"), [("cuda", "sees no CUDA GPU"), ("tpu", "Unknown device 'tpu'")])
def test_bad_device_is_a_model_error(monkeypatch, asked, message):
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda=False))
    with pytest.raises(ModelError, match=message):
        embed_module.resolve_device(asked)


def test_model_loads_on_the_chosen_device_with_its_token_length(monkeypatch):
    loaded = []

    def fake_load(path, device):
        model = SimpleNamespace(max_seq_length=512, get_embedding_dimension=lambda: 384,
                                encode=lambda texts, **options: np.zeros((len(texts), 384), dtype=np.float32))
        loaded.append((device, model))
        return model

    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda=True))
    monkeypatch.delenv("EXPLORER_DEVICE", raising=False)
    monkeypatch.setattr(embed_module, "_load_sentence_transformer", fake_load)
    monkeypatch.setattr(SentenceTransformerEmbedder, "_path", lambda self: "bundled-folder")
    embedder = load_embedder(None, device="auto", max_seq_length=128)
    assert embedder.model.max_seq_length == 128
    assert embedder.device == "cuda" and loaded[0][0] == "cuda"


class ThreadsTorch(SimpleNamespace):
    """A fake torch that records its thread count as set_num_threads changes it."""

    def __init__(self):
        super().__init__(threads=2, cuda=SimpleNamespace(is_available=lambda: False), backends=SimpleNamespace())

    def get_num_threads(self):
        return self.threads

    def set_num_threads(self, n):
        self.threads = n


@pytest.mark.parametrize(("threads", "env", "expected"), [(None, None, None), (1, None, 1), (None, "1", 1),
                                                          (3, "1", 3), (None, " ", None)])
def test_cpu_threads_come_from_the_option_or_the_environment(monkeypatch, threads, env, expected):
    if env is None:
        monkeypatch.delenv("EXPLORER_TORCH_THREADS", raising=False)
    else:
        monkeypatch.setenv("EXPLORER_TORCH_THREADS", env)
    assert SentenceTransformerEmbedder(threads=threads).cpu_threads() == expected


@pytest.mark.parametrize(("threads", "env", "message"), [(None, "two", "whole number"), (0, None, "at least 1")])
def test_bad_thread_counts_are_model_errors(monkeypatch, threads, env, message):
    monkeypatch.setenv("EXPLORER_TORCH_THREADS", env or "")
    with pytest.raises(ModelError, match=message):
        SentenceTransformerEmbedder(threads=threads).cpu_threads()


@pytest.mark.parametrize(("device", "seen"), [("cpu", 1), ("cuda", 2)])
def test_embedding_on_the_cpu_uses_the_thread_count_and_puts_it_back(monkeypatch, device, seen):
    torch = ThreadsTorch()
    during = []

    def encode(texts, **options):
        during.append(torch.get_num_threads())
        return np.ones((len(texts), 4), dtype=np.float32)

    monkeypatch.setitem(sys.modules, "torch", torch)
    embedder = SentenceTransformerEmbedder(device=device, threads=1)
    embedder._model, embedder.dimension = SimpleNamespace(encode=encode), 4
    embedder.embed(["a", "b", "c"], batch_size=2)
    assert during == [seen, seen]  # on a GPU torch's CPU threads are left alone
    assert torch.threads == 2


# --- the bundled model's integrity check ------------------------------------------------------------


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory):
    """A copy of the bundled model folder (the installed package is never touched)."""
    target = tmp_path_factory.mktemp("model") / "all-MiniLM-L6-v2"
    shutil.copytree(bundled_model_path(), target)
    return target


def test_bundled_model_verifies():
    assert verify_bundled_model() == BUNDLED_MODEL_SHA256


def test_tampered_weights_are_refused(model_copy, monkeypatch):
    weights = model_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="do not match the published all-MiniLM-L6-v2"):
        verify_bundled_model(model_copy)
    # The embedder checks before it loads anything.
    monkeypatch.setattr(embed_module, "bundled_model_path", lambda: model_copy)
    with pytest.raises(ModelError, match="tampered"):
        SentenceTransformerEmbedder().embed(["hello"])


def test_missing_weights_are_refused(tmp_path):
    with pytest.raises(ModelError, match="incomplete"):
        verify_bundled_model(tmp_path)


# --- the cache --------------------------------------------------------------------------------------


def test_embed_cached_without_cache(fake_embedder):
    result = embed_cached(fake_embedder, TEXTS)
    np.testing.assert_array_equal(result.vectors, fake_embedder.embed(TEXTS))
    assert result.model_id == "hashing-64"
    assert (result.n_cached, result.n_computed) == (0, 3)


def test_distinct_texts_are_embedded_once(fake_embedder):
    counting = CountingEmbedder(fake_embedder)
    embed_cached(counting, TEXTS)
    assert counting.seen == TEXTS[:3]


def test_second_embed_computes_nothing(fake_embedder, cache):
    first = embed_cached(CountingEmbedder(fake_embedder), TEXTS, cache=cache)
    counting = CountingEmbedder(fake_embedder)
    again = embed_cached(counting, TEXTS, cache=cache)
    assert (again.n_cached, again.n_computed) == (4, 0)
    assert counting.seen == []
    np.testing.assert_array_equal(again.vectors, first.vectors)


def test_cache_survives_a_new_cache_object(fake_embedder, cache):
    embed_cached(fake_embedder, TEXTS, cache=cache)
    reopened = EmbeddingCache(cache.path)
    assert embed_cached(fake_embedder, TEXTS, cache=reopened).n_computed == 0


def test_only_new_rows_are_embedded(fake_embedder, cache):
    embed_cached(fake_embedder, TEXTS, cache=cache)
    counting = CountingEmbedder(fake_embedder)
    grown = TEXTS + ["Neurons that fire together", "A brand new row"]
    result = embed_cached(counting, grown, cache=cache)
    assert counting.seen == ["Neurons that fire together", "A brand new row"]
    assert (result.n_cached, result.n_computed) == (4, 2)
    np.testing.assert_array_equal(result.vectors, fake_embedder.embed(grown))


def test_cache_keys_include_the_model(cache):
    small, large = HashingEmbedder(dimension=16), HashingEmbedder(dimension=32)
    embed_cached(small, TEXTS, cache=cache)
    counting = CountingEmbedder(large)
    result = embed_cached(counting, TEXTS, cache=cache)
    assert counting.seen == TEXTS[:3]
    assert result.n_computed == 3
    assert result.vectors.shape == (4, 32)


def test_cache_get_and_put(cache):
    vectors = np.eye(3, dtype=np.float32)
    cache.put_many("model-a", ["h1", "h2", "h3"], vectors)
    found = cache.get_many("model-a", ["h1", "h3", "missing"])
    assert sorted(found) == ["h1", "h3"]
    np.testing.assert_array_equal(found["h3"], vectors[2])
    assert cache.get_many("model-b", ["h1"]) == {}


def test_cache_handles_more_keys_than_sqlite_parameters(cache):
    hashes = [f"h{i}" for i in range(2000)]
    cache.put_many("m", hashes, np.ones((2000, 2), dtype=np.float32))
    assert len(cache.get_many("m", hashes)) == 2000


def test_embed_cached_reports_progress_to_the_end(fake_embedder, cache):
    embed_cached(fake_embedder, TEXTS, cache=cache)
    calls = []
    embed_cached(fake_embedder, TEXTS, cache=cache, progress=lambda *a: calls.append(a[:2]))
    assert calls == [("embed", 1.0)]


# --- the real model (slow) --------------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_gives_unit_384_vectors(real_embedder):
    vectors = real_embedder.embed(TEXTS)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert real_embedder.dimension == 384
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_real_model_matches_sentence_transformers(real_embedder):
    from sentence_transformers import SentenceTransformer

    # Texts of very different lengths: the embedder sorts them into batches by length.
    texts = [*TEXTS, "x", "A much longer sentence about the folding of proteins into shapes " * 5]
    reference = SentenceTransformer(str(bundled_model_path()), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    ours = real_embedder.embed(texts, batch_size=2)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


@pytest.mark.slow
def test_real_model_cuts_texts_at_its_token_length(real_embedder):
    long = "protein folding " * 80  # 160 words: past 128 tokens, short of 256
    short = SentenceTransformerEmbedder(max_seq_length=128, device="cpu", threads=1)
    first, longer = short.embed([long, long + "inflation and trade " * 20])
    assert short.model.max_seq_length == 128 and real_embedder.model.max_seq_length == 256
    np.testing.assert_allclose(first, longer, atol=1e-6)  # what follows token 128 is not read
    full, more = real_embedder.embed([long, long + "inflation and trade " * 20])
    assert float(full @ more) < 0.999  # at 256 tokens the added words are read


@pytest.mark.slow
def test_real_model_ranks_related_text_first(real_embedder):
    query, near, far = real_embedder.embed(
        ["protein folding", "How do amino-acid chains fold into structures?", "Inflation and prices"]
    )
    assert query @ near > query @ far + 0.2


def test_an_embedder_of_ones_own_needs_only_the_protocols_core(workspace, papers_frame, fake_embedder):
    from explorer import ProjectionConfig, build_map, search_map

    own = CountingEmbedder(fake_embedder)  # model_id, dimension and embed: nothing else
    result = build_map(papers_frame, model=own, projection=ProjectionConfig(method="pca"), workspace=workspace)
    assert len(own.seen) == len(papers_frame) and result.saved.manifest["model_id"] == fake_embedder.model_id
    hits = search_map(result.saved, "protein folding enzyme", embedder=own, k=3)
    assert set(papers_frame["field"].iloc[hits.indices]) == {"biology"}
    with pytest.raises(ModelError, match="cannot embed images"):
        load_embedder(own, kind="images").embed_images([])


def test_distinct_new_texts_keep_the_embedders_array(fake_embedder, monkeypatch):
    # Issue 31: a million new, distinct rows are the embedder's array itself, not a second 1 GB copy of it.
    returned = []
    embed = fake_embedder.embed

    def spy(texts, **kwargs):
        returned.append(embed(texts, **kwargs))
        return returned[-1]

    monkeypatch.setattr(fake_embedder, "embed", spy)
    result = embed_cached(fake_embedder, ["one text", "another", "a third"])
    assert result.vectors is returned[0] and result.n_computed == 3
    repeated = embed_cached(fake_embedder, ["one text", "another", "one text"])
    assert np.array_equal(repeated.vectors[0], repeated.vectors[2]) and repeated.n_computed == 2
