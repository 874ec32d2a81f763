"""Clusters benchmark (issue 5): arXiv clusters against primary_category, and what they cost."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from quality import DEFAULT_DATA, LABEL, invocation_of, read_source, write_section

from explorer import (
    BuildResult,
    ClusterConfig,
    SavedMap,
    Workspace,
    add_clusters,
    build_map,
    cluster_table,
)

SECTION = "clusters"
# The embeddings are cached here between runs: embedding 2,500 abstracts takes minutes on 2 cores.
DEFAULT_HOME = Path(tempfile.gettempdir()) / "explorer-bench-clusters"
CONFIGS = {
    "HDBSCAN on a 5-D UMAP (the default)": ClusterConfig(),
    "HDBSCAN on the 2D map": ClusterConfig(space="2d"),
    "KMeans, k = 10, on a 5-D UMAP": ClusterConfig(method="kmeans", k=10),
}
CHECKS = {"cs.RO": "robotics", "cs.CL": "language"}


@dataclass
class LevelScore:
    """How one level's clusters agree with the label."""

    level: str
    n_clusters: int
    unclustered: float
    ari_all: float
    ari_clustered: float
    purity: float


@dataclass
class ConfigRun:
    """One clustering configuration: its scores per level and what it cost."""

    name: str
    config: ClusterConfig
    levels: list[LevelScore]
    cluster_seconds: float
    label_seconds: float
    wall_seconds: float
    saved: SavedMap


def score_level(truth: np.ndarray, found: np.ndarray, level: str) -> LevelScore:
    """ARI (unclustered as one more group, and over clustered rows only) and purity."""
    from sklearn.metrics import adjusted_rand_score

    clustered = found >= 0
    table = pd.crosstab(found[clustered], truth[clustered])
    return LevelScore(
        level=level,
        n_clusters=int(found.max(initial=-1)) + 1,
        unclustered=float(1 - clustered.mean()),
        ari_all=float(adjusted_rand_score(truth, found)),
        ari_clustered=float(adjusted_rand_score(truth[clustered], found[clustered])),
        purity=float(table.max(axis=1).sum() / clustered.sum()),
    )


def run_config(base: SavedMap, workspace: Workspace, name: str, config: ClusterConfig) -> ConfigRun:
    """Cluster and label the map with one configuration and score every level."""
    started = time.perf_counter()
    saved = add_clusters(base, config=config, workspace=workspace)
    wall = time.perf_counter() - started
    section = saved.manifest["clusters"]
    truth = saved.points[LABEL].to_numpy()
    levels = [
        score_level(truth, saved.points[level["column"]].to_numpy(), level_name)
        for level_name, level in section["levels"].items()
    ]
    return ConfigRun(name, config, levels, section["seconds"]["cluster"],
                     section["seconds"]["label"], wall, saved)


def run_benchmark(data: Path, home: Path) -> tuple[BuildResult, list[ConfigRun]]:
    """Build (or rebuild from cached embeddings) the map, then cluster it every way in CONFIGS."""
    workspace = Workspace(home)
    frame = read_source(data)
    build = build_map(frame, name=data.stem, workspace=workspace)
    runs = [run_config(build.saved, workspace, name, config) for name, config in CONFIGS.items()]
    return build, runs


def majority(saved: SavedMap, column: str) -> pd.Series:
    """Each cluster's most common label and its share, as "cs.RO 85%"."""
    points = saved.points[saved.points[column] >= 0]

    def top(values: pd.Series) -> str:
        counts = values.value_counts()
        return f"{counts.index[0]} {counts.iloc[0] / len(values):.0%}"

    return points.groupby(column)[LABEL].agg(top)


def holder(saved: SavedMap, column: str, category: str) -> int:
    """The cluster holding most rows of ``category``."""
    points = saved.points[saved.points[column] >= 0]
    return int(points.loc[points[LABEL] == category, column].value_counts().index[0])


