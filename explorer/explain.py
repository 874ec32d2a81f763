"""Inside the model: tokens, embeddings, attention, pooling of a text; why a query matches a hit."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import InputError

log = logging.getLogger(__name__)

# The parts of a BERT-style embeddings module whose outputs are shown; a model may lack some.
_EMBEDDING_PARTS = ("word_embeddings", "position_embeddings", "token_type_embeddings")
# Switching the shared model to eager attention must not interleave between two explanations.
_ATTENTION_LOCK = threading.Lock()


@dataclass
class TextInspection:
    """Every intermediate step of the model on one text, as read from the model's own modules."""

    text: str
    tokens: list[str]
    ids: np.ndarray
    special: np.ndarray
    word_embeddings: np.ndarray | None
    position_embeddings: np.ndarray | None
    token_type_embeddings: np.ndarray | None
    summed_input: np.ndarray | None
    input_embeddings: np.ndarray
    attentions: np.ndarray
    hidden_states: np.ndarray
    pooled: np.ndarray
    sentence_vector: np.ndarray
    truncated: bool
    max_seq_length: int | None
    # Per layer, read by hooks during the same pass (None for models whose layers are not BERT-like):
    # the heads' outputs side by side (tokens, hidden), and the attention block's output after its
    # residual and LayerNorm.
    head_outputs: np.ndarray | None = None
    attended: np.ndarray | None = None

    @property
    def token_vectors(self) -> np.ndarray:
        """The contextual token vectors of the last layer, (tokens, dim)."""
        return self.hidden_states[-1]

    @property
    def pooled_norm(self) -> float:
        """The length of the mean-pooled vector, before normalisation."""
        return float(np.linalg.norm(self.pooled))

    @property
    def n_layers(self) -> int:
        """How many transformer layers the model has."""
        return int(self.attentions.shape[0])

    @property
    def n_heads(self) -> int:
        """How many attention heads each layer has."""
        return int(self.attentions.shape[1])

    def attention(self, layer: int, head: int | None = None) -> np.ndarray:
        """The (tokens × tokens) attention weights of a layer's head, or the mean of its heads."""
        weights = self.attentions[layer]
        return weights.mean(axis=0) if head is None else weights[head]


@dataclass
class TokenShares:
    """The tokens of one text and each token's share of a similarity score."""

    tokens: list[str]
    shares: np.ndarray
    special: np.ndarray

    def ranked(self, k: int | None = None) -> list[tuple[str, float]]:
        """(token, share) pairs, largest share first."""
        order = np.argsort(-self.shares, kind="stable")[:k]
        return [(self.tokens[i], float(self.shares[i])) for i in order]


@dataclass
class MatchExplanation:
    """A cosine score split exactly into token-pair terms, and each token's share of it."""

    query: str
    text: str
    cosine: float
    pairs: np.ndarray
    query_tokens: TokenShares
    text_tokens: TokenShares
    text_truncated: bool = False

    def top_pairs(self, k: int = 5) -> list[tuple[str, str, float]]:
        """The k (query token, text token, term) pairs that add most to the score."""
        flat = np.argsort(-self.pairs, axis=None, kind="stable")[:k]
        rows, cols = np.unravel_index(flat, self.pairs.shape)
        return [
            (self.query_tokens.tokens[i], self.text_tokens.tokens[j], float(self.pairs[i, j]))
            for i, j in zip(rows, cols, strict=True)
        ]


@dataclass
class _Pass:
    """One forward pass: what inspect_text and explain_match both need, plus optional details."""

    tokens: list[str]
    ids: np.ndarray
    special: np.ndarray
    mask: np.ndarray
    token_vectors: np.ndarray
    pooled: np.ndarray
    sentence_vector: np.ndarray
    truncated: bool
    output: object = None
    captured: dict | None = None


