"""The staged refinement (issue 30): from upload to each stage in a fresh process, and what search gives
at each stage against the quality mode's.

The data: arXiv CS papers (title + abstract) from ../shared/data, stratified by field. Each abstract's first
sentence is taken out of the paper and asked as a known-item query (a person describing a paper they read):
no stage can find it by its exact words. Each size runs in a fresh child process, timed from the child's
start (imports and the model's loading included): the fast map (`build_map`, auto mode: progressive), then
`refine_map` with its stages (titles, then the whole text). At each stage the child measures search on the
map as saved; that time is left out of the stages' clock. A second fresh child builds the quality mode's map
of the same file. Per map: precision@10 of the field queries in a person's words (benchmarks/progressive.py),
recall@10 and MRR of the known-item queries (a seeded sample), the 2D 10-NN accuracy of the field; for the
refined map, the median displacement from the fast map a person saw first.

    .venv/bin/python benchmarks/refine_stages.py [--rows 10000 2500] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

STARTED = time.perf_counter()  # the child's clock starts with the process: imports count

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from metrics import knn_accuracy, maxrss_to_mb  # noqa: E402
from progressive import DATA, LABEL, QUERIES  # noqa: E402
from quality import invocation_of, publish, stratified_rows  # noqa: E402

K = 10
KNOWN_ITEMS = 2_000
SECTION = "refine-stages"
FIRST_SENTENCE = re.compile(r"^(.+?[.!?])\s+(?=\S)", re.S)
# Besides each map's own layout (seed 42), its layout input laid out again with these UMAP seeds: one seed's
# 2D 10-NN moves by about +-0.005 on these sets, as much as half the target's margin.
EXTRA_SEEDS = (0, 1, 2)
# Issue 30's targets on 2 cores, seconds from upload: the first map, search by meaning, the whole refinement.
TARGETS = {"first map": 20.0, "search by meaning": 90.0, "refined": 180.0}


def held_out(rows: int) -> pd.DataFrame:
    """``rows`` papers stratified by field, each abstract without its first sentence (kept as ``asked``)."""
    frame = pd.concat([pd.read_csv(p) for p in sorted(DATA.glob("arxiv_cs10_12k_part*.csv"))], ignore_index=True)
    frame = frame.dropna(subset=["title", "abstract", LABEL]).drop_duplicates("abstract").reset_index(drop=True)
    frame = stratified_rows(frame, rows) if rows < len(frame) else frame
    split = frame["abstract"].map(lambda a: FIRST_SENTENCE.match(a))
    frame = frame[split.notna()].copy()
    frame["asked"] = [m.group(1) for m in split.dropna()]
    frame["abstract"] = [a[m.end():] for a, m in zip(frame["abstract"], split.dropna(), strict=True)]
    return frame.reset_index(drop=True)[["title", "abstract", LABEL, "asked"]]


def search_quality(saved, frame: pd.DataFrame, query_vectors: dict) -> dict:
    """What search on the saved map gives: field precision@10, known-item recall@10 and MRR, 2D 10-NN."""
    from explorer import embedder_for, search_map

    labels = frame[LABEL].to_numpy()
    precision = [float(np.mean(labels[search_map(saved, q, k=K).indices] == field))
                 for field, queries in QUERIES.items() for q in queries]
    sample = np.random.default_rng(0).choice(len(frame), size=min(KNOWN_ITEMS, len(frame)), replace=False)
    embedder = embedder_for(saved)
    key = embedder.model_id
    if key not in query_vectors:  # the titles and the whole text share the transformer: asked once
        query_vectors[key] = embedder.embed(frame["asked"].iloc[sample].tolist())
    docs = np.asarray(saved.embeddings, dtype=np.float32)
    scores = query_vectors[key] @ docs.T
    own = scores[np.arange(len(sample)), sample]
    ranks = (scores > own[:, None]).sum(axis=1)
    return {"precision@10": float(np.mean(precision)), "recall@10": float(np.mean(ranks < K)),
            "mrr": float(np.mean(1.0 / (ranks + 1))), "knn_2d": knn_accuracy(saved.coords, labels, k=K)}


def seed_spread(saved, frame: pd.DataFrame, fast: dict | None) -> list[float]:
    """2D 10-NN of the map's own layout and of its layout input laid out again with EXTRA_SEEDS, as the build
    laid it out: a refined map from the transformer's vectors joined with the fast map's, started from the fast
    map (``fast``: its layout input and coordinates); a quality map from its vectors."""
    from dataclasses import replace

    from explorer import ProjectionConfig, project
    from explorer.refine import joined_layout_input

    labels = frame[LABEL].to_numpy()
    config = ProjectionConfig.from_dict(saved.meta.projection.to_dict())
    vectors = np.asarray(saved.embeddings, dtype=np.float32)
    x = joined_layout_input(vectors, fast["input"]) if fast else vectors
    init = fast["coords"] if fast else None
    return [knn_accuracy(saved.coords, labels, k=K)] + [
        knn_accuracy(project(x, config=replace(config, seed=seed), init=init).coords, labels, k=K)
        for seed in EXTRA_SEEDS]


def child(csv: Path, home: Path, mode: str, out: Path) -> None:
    """One fresh process: the build (and in the auto mode its refinement), each stage's time and search."""
    import resource

    from explorer import Workspace, build_map, embedder_for
    from explorer.refine import refine_map

    frame = pd.read_csv(csv)
    workspace = Workspace(home)
    left_out = 0.0  # seconds spent measuring, not building
    stages: dict[str, dict] = {}
    query_vectors: dict = {}

    fast: dict = {}

    def record(stage: str, saved) -> None:
        nonlocal left_out
        mark = time.perf_counter()
        if stage == "fast":  # what the refined layout joins and starts from, as the refinement reads it
            fast["input"] = np.asarray(embedder_for(saved).layout_vectors(np.asarray(saved.embeddings)))
            fast["coords"] = np.asarray(saved.coords)
        stages[stage] = {"seconds": round(mark - STARTED - left_out, 1), "model": saved.manifest["model_id"],
                         "rss_mb": maxrss_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
                         "load": os.getloadavg()[0], **search_quality(saved, frame, query_vectors)}
        if stage in ("full", "quality"):
            stages[stage]["knn_2d_seeds"] = seed_spread(saved, frame, fast if stage == "full" else None)
        np.save(out.with_name(f"{out.stem}-{stage}.npy"), np.asarray(saved.coords))
        left_out += time.perf_counter() - mark

    result = build_map(csv, name="papers", mode=mode, workspace=workspace)
    record("fast" if result.refine_pending else mode, result.saved)
    first = stages["fast" if result.refine_pending else mode]
    first["n_cached"], first["build_seconds"] = result.n_cached, round(result.total_seconds, 1)
    if result.refine_pending:
        refined = refine_map("papers", workspace=workspace, on_stage=record)
        stages["refinement"] = {k: v for k, v in refined.saved.manifest["refinement"].items()
                                if k in ("seconds", "displacement", "model", "max_seq_length", "rows")}
    out.write_text(json.dumps(stages, indent=1))


