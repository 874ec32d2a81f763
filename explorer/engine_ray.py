"""Build a text map on a Ray cluster: Ray Data reads the files, an actor pool embeds, UMAP fits a sample.

The only module that imports ray (the optional extra ``embedding-explorer[ray]``); the CLI imports it
only for ``--engine ray``. The map it saves has the local engine's format: same texts, row ids,
embedder, manifest fields and Workspace.save.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import ray
import ray.data

from . import errors
from .cluster import ClusterConfig
from .corpus import TEXT, Corpus, read_corpus
from .embedders import DEFAULT_BATCH_SIZE, load_embedder
from .errors import EngineError, ExplorerError, InputError
from .hashing import bytes_hash, file_sha256
from .load import LoadedTable, tidy_columns
from .neighbours import KnnGraph
from .pipeline import BuildResult, StageTimer, assemble_points, finish_build, map_manifest
from .placement import PLACE_CHUNK_ROWS, place_rows
from .progress import ProgressFn, no_progress
from .project import MIN_ROWS_FOR_UMAP, Projection, ProjectionConfig, project, sample_indices
from .store import Workspace, sanitise_map_name

log = logging.getLogger(__name__)

RAY_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# The ray engine's UMAP sample: smaller than the local engine's, as the placement of the rest runs in
# parallel on the cluster rather than on one core.
DEFAULT_SAMPLE_ROWS = 50_000
# Rows per Ray task: the unit an actor embeds, Ray retries and the driver counts for progress.
DEFAULT_BATCH_ROWS = 512
WORK_DIR = "ray-work"
# Test hook, "N:MARKER": the actor that claims the MARKER file exits hard on its Nth batch, once per run.
CRASH_ENV = "EXPLORER_RAY_CRASH_AFTER"
# A local instance serves this machine only: no dashboard, and its GCS, raylet (node and object
# manager), workers and runtime-env agent bound to the loopback interface (tests/test_exposure.py).
LOCAL_RAY = {"_node_ip_address": "127.0.0.1", "include_dashboard": False}


@dataclass(frozen=True)
class RayConfig:
    """Where the build runs and how wide: cluster address, actor pool, rows per task, UMAP sample."""

    address: str | None = None
    num_workers: int | None = None
    num_cpus_per_worker: float = 1.0
    num_gpus_per_worker: float = 0.0
    batch_rows: int = DEFAULT_BATCH_ROWS

    def to_dict(self) -> dict:
        """Plain dict for the manifest."""
        return asdict(self)


def build_map_ray(
    source: str | Path,
    *,
    name: str | None = None,
    text_columns: list[str] | None = None,
    template: str | None = None,
    model: str | None = None,
    projection: ProjectionConfig | None = None,
    clusters: ClusterConfig | None = None,
    workspace: Workspace | None = None,
    ray_config: RayConfig | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressFn = no_progress,
) -> BuildResult:
    """Build and save a map from a CSV/Parquet file or folder of them, embedding and projecting on Ray.

    UMAP is fitted on ``projection.sample_rows`` rows (DEFAULT_SAMPLE_ROWS without a ``projection``);
    the model is the bundled transformer unless ``model`` names another (the local engine's fast
    mode fits on the whole corpus, which this engine does not gather)."""
    workspace = workspace or Workspace()
    projection = projection or ProjectionConfig(sample_rows=DEFAULT_SAMPLE_ROWS)
    ray_config = ray_config or RayConfig()
    _check_config(ray_config, projection)
    if name is not None:
        sanitise_map_name(name)
    files, fmt = input_files(source)
    embedder = load_embedder(model)
    # Loaded once here as a check: a model that cannot load fails now with one line, not with a
    # traceback from every actor of the pool.
    getattr(embedder, "model", None)
    timer = StageTimer()
    progress("load", 0.0, "Starting Ray" if ray_config.address is None else f"Connecting to {ray_config.address}")
    started = time.perf_counter()
    with ray_session(ray_config.address, log_path=workspace.root / WORK_DIR / "ray-start.log"):
        timer.seconds["connect"] = time.perf_counter() - started
        with timer.stage("load"):
            progress("load", 0.0, f"Reading {len(files):,} {fmt.upper()} file(s) with Ray Data")
            table = read_ray_table(files, fmt, source_name=Path(source).name)
            corpus = read_corpus(table, kind=TEXT, text_columns=text_columns, template=template)
            progress("load", 1.0, f"{len(corpus):,} rows, text from {', '.join(corpus.text_columns)}")

        with timer.stage("embed"):
            row_ids = np.flatnonzero(corpus.embedded).astype(np.int64)
            texts = corpus.items()
            work = workspace.root / WORK_DIR / _run_key(table, corpus, embedder.model_id)
            workers = pool_size(ray_config)
            vectors = embed_on_ray(texts, row_ids, model=model, shards=work, workers=workers, config=ray_config,
                                   batch_size=batch_size, progress=progress)

        with timer.stage("project"):
            progress("project", 0.0, f"Projecting {len(vectors):,} points with {projection.method.upper()}")
            layout, fit_rows = project_on_ray(vectors, config=projection, progress=progress)
            progress("project", 1.0, f"Layout by {layout.method.upper()} fitted on {fit_rows:,} rows")

    started = time.perf_counter()
    progress("save", 0.0, "Saving the map")
    points, full_vectors = assemble_points(corpus.frame, corpus.embedded, vectors, layout.coords)
    map_name = name or corpus.default_name()
    manifest = map_manifest(corpus, name=map_name, embedder=embedder, dimension=full_vectors.shape[1],
                            projection=projection, method_used=layout.method, notes=list(corpus.notes),
                            seconds=timer.seconds)
    manifest["projection"]["fit_rows"] = fit_rows
    manifest["mode"] = None  # the model was named, or the bundled transformer: no mode was chosen
    manifest["engine"] = {**ray_config.to_dict(), "name": "ray", "workers": workers,
                          "address": ray_config.address or "local"}
    saved = finish_build(workspace, map_name, points=points, vectors=full_vectors, manifest=manifest, started=started,
                         timer=timer, clusters=clusters, progress=progress)
    shutil.rmtree(work, ignore_errors=True)  # the map holds the vectors now; the shards were the checkpoint
    return BuildResult(saved=saved, seconds=timer.seconds, notes=list(corpus.notes))


def _check_config(config: RayConfig, projection: ProjectionConfig) -> None:
    if config.num_workers is not None and config.num_workers < 1:
        raise InputError(f"--num-workers must be at least 1, not {config.num_workers}.")
    if projection.sample_rows < MIN_ROWS_FOR_UMAP:
        raise InputError(f"--sample-rows must be at least {MIN_ROWS_FOR_UMAP}, not {projection.sample_rows}.")
    if config.batch_rows < 1:
        raise InputError(f"The rows per Ray task must be at least 1, not {config.batch_rows}.")
    if config.num_gpus_per_worker < 0 or config.num_cpus_per_worker <= 0:
        raise InputError("Each worker needs more than 0 CPUs and at least 0 GPUs.")


def input_files(source: str | Path) -> tuple[list[Path], str]:
    """The CSV or Parquet files to read (a file, or a folder's files sorted by path) and their format."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in RAY_FORMATS
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
    elif path.is_file():
        files = [path]
    else:
        raise InputError(f"{source}: no such file or folder.")
    if not files or any(p.suffix.lower() not in RAY_FORMATS for p in files):
        raise InputError(f"{source}: the ray engine reads .csv and .parquet files (or a folder of them).")
    formats = {RAY_FORMATS[p.suffix.lower()] for p in files}
    if len(formats) > 1:
        raise InputError(f"{source}: the folder mixes CSV and Parquet files; give it one kind.")
    return files, formats.pop()


@contextmanager
def ray_session(address: str | None, *, log_path: Path) -> Iterator[None]:
    """Connect to the cluster at ``address`` (a local instance without one); reuse a session already open."""
    if ray.is_initialized():
        yield
        return
    if address:
        _check_reachable(address)
    # Ray's own logs and the workers' output would drown the progress bar; failures still raise. Its C++
    # core prints errors such as "actor has constructor arguments in the object store" (about Ray Data's
    # own actors) unless its level is fatal, and announces that level on stderr as it starts.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _stderr_to(log_path):
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            else:
                init_local_ray(log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise EngineError(f"Cannot connect to {where}: {' '.join(str(exc).split())[:200]}") from exc
    try:
        yield
    finally:
        ray.shutdown()


def init_local_ray(**options) -> None:
    """Start a local Ray instance that listens on 127.0.0.1 only (``options`` go to ray.init)."""
    from ray._private import ray_constants

    # ray.init swaps a loopback node address for the machine's own one, and its servers then listen
    # on every interface, unless Ray takes this machine for one that cannot join a cluster (its
    # setting on macOS and Windows): for the length of the start, it does.
    joins_clusters = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    # Ray Data lists files in its workers too: each worker marks fsspec's HTTP filesystem absent as the driver
    # does (_avoid_http_import_race), else the same import race fails a read there now and then.
    runtime_env = {"worker_process_setup_hook": f"{__name__}._avoid_http_import_race",
                   **options.pop("runtime_env", {})}
    try:
        ray.init(**LOCAL_RAY, runtime_env=runtime_env, **options)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = joins_clusters


def _check_reachable(address: str, *, timeout: float = 10.0) -> None:
    """Fail in seconds on a head node that does not answer: ray.init would retry for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and the like: Ray resolves and reports those itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise EngineError(f"Cannot reach the Ray cluster at {address}: {exc.strerror or exc}. Check the "
                          "head node's address and port (`ray start --head` prints it).") from exc


@contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """File descriptor 2 pointed at ``path``: what C++ code writes there, Python's logging cannot filter."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _quiet_ray_data() -> None:
    """Keep Ray Data's progress bars and per-run INFO lines off the console (they stay in its log files)."""
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            # The console only, not Ray Data's log files; its errors reach us as exceptions anyway.
            handler.setLevel(logging.CRITICAL)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def read_ray_table(files: list[Path], fmt: str, *, source_name: str) -> LoadedTable:
    """Read the files as one Ray dataset, in file order, into the table the map keeps."""
    import pyarrow.csv as pacsv

    _quiet_ray_data()
    _avoid_http_import_race()
    paths = [str(p) for p in files]
    context = ray.data.DataContext.get_current()
    keep_order = context.execution_options.preserve_order
    # Row ids follow the files' order, as a local build of the concatenated files would number them.
    context.execution_options.preserve_order = True
    try:
        if fmt == "csv":
            # Abstracts hold quoted newlines. Every cell is read as text and typed below by the local
            # reader's rule, so a column gets the same type whichever engine built the map.
            parse = pacsv.ParseOptions(newlines_in_values=True)
            header = {name: pa.string() for p in paths for name in pacsv.open_csv(p, parse_options=parse).schema.names}
            dataset = ray.data.read_csv(
                paths, parse_options=parse,
                convert_options=pacsv.ConvertOptions(column_types=header, strings_can_be_null=True),
            )
        else:
            dataset = ray.data.read_parquet(paths)
        # Through Arrow rather than Dataset.to_pandas, whose Arrow-backed dtypes differ from pd.read_parquet's.
        arrow = pa.concat_tables(ray.get(dataset.to_arrow_refs()), promote_options="default")
        frame = arrow.to_pandas().reset_index(drop=True)
    except (ray.exceptions.RayError, pa.ArrowInvalid) as exc:
        raise InputError(f"{source_name}: Ray Data cannot read it ({_first_line(exc)}).") from exc
    finally:
        context.execution_options.preserve_order = keep_order
    if len(frame) == 0:
        raise InputError(f"{source_name}: the file(s) have no rows.")
    if fmt == "csv":
        frame = frame.apply(_type_like_read_csv)
    notes: list[str] = []
    frame = tidy_columns(frame, notes=notes)
    if len(files) == 1:
        content_hash = file_sha256(files[0])  # equal to a local build's hash of the same file
    else:
        content_hash = bytes_hash("\n".join(f"{p.name} {file_sha256(p)}" for p in files).encode())
    return LoadedTable(frame=frame, source_name=source_name, format=fmt, content_hash=content_hash,
                       encoding="utf-8" if fmt == "csv" else None, notes=notes)  # Arrow reads CSV as UTF-8


def _avoid_http_import_race() -> None:
    """Mark fsspec's HTTP filesystem absent when it cannot load (no aiohttp).

    Ray Data lists several files in threads that each import it to test the filesystem; a thread
    that sees another's half-done, failing import gets an ImportError that Ray does not catch (seen
    as a flaky failure on folders). Marked absent, every thread gets the ModuleNotFoundError Ray
    expects; without aiohttp the module could not be used anyway.
    """
    if importlib.util.find_spec("aiohttp") is None:
        sys.modules.setdefault("fsspec.implementations.http", None)


def _type_like_read_csv(column: pd.Series) -> pd.Series:
    """A text column typed as load_table's pandas reader does it: Int64, Float64 or string."""
    numbers = pd.to_numeric(column, errors="coerce")
    if column.notna().any() and numbers.notna().sum() == column.notna().sum():
        integral = column.dropna().str.fullmatch(r"\s*[+-]?\d+\s*").all()
        return numbers.astype("Int64" if integral else "Float64")
    return column.astype("string")


def _run_key(table: LoadedTable, corpus: Corpus, model_id: str) -> str:
    """The shard folder's name: a rerun of the same input, texts and model picks up the shards left."""
    recipe = f"{table.content_hash}|{corpus.text_columns}|{corpus.template}|{model_id}|{len(table.frame)}"
    return hashlib.sha256(recipe.encode()).hexdigest()[:24]


def pool_size(config: RayConfig) -> int:
    """The number of embedding actors: as asked, else as many as the cluster's CPUs (or GPUs) hold."""
    if config.num_workers is not None:
        return config.num_workers
    resources = ray.cluster_resources()
    if config.num_gpus_per_worker > 0:
        return max(1, int(resources.get("GPU", 0) // config.num_gpus_per_worker))
    return max(1, int(resources.get("CPU", 1) // config.num_cpus_per_worker))


class EmbedBatches:
    """A Ray Data actor: loads the embedder once, then turns (row_id, text) batches into vectors."""

    def __init__(self, *, model: str | None, device: str, batch_size: int, crash_after: str | None = None):
        self.embedder = load_embedder(model, device=device)
        getattr(self.embedder, "model", None)  # load the weights now, not inside the first batch
        self.batch_size = batch_size
        self.crash_after = crash_after
        self.calls = 0

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Embed one batch; the row ids travel with their vectors, so order never matters."""
        self.calls += 1
        self._maybe_crash()
        vectors = self.embedder.embed(batch.column("text").to_pylist(), batch_size=self.batch_size)
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        return pa.table({
            "row_id": batch.column("row_id"),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
        })

    def _maybe_crash(self) -> None:
        if not self.crash_after:
            return
        nth, marker = self.crash_after.split(":", 1)
        if self.calls == int(nth) and _claim(marker):
            os._exit(1)


def _claim(marker: str) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def embed_on_ray(
    texts: list[str],
    row_ids: np.ndarray,
    *,
    model: str | None,
    shards: Path,
    workers: int,
    config: RayConfig,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressFn = no_progress,
) -> np.ndarray:
    """Embed texts on a pool of actors, checkpointing Parquet shards; vectors come back in row_ids' order."""
    if np.any(np.diff(row_ids) <= 0):
        raise ValueError("row_ids must be unique and ascending.")
    _quiet_ray_data()
    shards.mkdir(parents=True, exist_ok=True)
    done_ids = _shard_row_ids(shards)
    todo = ~np.isin(row_ids, done_ids)
    total, done = len(row_ids), len(row_ids) - int(todo.sum())
    if done:
        log.info("resuming: %d of %d rows are in the shards of an earlier run", done, total)
    progress("embed", done / total, f"Starting {workers} worker(s); {done:,} / {total:,} rows embedded")
    if todo.any():
        frame = pd.DataFrame({"row_id": row_ids[todo], "text": [t for t, keep in zip(texts, todo, strict=True)
                                                                 if keep]})
        # Small inputs are cut finer so that every actor of the pool gets a share.
        rows_per_task = max(1, min(config.batch_rows, math.ceil(len(frame) / workers)))
        blocks = [frame.iloc[i : i + rows_per_task] for i in range(0, len(frame), rows_per_task)]
        dataset = ray.data.from_pandas(blocks).map_batches(
            EmbedBatches,
            fn_constructor_kwargs={
                "model": model, "device": "cuda" if config.num_gpus_per_worker > 0 else "cpu",
                "batch_size": batch_size, "crash_after": os.environ.get(CRASH_ENV),
            },
            batch_size=None,  # one block is one batch is one task: the unit Ray retries
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=config.num_cpus_per_worker,
            num_gpus=config.num_gpus_per_worker or None,
            # No retry settings here: Ray Data starts pool actors with max_restarts=-1 and
            # max_task_retries=-1, so a dead actor is restarted and its batch runs again.
        )
        part = len(list(shards.glob("part-*.parquet")))
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                _write_shard(batch, shards / f"part-{part:06d}.parquet")
                part += 1
                done += batch.num_rows
                progress("embed", done / total, f"{done:,} / {total:,} rows embedded on {workers} worker(s)")
        except ray.exceptions.RayError as exc:
            raise _explain_ray_error(exc) from exc
    return read_shards(shards, row_ids)


def _write_shard(batch: pa.Table, path: Path) -> None:
    # Written aside then renamed: a driver killed mid-write leaves no half shard for a rerun to trust.
    tmp = path.with_suffix(".tmp")
    pq.write_table(batch, tmp)
    os.replace(tmp, path)


def _shard_row_ids(shards: Path) -> np.ndarray:
    files = sorted(shards.glob("part-*.parquet"))
    if not files:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([pq.read_table(f, columns=["row_id"]).column("row_id").to_numpy() for f in files])


def read_shards(shards: Path, row_ids: np.ndarray) -> np.ndarray:
    """The shards' vectors in the order of ``row_ids`` (ascending); every row must be there exactly once."""
    seen = np.zeros(len(row_ids), dtype=np.int64)
    vectors: np.ndarray | None = None
    stray = 0
    for path in sorted(shards.glob("part-*.parquet")):
        table = pq.read_table(path)
        column = table.column("embedding").combine_chunks()
        block = column.values.to_numpy(zero_copy_only=False).reshape(-1, column.type.list_size)
        if vectors is None:
            vectors = np.zeros((len(row_ids), block.shape[1]), dtype=np.float32)
        ids = table.column("row_id").to_numpy()
        at = np.minimum(np.searchsorted(row_ids, ids), max(len(row_ids) - 1, 0))
        known = row_ids[at] == ids if len(row_ids) else np.zeros(len(ids), dtype=bool)
        stray += int((~known).sum())
        np.add.at(seen, at[known], 1)
        vectors[at[known]] = block[known]
    missing, repeated = int((seen == 0).sum()), int((seen > 1).sum())
    if missing or repeated or stray:
        raise EngineError(
            f"The Ray run did not return every row exactly once: {missing:,} missing, {repeated:,} repeated, "
            f"{stray:,} unknown. Delete {shards} and build again."
        )
    return vectors if vectors is not None else np.zeros((0, 0), dtype=np.float32)


def _explain_ray_error(exc: Exception) -> Exception:
    """The ExplorerError a worker raised (e.g. a model that cannot load), else a one-line EngineError."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ExplorerError):
            return cause
        cause = getattr(cause, "cause", None) or cause.__cause__
    # An actor that died in __init__ reaches the driver as text only (ActorDiedError keeps no cause).
    raised = re.findall(r"^explorer\.errors\.(\w+): (.+)$", str(exc), flags=re.MULTILINE)
    if raised and isinstance(getattr(errors, raised[-1][0], None), type):
        kind, message = raised[-1]
        return getattr(errors, kind)(message)
    return EngineError(f"The Ray run failed: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


@ray.remote(num_cpus=1)
def _place_chunk(knn: KnnGraph, fitted_coords: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    return place_rows(vectors, searcher=knn.searcher, reference_coords=fitted_coords).coords


def project_on_ray(
    vectors: np.ndarray,
    *,
    config: ProjectionConfig,
    chunk_rows: int = PLACE_CHUNK_ROWS,
    progress: ProgressFn = no_progress,
) -> tuple[Projection, int]:
    """The local engine's sample fit, with the placement of the other rows (`place_rows`) in parallel
    Ray tasks.

    Returns the layout and the number of rows the fit saw. At or below ``config.sample_rows`` rows
    (or for PCA, or an input UMAP cannot fit) it is ``project`` on every row, as a local build.
    """
    n = len(vectors)
    if n <= config.sample_rows or config.method != "umap":
        return project(vectors, config=config), n
    started = time.perf_counter()
    sample = sample_indices(n, config.sample_rows, seed=config.seed)
    progress("project", 0.0, f"Fitting UMAP on a sample of {len(sample):,} of {n:,} rows")
    fitted = project(vectors[sample], config=config)
    if fitted.knn is None:  # a degenerate sample: fall back to laying out every row at once
        return project(vectors, config=config), n
    coords = np.zeros((n, 2), dtype=np.float32)
    coords[sample] = fitted.coords
    rest = np.setdiff1d(np.arange(n), sample)
    chunks = np.array_split(rest, math.ceil(len(rest) / chunk_rows))
    # The sample's graph and positions are the whole model a task needs: no UMAP transform.
    knn, anchors = ray.put(fitted.knn), ray.put(fitted.coords)
    # A bounded window of chunks in flight keeps the object store from holding every vector at once.
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    pending: dict = {}
    placed = 0
    try:
        for chunk in chunks:
            pending[_place_chunk.remote(knn, anchors, vectors[chunk])] = chunk
            if len(pending) < window:
                continue
            placed += _collect_one(pending, coords)
            progress("project", placed / len(rest), f"{placed:,} / {len(rest):,} rows placed beside the sample")
        while pending:
            placed += _collect_one(pending, coords)
            progress("project", placed / len(rest), f"{placed:,} / {len(rest):,} rows placed beside the sample")
    except ray.exceptions.RayError as exc:
        raise _explain_ray_error(exc) from exc
    layout = Projection(coords=coords, method="umap", config=config, seconds=time.perf_counter() - started,
                        reducer=fitted.reducer, knn=fitted.knn, fitted_rows=sample)
    return layout, len(sample)


def _collect_one(pending: dict, coords: np.ndarray) -> int:
    (ready,), _ = ray.wait(list(pending), num_returns=1)
    chunk = pending.pop(ready)
    coords[chunk] = ray.get(ready)
    return len(chunk)