def inspect_text(text: str, *, embedder=None) -> TextInspection:
    """Run the model on ``text`` and keep every step: tokens, embeddings, attention, pooling."""
    model = _sentence_transformer(embedder)
    run = _forward(model, text, details=True)
    out, captured = run.output, run.captured
    return TextInspection(
        text=text,
        tokens=run.tokens,
        ids=run.ids,
        special=run.special,
        word_embeddings=captured.get("word_embeddings"),
        position_embeddings=captured.get("position_embeddings"),
        token_type_embeddings=captured.get("token_type_embeddings"),
        summed_input=captured.get("summed_input"),
        input_embeddings=_numpy(out.hidden_states[0][0]),
        attentions=np.stack([_numpy(a[0]) for a in out.attentions]),
        hidden_states=np.stack([_numpy(h[0]) for h in out.hidden_states]),
        pooled=run.pooled,
        sentence_vector=run.sentence_vector,
        truncated=run.truncated,
        max_seq_length=model.max_seq_length,
        head_outputs=_stacked(captured, "heads", len(out.attentions)),
        attended=_stacked(captured, "attended", len(out.attentions)),
    )


@dataclass
class LayerStage:
    """One step of a layer for one token: its vector as recomputed here, and the model's own when it
    exposes that step."""

    name: str
    vector: np.ndarray
    model: np.ndarray | None = None

    @property
    def difference(self) -> float | None:
        """The largest absolute difference from the model's own vector (None where it has none)."""
        return None if self.model is None else float(np.abs(self.vector - self.model).max())


@dataclass
class ValueMixing:
    """Step 4 of the encoder for one token, one layer, one head: query, keys, scores, softmax and the
    weighted sum of the value vectors, recomputed from the layer's own weights beside the model's
    output; and the whole layer for that token, from its input to its output."""

    tokens: list[str]
    layer: int
    head: int
    token: int
    query: np.ndarray
    keys: np.ndarray
    scores: np.ndarray
    weights: np.ndarray
    values: np.ndarray
    mixed: np.ndarray
    model_output: np.ndarray
    stages: list[LayerStage]

    @property
    def difference(self) -> float:
        """The largest absolute difference between the weighted sum and the model's head output."""
        return float(np.abs(self.mixed - self.model_output).max())

    @property
    def contributions(self) -> np.ndarray:
        """Each token's part of the weighted sum, (tokens, head size): weight × value vector."""
        return self.weights[:, None] * self.values


def mix_values(inspection: TextInspection, *, layer: int, head: int, token: int, embedder=None) -> ValueMixing:
    """Recompute one head's attention for one token from the layer's weights (q, k, scores, softmax,
    Σ weight·value), and the rest of the layer, in float64 beside what the model computed."""
    model = _sentence_transformer(embedder)
    transformer = model[0].auto_model
    layers = _bert_layers(transformer)
    model_id = getattr(embedder, "model_id", "this model")
    if layers is None or inspection.head_outputs is None or inspection.attended is None:
        raise InputError(f"The layers of {model_id} are not BERT-like (query, key, value, output projection "
                         "and feed-forward modules): their internals cannot be read here.")
    block = layers[layer]
    attention = block.attention.self
    size = int(attention.attention_head_size)
    activation = _ACTIVATIONS.get(str(transformer.config.hidden_act))
    if activation is None:
        raise InputError(f"The feed-forward activation {transformer.config.hidden_act!r} of {model_id} "
                         "is not one this page can recompute.")
    scaling = float(getattr(attention, "scaling", size ** -0.5))
    hidden = inspection.hidden_states[layer].astype(np.float64)  # the layer's input, every token
    cut = slice(head * size, (head + 1) * size)
    q_all = _linear(attention.query, hidden)
    k_all, v_all = _linear(attention.key, hidden), _linear(attention.value, hidden)
    # Every head's mix for this token, for the concatenation; the chosen head's is shown in full.
    heads = []
    for h in range(int(transformer.config.num_attention_heads)):
        part = slice(h * size, (h + 1) * size)
        scores = k_all[:, part] @ q_all[token, part] * scaling
        weights = _softmax(scores)
        heads.append((scores, weights, weights @ v_all[:, part]))
    scores, weights, mixed = heads[head]
    concatenated = np.concatenate([mix for _, _, mix in heads])
    projected = _linear(block.attention.output.dense, concatenated)
    residual = hidden[token]
    attended = _layer_norm(block.attention.output.LayerNorm, projected + residual)
    feed_forward = _linear(block.output.dense, activation(_linear(block.intermediate.dense, attended)))
    output = _layer_norm(block.output.LayerNorm, feed_forward + attended)
    stages = [
        LayerStage("layer input", residual),
        LayerStage("heads side by side", concatenated, inspection.head_outputs[layer][token]),
        LayerStage("output projection", projected),
        LayerStage("+ input, LayerNorm", attended, inspection.attended[layer][token]),
        LayerStage("feed-forward", feed_forward),
        LayerStage("+ residual, LayerNorm: layer output", output, inspection.hidden_states[layer + 1][token]),
    ]
    return ValueMixing(
        tokens=inspection.tokens, layer=layer, head=head, token=token,
        query=q_all[token, cut], keys=k_all[:, cut], scores=scores, weights=weights, values=v_all[:, cut],
        mixed=mixed, model_output=inspection.head_outputs[layer][token, cut].astype(np.float64), stages=stages,
    )


