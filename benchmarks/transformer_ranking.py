"""The refinement's transformer step measured by ranking (issue 30): which cut and precision keep the 256-token
fp32 model's search, and how fast each reads on this machine.

Every candidate (fp32 or torch dynamic int8, cut at 256/128/96/64 tokens) embeds the map's text (title and
abstract as the build composes them) of the arXiv papers, and each metric is a ratio to the reference (fp32,
256 tokens, what the quality mode reads); the issue's bar is 0.97:
- topic: each primary category's name in words (benchmarks/titles_first.py's TOPICS), the category's papers the
  relevant ones: precision@10 (10 queries, so one hit is 0.01);
- neighbours: every paper as a query, the papers of its primary category relevant: precision@10 of its 10
  nearest other papers (a query per paper, so it is steady where the 10 topic queries are not);
- known item: the abstract's first sentence, asked of the papers with that sentence taken out (as titles_first
  does): MRR and recall@10 (the paper in the top 10);
- agreement: how many of the reference's top 10 the candidate returns, for the topic and known-item queries.
Queries are embedded by the candidate itself, as a map's searches are. Vectors are kept in an EmbeddingCache
(--cache), so the 2,500 papers, which are among the ~12k, are embedded once, and a rerun reads them back.

--speed times every candidate at 1 and 2 torch threads on a seeded sample of the papers (model load and warm-up
not counted), in rounds whose order rotates; run it under `flock /tmp/bench.lock`.

    flock /tmp/bench.lock .venv/bin/python benchmarks/transformer_ranking.py --speed
    .venv/bin/python benchmarks/transformer_ranking.py [--data CSV ...] [--candidates fp32-128 int8-128 ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from titles_first import DATA, TOPICS, known_item_texts, ranks, top_k  # noqa: E402

from explorer.embed import EmbeddingCache, embed_cached  # noqa: E402
from explorer.embedders.transformer import INT8, SentenceTransformerEmbedder  # noqa: E402
from explorer.texts import compose_texts  # noqa: E402

BAR = 0.97
K = 10
REFERENCE = "fp32-256"
CANDIDATES = ("fp32-128", "fp32-96", "fp32-64", "int8-256", "int8-128", "int8-96", "int8-64")
CACHE = Path("/tmp/transformer_ranking.sqlite")
METRICS = ("topic P@10", "neighbours P@10", "known item MRR", "known item R@10", "top-10 agreement")
# The bar is on what the person gets (precision, recall, MRR); agreement with the reference's top 10 is
# shown beside them, not held to 0.97: a step can return other relevant papers as well as the reference's.
HELD = METRICS[:4]


def embedder_of(name: str, threads: int | None = None) -> SentenceTransformerEmbedder:
    """The embedder a candidate name stands for: "int8-128" is dynamic int8 cut at 128 tokens, on the CPU."""
    precision, length = name.split("-")
    return SentenceTransformerEmbedder(max_seq_length=int(length), device="cpu", threads=threads,
                                       quantize=INT8 if precision == "int8" else None)


def read_papers(paths: list[Path]) -> pd.DataFrame:
    """The papers of one or more CSV files (the ~12k set comes in five parts)."""
    frames = [pd.read_csv(p, dtype={"arxiv_id": str}) for p in paths]
    return pd.concat(frames, ignore_index=True).drop_duplicates("arxiv_id").reset_index(drop=True)


def map_texts(frame: pd.DataFrame) -> list[str]:
    """Title and abstract as the build composes them (joined, cut where the build cuts)."""
    return list(compose_texts(frame, columns=["title", "abstract"]).texts)


def searches(name: str, frame: pd.DataFrame, cache: EmbeddingCache, threads: int | None = None) -> dict:
    """One candidate's top 10s and ranks for every query kind (vectors from the cache where they are)."""
    embedder = embedder_of(name, threads)
    first, rest = known_item_texts(frame)

    def embed(texts: list[str]) -> np.ndarray:
        return embed_cached(embedder, texts, cache=cache).vectors

    documents, held_out = embed(map_texts(frame)), embed(rest)
    topic_queries, known = embed([TOPICS[t] for t in TOPICS]), embed(first)
    return {"topic": top_k(topic_queries, documents), "neighbours": top_k(documents, documents, K + 1),
            "known": top_k(known, held_out), "rank": ranks(known, held_out, np.arange(len(frame)))}


