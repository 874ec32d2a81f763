"""Map-quality and resource measurements shared by the benchmark scripts."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# Above this many rows the trustworthiness distance matrices (n x n, twice) get slow and large.
TRUSTWORTHINESS_SAMPLE = 2_000
LOAD_SAMPLE_SECONDS = 5.0


def knn_predict(
    coords: np.ndarray, labels: Sequence | np.ndarray, *, k: int = 10, metric: str = "euclidean"
) -> np.ndarray:
    """Each point's label by majority vote of its k nearest other points (leave-one-out)."""
    from sklearn.neighbors import NearestNeighbors

    coords = np.asarray(coords, dtype=np.float32)
    classes, y = np.unique(np.asarray(labels), return_inverse=True)
    n = len(y)
    if n <= k:
        raise ValueError(f"k-NN needs more than k={k} points, got {n}.")
    index = NearestNeighbors(n_neighbors=k + 1, metric=metric).fit(coords)
    _, neighbours = index.kneighbors(coords)
    votes = y[_drop_self(neighbours)]
    counts = np.zeros((n, len(classes)), dtype=np.int64)
    np.add.at(counts, (np.broadcast_to(np.arange(n)[:, None], votes.shape), votes), 1)
    # A tie goes to the tied label that occurs nearest, as a 1-NN vote would decide it.
    first_rank = np.full((n, len(classes)), k, dtype=np.int64)
    for rank in range(k - 1, -1, -1):
        first_rank[np.arange(n), votes[:, rank]] = rank
    return classes[np.argmax(counts * (k + 1) - first_rank, axis=1)]


def knn_accuracy(
    coords: np.ndarray, labels: Sequence | np.ndarray, *, k: int = 10, metric: str = "euclidean"
) -> float:
    """Leave-one-out k-NN accuracy: the share of points whose neighbours vote for their label."""
    return float(np.mean(knn_predict(coords, labels, k=k, metric=metric) == np.asarray(labels)))


def _drop_self(neighbours: np.ndarray) -> np.ndarray:
    """The k+1 neighbour lists without the query point (or the farthest, if a twin hid it)."""
    n, width = neighbours.shape
    is_self = neighbours == np.arange(n)[:, None]
    # Points at identical coordinates may list a twin before themselves, or leave themselves out.
    is_self[~is_self.any(axis=1), width - 1] = True
    return neighbours[~is_self].reshape(n, width - 1)


def trustworthiness_score(
    embeddings: np.ndarray,
    coords: np.ndarray,
    *,
    n_neighbors: int = 10,
    sample: int = TRUSTWORTHINESS_SAMPLE,
    seed: int = 0,
) -> float:
    """sklearn's trustworthiness (cosine in the embedding space) on a random sample of rows."""
    from sklearn.manifold import trustworthiness

    embeddings = np.asarray(embeddings, dtype=np.float32)
    coords = np.asarray(coords, dtype=np.float32)
    if len(embeddings) > sample:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(embeddings), size=sample, replace=False))
        embeddings, coords = embeddings[rows], coords[rows]
    return float(trustworthiness(embeddings, coords, n_neighbors=n_neighbors, metric="cosine"))


def maxrss_to_mb(maxrss: int) -> float:
    """ru_maxrss in MiB: Linux reports KiB, macOS bytes."""
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def own_peak_mb() -> float:
    """This process's own peak resident memory (VmHWM): ru_maxrss would carry over the peak of the process
    that forked it (a benchmark parent holding a scored 300k map made a 100k child "peak" at 1.5 GB)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return maxrss_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak_rss_mb(*, include_children: bool = False) -> float:
    """Peak resident memory of this process, or of it and its largest finished child."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if include_children:
        peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return maxrss_to_mb(peak)


@dataclass
class MeasuredRun:
    """A finished command: exit code, stdout, wall seconds, peak RSS and the load it ran under."""

    returncode: int
    stdout: str
    seconds: float
    peak_rss_mb: float
    load_averages: list[float] = field(default_factory=list)


def run_measured(command: Sequence[str], *, env: Mapping[str, str] | None = None) -> MeasuredRun:
    """Run a command (stderr passes through), timing it and reading its peak RSS from os.wait4."""
    loads: list[float] = [os.getloadavg()[0]]
    finished = threading.Event()

    def sample_load() -> None:
        while not finished.wait(LOAD_SAMPLE_SECONDS):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample_load, daemon=True)
    started = time.perf_counter()
    proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, text=True, env=env)
    sampler.start()
    stdout = proc.stdout.read()
    proc.stdout.close()
    # wait4 gives this child's own rusage; RUSAGE_CHILDREN would mix in every child reaped so far.
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    finished.set()
    sampler.join()
    loads.append(os.getloadavg()[0])
    return MeasuredRun(
        returncode=proc.returncode,
        stdout=stdout,
        seconds=seconds,
        peak_rss_mb=maxrss_to_mb(usage.ru_maxrss),
        load_averages=loads,
    )