def note_row(weights: np.ndarray) -> str:
    """Attention weights written as the note writes them: ``[.41 .33 .26]``."""
    return "[" + " ".join(f"{w:.2f}".removeprefix("0") for w in weights) + "]"


def _bert_layers(transformer) -> list | None:
    """The encoder's layers when each has BERT's parts (query/key/value, output projection and
    LayerNorm, feed-forward), which mix_values reads; else None."""
    layers = list(getattr(getattr(transformer, "encoder", None), "layer", None) or [])
    parts = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.self.attention_head_size",
             "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense", "output.dense",
             "output.LayerNorm")

    def has(module, dotted: str) -> bool:
        for name in dotted.split("."):
            module = getattr(module, name, None)
            if module is None:
                return False
        return True

    return layers if layers and all(has(layer, part) for layer in layers for part in parts) else None


def _linear(module, x: np.ndarray) -> np.ndarray:
    """A torch Linear applied in float64: x Wᵀ + b."""
    weight = _numpy(module.weight).astype(np.float64)
    bias = _numpy(module.bias).astype(np.float64) if module.bias is not None else 0.0
    return x @ weight.T + bias


def _layer_norm(module, x: np.ndarray) -> np.ndarray:
    """A torch LayerNorm applied in float64."""
    centred = x - x.mean(axis=-1, keepdims=True)
    scaled = centred / np.sqrt((centred ** 2).mean(axis=-1, keepdims=True) + module.eps)
    return scaled * _numpy(module.weight).astype(np.float64) + _numpy(module.bias).astype(np.float64)


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


# The feed-forward activations of BERT-like configs (transformers' ACT2FN names), in float64.
_ACTIVATIONS = {"gelu": _gelu, "gelu_new": _gelu_tanh, "gelu_pytorch_tanh": _gelu_tanh,
                "relu": lambda x: np.maximum(x, 0.0)}


def explain_match(query: str, text: str, *, embedder=None) -> MatchExplanation:
    """Split the cosine of ``query`` and ``text`` into token-pair terms (exact for mean pooling)."""
    model = _sentence_transformer(embedder)
    q, d = _forward(model, query, details=False), _forward(model, text, details=False)
    q_vectors = q.token_vectors[q.mask].astype(np.float64)
    d_vectors = d.token_vectors[d.mask].astype(np.float64)
    # cos = mean(q)·mean(d) / (|mean q| |mean d|) = Σ_ij q_i·d_j / (n_q n_d |mean q| |mean d|).
    scale = len(q_vectors) * len(d_vectors) * np.linalg.norm(q.pooled) * np.linalg.norm(d.pooled)
    if scale == 0:
        raise InputError("One of the texts has a zero vector, so its cosine is undefined.")
    pairs = (q_vectors @ d_vectors.T) / scale
    return MatchExplanation(
        query=query,
        text=text,
        cosine=float(pairs.sum()),
        pairs=pairs,
        query_tokens=_shares(q, pairs.sum(axis=1)),
        text_tokens=_shares(d, pairs.sum(axis=0)),
        text_truncated=d.truncated,
    )


