"""Plotly figures for explain.py's results: embeddings, attention, pooling and "why this match"."""

from __future__ import annotations

import html
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .explain import MatchExplanation, TextInspection, TokenShares, ValueMixing

DEFAULT_DIMS = 32
# Diverging colours centred on zero: positive values red, negative blue.
DIVERGING = "RdBu_r"
_TOKEN_ROW_PX = 34


def vectors_figure(
    vectors: np.ndarray, tokens: list[str], *, title: str, dims: int = DEFAULT_DIMS
) -> go.Figure:
    """A heatmap of the first ``dims`` dimensions of one vector per token."""
    shown = vectors[:, :dims]
    limit = float(np.abs(shown).max()) or 1.0
    fig = go.Figure(go.Heatmap(
        z=shown, x=np.arange(shown.shape[1]), y=np.arange(len(tokens)),
        customdata=_token_grid(tokens, shown),
        colorscale=DIVERGING, zmid=0, zmin=-limit, zmax=limit,
        hovertemplate="%{customdata}  dim %{x}: %{z:.3f}<extra></extra>",
    ))
    fig.update_yaxes(**_token_axis(tokens), autorange="reversed")
    fig.update_xaxes(title_text=f"dimension (first {shown.shape[1]} of {vectors.shape[1]})")
    return _layout(fig, title=title, height=_token_height(len(tokens)))


def norms_figure(inspection: TextInspection) -> go.Figure:
    """Grouped bars: the length of each token's word, position, token-type and summed vectors."""
    parts = (("word", inspection.word_embeddings), ("position", inspection.position_embeddings),
             ("token type", inspection.token_type_embeddings),
             ("sum (before LayerNorm)", inspection.summed_input))
    x = np.arange(len(inspection.tokens))
    fig = go.Figure([
        go.Bar(x=x, y=np.linalg.norm(vectors, axis=1), name=name)
        for name, vectors in parts if vectors is not None
    ])
    fig.update_xaxes(**_token_axis(inspection.tokens))
    fig.update_yaxes(title_text="vector length (L2 norm)")
    fig = _layout(fig, title="Length of each part, per token", height=380, barmode="group",
                  legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    # The horizontal legend sits between the title and the bars: make room for both.
    return fig.update_layout(margin={"t": 100})


def attention_figure(
    inspection: TextInspection, *, layer: int, head: int | None = None
) -> go.Figure:
    """The attention matrix of one layer's head (or all heads averaged): rows attend to columns."""
    weights = inspection.attention(layer, head)
    tokens = inspection.tokens
    labels = [_escape(t) for t in tokens]
    pairs = [[(labels[i], labels[j]) for j in range(len(tokens))] for i in range(len(tokens))]
    fig = go.Figure(go.Heatmap(
        z=weights, x=np.arange(len(tokens)), y=np.arange(len(tokens)), colorscale="Blues", zmin=0,
        customdata=pairs,
        hovertemplate="%{customdata[0]} → %{customdata[1]}: %{z:.3f}<extra></extra>",
        colorbar={"title": {"text": "weight"}},
    ))
    fig.update_yaxes(**_token_axis(tokens), autorange="reversed", title_text="token being updated")
    fig.update_xaxes(**_token_axis(tokens), title_text="token contributing")
    side = max(360, min(720, 80 + 26 * len(tokens)))
    return _layout(fig, title=f"Layer {layer + 1}, {_head_name(head)}", height=side)


def attention_row_figure(
    inspection: TextInspection, *, layer: int, head: int | None, token: int
) -> go.Figure:
    """One token's attention row as bars: how much each token contributes to it (sums to 1)."""
    weights = inspection.attention(layer, head)[token]
    fig = go.Figure(go.Bar(
        x=np.arange(len(weights)), y=weights, marker_color="#1f77b4",
        text=[f"{w:.2f}" for w in weights], textposition="outside",
        hovertemplate="%{y:.4f}<extra></extra>",
    ))
    fig.update_xaxes(**_token_axis(inspection.tokens))
    fig.update_yaxes(title_text="weight", range=[0, max(0.05, float(weights.max()) * 1.2)])
    name = _escape(inspection.tokens[token])
    return _layout(fig, title=f"What '{name}' (position {token}) takes from each token", height=320)


def scores_figure(mixing: ValueMixing) -> go.Figure:
    """The chosen token's raw scores (its query · each key, scaled) and their softmax, per token."""
    x = np.arange(len(mixing.tokens))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.2, subplot_titles=(
        "score = query · key / √d", "softmax of the scores: the weights, summing to 1"))
    fig.add_trace(go.Bar(x=x, y=mixing.scores, marker_color="#7f7f7f", showlegend=False,
                         hovertemplate="%{y:.3f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=x, y=mixing.weights, marker_color="#1f77b4", showlegend=False,
                         text=[f"{w:.2f}" for w in mixing.weights], textposition="outside",
                         hovertemplate="%{y:.4f}<extra></extra>"), row=2, col=1)
    fig.update_xaxes(**_token_axis(mixing.tokens), row=2, col=1)
    fig.update_yaxes(range=[0, max(0.05, float(mixing.weights.max()) * 1.25)], row=2, col=1)
    return _layout(fig, title=f"Scores and weights of '{_escape(mixing.tokens[mixing.token])}'", height=460)


