"""Search through the Python API (issue 13): `search_map(saved, query)` with no embedder passed.

A 3,000-row map of arXiv abstracts is built with the bundled transformer (`mode="quality"`), then a
fresh child process opens it and times `search_map` as a script would call it: the first call
(which loads the model) and 50 more with varied queries. Before issue 13 every such call loaded the
model and re-hashed its weights (590-740 ms a query); the target is a median of at most 50 ms.

Embedding 3,000 abstracts takes minutes on two cores: `--keep DIR` keeps the workspace, whose
embedding cache makes a rebuild take seconds; `--reuse` also keeps the map built there before.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from quality import _proc_field, _relative, invocation_of, publish, read_source

DATA = Path("/work/shared/data/arxiv_cs")
ROWS = 3_000
NAME = "arxiv-3k-quality"
SECTION = "search-api"
TIMED_CALLS = 50
FIRST_QUERY = "graph neural networks for molecule property prediction"
TARGET_P50_MS = 50
VERSIONED = ("torch", "sentence-transformers", "numpy")


def dataset(rows: int = ROWS) -> pd.DataFrame:
    """The 2,500-row balanced file, then papers of the ~12k file not in it, to ``rows`` rows."""
    base = read_source(DATA / "arxiv_cs10_2500.csv")
    more = pd.concat([read_source(DATA / f"arxiv_cs10_12k_part{i}.csv") for i in range(1, 6)], ignore_index=True)
    more = more[~more["arxiv_id"].isin(base["arxiv_id"])].drop_duplicates("arxiv_id")
    return pd.concat([base, more.head(rows - len(base))], ignore_index=True)


def queries(frame: pd.DataFrame, count: int = TIMED_CALLS, *, seed: int = 1) -> list[str]:
    """Varied queries: titles of random papers, cut to a few words or kept whole, in turn."""
    titles = frame["title"].dropna().sample(n=count, random_state=seed).tolist()
    return [" ".join(t.split()[:4]) if i % 2 else t for i, t in enumerate(titles)]


# --- the child: a fresh process that searches as a script would -------------------------------------


def child(home: Path, name: str, timed_queries: list[str]) -> dict:
    """Open the map and time `search_map` with no embedder: the first call, then the timed ones."""
    from explorer import Workspace, search_map

    started = time.perf_counter()
    saved = Workspace(home).open(name)
    opened = time.perf_counter() - started

    started = time.perf_counter()
    first = search_map(saved, FIRST_QUERY, k=10)
    first_seconds = time.perf_counter() - started
    latencies = []
    for query in timed_queries:
        started = time.perf_counter()
        result = search_map(saved, query, k=10)
        latencies.append(time.perf_counter() - started)
        assert len(result.indices) == 10, query
    return {
        "open_seconds": opened,
        "first_ms": 1000 * first_seconds,
        "first_mode": str(getattr(first, "mode", "")),
        "query_ms": [1000 * s for s in latencies],
    }


# --- the parent: build (or reuse) the map, run the child, write the section -------------------------


@dataclass
class SearchBenchmark:
    """What one run measured, and how."""

    started: str
    rows: int
    model_id: str
    version: str
    built: bool
    build_seconds: float
    n_cached: int
    open_seconds: float
    first_ms: float
    first_mode: str
    query_ms: list[float]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    @property
    def p50(self) -> float:
        return float(np.percentile(self.query_ms, 50))

    @property
    def p90(self) -> float:
        return float(np.percentile(self.query_ms, 90))


def build_or_reuse(home: Path, *, reuse: bool) -> tuple[bool, float, int]:
    """Build the map in ``home`` (its embedding cache makes a rebuild fast), or keep the one there."""
    from explorer import Workspace, build_map

    workspace = Workspace(home)
    if reuse and workspace.exists(NAME):
        return False, 0.0, 0
    frame = dataset()
    print(f"[search_api] building {len(frame):,} rows in {home}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = build_map(frame, name=NAME, source_name=f"{NAME}.csv", mode="quality", workspace=workspace)
    return True, time.perf_counter() - started, result.n_cached


def run(home: Path, *, reuse: bool) -> SearchBenchmark:
    """Build or reuse, then time the searches in a child process with nothing loaded yet."""
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    built, build_seconds, n_cached = build_or_reuse(home, reuse=reuse)
    timed = queries(dataset())
    load_before = os.getloadavg()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(home), NAME],
        input=json.dumps(timed), capture_output=True, text=True, env=env, check=False,
    )
    load_after = os.getloadavg()
    if out.returncode != 0:
        raise SystemExit(f"the search child failed (exit code {out.returncode}):\n{out.stderr}")
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    from explorer import Workspace

    manifest = Workspace(home).read_manifest(NAME)
    return SearchBenchmark(
        started=started, rows=int(manifest["rows"]), model_id=manifest["model_id"],
        version=str(manifest.get("version", "")), built=built, build_seconds=build_seconds,
        n_cached=n_cached, load_before=load_before, load_after=load_after, **measured,
    )


def machine() -> str:
    """Cores this process may use and the CPU model, as /proc/cpuinfo names it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores ({_proc_field('/proc/cpuinfo', 'model name') or 'unknown CPU'})"


