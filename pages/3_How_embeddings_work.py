"""How embeddings work: one sentence through the real bundled model, step by step."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import ExplorerError
from explorer.explain import explain_match, inspect_text, mix_values, note_row, token_frame
from explorer.explain_figures import (
    attention_figure,
    attention_row_figure,
    layer_figure,
    match_figure,
    mixing_figure,
    norms_figure,
    scores_figure,
    sentence_vector_figure,
    vectors_figure,
)
from explorer.ui import escape_markdown, get_embedder
from explorer.ui.host import guard_host

EXAMPLE_SENTENCE = "The bank raised interest rates to fight inflation."
EXAMPLE_OTHER = "The central bank tightened monetary policy."
MAX_CHARS = 2_000
MAX_TABLE_ROWS = 30  # longer token tables scroll


@st.cache_data(max_entries=32, show_spinner=False)
def cached_inspection(text: str, model_name: str | None):
    """Every step of the model on one text (cached: the widgets below rerun the page often)."""
    return inspect_text(text, embedder=get_embedder(model_name))


@st.cache_data(max_entries=32, show_spinner=False)
def cached_mixing(text: str, model_name: str | None, layer: int, head: int, token: int):
    """One head's value mixing for one token, recomputed from the layer's weights beside the model's."""
    return mix_values(cached_inspection(text, model_name), layer=layer, head=head, token=token,
                      embedder=get_embedder(model_name))


@st.cache_data(max_entries=32, show_spinner=False)
def cached_match(query: str, text: str, model_name: str | None):
    """The token-by-token split of two texts' cosine similarity."""
    return explain_match(query, text, embedder=get_embedder(model_name))


st.set_page_config(page_title="How embeddings work", layout="wide")
guard_host()
st.title("How embeddings work")
st.write(
    "Follow one sentence through the model this app uses (all-MiniLM-L6-v2, a 6-layer BERT "
    "encoder, unless you name another below) and see how it becomes a single vector. Every number "
    "below is read from the model."
)
model_name = st.text_input(
    "Model", value="", key="explain_model", placeholder="all-MiniLM-L6-v2 (bundled)",
    help="A sentence-transformers model name or a local folder; empty for the bundled model. "
         "Steps 4 and 5 read the layers of BERT-like models.",
).strip() or None

default = (st.session_state.get("last_query") or st.session_state.get("selected_title")
           or EXAMPLE_SENTENCE)
text = st.text_input("Sentence", value=default, key="explain_text", max_chars=MAX_CHARS)

try:
    inspection = cached_inspection(text, model_name)
except ExplorerError as exc:
    st.error(escape_markdown(exc))
    st.stop()

tokens = inspection.tokens
if inspection.truncated:
    st.warning(f"The model reads at most {inspection.max_seq_length} tokens: the rest of the text "
               "is cut off, exactly as when a map is embedded.")

st.subheader("1. Tokens")
st.write(
    "The model does not see words but WordPiece tokens: common words are one token, rare words "
    "are split into pieces marked `##`. Each token is a row number (its id) in the model's "
    "vocabulary, and two special tokens are added: `[CLS]` at the start and `[SEP]` at the end."
)
st.dataframe(token_frame(inspection)[["position", "token", "id", "special"]], hide_index=True,
             width="content", height="content" if len(tokens) <= MAX_TABLE_ROWS else "auto")

st.subheader("2. Token embeddings and positions")
st.write(
    "Each token id picks a learned vector, its word embedding. A learned vector for each position "
    "is added so that the model knows the word order, and a LayerNorm rescales the sum into the "
    "input of the first layer. The heatmaps show the first dimensions: red positive, blue negative."
)
left, right = st.columns(2)
if inspection.word_embeddings is not None:
    left.plotly_chart(vectors_figure(inspection.word_embeddings, tokens, title="Word embeddings"))
if inspection.position_embeddings is not None:
    right.plotly_chart(vectors_figure(inspection.position_embeddings, tokens,
                                      title="Position embeddings"))
left, right = st.columns(2)
left.plotly_chart(norms_figure(inspection))
right.plotly_chart(vectors_figure(inspection.input_embeddings, tokens,
                                  title="Combined input (after LayerNorm)"))

st.subheader("3. Attention")
st.write(
    "In every layer each token scores every token: its query vector against their key vectors. A "
    "softmax turns the scores into weights that sum to 1, such as [.4 .3 .3]: how much each token "
    "contributes to this token's meaning. Each layer has several heads that do this independently; "
    "step 4 opens one of them."
)
layer_col, head_col, token_col = st.columns(3)
layer = layer_col.selectbox("Layer", range(inspection.n_layers), key="explain_layer",
                            format_func=lambda i: f"layer {i + 1}")