def scores(found: dict, reference: dict, category: np.ndarray) -> dict[str, float]:
    """The metrics of one candidate's searches (agreement against the reference's)."""
    topic = np.mean([(category[hits] == t).mean() for hits, t in zip(found["topic"], TOPICS, strict=True)])
    # A paper's own row is its nearest; the 10 after it (or the first 10 that are not it, on a tie) count.
    rows = np.arange(len(category))
    others = [hits[hits != row][:K] for row, hits in zip(rows, found["neighbours"], strict=True)]
    neighbours = np.mean([(category[hits] == category[row]).mean() for row, hits in zip(rows, others, strict=True)])
    shared = [len(set(a) & set(b)) / K for key in ("topic", "known")
              for a, b in zip(found[key], reference[key], strict=True)]
    return {"topic P@10": float(topic), "neighbours P@10": float(neighbours),
            "known item MRR": float(np.mean(1 / found["rank"])),
            "known item R@10": float(np.mean(found["rank"] <= K)), "top-10 agreement": float(np.mean(shared))}


def ranking(paths: list[Path], candidates: list[str], cache_path: Path, *, rows: int | None = None,
            threads: int | None = None) -> None:
    """Print each candidate's metrics and their ratios to the reference's for the papers in ``paths``
    (a seeded sample of ``rows`` of them, where given)."""
    frame = read_papers(paths)
    if rows is not None and rows < len(frame):
        frame = frame.sample(n=rows, random_state=0).reset_index(drop=True)
    category = frame["primary_category"].to_numpy()
    cache = EmbeddingCache(cache_path)
    started = time.perf_counter()
    reference = searches(REFERENCE, frame, cache, threads)
    base = scores(reference, reference, category)
    table = [(REFERENCE, base)]
    for name in candidates:
        table.append((name, scores(searches(name, frame, cache, threads), reference, category)))
        print(f"  {name} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    sample = f"a seeded sample of {len(frame):,} papers" if rows is not None else f"{len(frame):,} papers"
    print(f"\n{sample} ({', '.join(p.name for p in paths)}); load average at the end {load}\n")
    print("| step | " + " | ".join(METRICS) + " | ≥ 0.97× on P, R, MRR |")
    print("|---|" + "---|" * (len(METRICS) + 1))
    for name, values in table:
        cells = []
        for metric in METRICS:
            ratio = values[metric] / base[metric] if base[metric] else float("nan")
            mark = " ✗" if ratio < BAR and metric in HELD and name != REFERENCE else ""
            cells.append(f"{values[metric]:.3f}" if name == REFERENCE else f"{values[metric]:.3f} ({ratio:.3f}×{mark})")
        holds = "reference" if name == REFERENCE else "yes" if all(values[m] >= BAR * base[m] for m in HELD) else "no"
        print(f"| {name} | " + " | ".join(cells) + f" | {holds} |")


def speed(paths: list[Path], candidates: list[str], *, rows: int, rounds: int) -> None:
    """Print each candidate's rows/s at 1 and 2 torch threads: the median over rotated rounds."""
    frame = read_papers(paths).sample(n=rows, random_state=0)
    texts = map_texts(frame)
    runs = [(name, threads) for name in [REFERENCE, *candidates] for threads in (1, 2)]
    seconds: dict[tuple[str, int], list[float]] = {run: [] for run in runs}
    loads = []
    for round_ in range(rounds):
        shift = round_ * len(runs) // max(rounds, 1)
        for name, threads in runs[shift:] + runs[:shift]:
            embedder = embedder_of(name, threads)
            embedder.model  # noqa: B018 - loaded (and warmed) before the clock starts
            mark = time.perf_counter()
            embedder.embed(texts)
            seconds[(name, threads)].append(time.perf_counter() - mark)
            loads.append(os.getloadavg()[0])
            print(f"  {name} x{threads}: {rows / seconds[(name, threads)][-1]:.1f} rows/s (load {loads[-1]:.2f})",
                  file=sys.stderr, flush=True)
    print(f"\n{rows} papers' map texts (seeded sample), {rounds} rounds, median rows/s; load average during "
          f"{min(loads):.2f}-{max(loads):.2f}\n")
    print("| step | rows/s, 1 thread | rows/s, 2 threads | × the reference (2 threads) |")
    print("|---|---|---|---|")
    reference = rows / statistics.median(seconds[(REFERENCE, 2)])
    for name in [REFERENCE, *candidates]:
        one, two = (rows / statistics.median(seconds[(name, t)]) for t in (1, 2))
        print(f"| {name} | {one:.1f} | {two:.1f} | {two / reference:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, nargs="+", default=[DATA])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--speed", action="store_true", help="time the candidates instead of ranking with them")
    parser.add_argument("--rows", type=int, help="papers timed per candidate with --speed (default 200), or a "
                        "seeded sample of the papers to rank (default all)")
    parser.add_argument("--threads", type=int, help="torch threads while ranking (1 reads more rows/s on a busy CPU)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.speed:
        speed(args.data, args.candidates, rows=args.rows or 200, rounds=args.rounds)
    else:
        ranking(args.data, args.candidates, args.cache, rows=args.rows, threads=args.threads)


if __name__ == "__main__":
    main()