def run_child(csv: Path, home: Path, mode: str, out: Path) -> dict:
    """The child in a fresh interpreter; its stages as it wrote them."""
    subprocess.run([sys.executable, __file__, "--child", str(csv), str(home), mode, str(out)], check=True)
    return json.loads(out.read_text())


def render(results: dict, *, invocation: str, started: datetime, loads: list) -> str:
    lines = [f"<!-- {SECTION}:begin -->", "## Search by meaning within a minute or two: the staged refinement "
             "(issue 30)", "",
             f"Command: `{invocation}` ({started:%Y-%m-%d %H:%M} UTC). Machine: {os.cpu_count()} cores, no GPU; "
             f"load average (1 min) at each size's start and end: {loads}. Each size's builds ran in fresh "
             "processes, timed from the process's start (imports and the model's loading included); the "
             "measurements at each stage are left out of its clock. Papers: arXiv CS titles + abstracts, "
             "stratified by field, each abstract's first sentence taken out and asked as a known-item query.",
             ""]
    for rows, result in results.items():
        auto, quality = result["auto"], result["quality"]
        lines += [f"### {rows:,} papers", "",
                  "| stage | seconds from upload (target) | model | precision@10 | recall@10 | MRR | 2D 10-NN | "
                  "peak RSS (MB) |", "|---|---|---|---|---|---|---|---|"]
        names = {"fast": "the fast map (TF-IDF)", "titles": "titles (search by meaning)",
                 "full": "the whole text (the refined map)"}
        targets = {"fast": TARGETS["first map"], "titles": TARGETS["search by meaning"], "full": TARGETS["refined"]}
        reference = quality["quality"]
        for stage, name in names.items():
            if stage not in auto:
                continue
            s = auto[stage]
            target = targets[stage] if stage != "full" or "titles" in auto else TARGETS["search by meaning"]
            verdict = "met" if s["seconds"] <= target else f"**missed by {s['seconds'] - target:.1f} s**"
            if "build_seconds" in s:  # a server has Python and the libraries loaded: the build's own time
                verdict += f"; the build itself {s['build_seconds']:.1f} s"
            lines.append(f"| {name} | {s['seconds']:.1f} (≤ {target:.0f}: {verdict}) | {s['model']} | "
                         + " | ".join(f"{s[m]:.3f} ({s[m] / reference[m]:.2f}×)" if reference[m] else f"{s[m]:.3f}"
                                      for m in ("precision@10", "recall@10", "mrr"))
                         + f" | {s['knn_2d']:.3f} | {s['rss_mb']:,.0f} |")
        cached = f" ({reference['n_cached']:,} rows' vectors from an earlier run's cache)" if reference.get(
            "n_cached") else ""
        lines.append(f"| quality mode (256 tokens, fp32) | {reference['seconds']:.1f}{cached} | {reference['model']} | "
                     f"{reference['precision@10']:.3f} | {reference['recall@10']:.3f} | {reference['mrr']:.3f} | "
                     f"{reference['knn_2d']:.3f} | {reference['rss_mb']:,.0f} |")
        refinement = auto.get("refinement", {})
        moved = refinement.get("displacement") or {}
        gap = auto["full"]["knn_2d"] - reference["knn_2d"] if "full" in auto else float("nan")
        lines += ["", f"The refined map's 2D 10-NN is {gap:+.3f} from the quality mode's (target: within 0.01: "
                  f"{'met' if abs(gap) <= 0.01 or gap > 0 else 'missed'}); its points moved a median "
                  f"{moved.get('median', float('nan')):.1%} of the map's diagonal from the fast map (p90 "
                  f"{moved.get('p90', float('nan')):.1%}). Seconds by step, on the refinement's own clock (model "
                  "loading in the titles' figure): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in (refinement.get("seconds") or {}).items() if k != "total")
                  + f"; the step: {refinement.get('model') or 'the bundled MiniLM'}, "
                  f"{refinement.get('max_seq_length')} tokens."]
        if "full" in auto and "knn_2d_seeds" in reference:
            mine, theirs = auto["full"]["knn_2d_seeds"], reference["knn_2d_seeds"]
            seed_gap = float(np.mean(mine) - np.mean(theirs))
            lines += ["", f"Laid out again with UMAP seeds {', '.join(map(str, EXTRA_SEEDS))} besides the map's own "
                      f"(42), each map's layout input as its build laid it out: the refined map's 2D 10-NN "
                      f"{np.mean(mine):.3f} on average ({min(mine):.3f}-{max(mine):.3f}), the quality mode's "
                      f"{np.mean(theirs):.3f} ({min(theirs):.3f}-{max(theirs):.3f}): {seed_gap:+.3f} (within 0.01: "
                      f"{'met' if seed_gap >= -0.01 else 'missed'})."]
        lines.append("")
    lines.append(f"<!-- {SECTION}:end -->")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 2_500])
    parser.add_argument("--write", action="store_true", help="replace this section of docs/benchmarks.md")
    parser.add_argument("--tmp", type=Path, default=None)
    parser.add_argument("--quality-home", type=Path, default=None,
                        help="a workspace kept between runs for the quality mode's builds: its vectors come from "
                             "the cache after the first run (its time is then not a fresh build's; the table says)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        csv, home, mode, out = args.child
        child(Path(csv), Path(home), mode, Path(out))
        return 0
    started = datetime.now(UTC)
    tmp = Path(tempfile.mkdtemp(prefix="refine-stages-", dir=args.tmp))
    results, loads = {}, []
    for rows in args.rows:
        frame = held_out(rows)
        csv = tmp / f"papers{rows}.csv"
        frame.to_csv(csv, index=False)
        start_load = os.getloadavg()[0]
        homes = {"auto": tmp / f"home-auto-{rows}",
                 "quality": (args.quality_home / str(rows)) if args.quality_home else tmp / f"home-quality-{rows}"}
        results[len(frame)] = {mode: run_child(csv, homes[mode], mode, tmp / f"{mode}-{rows}.json")
                               for mode in ("auto", "quality")}
        loads.append(f"{start_load:.1f} → {os.getloadavg()[0]:.1f}")
        print(json.dumps(results[len(frame)], indent=1), flush=True)
    section = render(results, invocation=invocation_of(__file__, argv), started=started, loads=loads)
    publish(section, write=args.write, marker=SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
