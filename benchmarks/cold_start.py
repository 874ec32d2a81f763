"""Cold start (issue 16, part 6): `explorer build` of a few rows in a fresh process, as a user types it.

Each run gets a new workspace (so no projection cache), a fresh Python process (so nothing compiled
in memory), and the venv's own numba cache as it stands (what a second CLI run of an installed
package finds). Prints one JSON line per run: wall seconds, the build's stage seconds from the
manifest, peak RSS and the load averages around it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from metrics import run_measured
from quality import read_source
from speed import twelve_k

DATA = Path("/work/shared/data/arxiv_cs/arxiv_cs10_2500.csv")
REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 15.0


def cold_build(rows: int, mode: str, tmp: Path, *, numba_cache: Path | None = None) -> dict:
    """One CLI build of the first ``rows`` papers in a fresh process and workspace (with numba's
    cache in ``numba_cache`` when given: an empty folder stands for the first run after an install)."""
    from explorer import Workspace

    csv = tmp / f"arxiv_{rows}.csv"
    # The 2,500-row file, or the ~12k papers for more rows.
    table = read_source(DATA) if rows <= 2_500 else twelve_k()
    table.head(rows).to_csv(csv, index=False)
    home = tmp / f"home-{rows}-{mode}"
    shutil.rmtree(home, ignore_errors=True)
    name = f"cold-{rows}"
    explorer = Path(sys.executable).with_name("explorer")
    command = [str(explorer), "build", str(csv), "--name", name, "--mode", mode, "-q"]
    env = {**os.environ, "EXPLORER_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = str(numba_cache)
    measured = run_measured(command, env=env)
    if measured.returncode != 0:
        raise SystemExit(f"the {rows}-row build failed (exit code {measured.returncode})")
    manifest = Workspace(home).read_manifest(name)
    return {"rows": rows, "mode": mode, "numba_cache": "fresh folder" if numba_cache else "as installed",
            "wall": round(measured.seconds, 2),
            "stages": {k: round(v, 2) for k, v in manifest["seconds"].items()},
            "method": manifest["projection"].get("method_used"), "peak_rss_mb": round(measured.peak_rss_mb),
            "loads": [round(v, 2) for v in measured.load_averages]}


def main(argv: list[str] | None = None) -> int:
    """Run the cold builds asked for and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[150, 1000])
    parser.add_argument("--mode", default="fast", choices=["auto", "fast", "quality"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (the first may fill numba's cache)")
    parser.add_argument("--fresh-numba-cache", action="store_true",
                        help="point NUMBA_CACHE_DIR at a new empty folder (shared by the runs of this call)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        numba_cache = Path(tmp) / "numba-cache" if args.fresh_numba_cache else None
        for rows in args.rows:
            for _ in range(args.repeat):
                result = cold_build(rows, args.mode, Path(tmp), numba_cache=numba_cache)
                result["target_met"] = result["wall"] <= TARGET_SECONDS
                print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