def explain_hit(saved, query: str, row_id: int, *, embedder=None) -> MatchExplanation:
    """Why row ``row_id`` of a saved map matches ``query``, with the map's own model."""
    from .embedders import embedder_for
    from .search import clean_query

    row_ids = saved.points["row_id"].to_numpy()
    where = np.flatnonzero(row_ids == row_id)
    if len(where) == 0:
        raise InputError(f"Row {row_id} does not exist in the map '{saved.name}' "
                         f"(row ids run from 0 to {len(row_ids) - 1}).")
    index = int(where[0])
    if not saved.embedded[index]:
        raise InputError(f"Row {row_id} has no text, so it is not on the map and matches nothing.")
    embedder = embedder or embedder_for(saved)
    if embedder.model_id != saved.meta.model_id:
        raise InputError(
            f"The map '{saved.name}' was built with {saved.meta.model_id}, not "
            f"{embedder.model_id}: explain its hits with the map's own model."
        )
    from .refine import vector_texts

    return explain_match(clean_query(query), vector_texts(saved)[index], embedder=embedder)


def token_frame(inspection: TextInspection) -> pd.DataFrame:
    """One row per token: position, token, id, whether it is special, and its vector norms."""
    frame = pd.DataFrame({
        "position": np.arange(len(inspection.tokens)),
        "token": inspection.tokens,
        "id": inspection.ids,
        "special": inspection.special,
    })
    for column, vectors in (("word norm", inspection.word_embeddings),
                            ("position norm", inspection.position_embeddings),
                            ("input norm", inspection.input_embeddings)):
        if vectors is not None:
            frame[column] = np.linalg.norm(vectors, axis=1)
    return frame


def _sentence_transformer(embedder):
    """The loaded SentenceTransformer behind ``embedder``, if it is one this module can explain."""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    from .embedders import load_embedder

    embedder = embedder or load_embedder(None)
    model = getattr(embedder, "model", None)
    model_id = getattr(embedder, "model_id", type(embedder).__name__)
    if model is None or not hasattr(model, "preprocess") or not hasattr(model[0], "auto_model"):
        raise InputError(
            f"The model {model_id} is not a transformer: only sentence-transformers models "
            "have tokens, attention and pooling to show."
        )
    modules = list(model)
    pooling = modules[1] if len(modules) > 1 else None
    mode = getattr(pooling, "pooling_mode", None)
    if not isinstance(pooling, Pooling) or mode != "mean" or not all(
        isinstance(m, Normalize) for m in modules[2:]
    ):
        chain = " → ".join(type(m).__name__ for m in modules)
        raise InputError(
            f"The model {model_id} ({chain}, pooling {mode!r}) cannot be explained: only a plain "
            "mean of token vectors splits a similarity exactly into per-token terms."
        )
    if getattr(model, "default_prompt_name", None):
        raise InputError(f"The model {model_id} prepends a default prompt; explanations skip it.")
    return model


def _forward(model, text: str, *, details: bool) -> _Pass:
    """Tokenise as encode does, run the transformer, pool with the model's own Pooling module."""
    import torch

    text = (text or "").strip()
    if not text:
        raise InputError("The text is empty. Type a sentence to look inside the model.")
    # The model's own preprocess: the same tokenizer settings and max_seq_length cut as encode.
    features = model.preprocess([text])
    inputs = {k: v for k, v in features.items() if isinstance(v, torch.Tensor)}
    transformer = model[0].auto_model
    attention = _eager_attention(transformer) if details else nullcontext()
    capture = _capture_steps(transformer, enabled=details)
    with torch.inference_mode(), attention, capture as captured:
        output = transformer(**inputs, output_attentions=details, output_hidden_states=details,
                             return_dict=True)
        pooled = model[1]({"token_embeddings": output.last_hidden_state,
                           "attention_mask": features["attention_mask"]})["sentence_embedding"]
        # The L2 normalisation the Normalize module and encode(normalize_embeddings=True) apply.
        sentence_vector = torch.nn.functional.normalize(pooled, p=2, dim=-1)
    ids = features["input_ids"][0].tolist()
    tokenizer = model.tokenizer
    special = tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
    full_length = len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
    return _Pass(
        tokens=tokenizer.convert_ids_to_tokens(ids),
        ids=np.asarray(ids, dtype=np.int64),
        special=np.asarray(special, dtype=bool),
        mask=features["attention_mask"][0].numpy().astype(bool),
        token_vectors=_numpy(output.last_hidden_state[0]),
        pooled=_numpy(pooled[0]),
        sentence_vector=_numpy(sentence_vector[0]),
        truncated=full_length + tokenizer.num_special_tokens_to_add() > len(ids),
        output=output if details else None,
        captured=captured if details else None,
    )