head = head_col.selectbox("Head", [None, *range(inspection.n_heads)], key="explain_head",
                          format_func=lambda h: "average of all heads" if h is None
                          else f"head {h + 1}")
token = token_col.selectbox("Token", range(len(tokens)), index=min(1, len(tokens) - 1),
                            key="explain_token", format_func=lambda i: f"{i}: {tokens[i]}")
row = inspection.attention(layer, head)[token]
left, right = st.columns([3, 2])
left.plotly_chart(attention_figure(inspection, layer=layer, head=head))
right.plotly_chart(attention_row_figure(inspection, layer=layer, head=head, token=token))
right.caption(f"The weights of this row sum to {row.sum():.4f}.")

st.subheader("4. Mixing the value vectors")
st.write(
    "Inside one head, the token picked above has a query vector and every token has a key vector "
    "and a value vector, each computed from the layer's input by the head's own weights. The query "
    "against each key, divided by √d, gives a score; the softmax of the scores gives the weights; "
    "and the head's output for the token is the weighted sum of the value vectors, as in "
    ".4·v1 + .3·v2 + .3·v3. Every number below is recomputed from the layer's weights and set "
    "beside the output the model itself produced."
)
mix_head = st.selectbox("Head to open", range(inspection.n_heads), index=head or 0, key="explain_mix_head",
                        format_func=lambda h: f"head {h + 1}")
try:
    mixing = cached_mixing(text, model_name, layer, mix_head, token)
except ExplorerError as exc:
    st.info(escape_markdown(exc))
    mixing = None
if mixing is not None:
    size = len(mixing.query)
    tokens_q = [f"query of {tokens[token]}", *[f"key of {t}" for t in tokens]]
    left, right = st.columns(2)
    left.plotly_chart(vectors_figure(np.vstack([mixing.query, mixing.keys]), tokens_q,
                                     title=f"Query and keys, layer {layer + 1}, head {mix_head + 1}", dims=size))
    right.plotly_chart(scores_figure(mixing))
    st.markdown(f"Weights of **{escape_markdown(tokens[token])}**: `{note_row(mixing.weights)}`: "
                f"**{escape_markdown(tokens[int(np.argmax(mixing.weights))])}** contributes "
                f"{mixing.weights.max():.2f} of this token's new meaning in this head.")
    left, right = st.columns(2)
    left.plotly_chart(vectors_figure(mixing.values, tokens, title="Value vectors", dims=size))
    right.plotly_chart(mixing_figure(mixing))
    st.caption(f"Recomputed Σ weight × value against the model's own head output: largest difference "
               f"{mixing.difference:.1e}, floating-point noise.")

    st.subheader("5. The whole layer")
    st.write(
        f"The {inspection.n_heads} heads' outputs side by side make one vector again; the output "
        "projection mixes them, the layer's input is added back (the residual) and a LayerNorm "
        "rescales the sum; a feed-forward network then transforms each token on its own, with a "
        "second residual and LayerNorm. The result is the layer's output, the next layer's input. "
        "Black diamonds are the model's own vectors, where it exposes that step."
    )
    st.plotly_chart(layer_figure(mixing))

st.subheader("6. Output: one vector for the sentence")
st.write(
    f"After {inspection.n_layers} layers each token has a contextual vector that reflects the "
    "whole sentence. The model averages them (mean pooling) into one vector, then divides it by "
    "its length so that only its direction counts: comparing two texts is then a dot product, the "
    "cosine similarity that search uses."
)
st.plotly_chart(vectors_figure(inspection.token_vectors, tokens,
                               title="Contextual token vectors (last layer)"))
st.plotly_chart(sentence_vector_figure(inspection))

other = st.text_input("Compare with another text", value=EXAMPLE_OTHER, key="explain_other",
                      max_chars=MAX_CHARS)
try:
    match = cached_match(text, other, model_name)
except ExplorerError as exc:
    st.error(escape_markdown(exc))
    st.stop()
st.metric("Cosine similarity", f"{match.cosine:.3f}")
st.write(
    "Because the sentence vector is a mean of token vectors, the cosine splits exactly into one "
    "term per pair of tokens. A token's share is the sum of its terms; the shares of either text "
    "add up to the cosine."
)
st.plotly_chart(match_figure(match))
