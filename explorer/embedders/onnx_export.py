"""A sentence-transformers text model exported to ONNX, so the shared HTML map can embed queries in the page.

Only the transformer goes into the graph (input_ids, attention_mask → last_hidden_state): the tokenizer
travels as the model's own tokenizer.json, and mean pooling and normalising are done by the page as the
model's Pooling and Normalize modules do. The graph is quantised to int8 (dynamic, one scale per channel)
where that keeps the ranking: on arXiv titles → abstracts it kept the MRR within 1% of fp32 (docs/benchmarks.md,
"Search by meaning in the shared file"). Exports are cached under the workspace cache, one folder per model
id and options; the cache is disposable (explorer/cache_files.py), an unreadable entry is made again.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..cache_files import cache_folder, set_aside
from ..errors import ModelError
from ..hashing import bytes_hash

log = logging.getLogger(__name__)

# The exporter's version: a change to how the graph is made gets a fresh cache entry.
EXPORT_FORMAT = 2
OPSET = 17
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
EXPORT_FILE = "export.json"
# What the export runs on (the `export` extra); without them a file keeps the keyword search and says why.
EXPORT_PACKAGES = ("onnx", "onnxruntime")
# Pooling modes the page implements (sentence-transformers' Pooling config keys).
MEAN, CLS = "mean", "cls"


@dataclass(frozen=True)
class OnnxModel:
    """An exported model on disk: the graph, the tokenizer and how the page pools and cuts."""

    folder: Path
    model_id: str
    quantised: bool
    max_seq_length: int
    pooling: str
    normalise: bool
    dimension: int

    @property
    def model_path(self) -> Path:
        """The ONNX graph."""
        return self.folder / MODEL_FILE

    @property
    def tokenizer_path(self) -> Path:
        """The model's tokenizer.json (read by the page's tokenizer)."""
        return self.folder / TOKENIZER_FILE


def onnx_cache_dir(workspace_root: str | Path) -> Path:
    """Where exported models live in a workspace (beside the other disposable caches)."""
    return Path(workspace_root) / "cache" / "onnx"


def export_onnx(embedder, cache_root: str | Path, *, quantise: bool = True) -> OnnxModel:
    """The embedder's model as ONNX (int8 when ``quantise``), made once per model id and options and
    kept under ``cache_root``; the bundled model's weights are checked against their sha256 first. A model that
    runs int8 in torch is exported from its fp32 weights (the same export as the fp32 model's)."""
    full_precision = getattr(embedder, "full_precision", None)
    embedder = full_precision() if callable(full_precision) else embedder
    key = bytes_hash(json.dumps([embedder.model_id, quantise, OPSET, EXPORT_FORMAT]).encode())[:16]
    final = Path(cache_root) / key
    found = _read(final)
    if found is not None:
        return found
    missing = [name for name in EXPORT_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelError(f"exporting the model for the page needs {' and '.join(missing)}: "
                         "pip install 'embedding-explorer[export]'")
    cache_folder(Path(cache_root))
    tmp = final.with_name(f".tmp-{uuid.uuid4().hex}")
    tmp.mkdir(parents=True)
    try:
        _export(embedder, tmp, quantise=quantise)
        if final.exists():  # a damaged entry (_read refused it): kept aside for a look, never read again
            set_aside(final, "ONNX export", "unreadable")
        tmp.rename(final)
    except OSError:
        if _read(final) is None:  # not another export of the same model winning the race
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    found = _read(final)
    if found is None:
        raise ModelError(f"The ONNX export of {embedder.model_id} in {final} could not be read back.")
    return found


def _read(folder: Path) -> OnnxModel | None:
    try:
        config = json.loads((folder / EXPORT_FILE).read_text(encoding="utf-8"))
        if not (folder / MODEL_FILE).is_file() or not (folder / TOKENIZER_FILE).is_file():
            return None
        return OnnxModel(folder=folder, **config)
    except (OSError, ValueError, TypeError):
        return None


def _export(embedder, folder: Path, *, quantise: bool) -> None:
    """Write the graph, tokenizer.json and export.json into ``folder``."""
    import torch

    model = embedder.model  # loads it (the bundled one after its sha256 check)
    transformer, pooling, normalise = _modules(model)
    tokenizer_json = Path(transformer.auto_model.name_or_path) / TOKENIZER_FILE
    hf_tokenizer = transformer.tokenizer
    if not getattr(hf_tokenizer, "is_fast", False):
        raise ModelError(f"{embedder.model_id} has no fast tokenizer (tokenizer.json), so the page cannot tokenise.")
    if tokenizer_json.is_file():
        shutil.copyfile(tokenizer_json, folder / TOKENIZER_FILE)
    else:
        hf_tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))

    class Body(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    inner = transformer.auto_model
    # A copy on the CPU where the model sits on a GPU: the shared embedder keeps its device for the app's searches.
    if next(inner.parameters()).device.type != "cpu":
        inner = copy.deepcopy(inner).to("cpu")
    body = Body(inner).eval()
    sample = hf_tokenizer(["a query", "another, longer query"], padding=True, return_tensors="pt")
    fp32 = folder / ("fp32.onnx" if quantise else MODEL_FILE)
    with torch.no_grad():
        torch.onnx.export(body, (sample["input_ids"], sample["attention_mask"]), str(fp32),
                          input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                          dynamic_axes={name: {0: "batch", 1: "tokens"}
                                        for name in ("input_ids", "attention_mask", "last_hidden_state")},
                          opset_version=OPSET, dynamo=False)
    if quantise:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # One scale per output channel: per tensor, MiniLM's vectors fell to cosine 0.88 of fp32's on a long
        # repetitive text (mean 0.943 over arXiv titles and abstracts); per channel 0.990 (mean 0.994), same size.
        quantize_dynamic(str(fp32), str(folder / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True)
        fp32.unlink()
    config = {"model_id": embedder.model_id, "quantised": quantise, "max_seq_length": int(model.max_seq_length),
              "pooling": pooling, "normalise": normalise, "dimension": int(model.get_embedding_dimension())}
    (folder / EXPORT_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
    log.info("exported %s to ONNX (%s) in %s", embedder.model_id, "int8" if quantise else "fp32", folder)


def _modules(model) -> tuple:
    """The Transformer module, the pooling mode and whether a Normalize follows: only what the page can do."""
    from sentence_transformers import models

    parts = list(model)
    if not parts or not isinstance(parts[0], models.Transformer) or not hasattr(parts[0], "auto_model"):
        raise ModelError("Only sentence-transformers text models (a Transformer, then Pooling) can be exported.")
    pooling = next((p for p in parts[1:] if isinstance(p, models.Pooling)), None)
    mode = getattr(pooling, "pooling_mode", None) if pooling is not None else None
    if mode not in (MEAN, CLS):
        raise ModelError(f"The model's pooling ({mode}) is not one the page implements (mean or cls).")
    extra = [p for p in parts[1:] if not isinstance(p, (models.Pooling, models.Normalize))]
    if extra:
        raise ModelError(f"The model has modules the page cannot run ({', '.join(type(p).__name__ for p in extra)}).")
    return parts[0], mode, any(isinstance(p, models.Normalize) for p in parts)
