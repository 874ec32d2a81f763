"""The refinement worker: one background thread per process that refines maps one at a time, in the
order they were asked for, so two refinements never split the CPU between them.

A server keeps one worker for every session and map (explorer/ui/refinement.py); at its start the
worker resumes the refinements a previous run left pending (their finished chunks come from the
embedding cache). Pure Python: the tests drive it with the hashing embedder.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, replace

from .embedders import DEFAULT_BATCH_SIZE, Embedder
from .errors import ExplorerError
from .manifest import Manifest
from .modes import PROJECT_FIXED_SECONDS, PROJECT_SECONDS_PER_ROW
from .pipeline import TITLES_STAGE
from .refine import DEFAULT_CHUNK_ROWS, NOT_PENDING, REFINE_DONE, pending_refinements, refine_map
from .store import Workspace

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
# The progress stages that report rows read by the transformer: the titles, then the whole text.
EMBED_STAGES = (TITLES_STAGE, "embed")


@dataclass
class JobStatus:
    """Where one map's refinement stands: its state, rows embedded so far, and about how long is left.

    ``state`` is queued, running, done, failed or cancelled; ``outcome`` the refinement's own end
    (explorer.refine: done, stopped, gone, …) and ``stamp`` the refined map's save stamp once done."""

    map_id: str
    name: str
    state: str = QUEUED
    rows_done: int = 0
    rows_total: int = 0
    seconds_left: float | None = None
    message: str = ""
    stage: str = ""
    outcome: str = ""
    stamp: str = ""
    # The last stage saved (pipeline.TITLES_STAGE, FULL_STAGE; "" none yet) and that version's save stamp.
    saved_stage: str = ""
    stage_stamp: str = ""
    submitted: float = 0.0
    finished: float | None = None

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.state not in FINISHED


