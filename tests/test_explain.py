"""explain.py on the real bundled model: attention, pooling and "why this match"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from explorer import InputError, ProjectionConfig, SentenceTransformerEmbedder, Workspace, build_map
from explorer.cli import EXIT_USER_ERROR, main
from explorer.explain import explain_hit, explain_match, inspect_text, token_frame
from explorer.explain_figures import attention_figure, match_figure

SAMPLE_PAPERS = Path(__file__).resolve().parents[1] / "sample_data" / "papers.csv"
SENTENCE = "The bank raised interest rates to fight inflation."
QUERY = "machine learning for proteins"
DOCUMENT = "Deep neural networks predict the structure of a protein from its sequence."

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    """The bundled MiniLM, loaded once for this file."""
    embedder = SentenceTransformerEmbedder()
    embedder.model  # noqa: B018 - load once, outside the timed tests
    return embedder


@pytest.fixture(scope="module")
def inspection(embedder):
    """The bundled model's steps on one sentence."""
    return inspect_text(SENTENCE, embedder=embedder)


@pytest.fixture(scope="module")
def papers_map(embedder, tmp_path_factory):
    """A saved map of 20 sample papers built with the bundled model, in its own workspace."""
    home = tmp_path_factory.mktemp("explain-home")
    frame = pd.read_csv(SAMPLE_PAPERS).head(20)
    result = build_map(frame, name="papers", text_columns=["title"], model=embedder,
                       projection=ProjectionConfig(method="pca"), workspace=Workspace(home),
                       use_cache=False)
    return home, result.saved


def encode(embedder, texts: list[str]) -> np.ndarray:
    return embedder.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)


def test_tokens_are_wordpieces_with_special_tokens_marked(inspection, embedder):
    expected = embedder.model.tokenizer(SENTENCE)["input_ids"]
    assert inspection.ids.tolist() == expected
    assert inspection.tokens[0] == "[CLS]" and inspection.tokens[-1] == "[SEP]"
    assert inspection.special.tolist() == [True] + [False] * (len(expected) - 2) + [True]
    frame = token_frame(inspection)
    assert frame["token"].tolist() == inspection.tokens
    assert "inflation" in inspection.tokens


