"""Issue 31's memory budget, held in CI: a 50,000-row CSV read and embedded in the fast mode (what a
million-row build runs before its layout), in a fresh process, under a peak RSS scaled from the 1M-row
budget (5 GB from a CSV), so a read or a text step that holds the whole table as Python objects again
shows here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROWS = 50_000
# Scaled from the budget: 5,000 MB for 1,000,000 rows from a CSV is 5 MB per 1,000 rows, so 250 MB for
# 50,000, above what the process holds before it reads a row (Python, pandas, pyarrow and scikit-learn
# imported, and the embedder's fixed cost: ~235 MB measured on 200 rows of this file). The bound holds the
# read and the composed texts, which scale with the rows; the TF-IDF fit (on at most 200,000 rows) and the
# layout (a UMAP sample of at most 150,000) are fixed costs at a million rows and are only reported.
# Measured on this file (2 cores): HEAD before issue 31 peaked at 878 MB by the end of the read (878 MB
# whole); the Arrow read at 388 MB (717 MB whole, the TF-IDF fit on all 50,000 rows).
# The same rows as JSON Lines (73 MB): 626 MB by the end of the read before the block read (a dict per row
# and the decoded file), 282-303 MB with it.
BASELINE_MB = 250
BOUND_MB = BASELINE_MB + 5_000 * ROWS / 1_000_000
REPO = Path(__file__).resolve().parents[1]

# The child's own high-water mark, VmHWM: not ru_maxrss, which Linux carries over an exec from the process
# that forked it (in the whole suite pytest holds ~3 GB, and a fresh child then "peaked" at 2.9 GB).
CHILD = """
import sys
from explorer.corpus import read_corpus
from explorer.embed import embed_cached
from explorer.embedders import load_embedder

def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))

corpus = read_corpus(sys.argv[1])
print(peak_mb(), flush=True)
embed_cached(load_embedder("tfidf-svd"), corpus)
print(peak_mb(), flush=True)
"""


def _abstracts(path: Path, rows: int = ROWS) -> None:
    """Rows of a title and a ~1,400-character abstract of words drawn from a 5,000-word vocabulary (the
    arXiv abstracts' length: 50,000 rows make a 73 MB file, as the benchmark's real ones do), as a CSV or,
    by the path's suffix, as JSON Lines."""
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(5_000)])
    jsonl = path.suffix == ".jsonl"
    with path.open("w", encoding="utf-8") as out:
        if not jsonl:
            out.write("title,abstract,year\n")
        for i in range(rows):
            title = " ".join(words[rng.integers(0, 5_000, 8)])
            abstract = " ".join(words[rng.integers(0, 5_000, 250)])
            if jsonl:
                out.write(f'{{"title": "{title}", "abstract": "{abstract}", "year": {2000 + i % 25}}}\n')
            else:
                out.write(f'"{title}","{abstract}",{2000 + i % 25}\n')


def peak_rss_mb(table: Path) -> tuple[float, float]:
    """The peak RSS, in MB, of reading ``table`` into a corpus in a fresh process, and of that and embedding it."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(table)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate()
    # The child reports its own peaks (VmHWM): nothing of this process is counted in them.
    assert proc.returncode == 0, stderr[-2000:]
    return float(stdout.split()[0]), float(stdout.split()[1])


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_a_50k_row_table_reads_under_the_scaled_budget(tmp_path, suffix):
    path = tmp_path / f"abstracts.{suffix}"
    _abstracts(path)
    read_mb, whole_mb = peak_rss_mb(path)
    print(f"50k rows ({suffix}): peak RSS {read_mb:,.0f} MB by the corpus, {whole_mb:,.0f} MB embedded "
          f"(bound {BOUND_MB:,.0f})")
    assert read_mb <= BOUND_MB, f"reading 50,000 rows peaked at {read_mb:,.0f} MB, over the budget's {BOUND_MB:,.0f} MB"
