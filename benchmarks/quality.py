"""Map-quality benchmark (issue 2): a default `explorer build` of arXiv papers, scored by k-NN."""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from metrics import (
    TRUSTWORTHINESS_SAMPLE,
    MeasuredRun,
    knn_accuracy,
    knn_predict,
    run_measured,
    trustworthiness_score,
)

from explorer import Workspace

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
DEFAULT_DATA = Path("/work/shared/data/arxiv_cs/arxiv_cs10_2500.csv")
LABEL = "primary_category"
K = 10
# The bar of issue 2; the measured MiniLM + UMAP baseline on the 2,500-row file is 0.67.
TARGET = 0.64
STAGES = ("load", "embed", "project", "save")
SECTION = "quality"
BEGIN, END = f"<!-- {SECTION}:begin -->", f"<!-- {SECTION}:end -->"
VERSIONED = (
    "torch", "sentence-transformers", "transformers", "umap-learn", "scikit-learn", "numpy",
)


@dataclass
class QualityResult:
    """What one benchmark run measured, and how it was run."""

    data: Path
    rows: int
    classes: int
    command: str
    run: MeasuredRun
    manifest: dict
    stage_seconds: dict[str, float]
    knn_2d: float
    knn_embedding: float
    trustworthiness: float
    trust_rows: int
    per_class_2d: dict[str, float]
    started: datetime


def read_source(path: Path) -> pd.DataFrame:
    """The benchmark table; arXiv ids stay strings (2510.15100 would become a float)."""
    return pd.read_csv(path, dtype={"arxiv_id": str})


def stratified_rows(frame: pd.DataFrame, rows: int, *, seed: int = 0) -> pd.DataFrame:
    """A ``rows``-row subsample with the label's class shares kept, in the file's order."""
    from sklearn.model_selection import train_test_split

    if rows >= len(frame):
        return frame
    kept, _ = train_test_split(frame, train_size=rows, stratify=frame[LABEL], random_state=seed)
    return kept.sort_index().reset_index(drop=True)


def explorer_command() -> Path:
    """The `explorer` console script installed beside this Python."""
    script = Path(sys.executable).with_name("explorer")
    if not script.is_file():
        raise SystemExit(f"No `explorer` script at {script}: run `make run` (pip install -e .).")
    return script


def run_quality(data: Path, *, rows: int | None = None) -> QualityResult:
    """Build the map as a user would (defaults, fresh workspace, no cache) and score it."""
    source = read_source(data)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="explorer-quality-") as tmp:
        build_file = data
        if rows:
            source = stratified_rows(source, rows)
            build_file = Path(tmp) / f"{data.stem}_{len(source)}.csv"
            source.to_csv(build_file, index=False)
        name = build_file.stem
        home = Path(tmp) / "home"
        command = [str(explorer_command()), "build", str(build_file), "--name", name, "--no-cache"]
        # The bundled model is on disk: offline mode keeps hub look-ups out of the timings.
        env = {**os.environ, "EXPLORER_HOME": str(home), "HF_HUB_OFFLINE": "1"}
        run = run_measured(command, env=env)
        if run.returncode != 0:
            raise SystemExit(f"`explorer build` failed (exit code {run.returncode}):\n{run.stdout}")
        saved = Workspace(home).open(name)

    # The temporary folder is gone by now: show it as $TMP so the command reads as a recipe.
    shown = shlex.join([_relative(command[0]), *command[1:]]).replace(tmp, "$TMP")
    embedded = saved.embedded
    row_ids = saved.points["row_id"].to_numpy()[embedded]
    labels = source[LABEL].to_numpy()[row_ids]
    # The map keeps every column, so its own copy of the label proves the row_id join is aligned.
    if not np.array_equal(labels, saved.points[LABEL].to_numpy()[embedded]):
        raise SystemExit(f"The map's rows do not line up with {build_file.name} by row_id.")
    coords = saved.coords[embedded]
    vectors = np.asarray(saved.embeddings)[embedded]
    predicted = knn_predict(coords, labels, k=K)
    per_class = {str(c): float(np.mean(predicted[labels == c] == c)) for c in np.unique(labels)}
    return QualityResult(
        data=data,
        rows=int(embedded.sum()),
        classes=len(per_class),
        command=f"EXPLORER_HOME=$TMP/home {shown}",
        run=run,
        manifest=saved.manifest,
        stage_seconds=_stage_seconds(saved.manifest, run.stdout),
        knn_2d=float(np.mean(predicted == labels)),
        knn_embedding=knn_accuracy(vectors, labels, k=K, metric="cosine"),
        trustworthiness=trustworthiness_score(vectors, coords, n_neighbors=K),
        trust_rows=min(len(vectors), TRUSTWORTHINESS_SAMPLE),
        per_class_2d=per_class,
        started=started,
    )


def _stage_seconds(manifest: dict, stdout: str) -> dict[str, float]:
    """Stage seconds from the manifest; the one it cannot hold from the printed summary."""
    printed: dict[str, float] = {}
    for line in stdout.splitlines():
        if line.startswith("seconds:"):
            printed = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)", line)}
    # The manifest is written during the save stage, so it never contains the save's own time.
    merged = {**printed, **manifest.get("seconds", {})}
    return {stage: merged[stage] for stage in STAGES if stage in merged}