def render_section(
    data: Path, build: BuildResult, runs: list[ConfigRun], *, invocation: str
) -> str:
    """The markdown section of docs/benchmarks.md."""
    default = runs[0]
    saved = default.saved
    lines = [
        f"<!-- {SECTION}:begin -->",
        "## Clusters and their labels (issue 5)",
        "",
        f"`{data.name}` ({len(saved.points):,} rows, {saved.points[LABEL].nunique()} classes of "
        f"`{LABEL}`, 250 each), embedded with the bundled `{saved.manifest['model_id']}`; run "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Each configuration clusters the same saved map "
        "with `add_clusters` (cluster, label with class-based TF-IDF, save).",
        "",
        "| configuration | level | clusters | unclustered | ARI | ARI, clustered rows | purity "
        "| seconds (both levels): cluster + label |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for score in run.levels:
            lines.append(
                f"| {run.name} | {score.level} | {score.n_clusters} | {score.unclustered:.0%} "
                f"| {score.ari_all:.3f} | {score.ari_clustered:.3f} | {score.purity:.3f} "
                f"| {run.cluster_seconds:.1f} + {run.label_seconds:.1f} |"
            )
    lines += ["", "Coarse clusters of the default configuration, largest first:", "",
              "| id | size | label | majority `primary_category` |", "|---|---|---|---|"]
    shares = majority(saved, "cluster")
    for row in cluster_table(saved, "coarse").itertuples():
        lines.append(f"| {row.id} | {row.size} | {row.label} | {shares[row.id]} |")
    lines.append("")
    for category, topic in CHECKS.items():
        for level in default.saved.manifest["clusters"]["levels"]:
            column = saved.manifest["clusters"]["levels"][level]["column"]
            cid = holder(saved, column, category)
            terms = cluster_table(saved, level).set_index("id").loc[cid, "terms"][:5]
            lines.append(f"- The {level} cluster holding most {category} papers ({topic}) is "
                         f"{cid}: top terms {', '.join(terms)}.")
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("umap-learn", "scikit-learn"))
    config = default.config
    lines += [
        f"- Default settings: HDBSCAN (scikit-learn) on a {config.n_components}-D UMAP "
        f"(n_neighbors {config.n_neighbors}, min_dist 0, cosine, seed {config.seed}); minimum "
        "cluster size 2% of the rows (coarse) and 0.5% (fine), at least 5; min_samples 5; no "
        "cluster may hold more than half the rows.",
        "- ARI counts the unclustered rows as one more group (so noise costs); \"ARI, clustered "
        "rows\" leaves them out. Purity: the share of clustered rows whose cluster's majority "
        "category is their own. KMeans leaves nothing unclustered.",
        "- Seconds come from the manifest: `cluster` includes the 5-D UMAP (most of it), "
        "`label` both levels' labels. The 2D build before them took "
        f"{build.seconds['project']:.1f} s to project (it also compiled UMAP's kernels, which "
        "the clustering then reuses) and "
        f"{build.seconds['embed']:.1f} s to embed ({build.n_cached:,} texts from the benchmark's "
        "cache). "
        f"The 2 cores are shared with other work (load average {os.getloadavg()[0]:.1f} at the "
        "end), so the timings are pessimistic.",
        f"- Benchmark: `{invocation}`. Versions: {versions}.",
        f"<!-- {SECTION}:end -->",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its section and optionally write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"CSV with title, abstract and {LABEL} (default: {DEFAULT_DATA})")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME,
                        help=f"workspace whose embedding cache is reused (default: {DEFAULT_HOME})")
    parser.add_argument("--write", action="store_true",
                        help="replace the clusters section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    # The bundled model is on disk: offline mode keeps hub look-ups out of the timings.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.data.is_file():
        raise SystemExit(f"No data at {args.data}: pass --data with the arXiv CSV.")
    build, runs = run_benchmark(args.data, args.home)
    invocation = invocation_of(__file__, argv)
    section = render_section(args.data, build, runs, invocation=invocation)
    print(section)
    if args.write:
        write_section(section, marker=SECTION)
        print("wrote docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