@contextmanager
def _eager_attention(transformer) -> Iterator[None]:
    """Run with eager attention: SDPA and flash kernels never materialise the attention weights."""
    # Other callers of the same model meanwhile also run eager: identical results, only slower.
    with _ATTENTION_LOCK:
        previous = transformer.config._attn_implementation
        if previous != "eager":
            transformer.set_attn_implementation("eager")
        try:
            yield
        finally:
            if previous != "eager":
                transformer.set_attn_implementation(previous)


@contextmanager
def _capture_steps(transformer, *, enabled: bool) -> Iterator[dict]:
    """Record, during a pass, the embedding layers' outputs (and what their LayerNorm receives) and,
    in every BERT-like layer, the heads' outputs and the attention block's output."""
    captured: dict = {"heads": {}, "attended": {}}
    if not enabled:
        yield captured
        return
    # The model is shared by the process (a build or a refinement may be encoding with it meanwhile):
    # only this thread's pass is recorded.
    owner = threading.get_ident()

    def keep(target: dict, key, value) -> None:
        if threading.get_ident() == owner:
            target[key] = _numpy(value)

    handles = []
    embeddings = getattr(transformer, "embeddings", None)
    for name in _EMBEDDING_PARTS:
        part = getattr(embeddings, name, None)
        if part is not None:
            handles.append(part.register_forward_hook(
                lambda _module, _inputs, out, name=name: keep(captured, name, out[0])
            ))
    norm = getattr(embeddings, "LayerNorm", None)
    if norm is not None:
        handles.append(norm.register_forward_pre_hook(
            lambda _module, inputs: keep(captured, "summed_input", inputs[0][0])
        ))
    for index, layer in enumerate(_bert_layers(transformer) or []):
        # The self-attention module returns (heads side by side, weights); its parent adds the
        # output projection, the residual and the LayerNorm.
        handles.append(layer.attention.self.register_forward_hook(
            lambda _module, _inputs, out, i=index: keep(captured["heads"], i, out[0][0])
        ))
        handles.append(layer.attention.output.register_forward_hook(
            lambda _module, _inputs, out, i=index: keep(captured["attended"], i, out[0])
        ))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _stacked(captured: dict, part: str, layers: int) -> np.ndarray | None:
    """One captured per-layer output stacked over the layers, or None when a layer was not captured."""
    found = captured.get(part) or {}
    return np.stack([found[i] for i in range(layers)]) if len(found) == layers else None


def _shares(run: _Pass, shares: np.ndarray) -> TokenShares:
    return TokenShares(tokens=[t for t, keep in zip(run.tokens, run.mask, strict=True) if keep],
                       shares=shares, special=run.special[run.mask])


def _numpy(tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


def can_explain(embedder) -> bool:
    """Whether `explain_hit` can split this embedder's similarities into token shares: a
    sentence-transformers text model (not CLIP, not the fast TF-IDF or hashing embedders)."""
    from .embedders.transformer import ClipEmbedder, SentenceTransformerEmbedder

    inner = getattr(embedder, "_inner", embedder)  # a foreign embedder wrapped by the registry
    return isinstance(inner, SentenceTransformerEmbedder) and not isinstance(inner, ClipEmbedder)


def shared_words(query: str, text: str, *, limit: int = 12) -> list[str]:
    """The words a query and a text have in common (stop words left out), in the query's order: what
    a word-counting embedder such as the fast mode's matches on."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from .labels import TOKEN_PATTERN, stem

    def words(value: str) -> list[str]:
        return [w for w in re.findall(TOKEN_PATTERN, value.lower()) if w not in ENGLISH_STOP_WORDS]

    in_text = {stem(w) for w in words(text)}
    return [w for w in dict.fromkeys(words(query)) if stem(w) in in_text][:limit]
