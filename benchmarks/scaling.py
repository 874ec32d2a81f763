"""Scaling benchmark (issue 9): rows/s of the local and ray engines here, and what UMAP costs at scale.

Both engines build the same arXiv rows (title + abstract) with the bundled MiniLM through the CLI, at
two sizes: the slope between the two gives the marginal cost of a row, the intercept the fixed
start-up (Ray, actors, model loading). Projection is PCA in these builds so that the embed stage is
what is compared; UMAP's fit and transform are measured on their own, on vectors resampled from the
real embeddings, to extrapolate the sample-then-transform projection to 10M rows.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from metrics import MeasuredRun, peak_rss_mb, run_measured
from quality import DEFAULT_DATA, _relative, explorer_command, publish, read_source

from explorer import ProjectionConfig, Workspace
from explorer.engine_ray import DEFAULT_SAMPLE_ROWS as SAMPLE_ROWS
from explorer.project import project, warm_up_umap

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "scaling.md"
SECTION = "scaling"
DEFAULT_SIZES = (300, 900)
WORKERS = 2
# Both above 10,000 rows, where UMAP drops from 500 to 200 epochs; the larger is the ray engine's sample.
FIT_ROWS = (12_500, SAMPLE_ROWS)
TRANSFORM_ROWS = 4_000
TARGET_ROWS = 10_000_000
# Named, so that the local engine does not switch to its fast TF-IDF mode on larger inputs.
MODEL = "all-MiniLM-L6-v2"


@dataclass
class EngineRun:
    """One CLI build: which engine, how many rows, the command's measurements and the manifest's stage times."""

    engine: str
    rows: int
    run: MeasuredRun
    stages: dict[str, float]

    @property
    def embed_rate(self) -> float:
        """Rows per second of the embed stage (model loading and actor start included)."""
        return self.rows / self.stages["embed"]


@dataclass
class UmapCost:
    """UMAP's fit seconds at a few sizes, transform seconds per row on one core, the fitted model's size."""

    fit_seconds: dict[int, float]
    rss_before_mb: float
    rss_after_fit_mb: dict[int, float]
    transform_seconds_per_row: float
    pickled_mb: float
    fit_rows_pickled: int


def build(engine: str, csv: Path, home: Path, rows: int) -> EngineRun:
    """Build ``csv`` with one engine through the CLI and read its stage times back from the manifest."""
    name = f"{engine}-{rows}"
    command = [str(explorer_command()), "--home", str(home), "build", str(csv), "--engine", engine,
               "--projection", "pca", "--model", MODEL, "--name", name, "-q"]
    command += ["--no-cache"] if engine == "local" else ["--num-workers", str(WORKERS)]
    run = run_measured(command, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if run.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed with exit code {run.returncode}")
    manifest = Workspace(home).open(name).manifest
    return EngineRun(engine=engine, rows=rows, run=run, stages={k: float(v) for k, v in manifest["seconds"].items()})


def marginal(small: EngineRun, large: EngineRun) -> tuple[float, float]:
    """(seconds per extra row, fixed seconds) of the embed stage, from two sizes."""
    per_row = (large.stages["embed"] - small.stages["embed"]) / (large.rows - small.rows)
    return per_row, small.stages["embed"] - per_row * small.rows


def resampled(vectors: np.ndarray, rows: int, *, seed: int = 0) -> np.ndarray:
    """``rows`` unit vectors near the real ones (each a real row plus a little noise): UMAP's input at scale."""
    rng = np.random.default_rng(seed)
    base = vectors[rng.integers(0, len(vectors), size=rows)]
    noisy = base + rng.normal(scale=0.3 / np.sqrt(vectors.shape[1]), size=base.shape).astype(np.float32)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def umap_cost(vectors: np.ndarray) -> UmapCost:
    """Fit UMAP at FIT_ROWS sizes and time ``transform`` of TRANSFORM_ROWS more on this one process."""
    warm_up_umap()
    pool = resampled(vectors, max(FIT_ROWS) + TRANSFORM_ROWS)
    rss_before = peak_rss_mb()
    fit_seconds: dict[int, float] = {}
    rss_after: dict[int, float] = {}
    reducer = None
    for rows in sorted(FIT_ROWS):  # smallest first, so each peak RSS is that fit's (or an earlier, smaller one's)
        started = time.perf_counter()
        reducer = project(pool[:rows], config=ProjectionConfig(sample_rows=rows)).reducer  # one full fit
        fit_seconds[rows] = time.perf_counter() - started
        rss_after[rows] = peak_rss_mb()
    reducer.transform(pool[-200:])  # numba compiles transform's kernels on the first call
    started = time.perf_counter()
    reducer.transform(pool[-TRANSFORM_ROWS:])
    per_row = (time.perf_counter() - started) / TRANSFORM_ROWS
    return UmapCost(fit_seconds=fit_seconds, rss_before_mb=rss_before, rss_after_fit_mb=rss_after,
                    transform_seconds_per_row=per_row,
                    pickled_mb=len(pickle.dumps(reducer)) / 2**20, fit_rows_pickled=max(FIT_ROWS))


