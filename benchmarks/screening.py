"""Screening replayed on real arXiv papers: each primary category in turn is "the relevant topic".

For several topics and seeds a labelled collection is screened in the order the model picks (one
relevant and one irrelevant paper at random as the prior knowledge, the model retrained after every
10 decisions) with the map's vectors, TF-IDF alone and both side by side, and in random order.
Prints WSS@95 and recall after 10 % screened (means over seeds and topics), and the time of one
retraining and re-ranking at 100k rows.

    EXPLORER_HOME=/tmp/screen_home .venv/bin/python benchmarks/screening.py [--topics 5 --seeds 3]

The map is built once with the bundled transformer (`explorer build … --mode quality`) in that
workspace and reused."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from explorer import Workspace
from explorer.screening import FEATURES, feature_matrix, random_order, rank_rows, simulate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv_cs" / "arxiv_cs10_2500.csv"
MAP = "arxiv2500"


def saved_map(data: Path):
    """The arXiv map with the bundled transformer, built on first use."""
    workspace = Workspace()
    if not workspace.exists(MAP):
        subprocess.run([str(Path(sys.executable).with_name("explorer")), "build", str(data), "--name", MAP,
                        "--mode", "quality"], check=True)
    return workspace.open(MAP)


def rerank_seconds(rows: int = 100_000, decisions: int = 500, dim: int = 384) -> float:
    """The median time of one retraining and re-ranking of ``rows`` with ``decisions`` made."""
    rng = np.random.default_rng(0)
    vectors = feature_matrix(rng.normal(size=(rows, dim)).astype(np.float32), None, "vectors")
    made = rng.choice(rows, size=decisions, replace=False)
    relevant, irrelevant = made[: decisions // 5], made[decisions // 5:]
    times = []
    for _ in range(5):
        started = time.perf_counter()
        rank_rows(vectors, relevant, irrelevant)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--topics", type=int, default=5, help="the largest categories")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    saved = saved_map(args.data)
    on_map = saved.embedded
    points = saved.points[on_map]
    categories = points["primary_category"].astype(str).to_numpy()
    texts = [t for t, e in zip(saved.texts(), on_map, strict=True) if e]
    vectors = np.asarray(saved.embeddings)[on_map]
    features = {kind: feature_matrix(vectors, texts, kind) for kind in FEATURES}
    topics = [c for c, _ in sorted(zip(*np.unique(categories, return_counts=True), strict=True),
                                   key=lambda pair: -pair[1])[: args.topics]]
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in (*FEATURES, "random")}
    for topic in topics:
        labels = categories == topic
        for seed in range(args.seeds):
            for kind, matrix in features.items():
                run = simulate(matrix, labels, seed=seed)
                results[kind].append((run.wss(), run.recall_at(0.1)))
            run = random_order(labels, seed=seed)
            results["random"].append((run.wss(), run.recall_at(0.1)))
        print(f"{topic}: {labels.sum()} relevant of {len(labels)}; " + ", ".join(
            f"{kind} WSS@95 {np.mean([w for w, _ in results[kind][-args.seeds:]]):.3f}" for kind in results),
            flush=True)
    print(f"\n{len(labels):,} papers, topics {', '.join(topics)}, {args.seeds} seeds each; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| features | WSS@95 (mean, min–max over topics) | recall after 10 % screened |")
    print("|---|---|---|")
    for kind, values in results.items():
        per_topic = [np.mean([w for w, _ in values[i * args.seeds:(i + 1) * args.seeds]]) for i in range(len(topics))]
        print(f"| {kind} | {np.mean([w for w, _ in values]):.3f} ({min(per_topic):.2f}–{max(per_topic):.2f}) | "
              f"{np.mean([r for _, r in values]):.3f} |")
    print(f"\nOne retraining and re-ranking of 100,000 rows (384-d, 500 decisions): {rerank_seconds() * 1000:.0f} ms")


if __name__ == "__main__":
    main()