def mixing_figure(mixing: ValueMixing) -> go.Figure:
    """The weighted sum drawn as the bars it is made of: per dimension, each token's weight × value
    stacked, and the head's actual output from the model as a marker on top."""
    dims = np.arange(len(mixing.mixed))
    fig = go.Figure([
        go.Bar(x=dims, y=part, name=_escape(f"{mixing.weights[j]:.2f} × v({mixing.tokens[j]})"),
               hovertemplate="dim %{x}: %{y:.4f}<extra>%{fullData.name}</extra>")
        for j, part in enumerate(mixing.contributions)
    ])
    fig.add_trace(go.Scatter(x=dims, y=mixing.model_output, mode="markers", name="the model's head output",
                             marker={"symbol": "diamond", "size": 8, "color": "black"},
                             hovertemplate="dim %{x}: %{y:.4f}<extra>model</extra>"))
    fig.update_xaxes(title_text=f"dimension of head {mixing.head + 1} (all {len(dims)})")
    title = (f"Σ weight × value for '{_escape(mixing.tokens[mixing.token])}'<br><sup>◆ the model's head output: "
             f"largest difference {mixing.difference:.1e}</sup>")
    return _layout(fig, title=title, height=460, barmode="relative",
                   legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0})


def layer_figure(mixing: ValueMixing, *, dims: int = DEFAULT_DIMS) -> go.Figure:
    """The token's vector at each step of the layer (first ``dims`` dimensions), with the model's own
    vector as markers where the model exposes that step."""
    stages = mixing.stages
    titles = []
    for stage in stages:
        where = "" if stage.difference is None else f"; model: max difference {stage.difference:.1e}"
        titles.append(f"{stage.name} (length {np.linalg.norm(stage.vector):.2f}{where})")
    fig = make_subplots(rows=len(stages), cols=1, shared_xaxes=True, vertical_spacing=0.06, subplot_titles=titles)
    x = np.arange(min(dims, len(stages[0].vector)))
    for row, stage in enumerate(stages, start=1):
        fig.add_trace(go.Bar(x=x, y=stage.vector[: len(x)], marker_color="#1f77b4", showlegend=False,
                             hovertemplate="dim %{x}: %{y:.4f}<extra></extra>"), row=row, col=1)
        if stage.model is not None:
            fig.add_trace(go.Scatter(x=x, y=stage.model[: len(x)], mode="markers", showlegend=False,
                                     marker={"symbol": "diamond", "size": 6, "color": "black"},
                                     hovertemplate="model, dim %{x}: %{y:.4f}<extra></extra>"), row=row, col=1)
    fig.update_xaxes(title_text=f"dimension (first {len(x)} of {len(stages[0].vector)})", row=len(stages), col=1)
    fig.update_annotations(font_size=12)
    return _layout(fig, title=f"Layer {mixing.layer + 1} for '{_escape(mixing.tokens[mixing.token])}', step by step",
                   height=150 * len(stages) + 80)


def sentence_vector_figure(inspection: TextInspection, *, dims: int = DEFAULT_DIMS) -> go.Figure:
    """The first dimensions of the mean-pooled vector and of the final, unit-length vector."""
    x = np.arange(min(dims, len(inspection.pooled)))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.18, subplot_titles=(
        f"mean of the token vectors (length {inspection.pooled_norm:.2f})",
        "divided by that length: the final sentence vector (length 1)",
    ))
    for row, vector in enumerate((inspection.pooled, inspection.sentence_vector), start=1):
        fig.add_trace(go.Bar(x=x, y=vector[: len(x)], marker_color="#1f77b4", showlegend=False,
                             hovertemplate="dim %{x}: %{y:.4f}<extra></extra>"), row=row, col=1)
    fig.update_xaxes(title_text=f"dimension (first {len(x)} of {len(inspection.pooled)})",
                     row=2, col=1)
    return _layout(fig, title="The sentence vector", height=420)