def render_section(result: SearchBenchmark, *, invocation: str) -> str:
    """The search-api section of docs/benchmarks.md, between its markers."""
    met = "met" if result.p50 <= TARGET_P50_MS else "**missed**"
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in VERSIONED)
    built = (f"built by this run in {result.build_seconds:.1f} s ({result.n_cached:,} of {result.rows:,} "
             "embeddings from the kept workspace's cache)" if result.built
             else "built by an earlier run in the kept workspace (`--reuse`)")
    lines = [
        f"<!-- {SECTION}:begin -->",
        "## Search through the Python API (issue 13)",
        "",
        f"Run {result.started} UTC on {machine()}. `search_map(saved, query)` with no embedder passed, "
        f"in a fresh process, on a {result.rows:,}-row map of arXiv abstracts built with the bundled "
        f"transformer (`mode=\"quality\"`, `{result.model_id}`); the map was {built}.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| first call (loads the model) | {result.first_ms:,.0f} ms |",
        f"| p50 of the {len(result.query_ms)} calls after it | **{result.p50:.1f} ms** "
        f"(target ≤ {TARGET_P50_MS} ms: {met}) |",
        f"| p90 of the {len(result.query_ms)} calls after it | {result.p90:.1f} ms |",
        f"| fastest / slowest of them | {min(result.query_ms):.1f} ms / {max(result.query_ms):.1f} ms |",
        f"| `Workspace.open` of the map before them | {result.open_seconds:.2f} s |",
        "",
        f"- Queries: the first is \"{FIRST_QUERY}\"; the {len(result.query_ms)} timed ones are titles of random "
        "papers of the map, whole and cut to their first four words in turn. Each call embeds its query "
        "with the map's own model and ranks every row (k=10).",
        "- Before issue 13 each of these calls loaded the model and re-hashed its weights: 590-740 ms a query.",
        f"- Load average (1, 5, 15 min) before the timed process {_loads(result.load_before)}, after it "
        f"{_loads(result.load_after)}" + (": the cores were shared with other work, so the figures are pessimistic."
                                          if max(result.load_before[0], result.load_after[0]) > 1 else "."),
        f"- Data: `{_relative(DATA / 'arxiv_cs10_2500.csv')}` plus the first papers of "
        f"`arxiv_cs10_12k_part*.csv` not in it, to {result.rows:,} rows. Map saved by explorer {result.version}.",
        f"- Benchmark: `{invocation}`. Versions: {versions}.",
        f"<!-- {SECTION}:end -->",
    ]
    return "\n".join(lines) + "\n"


def _loads(loads: tuple[float, float, float]) -> str:
    return " / ".join(f"{value:.1f}" for value in loads)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its section and optionally write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs=2, metavar=("HOME", "NAME"), help=argparse.SUPPRESS)
    parser.add_argument("--keep", type=Path, help="keep the workspace (and its embedding cache) in this folder")
    parser.add_argument("--reuse", action="store_true", help="with --keep: time the map an earlier run built there")
    parser.add_argument("--write", action="store_true", help="replace the search-api section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.child:
        home, name = args.child
        print(json.dumps(child(Path(home), name, json.loads(sys.stdin.read()))))
        return 0
    if args.reuse and not args.keep:
        parser.error("--reuse needs --keep DIR")

    with tempfile.TemporaryDirectory(prefix="explorer-search-api-") as scratch:
        home = (args.keep or Path(scratch)) / "home"
        result = run(home, reuse=args.reuse)
    if args.keep:
        (args.keep / "search_api.json").write_text(json.dumps(asdict(result)))
    invocation = invocation_of(__file__, argv)
    section = render_section(result, invocation=invocation)
    publish(section, write=args.write, marker=SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
