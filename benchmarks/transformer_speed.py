"""Transformer speed benchmark (issue 15): docs/s of the transformer stage after each speed step, each
step's vectors compared with the baseline's, and (--retrieval) title → own-abstract recall and MRR.

The steps run interleaved (every step once per round, the order rotated each round) because the CPU is
shared with other work; a step's figure is its median over the rounds, with the load average recorded.
The ONNX steps need onnxruntime and onnx importable (not project dependencies); without them they are
skipped with a note."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics import knn_accuracy  # noqa: E402
from quality import _proc_field, invocation_of, publish  # noqa: E402

from explorer.hashing import file_sha256  # noqa: E402
from explorer.texts import compose_texts  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/arxiv_cs/arxiv_cs10_2500.csv")
SECTION = "transformer-speed"
K = 10
VERSIONED = ("torch", "sentence-transformers", "transformers", "tokenizers", "onnxruntime", "onnx")


@dataclass
class Step:
    """One setting of the transformer stage: how it encodes, and what it is compared against."""

    name: str
    encode: Callable[[Sequence[str]], np.ndarray]
    seconds: list[float] = field(default_factory=list)
    vectors: np.ndarray | None = None


def sample_texts(data: Path, rows: int, *, seed: int = 0) -> tuple[list[str], pd.DataFrame]:
    """``rows`` random rows' texts as the app embeds them (title + ". " + abstract), and the whole table."""
    frame = pd.read_csv(data, dtype={"arxiv_id": str})
    texts = compose_texts(frame, columns=["title", "abstract"]).texts
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(texts), size=min(rows, len(texts)), replace=False))
    return [texts[i] for i in picked], frame


# --- the torch steps --------------------------------------------------------------------------------


def load_torch_model(max_seq_length: int):
    """The bundled MiniLM through sentence-transformers on the CPU, read as the app reads it."""
    from sentence_transformers import SentenceTransformer

    from explorer.embedders.transformer import bundled_model_path, verify_bundled_model

    path = bundled_model_path()
    verify_bundled_model(path)
    model = SentenceTransformer(str(path), device="cpu")
    model.max_seq_length = max_seq_length
    return model


def torch_encoder(model, *, max_seq_length: int, batch_size: int, threads: int, sort: bool):
    """An encode function: batches of ``batch_size`` (longest first when ``sort``), as the app's embed loop."""
    import torch

    def encode(texts: Sequence[str]) -> np.ndarray:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        model.max_seq_length = max_seq_length
        try:
            order = np.argsort([-len(t) for t in texts], kind="stable") if sort else np.arange(len(texts))
            out = np.zeros((len(texts), 384), dtype=np.float32)
            for start in range(0, len(texts), batch_size):
                idx = order[start : start + batch_size]
                # One encode call per batch, so sentence-transformers' own sort cannot reorder across batches.
                out[idx] = model.encode([texts[i] for i in idx], batch_size=batch_size, convert_to_numpy=True,
                                        normalize_embeddings=True, show_progress_bar=False)
            return out
        finally:
            torch.set_num_threads(before)

    return encode


def app_encoder(**options):
    """An encode function through the app's own SentenceTransformerEmbedder with its defaults."""
    from explorer.embedders.transformer import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(device="cpu", **options)
    started = time.perf_counter()
    embedder.embed(["warm-up"])  # loads the model and checks its weights' hash, as a build's first batch does
    load_seconds = time.perf_counter() - started

    def encode(texts: Sequence[str]) -> np.ndarray:
        return embedder.embed(texts)

    encode.model_id = embedder.model_id  # type: ignore[attr-defined]
    encode.backend = "torch"  # type: ignore[attr-defined]
    encode.load_seconds = load_seconds  # type: ignore[attr-defined]
    return encode


# --- the ONNX Runtime steps -------------------------------------------------------------------------


ONNX_FILE = "model.onnx"
ONNX_RECORD = "source.json"
# The opset torch's exporter writes; ONNX Runtime 1.18+ runs it.
ONNX_OPSET = 17


