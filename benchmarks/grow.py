"""Growing maps benchmark (issue 18): rows added to a saved map, placed without moving it.

1. Quality: the ~12k real arXiv papers minus 1,000 held out (a seeded sample) are built in fast mode;
   the 1,000 are then added with `add_rows`. For the added papers, the share whose 10 nearest points
   on the map vote for their own field, against the same share for the same papers in a map built
   from all ~12k at once (what a rebuild would give), and the old points' coordinates checked
   byte-identical.
2. Speed: 1,000 rows added to a 100,000-row map (the Speed section's variants): seconds and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from metrics import knn_predict, maxrss_to_mb
from quality import LABEL, invocation_of, publish
from speed import hundred_k, twelve_k

from explorer import Workspace, build_map
from explorer.grow import add_rows

SECTION = "grow"
HELD_OUT = 1_000


def field_accuracy(saved, rows: np.ndarray) -> float:
    """Share of ``rows`` (positions) whose 10 nearest points on the map vote for their own field."""
    fields = saved.points[LABEL].to_numpy()
    predicted = knn_predict(saved.coords, fields, k=10)
    return float(np.mean(predicted[rows] == fields[rows]))


def quality(workspace: Workspace) -> dict:
    """Held-out papers added to a map of the others, against the same papers in a full build."""
    base = twelve_k()
    held = np.sort(np.random.default_rng(0).choice(len(base), size=HELD_OUT, replace=False))
    rest = base.drop(index=held).reset_index(drop=True)
    added_rows = base.iloc[held].reset_index(drop=True)
    for name, frame in (("full", base), ("without held-out", rest)):
        if not workspace.exists(name):
            build_map(frame, name=name, mode="fast", clusters=None, workspace=workspace)
    full = workspace.open("full")
    in_full = field_accuracy(full, held)
    before = workspace.open("without held-out")
    old_xy = before.coords.tobytes()
    started = time.perf_counter()
    result = add_rows("without held-out", added_rows, workspace=workspace)
    seconds = time.perf_counter() - started
    grown = workspace.open("without held-out")
    new = np.arange(len(before.points), len(grown.points))
    return {"in_full": in_full, "added": field_accuracy(grown, new), "old_rows": field_accuracy(grown, np.arange(
        len(before.points))), "identical": grown.coords[: len(before.points)].tobytes() == old_xy,
        "seconds": seconds, "novel": result.novel, "rows": len(before.points)}


def speed(workspace: Workspace) -> dict:
    """1,000 rows added to a 100k map (a copy, so the next run starts from the same map)."""
    frame = hundred_k(twelve_k(), rows=101_000)
    if not workspace.exists("100k"):
        build_map(frame.head(100_000), name="100k", mode="fast", clusters=None, workspace=workspace)
    shutil.rmtree(workspace.map_path("100k grown"), ignore_errors=True)
    shutil.copytree(workspace.map_path("100k"), workspace.map_path("100k grown"))
    before = workspace.open("100k grown")
    old_xy = before.coords.tobytes()
    started = time.perf_counter()
    result = add_rows("100k grown", frame.tail(1_000), workspace=workspace)
    seconds = time.perf_counter() - started
    grown = workspace.open("100k grown")
    return {"seconds": seconds, "novel": result.novel, "identical": grown.coords[:100_000].tobytes() == old_xy,
            "rss": maxrss_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)}


def render(invocation: str, q: dict, s: dict | None, load: tuple[float, float]) -> str:
    """The docs/benchmarks.md section."""
    lines = [f"<!-- {SECTION}:begin -->", "## Maps that grow (issue 18)", "",
             f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{invocation}` on this 2-core machine (1-minute load "
             f"average {load[0]:.1f} at the start, {load[1]:.1f} at the end); fast mode, no clusters.", "",
             "| measure | figure |", "|---|---|",
             f"| 1,000 held-out arXiv papers added to a map of the other {q['rows']:,}: seconds "
             f"| {q['seconds']:.1f} s |",
             f"| their 2D 10-NN field accuracy, added | **{q['added']:.3f}** |",
             f"| the same papers' accuracy in a map built from all of them at once | {q['in_full']:.3f} |",
             f"| the old rows' accuracy after the add | {q['old_rows']:.3f} |",
             f"| added rows drawn apart as unlike the map | {q['novel']:,} |",
             f"| old coordinates byte-identical | {'yes' if q['identical'] else '**no**'} |"]
    if s:
        lines += [f"| 1,000 rows added to a 100,000-row map: seconds | **{s['seconds']:.1f} s** |",
                  f"| ... old coordinates byte-identical | {'yes' if s['identical'] else '**no**'} |",
                  f"| ... rows drawn apart | {s['novel']:,} |",
                  f"| peak RSS of the benchmark process | {s['rss']:,.0f} MB |"]
    lines += ["", f"<!-- {SECTION}:end -->"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the section and optionally write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/grow-bench"))
    parser.add_argument("--skip-100k", action="store_true")
    parser.add_argument("--write", action="store_true", help="replace the grow section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("EXPLORER_HOME", str(args.workspace))
    workspace = Workspace(args.workspace)
    load = os.getloadavg()[0]
    q = quality(workspace)
    # A rerun starts from the map without the held-out rows again.
    shutil.rmtree(workspace.map_path("without held-out"), ignore_errors=True)
    s = None if args.skip_100k else speed(workspace)
    section = render(invocation_of(__file__, argv), q, s, (load, os.getloadavg()[0]))
    publish(section, write=args.write, marker=SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
