"""Progressive build benchmark (issue 15): the fast map, its refinement by the transformer, and the
quality mode, side by side on arXiv abstracts.

One process, like the app's server: UMAP's kernels and the transformer are warmed up first (the
server does both at start), then the fast map is built (time to the first map), then the refinement
worker refines it in the background while this thread searches the fast map every half second (the
latency a person searching during the refinement sees), then the quality mode builds the map from the
same vectors (read from the refinement's cache: its embed time is the refinement's, measured once).
Search quality is measured on each map with the abstracts alone embedded: precision@10 of category
queries written as a person would, each title → its own abstract (recall@10 and MRR), and the 10-NN
accuracy of the field in the 2D map.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from metrics import knn_accuracy, peak_rss_mb
from quality import invocation_of, stratified_rows, write_section

from explorer import Workspace, build_map, embedder_for, load_embedder, search_map
from explorer.project import warm_up_umap
from explorer.refine import layout_displacement
from explorer.worker import RefinementWorker

DATA = Path("/work/shared/data/arxiv_cs")
LABEL = "primary_category"
K = 10
SECTION = "progressive"
# Two queries per field, in a person's words; the second of each pair is a paraphrase that shares few
# words with the field's usual vocabulary.
QUERIES = {
    "cs.AI": ["agents that plan and reason with large language models",
              "getting software to think through a problem step by step"],
    "eess.IV": ["medical image reconstruction from MRI scans", "making blurry or noisy photos sharp again"],
    "cs.CL": ["machine translation between languages", "how well chatbots understand what people write"],
    "cs.CV": ["object detection and segmentation in images", "recognising what is shown in a picture"],
    "cs.IT": ["channel capacity and error correcting codes", "how much data a noisy link can carry"],
    "cs.GT": ["Nash equilibrium in auctions", "how selfish players behave when they bid against each other"],
    "cs.GR": ["rendering realistic 3D scenes", "drawing lifelike animated characters on a computer"],
    "cs.RO": ["robot arm grasping objects", "machines that walk over rough ground on legs"],
    "cs.CE": ["finite element simulation of materials", "computer models of how fluids and structures behave"],
    "cs.LG": ["convergence of stochastic gradient descent", "training neural networks from fewer examples"],
}
SEARCH_INTERVAL = 0.5


def read_frame(paths: list[Path], rows: int | None) -> pd.DataFrame:
    """The CSV files as one table (abstract, title and field non-empty), stratified to ``rows`` if given."""
    frame = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    frame = frame.dropna(subset=["title", "abstract", LABEL]).drop_duplicates("abstract").reset_index(drop=True)
    return stratified_rows(frame, rows) if rows else frame


def search_quality(saved, frame: pd.DataFrame) -> dict:
    """precision@10 of the category queries, title → own abstract recall@10 and MRR, 2D 10-NN accuracy."""
    labels = frame[LABEL].to_numpy()
    precision = []
    for field, queries in QUERIES.items():
        for query in queries:
            hits = search_map(saved, query, k=K).indices
            precision.append(float(np.mean(labels[hits] == field)))
    embedder = embedder_for(saved)
    titles = embedder.embed(frame["title"].astype(str).tolist())
    docs = np.asarray(saved.embeddings, dtype=np.float32)
    ranks = np.empty(len(frame), dtype=np.int64)
    for start in range(0, len(frame), 1024):  # 12k x 12k scores would be 0.6 GB at once
        scores = titles[start:start + 1024] @ docs.T
        own = scores[np.arange(len(scores)), np.arange(start, start + len(scores))]
        ranks[start:start + len(scores)] = (scores > own[:, None]).sum(axis=1)
    return {"precision@10": float(np.mean(precision)), "recall@10": float(np.mean(ranks < K)),
            "mrr": float(np.mean(1.0 / (ranks + 1))), "knn_2d": knn_accuracy(saved.coords, labels, k=K)}


def run(frame: pd.DataFrame, *, home: Path, skip_quality: bool) -> dict:
    """Every measurement of one dataset (see the module's docstring)."""
    loads = [os.getloadavg()]
    warm = time.perf_counter()
    warm_up_umap()
    _ = load_embedder(None).model  # the server loads the transformer before the first query
    warm_seconds = time.perf_counter() - warm

    workspace = Workspace(home / "progressive")
    started = time.perf_counter()
    fast = build_map(frame, text_columns=["abstract"], name="arxiv", workspace=workspace)
    first_map = time.perf_counter() - started
    assert fast.refine_pending, "the auto mode did not choose a progressive build for this table"
    fast_saved = fast.saved
    fast_coords = fast_saved.coords.copy()

    worker = RefinementWorker(workspace)
    worker.submit("arxiv")
    latencies, queries = [], [q for qs in QUERIES.values() for q in qs]
    while (status := worker.status("arxiv")).active:
        query = queries[len(latencies) % len(queries)]
        tick = time.perf_counter()
        search_map(fast_saved, query, k=K)
        latencies.append(time.perf_counter() - tick)
        time.sleep(SEARCH_INTERVAL)
    search_ready = time.perf_counter() - started
    loads.append(os.getloadavg())
    assert status.state == "done", status.message
    refined = workspace.open("arxiv")
    refine_section = refined.manifest["refinement"]
    result = {
        "rows": len(frame), "warm_up": warm_seconds, "first_map": first_map, "fast_seconds": fast.seconds,
        "search_ready": search_ready, "refine": refine_section,
        "latency": {"n": len(latencies), "median": float(np.median(latencies)), "max": float(np.max(latencies)),
                    "p95": float(np.quantile(latencies, 0.95))},
        "maps": {"fast map": search_quality(fast_saved, frame), "refined map": search_quality(refined, frame)},
        "model": refined.manifest["model_id"], "fast_model": fast_saved.manifest["model_id"],
    }
    if not skip_quality:
        quality_home = home / "quality"
        (quality_home / "cache").mkdir(parents=True)
        shutil.copy(workspace.cache_path, quality_home / "cache" / workspace.cache_path.name)
        quality = build_map(frame, text_columns=["abstract"], name="arxiv", mode="quality",
                            workspace=Workspace(quality_home))
        result["quality_seconds"] = quality.seconds
        result["quality_cached"] = quality.n_cached
        result["quality_model"] = quality.saved.manifest["model_id"]
        result["maps"]["quality mode"] = search_quality(quality.saved, frame)
        result["quality_displacement"] = layout_displacement(fast_coords[fast_saved.embedded],
                                                             quality.saved.coords[quality.saved.embedded])
    result["peak_rss_mb"] = peak_rss_mb()
    loads.append(os.getloadavg())
    result["loads"] = loads
    return result


def render(results: list[tuple[str, dict]], *, invocation: str, started: datetime) -> str:
    """The docs/benchmarks.md section for the runs."""
    lines = [f"<!-- {SECTION}:begin -->", "## Progressive build (issue 15)", "",
             f"Run {started:%Y-%m-%d %H:%M} UTC on this machine ({os.cpu_count()} cores, shared with other "
             "work: see the load averages), one process as the app's server would be: UMAP and the transformer "
             "warmed up first, then `build_map` in the auto mode (the fast map, refinement pending), then the "
             "refinement worker while the main thread searches the fast map every "
             f"{SEARCH_INTERVAL} s, then the quality mode. The abstracts alone are embedded. The refinement reads "
             "128 tokens of each abstract (modes.REFINE_MAX_TOKENS), the quality mode 256.", ""]
    for name, r in results:
        refine = r["refine"]
        moved = refine["displacement"]
        lines += [f"### {name}: {r['rows']:,} abstracts", "",
                  "| measure | value | target |", "|---|---|---|",
                  f"| warm-up (UMAP kernels + loading the transformer; the server does it at start) | "
                  f"{r['warm_up']:.1f} s | |",
                  f"| time to the first map (fast map saved, no clusters) | **{r['first_map']:.1f} s** | ≤ 20 s at 12k"
                  f"{_verdict(r, r['first_map'] <= 20)} |",
                  "| … of which " + " / ".join(r["fast_seconds"]) + " | "
                  + " / ".join(f"{v:.1f} s" for v in r["fast_seconds"].values()) + " | |",
                  f"| time until search uses the transformer (refined map saved) | **{r['search_ready']:.0f} s** "
                  f"| ≤ 5 min at 12k{_verdict(r, r['search_ready'] <= 300)} |",
                  "| … of which the refinement: embed / layout / clusters | "
                  + " / ".join(f"{refine['seconds'].get(k, 0):.0f} s" for k in ("embed", "project", "cluster"))
                  + " | |",
                  f"| a search of the fast map during the refinement: median / 95th pct / max "
                  f"({r['latency']['n']} searches) | {r['latency']['median'] * 1000:.0f} / "
                  f"{r['latency']['p95'] * 1000:.0f} / {r['latency']['max'] * 1000:.0f} ms | < 1 s: "
                  f"{'met' if r['latency']['max'] < 1 else '**missed**'} |",
                  f"| points moved by the refinement (share of the map's size): median / 90th pct | "
                  f"{moved['median']:.1%} / {moved['p90']:.1%} | |"]
        if "quality_displacement" in r:
            q = r["quality_displacement"]
            lines.append(f"| … for comparison, the quality mode's own map against the fast map | "
                         f"{q['median']:.1%} / {q['p90']:.1%} | |")
        lines += [f"| peak RSS of the process (all of it) | {r['peak_rss_mb']:,.0f} MB | |", "",
                  "| map | model | precision@10 (20 queries) | title → abstract recall@10 | MRR | 2D 10-NN "
                  "accuracy |", "|---|---|---|---|---|---|"]
        for label, m in r["maps"].items():
            models = {"fast map": r["fast_model"], "quality mode": r.get("quality_model", r["model"])}
            model = models.get(label, r["model"])
            lines.append(f"| {label} | `{model}` | {m['precision@10']:.3f} | {m['recall@10']:.3f} | "
                         f"{m['mrr']:.3f} | {m['knn_2d']:.3f} |")
        if "quality mode" in r["maps"]:
            q, f = r["maps"]["quality mode"], r["maps"]["refined map"]
            ratios = ", ".join(f"{k} {f[k] / q[k]:.3f}" for k in ("precision@10", "recall@10", "mrr") if q[k])
            embedded = r["rows"] - r["quality_cached"]
            how = (f"embedded {embedded:,} abstracts in {r['quality_seconds'].get('embed', 0):.0f} s "
                   f"({embedded / max(r['quality_seconds'].get('embed', 0), 1e-9):.0f} rows/s; a different model id "
                   "from the refinement's, so nothing came from its cache)" if embedded else
                   f"read its {r['quality_cached']:,} vectors from the copied cache")
            lines += ["", f"- Refined / quality mode: {ratios} (target ≥ 0.97 each); 2D 10-NN "
                      f"{f['knn_2d'] - q['knn_2d']:+.3f} (target ≥ −0.01). The quality mode {how}; its layout "
                      f"took {r['quality_seconds'].get('project', 0):.1f} s."]
        load_text = ", ".join(f"{a:.2f}" for a, _, _ in r["loads"])
        lines += [f"- Load average (1 min) at the start, after the refinement and at the end: {load_text}.", ""]
    lines += [f"- Command: `{invocation}`.", f"<!-- {SECTION}:end -->"]
    return "\n".join(lines) + "\n"


def _verdict(r: dict, met: bool) -> str:
    """": met" / ": **missed**" where the target applies (the ~12k table), else nothing."""
    if r["rows"] < 10_000:
        return ""
    return ": met" if met else ": **missed**"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on each dataset, print the section, optionally write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", choices=("2500", "12k", "both"), default="both")
    parser.add_argument("--rows", type=int, help="a stratified subsample of N rows of each dataset")
    parser.add_argument("--skip-quality", action="store_true", help="no quality-mode map")
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    sets = {"2500": [DATA / "arxiv_cs10_2500.csv"], "12k": sorted(DATA.glob("arxiv_cs10_12k_part*.csv"))}
    chosen = list(sets) if args.data == "both" else [args.data]
    results = []
    for key in chosen:
        frame = read_frame(sets[key], args.rows)
        with tempfile.TemporaryDirectory(prefix="progressive-") as home:
            print(f"{key}: {len(frame):,} rows", flush=True)
            results.append((f"arxiv_cs10 {key}", run(frame, home=Path(home), skip_quality=args.skip_quality)))
        # Each dataset's figures as soon as they exist: the 12k run takes long on two shared cores.
        print(render(results[-1:], invocation=invocation_of(__file__, argv), started=started), flush=True)
    section = render(results, invocation=invocation_of(__file__, argv), started=started)
    if args.write:
        write_section(section, marker=SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
