"""Search and neighbours at 100k, 300k and 1M rows (issue 16, part 4): exact against the index path.

The rows are the ~12k arXiv abstracts and their variants (speed.hundred_k, to 1M), embedded once with
the fast embedder (TF-IDF + SVD, 256 dimensions, fitted on the first 100k rows) and kept in a cache
folder. Each size runs in a fresh child process: the map is saved (which builds its search index),
reopened memory-mapped as the app does, then real paper titles are searched with `search_map` (query
embedding included) and `search_similar` (excluded), exactly and through the index, and clicked rows'
neighbours are found both ways. recall@10 is the share of the exact top 10 the index path returns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from metrics import run_measured
from quality import invocation_of
from speed import hundred_k, twelve_k

SIZES = (100_000, 300_000, 1_000_000)
FIT_ROWS = 100_000
CHUNK = 50_000
QUERIES = 100
NEIGHBOURS = 100
WARM = 5
K = 10
TARGET_QUERY_MS = 50
TARGET_NEIGHBOURS_MS = 100
TARGET_RECALL = 0.99
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "explorer-search-scale"


def prepare(cache: Path, rows: int) -> None:
    """Embed ``rows`` abstracts (real, then variants) and a query set of real titles, once."""
    from explorer.embedders.tfidf import CorpusEmbedder

    if (cache / "done.json").is_file() and json.loads((cache / "done.json").read_text())["rows"] >= rows:
        return
    cache.mkdir(parents=True, exist_ok=True)
    base = twelve_k()
    frame = hundred_k(base, rows=rows)
    texts = (frame["title"].fillna("") + ". " + frame["abstract"].fillna("")).tolist()
    embedder = CorpusEmbedder().fit(texts[:FIT_ROWS])
    vectors = np.lib.format.open_memmap(cache / "vectors.npy", mode="w+", dtype=np.float32,
                                        shape=(len(texts), embedder.dimension))
    for start in range(0, len(texts), CHUNK):
        vectors[start:start + CHUNK] = embedder.embed(texts[start:start + CHUNK])
    vectors.flush()
    embedder.save(cache / "embedder")
    titles = base["title"].fillna("").sample(n=QUERIES + WARM, random_state=1).tolist()
    (cache / "titles.json").write_text(json.dumps(titles), encoding="utf-8")
    (cache / "done.json").write_text(json.dumps({"rows": len(texts), "model_id": embedder.model_id}))


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return 1000 * (time.perf_counter() - started), value


def child(cache: Path, rows: int, home: Path) -> dict:
    """Save a map of ``rows`` rows, reopen it memory-mapped and time searches and neighbours both ways."""
    import pandas as pd

    from explorer import Workspace, nearest_neighbors, search_map, search_similar
    from explorer.embedders.tfidf import CorpusEmbedder
    from explorer.index_file import INDEX_FILE
    from explorer.map_files import save_map
    from explorer.search import embed_query
    from explorer.vector_index import build_index, needs_index, search_index

    loads = [os.getloadavg()[0]]
    embedder = CorpusEmbedder.load(cache / "embedder")
    vectors = np.ascontiguousarray(np.load(cache / "vectors.npy", mmap_mode="r")[:rows])
    points = pd.DataFrame({"row_id": np.arange(rows), "title": [f"row {i}" for i in range(rows)],
                           "x": np.zeros(rows, np.float32), "y": np.zeros(rows, np.float32),
                           "embedded": np.ones(rows, bool)})
    manifest = {"rows": rows, "embedded_rows": rows, "model_id": embedder.model_id, "kind": "text",
                "text_columns": ["title"]}
    workspace = Workspace(home)
    started = time.perf_counter()
    save_map(workspace, "scale", points=points, embeddings=vectors, manifest=manifest)
    save_ms = 1000 * (time.perf_counter() - started)
    del vectors  # from here on the map is read as the app reads it, memory-mapped
    out: dict = {"rows": rows, "save_ms": save_ms, "uses_index": needs_index(rows)}

    rss_before = _rss_mb()
    saved = workspace.open("scale", mmap=True)
    if out["uses_index"]:
        out["index_open_ms"], index = _timed(lambda: search_index(saved))
        out["index_build_s"] = index.build_seconds
        out["index_file_mb"] = (saved.path / INDEX_FILE).stat().st_size / 2**20
        out["margin"] = index.margin
    else:
        # The app searches this map exactly; the index is built here only to compare.
        index = build_index(saved.embeddings)
        out["index_build_s"] = index.build_seconds
        out["index_file_mb"] = index.nbytes / 2**20
        out["margin"] = index.margin
    out["index_rss_mb"] = _rss_mb() - rss_before

    titles = json.loads((cache / "titles.json").read_text(encoding="utf-8"))
    valid = saved.embedded
    timings: dict[str, list[float]] = {"embed": [], "exact": [], "index": [], "map": [], "every_score": []}
    same_sets = hits = 0
    for i, title in enumerate(titles):
        embed_ms, vector = _timed(lambda t=title: embed_query(t, embedder))
        exact_ms, exact = _timed(lambda v=vector: search_similar(saved.embeddings, v, k=K, valid=valid))
        index_ms, found = _timed(lambda v=vector: search_similar(saved.embeddings, v, k=K, valid=valid,
                                                                 index=index))
        map_ms, _ = _timed(lambda t=title: search_map(saved, t, embedder=embedder, k=K))
        scores_ms, _ = _timed(lambda r=found: r.scores)
        if i < WARM:
            continue
        for key, value in zip(timings, (embed_ms, exact_ms, index_ms, map_ms, scores_ms), strict=True):
            timings[key].append(value)
        truth, got = set(exact.indices.tolist()), set(found.indices.tolist())
        hits += len(truth & got)
        same_sets += truth == got
    out["query"] = {key: _percentiles(values) for key, values in timings.items()}
    out["recall_query"] = hits / (K * QUERIES)
    out["exact_sets_query"] = same_sets / QUERIES

    rows_clicked = np.random.default_rng(7).choice(rows, NEIGHBOURS + WARM, replace=False)
    neighbour_times: dict[str, list[float]] = {"exact": [], "index": []}
    hits = 0
    for i, row in enumerate(rows_clicked):
        exact_ms, exact = _timed(lambda r=int(row): nearest_neighbors(saved.embeddings, r, k=K, valid=valid))
        index_ms, found = _timed(lambda r=int(row): nearest_neighbors(saved.embeddings, r, k=K, valid=valid,
                                                                      index=index))
        if i < WARM:
            continue
        neighbour_times["exact"].append(exact_ms)
        neighbour_times["index"].append(index_ms)
        hits += len(set(exact.indices.tolist()) & set(found.indices.tolist()))
    out["neighbours"] = {key: _percentiles(values) for key, values in neighbour_times.items()}
    out["recall_neighbours"] = hits / (K * NEIGHBOURS)

    if out["uses_index"]:
        # An older map without the file: its first search builds the index and keeps it.
        (saved.path / INDEX_FILE).unlink()
        fresh = workspace.open("scale", mmap=True)
        out["lazy_first_search_ms"], _ = _timed(lambda: search_map(fresh, titles[0], embedder=embedder, k=K))
        out["lazy_kept"] = (fresh.path / INDEX_FILE).is_file()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    loads.append(os.getloadavg()[0])
    out["load"] = loads
    return out


def _percentiles(values: list[float]) -> dict[str, float]:
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}


def render(results: list[dict], *, invocation: str, started: datetime, loads: list[float]) -> str:
    """The Markdown section: machine, command, table, targets."""
    cpu = platform.processor() or "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import faiss

    def row(label: str, cell) -> str:
        return f"| {label} | " + " | ".join(cell(r) for r in results) + " |"

    def ms(path: tuple[str, ...]):
        def cell(r: dict) -> str:
            value = r
            for key in path:
                value = value[key]
            return f"{value['p50']:.1f} / {value['p95']:.1f}"
        return cell

    lines = [
        "## Search and neighbours at 1M rows (issue 16, part 4)",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), Python "
        f"{platform.python_version()}, numpy {np.__version__}, faiss-cpu {faiss.__version__}; load average "
        f"(1 min) {loads[0]:.2f} at the start, {loads[-1]:.2f} at the end (the machine is shared).",
        "",
        f"`{invocation}`",
        "",
        "Rows: the ~12k arXiv abstracts and their variants (`speed.hundred_k` to 1M rows), embedded by the "
        "fast embedder (TF-IDF + SVD, 256 dims, fitted on the first 100k rows). Queries: "
        f"{QUERIES} real paper titles; neighbours: {NEIGHBOURS} random rows; {WARM} warm-up calls not "
        "counted. Times in ms, p50 / p95. The index path: 4-bit product-quantised codes (faiss "
        "`IndexPQFastScan`, 64 sub-quantisers) propose 500 candidates, re-ranked by exact float32 scores, "
        "more candidates while a row left out could still reach the top 10 (its code's score through the "
        "line fitted at build time, plus the margin measured then). Up to 100k rows the app searches "
        "exactly; the 100k column's index figures are for comparison only (its index is built in the run, "
        "so its RSS includes the build).",
        "",
        "| | " + " | ".join(f"{r['rows']:,} rows" for r in results) + " |",
        "|---|" + "---|" * len(results),
        row("search used by the app", lambda r: "index" if r["uses_index"] else "exact"),
        row("query embedding", ms(("query", "embed"))),
        row("search, exact (`search_similar`)", ms(("query", "exact"))),
        row("search, index (`search_similar`)", ms(("query", "index"))),
        row("`search_map` (embedding + search)", ms(("query", "map"))),
        row("recall@10, queries", lambda r: f"{r['recall_query']:.4f}"),
        row("queries with the exact top-10 set", lambda r: f"{100 * r['exact_sets_query']:.0f} %"),
        row("neighbours, exact", ms(("neighbours", "exact"))),
        row("neighbours, index", ms(("neighbours", "index"))),
        row("recall@10, neighbours", lambda r: f"{r['recall_neighbours']:.4f}"),
        row("every row's score on demand (colour by similarity)", ms(("query", "every_score"))),
        row("index build (s, in the save)", lambda r: f"{r['index_build_s']:.1f}"),
        row("score margin of the codes", lambda r: f"{r['margin']:.3f}"),
        row("index size (MiB)", lambda r: f"{r['index_file_mb']:.0f}"),
        row("RSS added by the index (MiB)", lambda r: f"{r['index_rss_mb']:.0f}"),
        row("first search of a map without the file (ms)",
            lambda r: f"{r['lazy_first_search_ms']:.0f}" if "lazy_first_search_ms" in r else "n/a"),
        row("save of the map (s)", lambda r: f"{r['save_ms'] / 1000:.1f}"),
        row("peak RSS of the run (MiB)", lambda r: f"{r['peak_rss_mb']:.0f}"),
        row("load average in the run", lambda r: " → ".join(f"{x:.2f}" for x in r["load"])),
        "",
    ]
    big = next((r for r in results if r["rows"] == max(SIZES)), None)
    if big is not None:
        q, n = big["query"], big["neighbours"]
        query_met = "met" if q["map"]["p50"] <= TARGET_QUERY_MS else "missed"
        lines += [
            f"Targets at 1M: query p50 ≤ {TARGET_QUERY_MS} ms: {q['index']['p50']:.1f} ms search, "
            f"{q['map']['p50']:.1f} ms with the embedding ({query_met}); "
            f"neighbours ≤ {TARGET_NEIGHBOURS_MS} ms: {n['index']['p50']:.1f} ms "
            f"({'met' if n['index']['p50'] <= TARGET_NEIGHBOURS_MS else 'missed'}); recall@10 ≥ {TARGET_RECALL}: "
            f"{big['recall_query']:.4f} queries, {big['recall_neighbours']:.4f} neighbours "
            f"({'met' if min(big['recall_query'], big['recall_neighbours']) >= TARGET_RECALL else 'missed'}).",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the embedded rows are kept")
    parser.add_argument("--out", type=Path, help="write the Markdown section here (else print it)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.cache, args.child, args.home)))
        return 0
    started = datetime.now(UTC)
    loads = [os.getloadavg()[0]]
    prepare(args.cache, max(args.sizes))
    results = []
    for rows in args.sizes:
        home = Path(tempfile.mkdtemp(prefix="search-scale-"))
        try:
            run = run_measured([sys.executable, __file__, "--child", str(rows), "--cache", str(args.cache),
                                "--home", str(home)])
        finally:
            shutil.rmtree(home, ignore_errors=True)
        if run.returncode:
            raise SystemExit(f"the {rows:,}-row run failed ({run.returncode})")
        results.append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr)
    loads.append(os.getloadavg()[0])
    section = render(results, invocation=invocation_of(__file__, argv), started=started, loads=loads)
    if args.out:
        args.out.write_text(section, encoding="utf-8")
    else:
        print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
