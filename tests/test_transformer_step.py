"""The refinement's transformer step (issue 30): int8 as an option of the transformer embedder, named in its spec
and id (so the cache and the search check never mix int8 and fp32 vectors), CPU only, and the model loaded,
quantised and warmed once per process."""

from __future__ import annotations

import sys
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pytest

import explorer.embedders.transformer as transformer
from explorer import build_map, load_embedder
from explorer.embed import EmbeddingCache, embed_cached
from explorer.embedders.hashing import HashingEmbedder
from explorer.embedders.transformer import (
    INT8,
    SentenceTransformerEmbedder,
    max_seq_length_of,
    quantize_of,
)
from explorer.errors import ModelError
from explorer.refine import refine_map

TEXTS = ["protein folding in cells", "inflation and interest rates", "quantum entanglement of photons",
         "training neural networks with gradient descent", "robot arm grasping objects"]


class FakeModel(SimpleNamespace):
    """What the embedder uses of a SentenceTransformer: encode (hashing vectors, so rankings mean something),
    its dimension and its token length."""

    def __init__(self, dimension: int = 64):
        super().__init__(max_seq_length=512, encodes=0)
        self._hashing = HashingEmbedder(dimension=dimension)

    def get_embedding_dimension(self) -> int:
        return self._hashing.dimension

    def encode(self, texts, **options):
        self.encodes += 1
        return self._hashing.embed(list(texts))


@pytest.fixture
def loads(monkeypatch):
    """Models "loaded" by the embedder, counted: a fake per load, and an empty per-process model store."""
    loaded = []

    def fake_load(path, device):
        loaded.append((path, device))
        return FakeModel()

    monkeypatch.setattr(transformer, "_models", OrderedDict())
    monkeypatch.setattr(transformer, "_load_sentence_transformer", fake_load)
    monkeypatch.setattr(transformer, "_quantized_int8", lambda model: model)
    monkeypatch.delenv("EXPLORER_DEVICE", raising=False)
    return loaded


def test_int8_round_trips_through_the_spec_and_the_model_id():
    embedder = SentenceTransformerEmbedder(max_seq_length=128, device="cpu", quantize=INT8)
    assert embedder.spec == "all-MiniLM-L6-v2#int8" and embedder.quantize == INT8
    assert embedder.model_id.endswith("#int8#len128")
    assert quantize_of(embedder.model_id) == INT8 and max_seq_length_of(embedder.model_id) == 128
    # What a refinement records (spec, and the length from the id) loads the same step again.
    again = load_embedder(embedder.spec, max_seq_length=max_seq_length_of(embedder.model_id), device="cpu")
    assert again.model_id == embedder.model_id and again.quantize == INT8
    # fp32 keeps the ids it always had: the 256-token bundled id is bare, 128 tokens "#len128".
    fp32 = SentenceTransformerEmbedder(max_seq_length=128, device="cpu")
    assert fp32.spec == "all-MiniLM-L6-v2" and fp32.model_id == embedder.model_id.replace("#int8", "")
    assert quantize_of(fp32.model_id) is None
    assert max_seq_length_of(SentenceTransformerEmbedder(device="cpu", quantize=INT8).model_id) == 256
    with pytest.raises(ModelError, match="Unknown quantisation"):
        SentenceTransformerEmbedder(quantize="int4")


def test_on_a_gpu_the_int8_step_runs_fp32_and_says_so(monkeypatch):
    fake_torch = SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: True), backends=SimpleNamespace())
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.delenv("EXPLORER_DEVICE", raising=False)
    on_gpu = load_embedder("all-MiniLM-L6-v2#int8", max_seq_length=128)
    assert on_gpu.device == "cuda" and on_gpu.quantize is None
    assert "#int8" not in on_gpu.model_id and on_gpu.spec == "all-MiniLM-L6-v2"
    # Asked for the CPU on the same machine (a map refined as int8: its queries), int8 it is.
    assert load_embedder("all-MiniLM-L6-v2#int8", max_seq_length=128, device="cpu").quantize == INT8


def test_int8_and_fp32_vectors_get_different_cache_keys(tmp_path, loads):
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    fp32 = SentenceTransformerEmbedder(max_seq_length=128, device="cpu")
    first = embed_cached(fp32, TEXTS, cache=cache)
    assert first.n_cached == 0
    int8 = SentenceTransformerEmbedder(max_seq_length=128, device="cpu", quantize=INT8)
    second = embed_cached(int8, TEXTS, cache=cache)
    assert second.n_cached == 0, "the int8 step must not read the fp32 step's cached vectors"
    assert embed_cached(SentenceTransformerEmbedder(max_seq_length=128, device="cpu", quantize=INT8), TEXTS,
                        cache=cache).n_cached == len(TEXTS)