def export_bundled_onnx(model_path: Path, folder: Path) -> Path:
    """The bundled MiniLM's transformer as ONNX in ``folder``, exported once from the checked weights.

    Beside it, source.json records the sha256 of the weights it came from and of the ONNX file, so a
    folder left by other weights, or a file changed since, is exported again rather than used."""
    import json

    from explorer.embedders.transformer import verify_bundled_model

    source = verify_bundled_model(model_path)
    target = folder / ONNX_FILE
    record = folder / ONNX_RECORD
    if onnx_export_is_current(folder, source):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{ONNX_FILE}.{os.getpid()}.partial"
    _export_onnx(model_path, partial)
    digest = file_sha256(partial)
    # Renamed into place only when complete: a build killed mid-export leaves no half file to load.
    os.replace(partial, target)
    record.write_text(json.dumps({"source_sha256": source, "onnx_sha256": digest, "opset": ONNX_OPSET}),
                      encoding="utf-8")
    return target


def onnx_export_is_current(folder: Path, source_sha256: str) -> bool:
    """Whether ``folder`` holds an ONNX export of exactly these weights, unchanged since it was written."""
    import json

    target, record = folder / ONNX_FILE, folder / ONNX_RECORD
    try:
        recorded = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if recorded.get("source_sha256") != source_sha256 or not target.is_file():
        return False
    return file_sha256(target) == recorded.get("onnx_sha256")


def _export_onnx(model_path: Path, target: Path) -> None:
    """torch's exporter on the BERT encoder alone: pooling and normalising stay in numpy."""
    import warnings

    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    bert = AutoModel.from_pretrained(str(model_path)).eval()

    class Encoder(torch.nn.Module):
        """Positional inputs in, last hidden state out: the exporter needs a plain signature."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = torch.ones(2, 8, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's tracer warnings are about code paths not taken
        torch.onnx.export(Encoder(bert), (sample, sample, torch.zeros_like(sample)), str(target),
                          input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=ONNX_OPSET, dynamo=False)


class OnnxMiniLM:
    """The bundled MiniLM through ONNX Runtime: its own tokenizer, mean pooling and L2 normalising,
    as its sentence-transformers modules (Transformer, Pooling mean, Normalize) do them."""

    def __init__(self, model_path: Path, onnx_file: Path, *, max_seq_length: int, threads: int | None = None,
                 device: str = "cpu"):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        # The file pads every text to 128; padding to the batch's longest is what sentence-transformers does.
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(onnx_file), options, providers=providers)
        self.inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of one batch of texts."""
        encoded = self.tokenizer.encode_batch(list(texts))
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64), "attention_mask": mask,
                 "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64)}
        (hidden,) = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        pooled = pooled.astype(np.float32)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def export_onnx(folder: Path) -> Path:
    """The bundled MiniLM's transformer exported to ONNX (torch's exporter), once, into ``folder``."""
    from explorer.embedders.transformer import bundled_model_path

    return export_bundled_onnx(bundled_model_path(), folder)


def onnx_encoder(model_file: Path, *, max_seq_length: int, batch_size: int, threads: int):
    """An encode function through ONNX Runtime: the same tokenizer, mean pooling and normalisation."""
    from explorer.embedders.transformer import bundled_model_path

    runner = OnnxMiniLM(bundled_model_path(), model_file, max_seq_length=max_seq_length, threads=threads)

    def encode(texts: Sequence[str]) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = runner.encode([texts[i] for i in idx])
        return out

    return encode


def fused_onnx(model_file: Path, folder: Path) -> Path:
    """ONNX Runtime's BERT graph fusions (attention, layer norm, GELU), as optimum's O2 level applies them."""
    from onnxruntime.transformers.optimizer import optimize_model

    target = folder / "model-fused.onnx"
    if not target.is_file():
        optimize_model(str(model_file), model_type="bert", num_heads=12, hidden_size=384,
                       opt_level=1).save_model_to_file(str(target))
    return target


