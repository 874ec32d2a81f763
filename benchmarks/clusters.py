"""Clusters benchmark (issue 5): arXiv clusters against primary_category, and what they cost; with
--labels, how good the labels are (issue 14): term hygiene and a centroid re-rank, measured."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from quality import DEFAULT_DATA, LABEL, invocation_of, publish, read_source

from explorer import (
    BuildResult,
    ClusterConfig,
    SavedMap,
    Workspace,
    add_clusters,
    build_map,
    cluster_table,
    embedder_for,
)
from explorer import labels as labelling

SECTION = "clusters"
LABELS_SECTION = "cluster-labels"
# A category's own vocabulary: its most distinctive terms against the other categories.
CATEGORY_TERMS = 100
LABEL_MODEL = "all-MiniLM-L6-v2"
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
        "cluster size 2% of the rows (coarse), 0.5% (fine) and, from 5,000 rows, 0.1% (finest), at "
        "least 5; min_samples 5; no cluster may hold more than half the rows.",
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


# --- label quality (issue 14) ----------------------------------------------------------------------


@dataclass
class LabelScore:
    """How one way of labelling names one level's clusters."""

    variant: str
    level: str
    on_topic: float
    shared_word: float
    duplicates: int
    seconds: float
    labels: dict[int, str]


@contextlib.contextmanager
def labelling_settings(**settings):
    """Run with some of explorer.labels' module settings replaced (the ablations of LABEL_VARIANTS)."""
    saved = {name: getattr(labelling, name) for name in settings}
    for name, value in settings.items():
        setattr(labelling, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(labelling, name, value)


LABEL_VARIANTS: dict[str, dict] = {
    "before: scikit-learn's stop words only": {
        "STOP_WORDS": frozenset(), "clean_text": str, "MAX_SPREAD": float("inf"), "unique_labels": dict},
    "+ hygiene (headers, addresses, URLs, LaTeX, mail words)": {
        "STOP_WORDS": labelling.MAIL_WORDS | labelling.LATEX_WORDS, "MAX_SPREAD": float("inf")},
    "+ writing words (using, based, propose, …)": {"MAX_SPREAD": float("inf")},
    "+ drop terms common in most clusters (default: in 10% of the rows of half the clusters)": {},
    "same, common = in 5% of the rows of half the clusters": {"SPREAD_SHARE": 0.05},
    "same, common = in 20% of the rows of half the clusters": {"SPREAD_SHARE": 0.2},
}
DEFAULT_VARIANT = "+ drop terms common in most clusters (default: in 10% of the rows of half the clusters)"
RERANK_VARIANT = "default + centroid re-rank (MiniLM)"


def category_vocabulary(texts: list[str], categories: np.ndarray) -> dict[str, set[str]]:
    """Each category's CATEGORY_TERMS most distinctive words (log-odds z against the rest)."""
    counts, vocab = labelling._count(texts)
    out = {}
    for category in np.unique(categories):
        inside = categories == category
        y_a = np.asarray(counts[inside].sum(axis=0)).ravel()
        y_b = np.asarray(counts[~inside].sum(axis=0)).ravel()
        z = labelling._log_odds_z(y_a, y_b, prior=y_a + y_b)
        out[str(category)] = {w for i in np.argsort(-z)[:CATEGORY_TERMS] for w in vocab[i].split()}
    return out


def score_labels(variant: str, level: str, labels: dict[int, labelling.ClusterLabel],
                 majority_of: dict[int, str], vocabulary: dict[str, set[str]], seconds: float) -> LabelScore:
    """On-topic: the share of label words in the vocabulary of the cluster's majority category;
    shared word: the share of clusters whose label has a word another label of the level has."""
    words = {c: {w for t, _ in lab.terms[: labelling.LABEL_TERMS] for w in t.split()} for c, lab in labels.items()}
    hits = [w in vocabulary[majority_of[c]] for c, ws in words.items() for w in ws]
    shared = [bool(ws & set().union(*(v for d, v in words.items() if d != c))) for c, ws in words.items()]
    texts = [lab.label for lab in labels.values()]
    return LabelScore(variant, level, float(np.mean(hits)) if hits else 0.0,
                      float(np.mean(shared)) if shared else 0.0, len(texts) - len(set(texts)), seconds,
                      {c: lab.label for c, lab in labels.items()})


def run_label_benchmark(data: Path, home: Path) -> tuple[SavedMap, list[LabelScore]]:
    """Cluster the map once (default settings, bundled model), then label its levels every way."""
    workspace = Workspace(home)
    frame = read_source(data)
    saved = build_map(frame, name=f"{data.stem}-labels", model=LABEL_MODEL, workspace=workspace,
                      clusters=ClusterConfig()).saved
    section = saved.manifest["clusters"]["levels"]
    texts, truth = saved.texts(), saved.points[LABEL].to_numpy()
    levels = {name: saved.points[level["column"]].to_numpy() for name, level in section.items()}
    vocabulary = category_vocabulary(texts, truth)
    majority_of = {name: {int(c): str(pd.Series(truth[ids == c]).mode()[0]) for c in np.unique(ids[ids >= 0])}
                   for name, ids in levels.items()}
    scores: list[LabelScore] = []
    default: dict[str, dict[int, labelling.ClusterLabel]] = {}
    for variant, settings in LABEL_VARIANTS.items():
        with labelling_settings(**settings):
            started = time.perf_counter()
            found = labelling.label_levels(texts, levels)
            seconds = time.perf_counter() - started
        default = found if variant == DEFAULT_VARIANT else default
        scores += [score_labels(variant, name, found[name], majority_of[name], vocabulary, seconds)
                   for name in levels]
    embedder = embedder_for(saved)
    embed: Callable[[list[str]], np.ndarray] = embedder.embed
    embeddings = np.asarray(saved.embeddings)
    started = time.perf_counter()
    reranked = {name: labelling.rerank_by_centroid(
        default[name], {int(c): embeddings[ids == c].mean(axis=0) for c in np.unique(ids[ids >= 0])}, embed)
        for name, ids in levels.items()}
    seconds = time.perf_counter() - started
    scores += [score_labels(RERANK_VARIANT, name, reranked[name], majority_of[name], vocabulary, seconds)
               for name in levels]
    return saved, scores


def render_label_section(data: Path, saved: SavedMap, scores: list[LabelScore], *, invocation: str) -> str:
    """The "Cluster labels" section of docs/benchmarks.md."""
    levels = list(saved.manifest["clusters"]["levels"])
    counts = {name: len(saved.manifest["clusters"]["levels"][name]["clusters"]) for name in levels}
    lines = [
        f"<!-- {LABELS_SECTION}:begin -->",
        "## Cluster labels (issue 14)",
        "",
        f"`{data.name}` ({len(saved.points):,} rows), embedded with the bundled "
        f"`{saved.manifest['model_id']}`, clustered once with the defaults "
        f"({', '.join(f'{counts[n]} {n}' for n in levels)} clusters); run {datetime.now(UTC):%Y-%m-%d %H:%M} "
        "UTC. Each row labels the same clusters another way: the first four rows switch on "
        "`explorer.labels`' steps one after another (\"before\" also without the step that tells "
        "identical labels apart), the next two move the threshold of \"common\", the last re-ranks the "
        "default's 10 best c-TF-IDF terms by cosine between each term's embedding and the cluster's mean "
        "embedding.",
        "",
        "| labelling | level | on topic | clusters sharing a label word | identical labels | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for score in scores:
        lines.append(f"| {score.variant} | {score.level} | {score.on_topic:.1%} | {score.shared_word:.0%} "
                     f"| {score.duplicates} | {score.seconds:.1f} |")
    before = next(s for s in scores if s.level == "coarse")
    after = next(s for s in scores if s.level == "coarse" and s.variant == DEFAULT_VARIANT)
    rerank = next(s for s in scores if s.level == "coarse" and s.variant == RERANK_VARIANT)
    lines += ["", "Coarse labels, largest cluster first:", "",
              "| size | majority `primary_category` | before | now (default) | with the centroid re-rank |",
              "|---|---|---|---|---|"]
    shares = majority(saved, "cluster")
    for row in cluster_table(saved, "coarse").itertuples():
        lines.append(f"| {row.size} | {shares[row.id]} | {before.labels[row.id]} | {after.labels[row.id]} "
                     f"| {rerank.labels[row.id]} |")
    lines += [""]
    for level in levels:
        by = {s.variant: s for s in scores if s.level == level}
        first, now, again = by[next(iter(LABEL_VARIANTS))], by[DEFAULT_VARIANT], by[RERANK_VARIANT]
        lines.append(
            f"- {level.capitalize()} level: the default against before, on topic "
            f"{_points(now.on_topic - first.on_topic)}, clusters sharing a label word "
            f"{_points(now.shared_word - first.shared_word)}, identical labels {first.duplicates} → "
            f"{now.duplicates}; the centroid re-rank against the default, on topic "
            f"{_points(again.on_topic - now.on_topic)}, sharing {_points(again.shared_word - now.shared_word)}."
        )
    lines += [
        f"- On topic: the share of the words of a label's three terms that are among the {CATEGORY_TERMS} "
        "most distinctive terms of the cluster's majority category (log-odds z-scores with an informative "
        "prior, category against the rest, counted with the full stop list, so words the stop list drops "
        "never count as on topic). Clusters sharing a label word: the share of a level's clusters whose "
        "label has a word some other label of the level has (e.g. \"models\" everywhere). Lower is "
        "better for the last two columns.",
        "- `add_clusters` labels as the default row does; `explorer.labels.rerank_by_centroid` is not "
        "wired into it (it is what the last row measures).",
        "- Seconds: labelling every level (the re-rank: embedding the candidate terms with the map's "
        f"model and re-ranking). Load average {os.getloadavg()[0]:.1f} at the end, on 2 shared cores.",
        f"- Benchmark: `{invocation}`.",
        f"<!-- {LABELS_SECTION}:end -->",
    ]
    return "\n".join(lines) + "\n"


def _points(delta: float) -> str:
    """A difference of two shares in percentage points, signed."""
    return f"{delta * 100:+.1f} points"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its section and optionally write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"CSV with title, abstract and {LABEL} (default: {DEFAULT_DATA})")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME,
                        help=f"workspace whose embedding cache is reused (default: {DEFAULT_HOME})")
    parser.add_argument("--write", action="store_true",
                        help="replace the clusters section of docs/benchmarks.md")
    parser.add_argument("--labels", action="store_true",
                        help="measure the labels instead (the cluster-labels section)")
    args = parser.parse_args(argv)
    # The bundled model is on disk: offline mode keeps hub look-ups out of the timings.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.data.is_file():
        raise SystemExit(f"No data at {args.data}: pass --data with the arXiv CSV.")
    if args.labels:
        saved, scores = run_label_benchmark(args.data, args.home)
        section = render_label_section(args.data, saved, scores, invocation=invocation_of(__file__, argv))
        publish(section, write=args.write, marker=LABELS_SECTION)
        return 0
    build, runs = run_benchmark(args.data, args.home)
    invocation = invocation_of(__file__, argv)
    section = render_section(args.data, build, runs, invocation=invocation)
    publish(section, write=args.write, marker=SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