def _relative(path: str | Path) -> str:
    path = Path(path)
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def invocation_of(script: str | Path, argv: list[str] | None) -> str:
    """The command line that ran a benchmark script, as typed from the repository root."""
    return shlex.join([_relative(sys.executable), _relative(Path(script).resolve()),
                       *(sys.argv[1:] if argv is None else argv)])


def render_section(result: QualityResult, *, invocation: str) -> str:
    """The markdown section of docs/benchmarks.md for one run."""
    m, projection, seconds = result.manifest, result.manifest["projection"], result.stage_seconds
    met = "met" if result.knn_2d >= TARGET else "**missed**"
    loads = result.run.load_averages
    per_class = " · ".join(f"{c} {v:.2f}" for c, v in sorted(result.per_class_2d.items()))
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in VERSIONED)
    text = m.get("template") or " + ".join(m.get("text_columns", []))
    lines = [
        BEGIN,
        "## Map quality (issue 2)",
        "",
        f"A default `explorer build` of `{result.data.name}` ({result.rows:,} rows, "
        f"{result.classes} classes of `{LABEL}`), run {result.started:%Y-%m-%d %H:%M} UTC. The build "
        "is the real console script in a fresh workspace with `--no-cache`; nothing is tuned for "
        "the benchmark.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| {K}-NN accuracy of `{LABEL}` in the 2D map | **{result.knn_2d:.3f}** "
        f"(target ≥ {TARGET:.2f}: {met}) |",
        f"| {K}-NN accuracy in the {m['dimension']}-d embedding space (cosine), for reference "
        f"| {result.knn_embedding:.3f} |",
        f"| trustworthiness ({K} neighbours, cosine; random sample of {result.trust_rows:,} rows) "
        f"| {result.trustworthiness:.3f} |",
        f"| peak RSS of the build process | {result.run.peak_rss_mb:,.0f} MB |",
        "",
        "| stage | seconds |",
        "|---|---|",
        *(f"| {stage} | {seconds[stage]:.1f} |" for stage in STAGES if stage in seconds),
        f"| **total of stages** | **{sum(seconds.values()):.1f}** |",
        f"| wall time of the command (adds Python start-up and imports) | {result.run.seconds:.1f} |",
        "",
        f"- {K}-NN accuracy in 2D per class: {per_class}.",
        f"- Embedded text: {text}; model `{m['model_id']}`; "
        f"{projection['method_used'].upper()} with n_neighbors {projection['n_neighbors']}, "
        f"min_dist {projection['min_dist']}, {projection['metric']}, seed {projection['seed']}.",
        f"- Load average (1 min) during the build: {loads[0]:.2f} at the start, {max(loads):.2f} "
        f"at most, {loads[-1]:.2f} at the end ({len(loads)} samples). The 2 cores are shared with "
        "other work, so the timings are pessimistic.",
        f"- Benchmark: `{invocation}`; it ran `{result.command}`.",
        "- Stage seconds come from the map's manifest, `save` from the command's printed summary "
        "(the manifest is written during the save). `embed` includes loading the model, `project` "
        "numba compiling UMAP's kernels (once per process, so every CLI build pays it). "
        f"{K}-NN is a leave-one-out majority vote; a tie goes to the nearest tied label.",
        f"- Versions: {versions}.",
        END,
    ]
    return "\n".join(lines) + "\n"


def machine_header() -> str:
    """The top of docs/benchmarks.md: the machine the figures were measured on."""
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    mem_kb = _proc_field("/proc/meminfo", "MemTotal")
    ram = f"{int(mem_kb.split()[0]) / 1024**2:.1f} GiB RAM" if mem_kb else "RAM unknown"
    gpu = "a GPU (unused: embedding runs on CPU)" if Path("/dev/nvidia0").exists() else "no GPU"
    return (
        "# Benchmarks\n\n"
        f"Machine: {os.cpu_count()} cores ({cpu}), {ram}, {gpu}; "
        f"Python {platform.python_version()}, torch {metadata.version('torch')}.\n"
        "Each section is regenerated by its script with `--write`.\n"
    )


def _proc_field(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def publish(section: str, *, write: bool, marker: str = SECTION, doc: Path = DOC) -> None:
    """Print a benchmark's section and, with ``write``, put it into the doc in place of its last version."""
    print(section)
    if write:
        write_section(section, marker=marker, doc=doc)
        print(f"wrote {_relative(doc)}")


def write_section(section: str, *, marker: str = SECTION, doc: Path = DOC) -> None:
    """Replace one marked section of the doc, leaving the others (creating doc or section if needed)."""
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    # Benchmarks that run side by side write sections of the same file: one writer at a time.
    with open(Path(tempfile.gettempdir()) / "explorer-benchmarks-doc.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _replace_section(doc, section, begin, end)


def _replace_section(doc: Path, section: str, begin: str, end: str) -> None:
    text = doc.read_text(encoding="utf-8") if doc.exists() else machine_header()
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its section and optionally write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"CSV with title, abstract and {LABEL} (default: {DEFAULT_DATA})")
    parser.add_argument("--rows", type=int, help="build on a stratified subsample of N rows")
    parser.add_argument("--write", action="store_true",
                        help=f"replace the quality section of {_relative(DOC)}")
    args = parser.parse_args(argv)
    result = run_quality(args.data, rows=args.rows)
    invocation = invocation_of(__file__, argv)
    section = render_section(result, invocation=invocation)
    publish(section, write=args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
