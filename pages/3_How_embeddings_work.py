"""How embeddings work: one sentence through the real bundled model, step by step."""

from __future__ import annotations

import streamlit as st

from explorer import ExplorerError
from explorer.explain import explain_match, inspect_text, token_frame
from explorer.explain_figures import (
    attention_figure,
    attention_row_figure,
    match_figure,
    norms_figure,
    sentence_vector_figure,
    vectors_figure,
)
from explorer.ui import escape_markdown, get_embedder
from explorer.ui.host import guard_host

EXAMPLE_SENTENCE = "The bank raised interest rates to fight inflation."
EXAMPLE_OTHER = "The central bank tightened monetary policy."
MODEL = None  # the bundled all-MiniLM-L6-v2
MAX_CHARS = 2_000
MAX_TABLE_ROWS = 30  # longer token tables scroll


@st.cache_data(max_entries=32, show_spinner=False)
def cached_inspection(text: str, model_name: str | None):
    """Every step of the model on one text (cached: the widgets below rerun the page often)."""
    return inspect_text(text, embedder=get_embedder(model_name))


@st.cache_data(max_entries=32, show_spinner=False)
def cached_match(query: str, text: str, model_name: str | None):
    """The token-by-token split of two texts' cosine similarity."""
    return explain_match(query, text, embedder=get_embedder(model_name))


st.set_page_config(page_title="How embeddings work", layout="wide")
guard_host()
st.title("How embeddings work")
st.write(
    "Follow one sentence through the model this app uses (all-MiniLM-L6-v2, a 6-layer BERT "
    "encoder) and see how it becomes a single vector. Every number below is read from the model."
)

default = (st.session_state.get("last_query") or st.session_state.get("selected_title")
           or EXAMPLE_SENTENCE)
text = st.text_input("Sentence", value=default, key="explain_text", max_chars=MAX_CHARS)

try:
    inspection = cached_inspection(text, MODEL)
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
    "contributes to this token's meaning. The token's new vector is the weighted mix of all "
    "tokens' value vectors; each layer has several heads that do this independently."
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

st.subheader("4. Output: one vector for the sentence")
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
    match = cached_match(text, other, MODEL)
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