def test_every_attention_row_sums_to_one(inspection):
    n_tokens = len(inspection.tokens)
    assert inspection.attentions.shape == (6, 12, n_tokens, n_tokens)
    np.testing.assert_allclose(inspection.attentions.sum(axis=-1), 1.0, atol=1e-5)
    assert (inspection.attentions >= 0).all()
    averaged = inspection.attention(2)
    np.testing.assert_allclose(averaged.sum(axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(averaged, inspection.attentions[2].mean(axis=0))


def test_attention_is_switched_back_to_the_fast_kernel(inspection, embedder):
    assert embedder.model[0].auto_model.config._attn_implementation == "sdpa"


def test_embedding_parts_are_the_models_own(inspection, embedder):
    import torch

    layers = embedder.model[0].auto_model.embeddings
    ids = torch.tensor(inspection.ids)
    with torch.no_grad():
        np.testing.assert_allclose(inspection.word_embeddings, layers.word_embeddings(ids).numpy())
        positions = layers.position_embeddings.weight[: len(ids)].numpy()
        np.testing.assert_allclose(inspection.position_embeddings, positions)
        parts = (inspection.word_embeddings, inspection.position_embeddings,
                 inspection.token_type_embeddings)
        summed = sum(parts)
        np.testing.assert_allclose(inspection.summed_input, summed, atol=1e-5)
        normed = layers.LayerNorm(torch.tensor(inspection.summed_input)).numpy()
    np.testing.assert_allclose(inspection.input_embeddings, normed, atol=1e-5)
    assert inspection.hidden_states.shape == (7, len(ids), 384)


def test_pooled_and_normalised_vector_equals_encode(inspection, embedder):
    np.testing.assert_allclose(inspection.pooled, inspection.token_vectors.mean(axis=0), atol=1e-5)
    assert abs(inspection.pooled_norm - 1.0) > 0.01  # pooling alone does not give unit length
    assert np.linalg.norm(inspection.sentence_vector) == pytest.approx(1.0, abs=1e-5)
    expected = encode(embedder, [SENTENCE])[0]
    np.testing.assert_allclose(inspection.sentence_vector, expected, atol=1e-5)


def test_long_text_is_truncated_exactly_like_encode(embedder):
    text = "protein folding " * 150
    long = inspect_text(text, embedder=embedder)
    assert long.truncated and len(long.tokens) == embedder.model.max_seq_length
    assert long.tokens[-1] == "[SEP]"
    np.testing.assert_allclose(long.sentence_vector, encode(embedder, [text])[0], atol=1e-5)
    assert not inspect_text(SENTENCE, embedder=embedder).truncated


def test_token_contributions_add_up_to_the_cosine(embedder):
    explanation = explain_match(QUERY, DOCUMENT, embedder=embedder)
    query_vector, document_vector = encode(embedder, [QUERY, DOCUMENT])
    assert explanation.cosine == pytest.approx(float(query_vector @ document_vector), abs=1e-4)
    assert explanation.query_tokens.shares.sum() == pytest.approx(explanation.cosine, abs=1e-4)
    assert explanation.text_tokens.shares.sum() == pytest.approx(explanation.cosine, abs=1e-4)
    shape = (len(explanation.query_tokens.tokens), len(explanation.text_tokens.tokens))
    assert explanation.pairs.shape == shape
    ranked = explanation.query_tokens.ranked()
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    # The one word both texts share carries the strongest token pair.
    assert explanation.top_pairs(1)[0][:2] == ("proteins", "protein")


def test_match_figure_shades_every_token(embedder):
    explanation = explain_match(QUERY, DOCUMENT, embedder=embedder)
    fig = match_figure(explanation)
    query_cells, text_cells = fig.data
    assert [t for t in query_cells.text.flat if t] == explanation.query_tokens.tokens
    np.testing.assert_allclose(np.nansum(text_cells.z), explanation.cosine, atol=1e-4)
    # A colour key beside each row of tokens, each centred on its own subplot.
    keys = [fig.layout.coloraxis, fig.layout.coloraxis2]
    assert all(k.showscale and k.colorbar.title.text == "share" for k in keys)
    assert keys[0].colorbar.y > keys[1].colorbar.y


def test_shared_words_is_what_a_word_counting_map_can_explain():
    from explorer.embedders import HashingEmbedder
    from explorer.explain import can_explain, shared_words

    assert shared_words("Protein folding in cells", "How proteins fold: folding pathways of a protein") == [
        "protein", "folding"]
    assert shared_words("the of and", "the of and") == [], "stop words are not shared meaning"
    assert not can_explain(HashingEmbedder(dimension=8))


def test_figures_escape_user_text(embedder):
    inspection = inspect_text("<b>bold</b> & co", embedder=embedder)
    labels = attention_figure(inspection, layer=0).layout.yaxis.ticktext
    assert "&lt;" in labels and "<" not in labels and "&amp;" in labels


def test_models_without_mean_pooling_are_refused(embedder):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    class ClsEmbedder:
        model_id = "minilm-cls"
        model = SentenceTransformer(modules=[embedder.model[0], Pooling(384, pooling_mode="cls")])

    with pytest.raises(InputError, match="mean of token vectors"):
        explain_match(QUERY, DOCUMENT, embedder=ClsEmbedder())


def test_weights_free_embedder_is_refused(fake_embedder):
    with pytest.raises(InputError, match="not a transformer"):
        inspect_text(SENTENCE, embedder=fake_embedder)


def test_empty_text_is_refused(embedder):
    with pytest.raises(InputError, match="empty"):
        inspect_text("   ", embedder=embedder)


def test_explain_hit_matches_the_saved_score(papers_map, embedder):
    _, saved = papers_map
    explanation = explain_hit(saved, "neural networks", 3, embedder=embedder)
    query_vector = encode(embedder, ["neural networks"])[0]
    assert explanation.cosine == pytest.approx(float(saved.embeddings[3] @ query_vector), abs=1e-4)
    assert explanation.text == saved.texts()[3]
    with pytest.raises(InputError, match="Row 99 does not exist"):
        explain_hit(saved, "neural networks", 99, embedder=embedder)


def test_cli_explain_prints_cosine_and_ranked_shares(papers_map, embedder, capsys):
    home, saved = papers_map
    assert main(["--home", str(home), "explain", "papers", "neural networks", "3", "-k", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    cosine = float(lines[0].split()[1])
    query_vector = encode(embedder, ["neural networks"])[0]
    assert cosine == pytest.approx(float(saved.embeddings[3] @ query_vector), abs=1e-4)
    assert lines[1] == f"hit: {saved.texts()[3]}"
    assert lines[2].startswith("query tokens") and lines[2].endswith("(4 of 4):")
    query_shares = [float(line.split()[0]) for line in lines[3:7]]
    assert query_shares == sorted(query_shares, reverse=True)
    assert sum(query_shares) == pytest.approx(cosine, abs=1e-3)  # all 4 tokens, to 4 places
    assert lines[7].startswith("hit tokens") and len(lines) == 8 + 4


@pytest.mark.parametrize("args", [["papers", "query", "999"], ["no-such-map", "query", "0"]])
def test_cli_explain_unknown_row_or_map_exits_2(papers_map, capsys, args):
    home, _ = papers_map
    assert main(["--home", str(home), "explain", *args]) == EXIT_USER_ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: ")