class RefinementWorker:
    """A FIFO of refinements run by one daemon thread (started by the first ``submit``)."""

    def __init__(
        self,
        workspace: Workspace | None = None,
        *,
        model: str | Embedder | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        pause_seconds: float = 0.0,
    ):
        self.workspace = workspace or Workspace()
        self.model = model
        self.chunk_rows = chunk_rows
        self.batch_size = batch_size
        # Rest between chunks (0: none): leaves the CPU to the server on a busy machine, and lets tests
        # watch a refinement part-way.
        self.pause_seconds = pause_seconds
        self._jobs: dict[str, JobStatus] = {}
        self._queue: deque[str] = deque()
        self._cancel: set[str] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    # ------------------------------------------------------------ asking

    def submit(self, name: str) -> JobStatus:
        """Queue the refinement of the map ``name``; a map already queued or running keeps its place."""
        meta = Manifest.from_dict(self.workspace.read_manifest(name))
        map_id = str(meta.map_id or name)
        with self._changed:
            job = self._jobs.get(map_id)
            if job is not None and job.active:
                return replace(job)
            job = JobStatus(map_id=map_id, name=meta.name or name,
                            rows_total=int(meta.embedded_rows), submitted=time.time(),
                            message="Waiting for the refinements before it" if self._queue or self._busy()
                            else "Starting")
            self._jobs[map_id] = job
            self._queue.append(map_id)
            self._cancel.discard(map_id)
            self._start()
            self._changed.notify_all()
            return replace(job)

    def resume_pending(self) -> list[JobStatus]:
        """Queue every map whose refinement is pending (left by a restart, a crash or Ctrl-C), except those
        too long to start unasked."""
        resumed = []
        for name in pending_refinements(self.workspace, automatic_only=True):
            with contextlib.suppress(ExplorerError, OSError):  # deleted since it was listed
                resumed.append(self.submit(name))
        return resumed

    def status(self, key: str) -> JobStatus | None:
        """The latest job of a map, by its map_id or its name (a copy; None when it was never submitted)."""
        with self._changed:
            job = self._jobs.get(key) or next((j for j in reversed(self._jobs.values()) if j.name == key), None)
            return replace(job) if job is not None else None

    def jobs(self) -> list[JobStatus]:
        """Every job this worker was given, oldest first (copies)."""
        with self._changed:
            return [replace(j) for j in self._jobs.values()]

    def cancel(self, key: str) -> None:
        """Drop a queued refinement, or stop a running one after its current chunk (it stays pending)."""
        with self._changed:
            job = self._jobs.get(key) or next((j for j in self._jobs.values() if j.name == key), None)
            if job is None or not job.active:
                return
            if job.state == QUEUED:
                self._queue.remove(job.map_id)
                self._finish(job, CANCELLED, "Cancelled before it started")
            else:
                self._cancel.add(job.map_id)

    def wait(self, key: str, timeout: float | None = None) -> JobStatus | None:
        """Block until the map's job is finished (or ``timeout`` seconds pass); its status then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                job = self._jobs.get(key) or next((j for j in self._jobs.values() if j.name == key), None)
                if job is None or not job.active:
                    return replace(job) if job is not None else None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return replace(job)
                self._changed.wait(left)

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop after the current chunk (that refinement stays pending and resumes next time)."""
        with self._changed:
            self._closing = True
            self._cancel.update(self._jobs)
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------ the thread

    def _busy(self) -> bool:
        return any(j.state == RUNNING for j in self._jobs.values())

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._closing = False
            self._thread = threading.Thread(target=self._run, name="explorer-refine", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._closing:
                    self._changed.wait()
                if self._closing:
                    return
                job = self._jobs[self._queue.popleft()]
                job.state, job.message = RUNNING, "Loading the transformer"
                self._changed.notify_all()
            self._refine(job)

    def _refine(self, job: JobStatus) -> None:
        clock = _Clock(job.rows_total)

        def progress(stage: str, fraction: float, message: str = "") -> None:
            with self._changed:
                job.stage = stage
                if stage in EMBED_STAGES:
                    job.rows_done = int(round(fraction * job.rows_total))
                job.seconds_left = clock.seconds_left(stage, job.rows_done)
                job.message = message
                self._changed.notify_all()

        def should_stop() -> bool:
            if self.pause_seconds:
                time.sleep(self.pause_seconds)
            return job.map_id in self._cancel

        def on_stage(stage: str, saved) -> None:
            with self._changed:
                job.saved_stage, job.stage_stamp, job.name = stage, saved.stamp, saved.name
                self._changed.notify_all()

        try:
            result = refine_map(job.name, workspace=self.workspace, model=self.model, chunk_rows=self.chunk_rows,
                                batch_size=self.batch_size, progress=progress, should_stop=should_stop,
                                on_stage=on_stage)
        except Exception as exc:  # one map's failure must not stop the maps queued after it
            log.warning("refinement of %s failed: %s", job.name, exc)
            with self._changed:
                self._finish(job, FAILED, f"The refinement failed: {' '.join(str(exc).split())}")
            return
        with self._changed:
            job.outcome = result.state
            if result.name:
                job.name = result.name
            # Stopped, gone (deleted meanwhile) or busy (another process has it): this worker did not finish it.
            state = DONE if result.state in (REFINE_DONE, NOT_PENDING) else CANCELLED
            if result.saved is not None:
                job.rows_done = job.rows_total = result.rows
                job.stamp = result.saved.stamp
            self._finish(job, state, result.message)

    def _finish(self, job: JobStatus, state: str, message: str) -> None:
        job.state, job.message, job.finished, job.seconds_left = state, message, time.time(), 0.0
        self._cancel.discard(job.map_id)
        self._changed.notify_all()


class _Clock:
    """Time left, from the pace of the rows embedded so far plus an estimate of the layout."""

    def __init__(self, rows: int):
        self.rows = rows
        self.project_seconds = PROJECT_FIXED_SECONDS + rows * PROJECT_SECONDS_PER_ROW
        self.first: tuple[float, int] | None = None
        self.project_started: float | None = None

    def seconds_left(self, stage: str, rows_done: int) -> float | None:
        now = time.perf_counter()
        if stage in EMBED_STAGES:
            # Paced from the first report on: rows found in the cache arrive at once and would flatter it.
            if self.first is None or rows_done < self.first[1]:
                self.first = (now, rows_done)
                return None
            elapsed, done = now - self.first[0], rows_done - self.first[1]
            if done <= 0 or elapsed <= 0:
                return None
            # Titles: the time left until search reads them; the whole text: until the new map is laid out.
            return (self.rows - rows_done) * elapsed / done + (self.project_seconds if stage == "embed" else 0.0)
        if stage == "project":
            self.project_started = self.project_started or now
            return max(0.0, self.project_seconds - (now - self.project_started))
        return 0.0
