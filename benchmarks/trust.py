"""Trust layer and near-duplicates benchmark (issue 18): does low trust mark where the map misleads, and what it costs.

1. The ~12k real arXiv papers, built in fast mode (what the app does by default at this size): every
   point's trust (explorer.trust), then, per decile of trust, how often the point's 10 nearest points
   on the map vote for its own field (leave-one-out 2D kNN). If trust means anything, the lowest
   decile is right about its field less often than the highest.
2. 100,000 rows (the real papers plus variants, as in the Speed section): seconds and peak memory
   of the trust computation and of the near-duplicate search.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from metrics import knn_predict, maxrss_to_mb
from quality import LABEL, invocation_of, publish
from speed import hundred_k, twelve_k

from explorer import Workspace, build_map
from explorer.duplicates import near_duplicates
from explorer.trust import trust_scores

SECTION = "trust"


def built(workspace: Workspace, name: str, frame) -> object:
    """The map ``name`` in the workspace, built in the default (fast) mode without clusters if missing."""
    if not workspace.exists(name):
        build_map(frame, name=name, mode="fast", clusters=None, workspace=workspace)
    return workspace.open(name, mmap=True)


def deciles(saved) -> tuple[list[tuple[float, float, float, int]], float, float]:
    """Per trust decile: (lowest trust, highest trust, 2D 10-NN field accuracy, points); overall trust; seconds."""
    embedded = saved.embedded
    started = time.perf_counter()
    trust = trust_scores(saved.embeddings, saved.coords, valid=embedded)
    seconds = time.perf_counter() - started
    fields = saved.points[LABEL].to_numpy()[embedded]
    right = knn_predict(saved.coords[embedded], fields, k=10) == fields
    scores = trust.scores[embedded]
    order = np.argsort(scores, kind="stable")
    rows = []
    for part in np.array_split(order, 10):
        rows.append((float(scores[part].min()), float(scores[part].max()), float(right[part].mean()), len(part)))
    return rows, trust.overall, seconds


def cost_at(saved) -> dict[str, float]:
    """Seconds of trust and of near-duplicates on one map, and the groups found."""
    embedded = saved.embedded
    started = time.perf_counter()
    trust = trust_scores(saved.embeddings, saved.coords, valid=embedded)
    trust_seconds = time.perf_counter() - started
    started = time.perf_counter()
    found = near_duplicates(saved.embeddings, valid=embedded)
    duplicate_seconds = time.perf_counter() - started
    return {"rows": int(embedded.sum()), "trust_s": trust_seconds, "overall": trust.overall,
            "duplicates_s": duplicate_seconds, "groups": len(found.groups), "in_groups": found.n_rows,
            "exact": found.exact}


def render(invocation: str, table, overall, trust_seconds, cost, load: tuple[float, float]) -> str:
    """The docs/benchmarks.md section."""
    lines = [f"<!-- {SECTION}:begin -->", "## Trust layer and near-duplicates (issue 18)", "",
             f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{invocation}`, on this 2-core machine "
             f"(1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end). Trust of a point: the "
             "share of its 10 nearest points on the map that are among its 30 nearest rows in the embedding "
             "(exact kNN up to 100k rows).", "",
             f"**Does low trust mark where the map misleads?** The 11,899 real arXiv papers, fast mode: overall trust "
             f"{overall:.3f} (computed in {trust_seconds:.1f} s). Per decile of trust, the share of points whose 10 "
             f"nearest points on the map vote for their own `{LABEL}`:", "",
             "| trust decile | trust range | 2D 10-NN field accuracy | points |", "|---|---|---|---|"]
    for i, (low, high, accuracy, n) in enumerate(table, start=1):
        lines.append(f"| {i} | {low:.2f}–{high:.2f} | {accuracy:.3f} | {n:,} |")
    gap = table[-1][2] - table[0][2]
    lines += ["", f"The highest decile is right about its field {table[-1][2]:.3f} of the time, the lowest "
              f"{table[0][2]:.3f}: a gap of {gap:+.3f}.", ""]
    if cost:
        lines += [f"**Cost at {cost['rows']:,} rows** (the 100k map of the Speed section, fast mode, 256 dims): trust "
                  f"{cost['trust_s']:.1f} s (overall {cost['overall']:.3f}); near-duplicates at cosine ≥ 0.95, "
                  f"{'exact' if cost['exact'] else 'approximate'}: {cost['duplicates_s']:.1f} s, {cost['groups']:,} "
                  f"groups holding {cost['in_groups']:,} rows. Peak RSS of the benchmark process "
                  f"{maxrss_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss):,.0f} MB.", ""]
    lines.append(f"<!-- {SECTION}:end -->")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the section and optionally write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/trust-bench"),
                        help="where the maps are built (kept, and reused on the next run)")
    parser.add_argument("--skip-100k", action="store_true", help="only the 12k decile table")
    parser.add_argument("--write", action="store_true", help="replace the trust section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("EXPLORER_HOME", str(args.workspace))
    workspace = Workspace(args.workspace)
    start_load = os.getloadavg()[0]
    base = twelve_k()
    table, overall, trust_seconds = deciles(built(workspace, "arxiv 12k", base))
    cost = None if args.skip_100k else cost_at(built(workspace, "arxiv 100k", hundred_k(base)))
    section = render(invocation_of(__file__, argv), table, overall, trust_seconds, cost,
                     (start_load, os.getloadavg()[0]))
    publish(section, write=args.write, marker=SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