def match_figure(explanation: MatchExplanation, *, tokens_per_row: int = 14) -> go.Figure:
    """The query's and the hit's tokens in reading order, shaded by their share of the cosine."""
    sides = (("Query", explanation.query_tokens), ("Hit", explanation.text_tokens))
    rows = [max(1, math.ceil(len(side.tokens) / tokens_per_row)) for _, side in sides]
    titles = [f"{name}: {len(side.tokens)} tokens, shares sum to {side.shares.sum():.3f}"
              for name, side in sides]
    if explanation.text_truncated:
        titles[1] += " (cut to the model's length limit)"
    fig = make_subplots(rows=2, cols=1, row_heights=rows, vertical_spacing=0.5 / sum(rows) + 0.04,
                        subplot_titles=titles)
    for position, (_, side) in enumerate(sides, start=1):
        axis = f"coloraxis{position}"
        fig.add_trace(_shares_heatmap(side, tokens_per_row=tokens_per_row, coloraxis=axis),
                      row=position, col=1)
        limit = float(np.abs(side.shares).max()) or 1.0
        # The colour key beside each row of tokens: its own scale, as the two sides' shares differ.
        domain = fig.layout[f"yaxis{position if position > 1 else ''}"].domain
        fig.update_layout({axis: {"colorscale": DIVERGING, "cmin": -limit, "cmax": limit, "showscale": True,
                                  "colorbar": {"title": {"text": "share", "side": "right"}, "thickness": 10,
                                               "len": domain[1] - domain[0], "y": (domain[0] + domain[1]) / 2,
                                               "yanchor": "middle", "tickformat": ".2f", "nticks": 3}}})
        hidden = {"showticklabels": False, "showgrid": False, "zeroline": False, "ticks": ""}
        fig.update_yaxes(autorange="reversed", **hidden, row=position, col=1)
        fig.update_xaxes(**hidden, row=position, col=1)
    title = f"cosine {explanation.cosine:.3f} = sum of the query's (or the hit's) token shares"
    return _layout(fig, title=title, height=120 + _TOKEN_ROW_PX * sum(rows) + 40)


def _shares_heatmap(side: TokenShares, *, tokens_per_row: int, coloraxis: str) -> go.Heatmap:
    n = len(side.tokens)
    n_rows = max(1, math.ceil(n / tokens_per_row))
    z = np.full((n_rows, tokens_per_row), np.nan)
    text = np.full((n_rows, tokens_per_row), "", dtype=object)
    z.flat[:n] = side.shares
    text.flat[:n] = [_escape(t) for t in side.tokens]
    return go.Heatmap(
        z=z, text=text, texttemplate="%{text}", coloraxis=coloraxis, xgap=2, ygap=2,
        hovertemplate="%{text}: share %{z:.4f}<extra></extra>", hoverongaps=False,
    )


def _token_axis(tokens: list[str]) -> dict:
    # Numeric positions with token labels: a categorical axis would merge repeated tokens ("the").
    return {"tickmode": "array", "tickvals": list(range(len(tokens))),
            "ticktext": [_escape(t) for t in tokens], "automargin": True}


def _token_grid(tokens: list[str], matrix: np.ndarray) -> np.ndarray:
    labels = np.array([_escape(t) for t in tokens], dtype=object)
    return np.repeat(labels[:, None], matrix.shape[1], axis=1)


def _token_height(n_tokens: int) -> int:
    return max(220, min(900, 90 + 22 * n_tokens))


def _head_name(head: int | None) -> str:
    return "all heads averaged" if head is None else f"head {head + 1}"


def _escape(text: str) -> str:
    # Plotly renders a few HTML tags inside text; tokens come from user input: show them literally.
    return html.escape(text, quote=False)


def _layout(fig: go.Figure, *, title: str, height: int, **extra) -> go.Figure:
    fig.update_layout(title={"text": title}, height=height,
                      margin={"l": 10, "r": 10, "t": 60, "b": 10}, **extra)
    return fig