def quantized_onnx(model_file: Path, folder: Path) -> Path:
    """Dynamic int8 quantisation of the weights (optimum's avx2/avx512 quantisation configs do this)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = folder / "model-int8.onnx"
    if not target.is_file():
        quantize_dynamic(str(model_file), str(target), weight_type=QuantType.QInt8)
    return target


# --- measuring ----------------------------------------------------------------------------------------


def run_interleaved(steps: list[Step], texts: Sequence[str], *, rounds: int) -> None:
    """Each step once per round, the order rotated each round; the vectors of the first run are kept."""
    for r in range(rounds):
        shift = r % len(steps)
        for step in steps[shift:] + steps[:shift]:
            started = time.perf_counter()
            vectors = step.encode(texts)
            step.seconds.append(time.perf_counter() - started)
            if step.vectors is None:
                step.vectors = vectors
            print(f"round {r + 1} {step.name}: {len(texts) / step.seconds[-1]:.1f} docs/s "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)


def cosine_to(reference: np.ndarray, vectors: np.ndarray) -> tuple[float, float]:
    """Mean and min cosine between each row and the same row of the reference (both unit rows)."""
    cos = np.sum(reference * vectors, axis=1)
    return float(cos.mean()), float(cos.min())


def retrieval(encode: Callable[[Sequence[str]], np.ndarray], frame: pd.DataFrame, *, knn: bool,
              titles_too: bool = True) -> dict:
    """Each title as a query against every abstract (the abstracts alone embedded): recall@10 and MRR; and
    the 10-NN accuracy of the category among the app's texts (title + abstract), in the embedding space."""
    found = {"recall@10": float("nan"), "mrr": float("nan"), "abstract_docs_per_s": float("nan"), "knn": float("nan")}
    if titles_too:
        found.update(_title_to_abstract(encode, frame))
    if knn:
        full = encode(compose_texts(frame, columns=["title", "abstract"]).texts)
        found["knn"] = knn_accuracy(full, frame["primary_category"].to_numpy(), k=K, metric="cosine")
    return found


def _title_to_abstract(encode: Callable[[Sequence[str]], np.ndarray], frame: pd.DataFrame) -> dict:
    """Recall@10 and MRR of each title's own abstract among all abstracts, and the abstracts' docs/s."""
    titles = frame["title"].fillna("").astype(str).tolist()
    abstracts = frame["abstract"].fillna("").astype(str).tolist()
    started = time.perf_counter()
    docs = encode(abstracts)
    seconds = time.perf_counter() - started
    queries = encode(titles)
    scores = queries @ docs.T
    own = scores[np.arange(len(titles)), np.arange(len(titles))]
    rank = (scores > own[:, None]).sum(axis=1)  # 0 = the own abstract is the top hit
    return {"recall@10": float(np.mean(rank < K)), "mrr": float(np.mean(1.0 / (rank + 1))),
            "abstract_docs_per_s": len(abstracts) / seconds}


def token_counts(texts: Sequence[str], limit: int) -> np.ndarray:
    """Tokens per text as the bundled tokenizer counts them ([CLS] and [SEP] included), capped at ``limit``."""
    from tokenizers import Tokenizer

    from explorer.embedders.transformer import bundled_model_path

    tokenizer = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return np.minimum([len(e.ids) for e in tokenizer.encode_batch(list(texts))], limit)


def fast_and_project(frame: pd.DataFrame) -> dict:
    """The fast mode's seconds per character and UMAP's seconds per row on the whole file (after warm-up)."""
    from explorer.embedders.tfidf import CorpusEmbedder
    from explorer.project import ProjectionConfig, project, warm_up_umap

    texts = compose_texts(frame, columns=["title", "abstract"]).texts
    chars = sum(map(len, texts))
    started = time.perf_counter()
    vectors = CorpusEmbedder().embed(texts)
    fast = time.perf_counter() - started
    warm = warm_up_umap()
    started = time.perf_counter()
    project(vectors, config=ProjectionConfig())
    umap = time.perf_counter() - started
    return {"rows": len(texts), "chars": chars, "fast_seconds": fast, "umap_seconds": umap, "warm_up": warm}


def machine_line() -> str:
    """The cores, CPU model and the thread count torch starts with."""
    import torch

    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    gpu = "CUDA GPU" if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} cores (nproc), {cpu}, {gpu}; torch starts with {torch.get_num_threads()} "
            f"threads; Python {platform.python_version()}")


def _version(package: str) -> str:
    try:
        return f"{package} {metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return f"{package} not installed"


