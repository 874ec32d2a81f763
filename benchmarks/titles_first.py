"""What title-only vectors give against title + abstract ones (issue 30, "titles first"), measured, not assumed.

On the 2,500 arXiv CS papers the bundled transformer embeds each paper twice: its title alone, and its
title and abstract (the map's own text). Three kinds of query are asked of both:
- known item: the abstract's first sentence (a person describing a paper they read), the paper itself the
  one right answer: MRR and recall@10;
- topic: each primary category's name in words, the category's papers the relevant ones: precision@10;
- agreement: for the topic and known-item queries, how many of the title vectors' top 10 are among the
  full vectors' top 10.
The fast map's TF-IDF + SVD vectors (what search runs on until a transformer stage is ready) are measured
beside them.

    .venv/bin/python benchmarks/titles_first.py [--data CSV]
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from explorer.embedders import load_embedder
from explorer.embedders.tfidf import CorpusEmbedder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv_cs" / "arxiv_cs10_2500.csv"
TOPICS = {
    "cs.AI": "artificial intelligence reasoning and planning agents",
    "cs.CE": "computational engineering, finance and science simulations",
    "cs.CL": "natural language processing and language models",
    "cs.CV": "computer vision and image recognition",
    "cs.GR": "computer graphics and rendering",
    "cs.GT": "game theory, mechanism design and auctions",
    "cs.IT": "information theory, channel capacity and coding",
    "cs.LG": "machine learning methods and training neural networks",
    "cs.RO": "robotics, robot control and manipulation",
    "eess.IV": "image and video processing, compression and reconstruction",
}
FIRST_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)", re.S)


# Queries scored this many at a time: 12k known-item queries against 12k papers would be a 0.6 GB matrix at once.
CHUNK = 2048


def top_k(queries: np.ndarray, documents: np.ndarray, k: int = 10) -> np.ndarray:
    """Each query's k most similar documents, best first (unit vectors: the dot product is the cosine)."""
    parts = []
    for start in range(0, len(queries), CHUNK):
        scores = queries[start:start + CHUNK] @ documents.T
        best = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.take_along_axis(scores, best, axis=1).argsort(axis=1)[:, ::-1]
        parts.append(np.take_along_axis(best, order, axis=1))
    return np.vstack(parts) if parts else np.zeros((0, k), dtype=np.int64)


def ranks(queries: np.ndarray, documents: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The rank (1 = first) of each query's target document."""
    parts = []
    for start in range(0, len(queries), CHUNK):
        scores = queries[start:start + CHUNK] @ documents.T
        own = scores[np.arange(len(scores)), targets[start:start + CHUNK]]
        parts.append(1 + (scores > own[:, None]).sum(axis=1))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def known_item_texts(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Each paper's known-item query (its abstract's first sentence) and its text without that sentence."""
    abstracts, titles = frame["abstract"].fillna(""), frame["title"].fillna("")
    first = [m.group(1) if (m := FIRST_SENTENCE.match(a)) else a for a in abstracts]
    rest = [t + ". " + a[len(f):].strip() for t, a, f in zip(titles, abstracts, first, strict=True)]
    return first, rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    frame = pd.read_csv(args.data)
    embedder = load_embedder(None)
    started = time.perf_counter()
    titles = embedder.embed(frame["title"].fillna("").tolist())
    title_seconds = time.perf_counter() - started
    started = time.perf_counter()
    full = embedder.embed((frame["title"].fillna("") + ". " + frame["abstract"].fillna("")).tolist())
    full_seconds = time.perf_counter() - started
    # The same documents without the sentence asked: a known-item query then has to match by meaning there too.
    first, rest = known_item_texts(frame)
    known = embedder.embed(first)
    held_out = embedder.embed(rest)
    topics = list(TOPICS)
    topic_vectors = embedder.embed([TOPICS[t] for t in topics])
    category = frame["primary_category"].to_numpy()

    # The fast map's TF-IDF + SVD, fitted on the titles and abstracts: what search runs on before any transformer.
    texts = (frame["title"].fillna("") + ". " + frame["abstract"].fillna("")).tolist()
    fast = CorpusEmbedder().fit(texts)
    searches = [("title only (transformer)", titles, known, topic_vectors),
                ("title + abstract (transformer)", full, known, topic_vectors),
                ("title + abstract (fast map: TF-IDF + SVD)", fast.embed(texts), fast.embed(first),
                 fast.embed([TOPICS[t] for t in topics])),
                ("title + abstract without the sentence asked (transformer)", held_out, known, topic_vectors),
                ("title + abstract without the sentence asked (fast map)", fast.embed(rest), fast.embed(first),
                 fast.embed([TOPICS[t] for t in topics]))]
    rows = []
    for name, documents, known_queries, topic_queries in searches:
        rank = ranks(known_queries, documents, np.arange(len(frame)))
        hits = top_k(topic_queries, documents)
        precision = np.mean([(category[h] == t).mean() for h, t in zip(hits, topics, strict=True)])
        rows.append((name, float(np.mean(1 / rank)), float(np.mean(rank <= 10)), float(precision)))
    agree_known = np.mean([len(set(a) & set(b)) for a, b in zip(top_k(known, titles), top_k(known, full), strict=True)])
    agree_topic = np.mean([len(set(a) & set(b)) for a, b in
                           zip(top_k(topic_vectors, titles), top_k(topic_vectors, full), strict=True)])
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{len(frame):,} papers; embedding the titles took {title_seconds:.1f} s, titles + abstracts "
          f"{full_seconds:.1f} s on this machine (load average {load})\n")
    print("| documents embedded | known item: MRR | known item: recall@10 | topic: precision@10 |")
    print("|---|---|---|---|")
    for name, mrr, recall, precision in rows:
        print(f"| {name} | {mrr:.3f} | {recall:.3f} | {precision:.3f} |")
    print(f"\nTop-10 shared by the two: known-item queries {agree_known:.2f} of 10, "
          f"topic queries {agree_topic:.2f} of 10")


if __name__ == "__main__":
    main()
