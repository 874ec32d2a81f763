"""What one kNN graph saves: a clustered build of 20k texts with the deterministic ``hashing`` embedder
(its layout vectors are the saved vectors, so the projection's exact 15-NN graph is the neighbours
column's graph), its seconds per stage, the save's seconds, and whether the saved ``neighbors`` column
matches an exact 15-NN computed apart.

    PYTHONPATH=. .venv/bin/python benchmarks/knn_reuse.py [--rows 20000] [--topics 20]

Run it with PYTHONPATH at the code to measure (a `git worktree` of the commit before, then this one).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def clustered_texts(rows: int, topics: int, *, seed: int = 0) -> pd.DataFrame:
    """``rows`` short texts in ``topics`` groups, each group drawing most words from its own vocabulary."""
    rng = np.random.default_rng(seed)
    vocab = [[f"t{t}w{w}" for w in range(40)] for t in range(topics)]
    common = [f"common{w}" for w in range(200)]
    topic = rng.integers(0, topics, size=rows)
    texts = [" ".join([*rng.choice(vocab[t], size=12), *rng.choice(common, size=4)]) for t in topic]
    return pd.DataFrame({"title": texts, "topic": topic})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--topics", type=int, default=20)
    args = parser.parse_args()
    import explorer
    from explorer import Workspace, build_map
    from explorer.cluster import ClusterConfig
    from explorer.points_file import read_neighbor_lists

    print(f"code: {Path(explorer.__file__).parent}; load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as home:
        csv = Path(home) / "texts.csv"
        clustered_texts(args.rows, args.topics).to_csv(csv, index=False)
        workspace = Workspace(Path(home) / "ws")
        started = time.perf_counter()
        result = build_map(csv, name="bench", model="hashing", workspace=workspace, use_cache=False,
                           clusters=ClusterConfig())
        wall = time.perf_counter() - started
        stages = ", ".join(f"{k} {v:.2f}" for k, v in result.seconds.items())
        print(f"rows {args.rows:,}: build {wall:.2f} s wall ({stages})")
        lists = read_neighbor_lists(result.saved.path / "points.parquet")
        vectors = np.asarray(result.saved.embeddings, dtype=np.float32)
        first = np.arange(0, args.rows, max(1, args.rows // 200))
        scores = vectors[first] @ vectors.T
        scores[np.arange(len(first)), first] = -np.inf
        # Hashed texts tie often, so the check is on distances: each sampled row's 15 match an exact 15-NN's.
        same = sum(np.allclose(np.sort(1 - s)[:15], lists[r]["distances"], atol=1e-5)
                   for r, s in zip(first, scores, strict=True))
        print(f"neighbors column: {len(lists):,} rows, {same}/{len(first)} sampled rows have an exact 15-NN's "
              "distances")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