def main(argv: list[str] | None = None) -> int:
    """Run the steps, print the table and optionally write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", type=int, default=300, help="texts in the timed sample")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", default="all",
                        help="comma-separated step groups: sort,torch,batch (or batch64),threads,onnx,fused,app")
    parser.add_argument("--retrieval", default="", help="steps scored by title → abstract: name prefixes, split by ;")
    parser.add_argument("--knn", action="store_true", help="with --retrieval, also the category 10-NN accuracy")
    parser.add_argument("--tokens", type=int, default=128, help="max_seq_length of the batch and thread steps")
    parser.add_argument("--knn-only", action="store_true", help="with --retrieval, only the 10-NN accuracy")
    parser.add_argument("--estimates", action="store_true", help="also time TF-IDF + SVD and UMAP on the file")
    parser.add_argument("--onnx-dir", type=Path, help="where the ONNX export goes (default: a temporary folder)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    groups = set(args.steps.split(",")) if args.steps != "all" else {"sort", "torch", "batch", "threads", "onnx",
                                                                     "fused", "app"}

    started = datetime.now(UTC)
    load_before = os.getloadavg()
    texts, frame = sample_texts(args.data, args.rows)
    model = load_torch_model(256)
    baseline = Step("baseline: 256 tokens, sorted, batch 32, 2 threads",
                    torch_encoder(model, max_seq_length=256, batch_size=32, threads=2, sort=True))
    steps = [baseline]
    if "sort" in groups:
        steps.append(Step("256 tokens, file order (no sort)",
                          torch_encoder(model, max_seq_length=256, batch_size=32, threads=2, sort=False)))
    if "torch" in groups:
        steps.append(Step("+ 128 tokens",
                          torch_encoder(model, max_seq_length=128, batch_size=32, threads=2, sort=True)))
    tokens = args.tokens
    if "batch" in groups or "batch64" in groups:
        for size in (16, 64, 128) if "batch" in groups else (64,):
            steps.append(Step(f"{tokens} tokens, batch {size}",
                              torch_encoder(model, max_seq_length=tokens, batch_size=size, threads=2, sort=True)))
    if "threads" in groups:
        for size in (32, 128) if "batch" in groups else (32,):
            steps.append(Step(f"{tokens} tokens, 1 thread" + (f", batch {size}" if size != 32 else ""),
                              torch_encoder(model, max_seq_length=tokens, batch_size=size, threads=1, sort=True)))
    notes: list[str] = []
    tmp = tempfile.TemporaryDirectory(prefix="explorer-onnx-")
    if "onnx" in groups:
        folder = args.onnx_dir or Path(tmp.name)
        try:
            t0 = time.perf_counter()
            plain = export_onnx(folder)
            notes.append(f"ONNX export of the bundled weights, or the hash check of an earlier export: "
                         f"{time.perf_counter() - t0:.1f} s.")
            steps.append(Step("ONNX Runtime fp32, 128 tokens, batch 32",
                              onnx_encoder(plain, max_seq_length=128, batch_size=32, threads=2)))
            variants = (("ONNX Runtime, BERT fusions", fused_onnx), ("ONNX Runtime, int8 dynamic", quantized_onnx))
            for label, make in variants[0 if "fused" in groups else 1:]:
                try:
                    steps.append(Step(f"{label}, 128 tokens, batch 32",
                                      onnx_encoder(make(plain, folder), max_seq_length=128, batch_size=32, threads=2)))
                except Exception as exc:  # an optional variant: report it and go on
                    notes.append(f"{label}: not run ({type(exc).__name__}: {' '.join(str(exc).split())[:160]}).")
        except Exception as exc:  # onnxruntime missing or the export failing: the torch steps still count
            notes.append(f"ONNX steps not run ({type(exc).__name__}: {' '.join(str(exc).split())[:160]}).")
    if "app" in groups:
        encode = app_encoder()
        notes.append(f"Loading the app's embedder and its first batch: {encode.load_seconds:.1f} s, in a process "
                     "that had already imported sentence-transformers and hashed the weights (a cold load costs more).")
        steps.append(Step(f"the app's defaults now ({encode.backend}, `{encode.model_id}`)", encode))
        steps.append(Step("the app with EXPLORER_TORCH_THREADS=1", app_encoder(threads=1)))

    for step in steps:  # one untimed pass each, so first-call costs stay out of the rounds
        step.encode(texts[:8])
    run_interleaved(steps, texts, rounds=args.rounds)
    load_after = os.getloadavg()
    for step in steps if args.rounds else []:
        print(f"median {step.name}: {len(texts) / float(np.median(step.seconds)):.2f} docs/s; cosine to baseline "
              "mean / min {:.4f} / {:.4f}".format(*cosine_to(baseline.vectors, step.vectors)), flush=True)
    tokens128 = token_counts(texts, 128)
    tokens256 = token_counts(texts, 256)

    scored: dict[str, dict] = {}
    for name in filter(None, args.retrieval.split(";")):
        step = next(s for s in steps if s.name.startswith(name))
        scored[step.name] = retrieval(step.encode, frame, knn=args.knn, titles_too=not args.knn_only)
        print(f"retrieval {step.name}: {scored[step.name]}", flush=True)
    estimates = fast_and_project(frame) if args.estimates else None
    tmp.cleanup()

    base_rate = len(texts) / float(np.median(baseline.seconds)) if args.rounds else 0.0
    lines = [
        f"<!-- {SECTION}:begin -->",
        "## Transformer speed (issue 15)",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC on {machine_line()}. {len(texts)} random rows of `{args.data.name}` "
        "(title + \". \" + abstract, as the app embeds them), every step once per round for "
        f"{args.rounds} rounds in turn (order rotated), median docs/s shown; the CPU is shared with other "
        f"work: load average (1/5/15 min) {' / '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{' / '.join(f'{x:.2f}' for x in load_after)} after.",
        "",
        "| step | docs/s (median) | runs (docs/s) | × baseline | cosine to baseline, mean / min "
        "| cosine to torch at 128 tokens, mean / min |",
        "|---|---|---|---|---|---|",
    ]
    short = next((s for s in steps if s.name == "+ 128 tokens"), None)
    for step in steps if args.rounds else []:
        rate = len(texts) / float(np.median(step.seconds))
        runs = ", ".join(f"{len(texts) / s:.1f}" for s in step.seconds)
        mean, low = cosine_to(baseline.vectors, step.vectors)
        same = "–" if short is None else "{:.4f} / {:.4f}".format(*cosine_to(short.vectors, step.vectors))
        lines.append(f"| {step.name} | **{rate:.1f}** | {runs} | {rate / base_rate:.2f} | {mean:.4f} / {low:.4f} "
                     f"| {same} |")
    lines += ["", f"- Tokens per text in the sample: mean {tokens256.mean():.0f} at 256, {tokens128.mean():.0f} "
              f"at 128; {np.mean(tokens256 > 128):.0%} of the texts are cut at 128 tokens, "
              f"{np.mean(tokens256 >= 256):.0%} at 256."]
    if scored:
        lines += ["", f"Title → own abstract on all {len(frame):,} rows of `{args.data.name}` (abstracts only "
                  "embedded; each title ranks every abstract by cosine), and the {K}-NN accuracy of `primary_category` "
                  "among the app's texts (title + abstract) in the embedding space (cosine, leave-one-out):", "",
                  f"| setting | recall@{K} | MRR | {K}-NN category accuracy | abstracts docs/s |",
                  "|---|---|---|---|---|"]
        lines += [f"| {name} | {r['recall@10']:.3f} | {r['mrr']:.3f} | {r['knn']:.3f} "
                  f"| {r['abstract_docs_per_s']:.1f} |"
                  for name, r in scored.items()]
    if estimates:
        lines += ["", f"Estimate inputs on all {estimates['rows']:,} rows ({estimates['chars']:,} characters): "
                  f"TF-IDF + SVD fit and embed {estimates['fast_seconds']:.2f} s "
                  f"({estimates['fast_seconds'] / estimates['chars'] * 1e6:.2f} µs per character); UMAP "
                  f"{estimates['umap_seconds']:.1f} s after a {estimates['warm_up']:.0f} s warm-up "
                  f"({estimates['umap_seconds'] / estimates['rows'] * 1e3:.2f} ms per row)."]
    lines += ["", *(f"- {n}" for n in notes),
              f"- Benchmark: `{invocation_of(__file__, argv)}`. Versions: "
              f"{', '.join(_version(p) for p in VERSIONED)}.",
              f"<!-- {SECTION}:end -->"]
    section = "\n".join(lines) + "\n"
    publish(section, write=args.write, marker=SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
