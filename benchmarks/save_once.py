"""One write per operation (issue 25): a clustered build and an `add_rows` before and after, and what the
neighbours column costs at save when the projection's graph is reused.

    .venv/bin/python benchmarks/save_once.py --before /tmp/wt_before [--rows 20000 100000]

``--before`` is a checkout of the code before the change (`git worktree add /tmp/wt_before bac6180`); each
side runs in its own subprocess with PYTHONPATH set to its tree, one after the other on the same machine.
Rows are synthetic abstracts (six topics of ten words, 12-20 words each), embedded with the hashing embedder
(`hashing`, 256 dimensions: no model, the same vectors on both sides), laid out with PCA and clustered with
k-means (k=20, on the layout), the embedding and layout caches off, so the operations' own work is what is
timed. ``add_rows`` adds 1,000 rows to a map of rows-1,000 that has trust (measured again when the grown map is
within trust.BUILD_MAX_ROWS). Bytes written: the growth of ``wchar`` in /proc/self/io over the operation (every
byte the process passed to write(); with the caches off only the map is written). Saves: calls of
Workspace.save and Workspace.update_manifest. Seconds are wall time, CPU seconds the process's (all its
threads), the best of ``--repeat`` runs per side, the sides taking turns: CPU time moves less than wall time
when other work shares the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
TOPICS = [
    "protein folding enzyme cell gene sequence membrane receptor kinase mutation",
    "quantum particle field energy relativity photon spin lattice boson decay",
    "market price inflation trade labour wage demand policy tax credit",
    "melody rhythm chord harmony tempo song scale octave timbre lyric",
    "river glacier climate rainfall sediment erosion basin flood drought soil",
    "network graph algorithm complexity search tree hashing parser compiler cache",
]
ADDED = 1_000


def table(rows: int, *, seed: int) -> pd.DataFrame:
    """``rows`` synthetic abstracts: each draws 12-20 words from one of six topics."""
    rng = np.random.default_rng(seed)
    vocab = [topic.split() for topic in TOPICS]
    picks = rng.integers(0, len(TOPICS), rows)
    return pd.DataFrame({"title": [f"paper {seed}-{i}" for i in range(rows)],
                         "abstract": [" ".join(rng.choice(vocab[t], size=int(rng.integers(12, 21))))
                                      for t in picks]})


def written_bytes() -> int:
    """Bytes this process has passed to write() so far."""
    with open("/proc/self/io") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("wchar:"))


def worker(rows: int) -> dict:
    """The timings of one side (the explorer on PYTHONPATH) at ``rows`` rows."""
    from explorer import ClusterConfig, ProjectionConfig, Workspace, build_map
    from explorer.grow import add_rows
    from explorer.trust import add_trust

    saves = []
    for method in ("save", "update_manifest"):
        real = getattr(Workspace, method)

        def counted(self, name, *args, _real=real, **kwargs):
            saves.append(name)
            return _real(self, name, *args, **kwargs)
        setattr(Workspace, method, counted)

    options = {"model": "hashing", "projection": ProjectionConfig(method="pca"), "use_cache": False,
               "clusters": ClusterConfig(method="kmeans", k=20, space="2d")}
    result = {}
    with tempfile.TemporaryDirectory() as home:
        workspace = Workspace(Path(home))
        frame = table(rows, seed=0)
        saves.clear()
        mark, started, cpu = written_bytes(), time.perf_counter(), time.process_time()
        build_map(frame, name="build", workspace=workspace, **options)
        result["build"] = {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                           "bytes": written_bytes() - mark, "saves": len(saves)}

        base = build_map(frame.head(rows - ADDED), name="grow", workspace=workspace, **options).saved
        add_trust(base, workspace=workspace)
        saves.clear()
        mark, started, cpu = written_bytes(), time.perf_counter(), time.process_time()
        grown = add_rows("grow", table(ADDED, seed=1), workspace=workspace, use_cache=False).saved
        result["add_rows"] = {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                              "bytes": written_bytes() - mark, "saves": len(saves), "trust": "trust" in grown.manifest}
        result["map_mb"] = sum(p.stat().st_size for p in grown.path.iterdir()) / 1e6
    return result


def neighbour_column_cost(rows: int) -> dict:
    """At ``rows`` rows: the column from the build's graph, and a save with it and without it."""
    from explorer import Workspace
    from explorer.label_file import label_table
    from explorer.map_files import map_files
    from explorer.neighbor_column import computed_neighbors
    from explorer.neighbours import knn_graph
    from explorer.store import MapFiles

    vectors = np.random.default_rng(0).standard_normal((rows, 256)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rng = np.random.default_rng(1)
    points = pd.DataFrame({"row_id": np.arange(rows), "title": [f"paper {i}" for i in range(rows)],
                           "x": rng.random(rows, dtype=np.float32), "y": rng.random(rows, dtype=np.float32),
                           "embedded": True})
    manifest = {"rows": rows, "embedded_rows": rows, "dimension": 256}
    graph = knn_graph(vectors, k=15)  # the graph UMAP is given in a build (not timed: UMAP needs it anyway)
    started = time.perf_counter()
    files = map_files(points, vectors, manifest, graph=graph)
    from_graph = time.perf_counter() - started
    started = time.perf_counter()
    computed_neighbors(vectors, np.ones(rows, bool), points["row_id"].to_numpy())
    computed = time.perf_counter() - started
    seconds = {}
    with tempfile.TemporaryDirectory() as home:
        workspace = Workspace(Path(home))
        for label, given in (("with", files), ("without", MapFiles(labels=label_table(manifest)))):
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                workspace.save("bench", points=points, embeddings=vectors, manifest=manifest, files=given)
                runs.append(time.perf_counter() - started)
            seconds[label] = min(runs)
    return {"rows": rows, "column_from_graph_s": from_graph, "column_computed_s": computed,
            "save_with_s": seconds["with"], "save_without_s": seconds["without"]}


def run_side(tree: Path, rows: int) -> dict:
    """``worker(rows)`` in a subprocess running the explorer of ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, __file__, "--worker", str(rows)], env=env, cwd=tree, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=False, help="a checkout of the code before the change")
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side, taking turns (the best is shown)")
    parser.add_argument("--column", type=int, default=20_000, help="rows of the neighbours-column measurement")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    print("| rows | operation | code | seconds (best) | CPU seconds (best) | MB written | saves |")
    print("|---:|---|---|---:|---:|---:|---:|")
    trees = {"before": args.before, "after": ROOT} if args.before else {"after": ROOT}
    for rows in args.rows:
        # The sides take turns, so a load that comes and goes on the machine falls on both.
        runs = {side: [] for side in trees}
        for _ in range(args.repeat):
            for side, tree in trees.items():
                runs[side].append(run_side(tree, rows))
        for operation in ("build", "add_rows"):
            for side, results in runs.items():
                items = [result[operation] for result in results]
                print(f"| {rows:,} | {operation} | {side} | {min(i['seconds'] for i in items):.1f} | "
                      f"{min(i['cpu'] for i in items):.1f} | {items[0]['bytes'] / 1e6:.1f} | {items[0]['saves']} |",
                      flush=True)
    cost = neighbour_column_cost(args.column)
    print(f"\nneighbours column at {cost['rows']:,} rows: from the build's graph {cost['column_from_graph_s']:.2f} s "
          f"(computed without it {cost['column_computed_s']:.2f} s); save with the column {cost['save_with_s']:.2f} s, "
          f"without {cost['save_without_s']:.2f} s")


if __name__ == "__main__":
    main()