def test_a_model_is_loaded_and_warmed_once_per_process(loads):
    first = SentenceTransformerEmbedder(max_seq_length=128, device="cpu", quantize=INT8)
    second = load_embedder(first.spec, max_seq_length=128, device="cpu")
    first.embed(TEXTS[:2])
    second.embed(TEXTS[2:])
    assert len(loads) == 1 and first.model is second.model
    assert first.model.encodes == 3, "one warm-up encode at load, then one per batch"
    # Other settings are other models: a shared model's length is never changed under another embedder.
    other = SentenceTransformerEmbedder(max_seq_length=256, device="cpu", quantize=INT8)
    assert other.model is not first.model and other.model.max_seq_length == 256
    assert first.model.max_seq_length == 128 and len(loads) == 2


def test_two_refinements_in_one_process_load_the_model_once(monkeypatch, loads, workspace):
    import pandas as pd

    monkeypatch.setenv("EXPLORER_QUALITY_BUDGET_SECONDS", "0.001")  # every table takes the progressive build
    monkeypatch.setattr(SentenceTransformerEmbedder, "_path", lambda self: "bundled-folder")
    topics = ["protein folding enzyme cell gene", "quantum particle photon energy field",
              "market price inflation trade wage"]
    for name in ("one", "two"):
        # Texts of their own: the second refinement must embed, not find the first's vectors in the cache.
        table = pd.DataFrame({"title": [f"{topics[i % 3].split()[i % 5]} {name} note {i}" for i in range(60)],
                              "abstract": [f"{topics[i % 3]} {name} item{i}" for i in range(60)]})
        assert build_map(table, name=name, workspace=workspace).refine_pending
    for name in ("one", "two"):
        assert refine_map(name, workspace=workspace).state == "done"
    assert len(loads) == 1, f"the transformer was loaded {len(loads)} times for two refinements"


@pytest.mark.slow
def test_int8_vectors_keep_fp32s_ranking(monkeypatch):
    monkeypatch.delenv("EXPLORER_DEVICE", raising=False)
    fp32 = SentenceTransformerEmbedder(max_seq_length=128, device="cpu")
    int8 = SentenceTransformerEmbedder(max_seq_length=128, device="cpu", quantize=INT8)
    documents = [fp32.embed(TEXTS), int8.embed(TEXTS)]
    assert float(np.min(np.sum(documents[0] * documents[1], axis=1))) > 0.9
    queries = ["how proteins fold", "central banks and prices", "entangled light", "deep learning optimisers",
               "robotic manipulation"]
    for embedder, vectors in zip((fp32, int8), documents, strict=True):
        top = np.argmax(embedder.embed(queries) @ vectors.T, axis=1)
        assert top.tolist() == list(range(len(TEXTS))), f"{embedder.model_id}: top-1 {top.tolist()}"
    # Quantised for real: the Linear layers are int8 dynamic ones, fp32's are not.
    kinds = {type(m).__module__ for m in int8.model.modules()}
    assert any("quantized" in k for k in kinds) and not any("quantized" in type(m).__module__
                                                             for m in fp32.model.modules())


def test_an_explanation_records_only_its_own_pass_of_the_shared_model():
    import threading

    import torch

    from explorer.explain import _capture_steps

    class Body(torch.nn.Module):
        """The part of a BERT-like model the capture hooks: embeddings.word_embeddings."""

        def __init__(self):
            super().__init__()
            self.embeddings = torch.nn.Module()
            self.embeddings.word_embeddings = torch.nn.Embedding(10, 4)

    body = Body()
    with _capture_steps(body, enabled=True) as captured:
        # Another thread (a refinement's batch) runs the same model while the explanation's hooks are on.
        other = threading.Thread(target=lambda: body.embeddings.word_embeddings(torch.tensor([[1, 2, 3]])))
        other.start()
        other.join()
        assert "word_embeddings" not in captured, "another thread's pass was recorded as the explanation's"
        body.embeddings.word_embeddings(torch.tensor([[4, 5]]))
    assert captured["word_embeddings"].shape == (2, 4)


def test_the_refinements_step_is_chosen_in_modes_and_loads_as_recorded():
    from explorer import modes

    step = load_embedder(modes.refine_model_spec(), max_seq_length=modes.REFINE_MAX_TOKENS, device="cpu")
    assert step.quantize == modes.REFINE_QUANTIZE and step.seq_length == modes.REFINE_MAX_TOKENS
    # What a finished refinement records (its spec and id) loads the same step for the map's queries.
    again = load_embedder(step.spec, max_seq_length=max_seq_length_of(step.model_id), device="cpu")
    assert again.model_id == step.model_id


def test_an_int8_maps_queries_run_int8_on_the_cpu_even_where_a_gpu_is(monkeypatch, tmp_path):
    import explorer.embedders.registry as registry
    from explorer.corpus import TEXT

    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: True),
                                                              backends=SimpleNamespace()))
    monkeypatch.delenv("EXPLORER_DEVICE", raising=False)
    monkeypatch.setattr(registry, "_loaded", {})
    refined = SentenceTransformerEmbedder(max_seq_length=128, device="cpu", quantize=INT8)
    saved = SimpleNamespace(kind=TEXT, path=tmp_path / "maps" / "papers",
                            meta=SimpleNamespace(model=refined.spec, model_id=refined.model_id))
    queries = registry.embedder_for(saved)
    assert queries.model_id == refined.model_id and queries.device == "cpu", "search would refuse the map"
