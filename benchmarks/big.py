"""Big maps (issues 16 and 31): `build_map` of 100k, 300k and 1M abstracts in the default (fast) mode.

Each size is built from a CSV or a Parquet file (--format) in a fresh child process with a fresh
workspace, clusters included (the clustering the app's upload form picks for that many rows). The
rows are the ~12k real arXiv papers followed by variants of them (benchmarks/speed.py's `hundred_k`).
The child reports the seconds of every stage and its own peak RSS (VmHWM) reached by the end of each; the parent
scores the saved layout on the real papers only: their 2D 10-NN accuracy of
the field inside the big layout, and trustworthiness on a 2,000-row sample of them.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from metrics import knn_accuracy, own_peak_mb, run_measured, trustworthiness_score
from quality import LABEL, invocation_of, publish
from speed import hundred_k, twelve_k

SIZES = {"100k": 100_000, "300k": 300_000, "1M": 1_000_000}
# Targets on 2 cores: seconds to a saved map with clusters, peak RSS in MB (issue 16's times, issue 31's memory).
TARGETS = {("300k", "csv"): (600, 2_500), ("300k", "parquet"): (600, 2_500), ("1M", "csv"): (900, 5_000),
           ("1M", "parquet"): (900, 4_000)}
UPLOAD_LIMIT_MB = 500


def child(csv: Path, home: Path, name: str) -> dict:
    """One build with clusters in this fresh process; per stage, the seconds and the peak RSS so far."""
    from explorer import Workspace, build_map
    from explorer.cluster import config_for_rows

    if csv.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(csv).metadata.num_rows
    else:
        rows = sum(1 for _ in open(csv, "rb")) - 1  # a rough count is enough to pick the clustering
    peaks: dict[str, float] = {}
    events: list[tuple[str, float, float]] = []
    started = time.perf_counter()

    def progress(stage: str, fraction: float, message: str) -> None:
        peaks[stage] = own_peak_mb()
        events.append((stage, round(fraction, 3), round(time.perf_counter() - started, 1)))

    result = build_map(csv, name=name, mode="auto", workspace=Workspace(home), clusters=config_for_rows(rows),
                       progress=progress)
    manifest = result.saved.manifest
    placed = [e for e in events if e[0] == "project"]
    return {
        "seconds": {k: round(v, 1) for k, v in result.seconds.items()},
        "build": round(time.perf_counter() - started, 1),
        "peak_rss_by_stage_mb": {k: round(v) for k, v in peaks.items()},
        "own_peak_mb": round(own_peak_mb()),
        "mode": result.mode.to_dict() if result.mode else None,
        "refine_pending": result.refine_pending,
        "model_id": manifest["model_id"],
        "clusters": {level: len(section["clusters"]) for level, section in manifest["clusters"]["levels"].items()},
        "cluster_notes": manifest["clusters"]["notes"],
        "cluster_seconds": manifest["clusters"]["seconds"],
        "project_progress_reports": len(placed),
    }


def run_size(size: str, base, tmp: Path, *, keep: bool, fmt: str = "csv") -> dict:
    """Write the table of one size (CSV or Parquet), build it in a child process and score the map."""
    from explorer import Workspace

    rows, real = SIZES[size], len(base)
    csv = tmp / f"arxiv_{size}.{fmt}"
    if not csv.exists():
        started = time.perf_counter()
        frame = hundred_k(base, rows=rows)
        if fmt == "csv":
            frame.to_csv(csv, index=False)
        else:
            frame.to_parquet(csv, index=False)
        del frame
        gc.collect()
        print(f"[big] {size}: wrote {csv} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    home = tmp / f"home-{size}-{fmt}"
    shutil.rmtree(home, ignore_errors=True)  # a projection cache would skip UMAP
    name = f"arxiv-{size}"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(csv), str(home), name]
    print(f"[big] {size}: building {rows:,} rows", file=sys.stderr, flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    megabytes = csv.stat().st_size / 1e6
    if megabytes > UPLOAD_LIMIT_MB:
        # The 1M file (~1.5 GB) is over the default upload limit (EXPLORER_MAX_UPLOAD_MB, 500 MB).
        env["EXPLORER_MAX_UPLOAD_MB"] = str(int(megabytes) + 100)
    measured = run_measured(command, env=env)
    if measured.returncode != 0:
        raise SystemExit(f"the {size} build failed (exit code {measured.returncode})")
    result = json.loads(measured.stdout.strip().splitlines()[-1])
    saved = Workspace(home).open(name, mmap=True)
    labels = saved.points[LABEL].to_numpy()[:real]
    coords = saved.coords[:real]
    vectors = np.asarray(saved.embeddings[:real])
    seconds = result["seconds"]
    to_saved = sum(v for k, v in seconds.items() if k != "cluster")
    summary = {
        "size": size, "format": fmt, "rows": rows, "real_rows": real, "wall": round(measured.seconds, 1),
        "to_saved_map": round(to_saved, 1), "with_clusters": round(sum(seconds.values()), 1),
        # The child's own high-water mark; wait4's ru_maxrss includes what the parent held when it forked.
        "peak_rss_mb": result["own_peak_mb"], "wait4_peak_mb": round(measured.peak_rss_mb),
        "loads": [round(v, 2) for v in measured.load_averages],
        "csv_mb": round(megabytes), "upload_limit_raised": "EXPLORER_MAX_UPLOAD_MB" in env,
        "knn_2d_real": round(knn_accuracy(coords, labels, k=10), 4),
        "trust_real": round(trustworthiness_score(vectors, coords, n_neighbors=10), 4),
        **result,
    }
    target = TARGETS.get((size, fmt))
    if target:
        summary["targets"] = {"seconds": target[0], "rss_mb": target[1],
                              "met": summary["with_clusters"] <= target[0] and summary["peak_rss_mb"] <= target[1]}
    del saved
    if not keep:
        shutil.rmtree(home, ignore_errors=True)
    return summary


SECTION = "big-builds"
STAGES = ("load", "embed", "project", "save", "cluster")


def render(results: list[dict], *, invocation: str, note: str = "") -> str:
    """The docs section of these builds: per size and format, seconds and peak RSS by stage, the map's scores."""
    results = sorted(results, key=lambda r: (-r["rows"], r["format"]))
    head = [f"{r['size']} {r['format'].upper()}" for r in results]
    def row(name, cells):
        return f"| {name} | " + " | ".join(str(c) for c in cells) + " |"
    lines = [f"<!-- {SECTION}:begin -->", "### Builds with clusters, CSV and Parquet (`benchmarks/big.py`)", "",
             f"Command: `{invocation}`. Each build in a fresh child process; peak RSS is the child's own (VmHWM); "
             "the seconds are under the load averages given (2 cores, shared)." + (f" {note}" if note else ""), "",
             row("measure", head), "|---|" + "---|" * len(results),
             row("file (MB)", [f"{r['csv_mb']:,}" for r in results]),
             row("seconds: " + " / ".join(STAGES), [" / ".join(str(r["seconds"].get(s, "–")) for s in STAGES)
                                                     for r in results]),
             row("**with clusters (s)**", [f"**{r['with_clusters']}**" for r in results]),
             row("peak RSS by the end of " + " / ".join(STAGES) + " (MB)",
                 [" / ".join(f"{r['peak_rss_by_stage_mb'].get(s, 0):,}" for s in STAGES) for r in results]),
             row("**peak RSS (MB)**", [f"**{r['peak_rss_mb']:,}**" for r in results]),
             row("target (s, MB)", [f"{r['targets']['seconds']}, {r['targets']['rss_mb']:,}: "
                                    f"{'met' if r['targets']['met'] else '**missed**'}" if r.get("targets") else "–"
                                    for r in results]),
             row("2D 10-NN of the 11,899 real papers", [r["knn_2d_real"] for r in results]),
             row("trustworthiness (2,000 real papers)", [r["trust_real"] for r in results]),
             row("clusters (coarse / fine)", [f"{r['clusters']['coarse']} / {r['clusters']['fine']}" for r in results]),
             row("TF-IDF model id", [f"`{r['model_id'].split('@')[1]}`" for r in results]),
             row("load average min / max", [f"{min(r['loads']):.1f} / {max(r['loads']):.1f}" for r in results]),
             "", f"<!-- {SECTION}:end -->", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build the sizes asked for and print one JSON line each (also appended to --out)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--tmp", type=Path, help="where the CSVs and workspaces go (kept; default a temporary folder)")
    parser.add_argument("--out", type=Path, help="a JSON-lines file the results are appended to")
    parser.add_argument("--keep", action="store_true", help="keep the built maps")
    parser.add_argument("--format", nargs="+", default=["csv"], choices=["csv", "parquet"],
                        help="the files build_map reads, each size in each format (issue 31: CSV and Parquet)")
    parser.add_argument("--render", type=Path, nargs="+", metavar="JSONL",
                        help="build nothing: render the results these --out files hold as the docs section")
    parser.add_argument("--note", default="", help="a sentence for the rendered section (which code ran)")
    parser.add_argument("--write", action="store_true", help=f"with --render: replace the {SECTION} section of "
                        "docs/benchmarks.md")
    parser.add_argument("--child", nargs=3, metavar=("CSV", "HOME", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.render:
        results = [json.loads(line) for path in args.render for line in path.read_text().splitlines() if line]
        publish(render(results, invocation=invocation_of(__file__, argv), note=args.note), write=args.write,
                marker=SECTION)
        return 0
    if args.child:
        csv, home, name = args.child
        print(json.dumps(child(Path(csv), Path(home), name)))
        return 0
    base = twelve_k()
    with tempfile.TemporaryDirectory(prefix="big-") as scratch:
        tmp = args.tmp or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            for fmt in args.format:
                line = json.dumps(run_size(size, base, tmp, keep=args.keep, fmt=fmt))
                print(line, flush=True)
                if args.out:
                    with args.out.open("a", encoding="utf-8") as out:
                        out.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
