"""Bibliography import speed: 10,000 arXiv entries as BibTeX and as RIS, read with load_table, and
written back (to_bibtex / to_ris).

    .venv/bin/python benchmarks/bib_import.py [--rows 10000]

The entries are the arXiv cs titles and abstracts of /work/shared/data/arxiv_cs (their own $...$ math
and accents), with titles in DBLP's protective braces and made-up authors spelled with LaTeX accents,
so the LaTeX decoding does the work a reference manager's export asks of it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
from metrics import peak_rss_mb

DATA = Path("/work/shared/data/arxiv_cs")
AUTHORS = [r"M{\"u}ller, J{\"o}rg", r"Caf\'e, Ren\'{e}", "Smith, John", r"Nov{\'a}k, Ji{\v{r}}{\'\i}", "Doe, Jane"]


def entries(rows: int) -> pd.DataFrame:
    """``rows`` arXiv papers (title, abstract, id, year)."""
    parts = sorted(DATA.glob("arxiv_cs10_12k_part*.csv"))
    frame = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True).head(rows)
    if len(frame) < rows:
        raise SystemExit(f"only {len(frame):,} papers in {DATA}")
    return frame


def as_bibtex(frame: pd.DataFrame) -> str:
    out = []
    for i, row in enumerate(frame.itertuples()):
        authors = " and ".join(AUTHORS[(i + j) % len(AUTHORS)] for j in range(3))
        abstract = str(row.abstract).replace("{", "").replace("}", "")
        out.append(f"@article{{arxiv{row.arxiv_id},\n  title = {{{{{row.title}}}}},\n  author = {{{authors}}},\n"
                   f"  journal = {{arXiv preprint}},\n  year = {{{str(row.listing_date)[:4]}}},\n"
                   f"  eprint = {{{row.arxiv_id}}},\n  abstract = {{{abstract}}}\n}}")
    return "\n\n".join(out) + "\n"


def as_ris(frame: pd.DataFrame) -> str:
    out = []
    for row in frame.itertuples():
        abstract = " ".join(str(row.abstract).split())
        out.append(f"TY  - JOUR\nID  - arxiv{row.arxiv_id}\nTI  - {row.title}\nAU  - Müller, Jörg\nAU  - Smith, John\n"
                   f"PY  - {str(row.listing_date)[:4]}\nT2  - arXiv preprint\nAB  - {abstract}\nER  - ")
    return "\n\n".join(out) + "\n"


def timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    from explorer import load_table
    from explorer.bibliography import to_bibtex, to_ris

    frame = entries(args.rows)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| Format | Entries | File MB | Read s | Entries/s | Written back s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for fmt, text, write in (("bib", as_bibtex(frame), to_bibtex), ("ris", as_ris(frame), to_ris)):
            path = Path(folder) / f"papers.{fmt}"
            path.write_text(text, encoding="utf-8")
            read_s, table = timed(load_table, path)
            write_s, _ = timed(write, table.frame)
            assert len(table.frame) == args.rows, table.notes
            print(f"| {fmt} | {len(table.frame):,} | {path.stat().st_size / 1e6:.1f} | {read_s:.2f} | "
                  f"{len(table.frame) / read_s:,.0f} | {write_s:.2f} |")
    print(f"peak RSS: {peak_rss_mb():.0f} MB; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
