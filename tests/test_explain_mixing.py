"""Step 4 of "How embeddings work": one head's value mixing and the whole layer, recomputed from the
layer's own weights and held to the model's hidden states; tiny local models for other architectures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer import InputError, SentenceTransformerEmbedder
from explorer.explain import inspect_text, mix_values, note_row
from explorer.explain_figures import layer_figure, mixing_figure, scores_figure

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "3_How_embeddings_work.py")
SENTENCE = "The bank raised interest rates to fight inflation."
WORDS = ["the", "bank", "raised", "interest", "rates", "to", "fight", "inflation", "."]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    """The bundled MiniLM, loaded once for this file."""
    embedder = SentenceTransformerEmbedder()
    embedder.model  # noqa: B018 - load once
    return embedder


@pytest.fixture(scope="module")
def inspection(embedder):
    return inspect_text(SENTENCE, embedder=embedder)


def recomputed_head_output(q: np.ndarray, keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Attention by its definition, from the shown vectors only: softmax(q·k/√d) then Σ w·v."""
    scores = keys @ q / np.sqrt(len(q))
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    return weights, weights @ values


@pytest.mark.parametrize(("layer", "head", "token"), [(0, 0, 1), (2, 5, 4), (5, 11, 10)])
def test_head_output_from_the_shown_vectors_is_the_models(inspection, embedder, layer, head, token):
    mixing = mix_values(inspection, layer=layer, head=head, token=token, embedder=embedder)
    weights, output = recomputed_head_output(mixing.query, mixing.keys, mixing.values)
    np.testing.assert_allclose(weights, mixing.weights, atol=1e-9)
    # The model's own attention weights (read by output_attentions) and its head output (a hook on the layer).
    np.testing.assert_allclose(weights, inspection.attention(layer, head)[token], atol=1e-4)
    size = len(mixing.query)
    np.testing.assert_allclose(output, inspection.head_outputs[layer][token, head * size:(head + 1) * size],
                               atol=1e-4)
    assert mixing.difference < 1e-4
    np.testing.assert_allclose(mixing.contributions.sum(axis=0), mixing.mixed, atol=1e-12)


def test_the_layer_is_followed_from_its_input_to_the_models_hidden_state(inspection, embedder):
    mixing = mix_values(inspection, layer=3, head=2, token=1, embedder=embedder)
    names = [stage.name for stage in mixing.stages]
    assert names[0] == "layer input" and names[-1].endswith("layer output")
    np.testing.assert_allclose(mixing.stages[0].vector, inspection.hidden_states[3][1], atol=1e-6)
    np.testing.assert_allclose(mixing.stages[-1].vector, inspection.hidden_states[4][1], atol=1e-4)
    checked = [stage for stage in mixing.stages if stage.model is not None]
    assert len(checked) == 3 and all(stage.difference < 1e-3 for stage in checked)


def test_weights_print_as_the_note_prints_them():
    assert note_row(np.array([0.41, 0.33, 0.26])) == "[.41 .33 .26]"
    assert note_row(np.array([1.0, 0.0])) == "[1.00 .00]"


def test_figures_draw_every_token_and_stage(inspection, embedder):
    mixing = mix_values(inspection, layer=0, head=0, token=1, embedder=embedder)
    bars = [trace for trace in mixing_figure(mixing).data if trace.type == "bar"]
    assert len(bars) == len(inspection.tokens)  # one stacked part per token
    assert "difference" in mixing_figure(mixing).layout.title.text
    assert len(scores_figure(mixing).data) == 2
    assert sum(trace.type == "bar" for trace in layer_figure(mixing).data) == len(mixing.stages)


def tiny_model(folder: Path, kind: str) -> Path:
    """A random 2-layer BERT (or DistilBERT) sentence-transformers model with mean pooling, saved locally."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast, DistilBertConfig, DistilBertModel

    folder.mkdir(parents=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    if kind == "bert":
        model = BertModel(BertConfig(vocab_size=14, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=32, hidden_act="gelu_new"))
    else:
        model = DistilBertModel(DistilBertConfig(vocab_size=14, dim=16, n_layers=2, n_heads=4, hidden_dim=32))
    raw = folder / "raw"
    model.save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = Transformer(str(raw))
    out = folder / "st"
    SentenceTransformer(modules=[transformer, Pooling(16, "mean"), Normalize()]).save(str(out))
    return out


def test_another_bert_like_model_is_opened_the_same_way(tmp_path):
    embedder = SentenceTransformerEmbedder(str(tiny_model(tmp_path / "bert", "bert")))
    inspection = inspect_text("the bank raised rates", embedder=embedder)
    mixing = mix_values(inspection, layer=1, head=3, token=2, embedder=embedder)
    assert mixing.query.shape == (4,) and mixing.difference < 1e-4
    assert mixing.stages[-1].difference < 1e-4  # its tanh GELU recomputed too


def test_a_model_whose_layers_cannot_be_read_is_named_not_failed(tmp_path):
    embedder = SentenceTransformerEmbedder(str(tiny_model(tmp_path / "distil", "distil")))
    inspection = inspect_text("the bank raised rates", embedder=embedder)
    with pytest.raises(InputError, match="not BERT-like"):
        mix_values(inspection, layer=0, head=0, token=1, embedder=embedder)


def test_page_opens_the_head_and_the_layer_for_two_sentences():
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    subheaders = [s.value for s in at.subheader]
    assert subheaders[3:5] == ["4. Mixing the value vectors", "5. The whole layer"]
    note = next(m.value for m in at.markdown if m.value.startswith("Weights of"))
    # The second token by default, as in the note; one weight per token, written as .41.
    assert note.startswith("Weights of **the**: `[") and len(note.split("`")[1].split()) == 11
    at.text_input(key="explain_text").input("Cats purr loudly").run()
    at.selectbox(key="explain_token").set_value(3).run()
    at.selectbox(key="explain_mix_head").set_value(4).run()
    assert not at.exception, at.exception
    note = next(m.value for m in at.markdown if m.value.startswith("Weights of"))
    assert note.startswith(r"Weights of **\#\#rr**") and len(note.split("`")[1].split()) == 6
    difference = next(c.value for c in at.caption if "largest difference" in c.value)
    assert float(difference.split("difference ")[1].split(",")[0]) < 1e-4
    assert not at.error


def test_page_reads_a_model_the_user_names_and_says_when_its_layers_cannot_be_read(tmp_path):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    at.text_input(key="explain_model").input(str(tiny_model(tmp_path / "distil", "distil"))).run()
    assert not at.exception, at.exception
    assert any("not BERT" in info.value and "cannot be read" in info.value for info in at.info)
    assert "5. The whole layer" not in [s.value for s in at.subheader]
    assert "6. Output: one vector for the sentence" in [s.value for s in at.subheader]
    at.text_input(key="explain_model").input(str(tmp_path / "no such model")).run()
    assert not at.exception, at.exception
    assert len(at.error) == 1