def render_section(runs: list[EngineRun], cost: UmapCost, *, invocation: str, loads: list[float]) -> str:
    """The measured figures and the 10M-row estimate, as the marked section of docs/scaling.md."""
    by = {(r.engine, r.rows): r for r in runs}
    sizes = sorted({r.rows for r in runs})
    lines = [f"<!-- {SECTION}:begin -->", "", f"Command: `{invocation}`", "",
             "| engine | rows | wall s (whole command) | embed stage s | rows/s (embed stage) | other stages s "
             "| peak RSS of the CLI process MB |",
             "| --- | ---: | ---: | ---: | ---: | --- | ---: |"]
    for run in runs:
        others = ", ".join(f"{k} {v:.1f}" for k, v in run.stages.items() if k != "embed")
        lines.append(f"| {run.engine} | {run.rows:,} | {run.run.seconds:.1f} | {run.stages['embed']:.1f} | "
                     f"{run.embed_rate:.1f} | {others} | {run.run.peak_rss_mb:,.0f} |")
    lines.append("")
    slopes = {}
    for engine in ("local", "ray"):
        per_row, fixed = marginal(by[(engine, sizes[0])], by[(engine, sizes[-1])])
        slopes[engine] = per_row
        lines.append(f"- {engine}: marginal cost {per_row * 1000:.1f} ms per row ({1 / per_row:.1f} rows/s once "
                     f"running), fixed cost {fixed:.1f} s of the embed stage.")
    core_cost = slopes["ray"] * WORKERS  # seconds of one core per row, as each actor has one CPU
    fit_seconds = ", ".join(f"{n:,} rows {s:.1f} s" for n, s in cost.fit_seconds.items())
    fit_50k = cost.fit_seconds[SAMPLE_ROWS]
    transform_core_hours = cost.transform_seconds_per_row * (TARGET_ROWS - SAMPLE_ROWS) / 3600
    lines += [
        f"- One ray actor's cost: {core_cost * 1000:.1f} ms of a core per abstract ({WORKERS} actors, 1 CPU each).",
        f"- UMAP fit (one process) on MiniLM vectors resampled from these abstracts: {fit_seconds}; peak RSS "
        f"of the benchmark process {cost.rss_before_mb:,.0f} MB before the fits, "
        + ", ".join(f"{mb:,.0f} MB after the {n:,}-row fit" for n, mb in cost.rss_after_fit_mb.items()) + ".",
        f"- UMAP transform: {cost.transform_seconds_per_row * 1000:.2f} ms per row on one core; the fitted model "
        f"pickles to {cost.pickled_mb:.0f} MB at {cost.fit_rows_pickled:,} rows.",
        f"- Load average (1 min) during the CLI builds: {min(loads):.1f} to {max(loads):.1f} on "
        f"{os.cpu_count()} cores.",
        f"- Versions: ray {metadata.version('ray')}, torch {metadata.version('torch')}, "
        f"sentence-transformers {metadata.version('sentence-transformers')}, "
        f"umap-learn {metadata.version('umap-learn')}.",
        "",
        "Derived for 10M abstracts (same per-row costs, cores assumed as fast as these):",
        "",
        "| step | one core | 8 nodes x 16 cores | 32 nodes x 16 cores |",
        "| --- | ---: | ---: | ---: |",
    ]
    embed_hours = core_cost * TARGET_ROWS / 3600
    lines.append(f"| embed (CPU actors) | {embed_hours:,.0f} h | {embed_hours / 128:,.1f} h | "
                 f"{embed_hours / 512:,.2f} h |")
    lines.append(f"| UMAP fit on {SAMPLE_ROWS:,} (driver, one core) | {fit_50k / 60:.1f} min | "
                 f"{fit_50k / 60:.1f} min | {fit_50k / 60:.1f} min |")
    lines.append(f"| UMAP transform of the rest | {transform_core_hours:,.1f} h | "
                 f"{transform_core_hours / 128 * 60:,.1f} min | {transform_core_hours / 512 * 60:,.1f} min |")
    lines += ["", f"<!-- {SECTION}:end -->"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run both engines at two sizes and UMAP's cost, print the section and optionally write it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV with title and abstract")
    parser.add_argument("--sizes", type=int, nargs=2, default=DEFAULT_SIZES, help="the two row counts")
    parser.add_argument("--write", action="store_true", help=f"replace the scaling section of {_relative(DOC)}")
    args = parser.parse_args(argv)
    frame = read_source(args.data)[["title", "abstract"]]
    runs: list[EngineRun] = []
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sorted(args.sizes):
            csv = Path(tmp) / f"abstracts-{rows}.csv"
            frame.head(rows).to_csv(csv, index=False)
            for engine in ("local", "ray"):
                run = build(engine, csv, Path(tmp) / "home", rows)
                runs.append(run)
                loads += run.run.load_averages
                print(f"{engine} {rows} rows: embed {run.stages['embed']:.1f} s, wall {run.run.seconds:.1f} s",
                      file=sys.stderr)
        vectors = Workspace(Path(tmp) / "home").open(f"local-{max(args.sizes)}").embeddings
    cost = umap_cost(np.asarray(vectors))
    invocation = shlex.join([_relative(sys.executable), _relative(Path(__file__).resolve()),
                             *(sys.argv[1:] if argv is None else argv)])
    section = render_section(runs, cost, invocation=invocation, loads=loads)
    publish(section, write=args.write, marker=SECTION, doc=DOC)
    return 0


if __name__ == "__main__":
    sys.exit(main())
