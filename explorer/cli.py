"""The `explorer` command: build, search, list, export, rename and delete maps from the shell."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from .cluster import CLUSTER_METHODS, ClusterConfig
from .cluster import SPACES as CLUSTER_SPACES
from .embedders.transformer import DEVICES
from .errors import EngineError, ExplorerError, InputError
from .export import export_points, to_bibtex_bytes, to_csv_bytes, to_parquet_bytes, to_ris_bytes
from .modes import MODES, duration_text
from .project import METHODS, ProjectionConfig
from .store import Workspace
from .texts import UNPRINTABLE

EXIT_USER_ERROR = 2



def _printable(text: object) -> str:
    """``text`` as the terminal must show it: the one filter every name, note and message goes through."""
    return UNPRINTABLE.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), str(text))


class _PrintableFormatter(logging.Formatter):
    """Log lines (which name files and maps too) through the same filter."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(_printable(line) for line in super().format(record).split("\n"))


class _ProgressBar:
    """A one-line progress bar on stderr, redrawn per report."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self.stage = ""
        self.started = time.perf_counter()

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        if stage != self.stage:
            if self.stage:
                self.stream.write("\n")
            self.stage, self.started = stage, time.perf_counter()
        filled = int(self.width * max(0.0, min(1.0, fraction)))
        elapsed = time.perf_counter() - self.started
        eta = f" ~{elapsed / fraction - elapsed:,.0f}s left" if 0.02 < fraction < 1 else ""
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{_printable(stage):<8}[{bar}] {fraction:4.0%} {_printable(message[:60])}{eta}\033[K")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.stage:
            self.stream.write("\n")
            self.stage = ""


def _snippet(text: str, limit: int = 100) -> str:
    """A row's text on one line, cut to ``limit`` characters."""
    return " ".join(str(text).split())[:limit]


def _progress_bar(args: argparse.Namespace) -> _ProgressBar | None:
    # Carriage returns and escape codes only make sense on a terminal, not in a log or a pipe.
    return None if args.quiet or not sys.stderr.isatty() else _ProgressBar()


def _build(args: argparse.Namespace) -> int:
    from .corpus import IMAGES, TEXT, detect_kind
    from .pipeline import FAST_STAGE, build_map
    from .refine import SEARCH_READS

    _check_engine_options(args)
    _use_device(args)
    if args.engine == "ray" and args.images:
        raise InputError("The ray engine builds text maps from CSV or Parquet; build images with --engine local.")
    # With the ray engine a folder holds CSV or Parquet files, not images.
    kind = TEXT if args.engine == "ray" else detect_kind(Path(args.file), images=args.images)
    bar = _progress_bar(args)
    config = ProjectionConfig(method=args.projection, n_neighbors=args.n_neighbors, min_dist=args.min_dist,
                              seed=args.seed)
    common = dict(name=args.name, text_columns=args.text_column or None, template=args.template, model=args.model,
                  projection=config, workspace=Workspace(args.home),
                  clusters=_cluster_config(args) if args.clusters else None, **({"progress": bar} if bar else {}))
    # A map named after its file takes a free name ("data (2)"), claimed as the build starts, as the app's
    # uploads do; a name given with --name replaces the map of that name, as it always did.
    try:
        if args.engine == "ray":
            result = _build_on_ray(args, common)
        elif kind == IMAGES:
            # Only the default model falls back: a CLIP model asked for by name must load or fail.
            result = build_map(Path(args.file), kind=IMAGES, images=Path(args.images) if args.images else None,
                               path_column=args.path_column, use_cache=not args.no_cache, mode=args.mode,
                               fallback=args.model is None, reserve=args.name is None, **common)
            if result.text_search == "keyword" and args.model is None:
                print(_printable(result.text_search_reason), file=sys.stderr)
        else:
            given = {k: getattr(args, k) for k in ("vectors", "x", "y", "neighbors") if getattr(args, k) is not None}
            if given and args.engine == "ray":
                raise InputError("Your own vectors and layout are read by the local engine: leave out --engine ray.")
            result = build_map(Path(args.file), use_cache=not args.no_cache, mode=args.mode,
                               reserve=args.name is None, **given, **common)
            if result.text_search == "keyword":
                print(_printable(result.text_search_reason), file=sys.stderr)
    finally:
        if bar:
            bar.close()
    meta = result.saved.meta
    if kind == IMAGES:
        for name, reason in result.skipped[:20]:
            print(f"skipped: {_printable(name)}: {_printable(reason)}")
        if len(result.skipped) > 20:
            print(f"skipped: … and {len(result.skipped) - 20:,} more (listed in the map's manifest)")
        print(f"saved: {_printable(result.saved.path)}")
        print(f"images: {meta.rows:,}  skipped: {len(result.skipped):,}  from cache: {result.n_cached:,}  "
              f"model: {_printable(meta.model_id)}  text search: {result.text_search}")
    else:
        for note in result.notes:
            print(f"note: {_printable(note)}")
        print(f"saved: {_printable(result.saved.path)}")
        print(f"rows: {meta.rows:,}  embedded: {meta.embedded_rows:,}  "
              f"from cache: {result.n_cached:,}  model: {_printable(meta.model_id)}")
    _print_cluster_summary(result.saved)
    print("seconds: " + "  ".join(f"{k} {v:.1f}" for k, v in result.seconds.items())
          + f"  total {result.total_seconds:.1f}")
    if not result.refine_pending:
        return 0
    refinement = meta.refinement
    if refinement.automatic is False:
        print(f"ready: {_printable(result.saved.name)} (fast map). Search by meaning needs the transformer's "
              "refinement, about "
              f"{duration_text(refinement.estimated_seconds or 0)} on this CPU: "
              f"`explorer refine \"{_printable(result.saved.name)}\"` starts it.", flush=True)
        return 0
    print(f"ready: {_printable(result.saved.name)} (fast map; search reads {SEARCH_READS[FAST_STAGE]})",
          flush=True)
    return _refine_names(args, common["workspace"], [result.saved.name])


def _refine(args: argparse.Namespace) -> int:
    from .refine import pending_refinements

    workspace = Workspace(args.home)
    if args.all == bool(args.map):
        raise InputError("Name one map to refine, or use --all for every map whose refinement is pending.")
    names = pending_refinements(workspace) if args.all else [args.map]
    if not names:
        print("no refinement pending")
    return _refine_names(args, workspace, names)


def _use_device(args: argparse.Namespace) -> None:
    """--device for every transformer this command loads (through $EXPLORER_DEVICE, which the
    embedders read when they load their weights), so the model and length a build recorded stay."""
    from .embedders.transformer import DEVICE_ENV

    device = getattr(args, "device", "auto")
    if device != "auto":
        os.environ[DEVICE_ENV] = device


def _refine_names(args: argparse.Namespace, workspace: Workspace, names: list[str]) -> int:
    """Refine maps one after another with a progress bar; Ctrl-C keeps each fast map and says how to resume."""
    from .refine import REFINE_DONE, SEARCH_READS, refine_map

    model = getattr(args, "refine_model", None)
    _use_device(args)
    code = 0
    for name in names:
        bar = _progress_bar(args)

        def on_stage(stage: str, saved, bar=bar) -> None:
            if bar:
                bar.close()
            # Each stage as it is saved: the map can be searched by meaning long before the last one.
            print(f"stage {stage}: {_printable(saved.name)} is saved; search reads {SEARCH_READS[stage]}",
                  flush=True)

        try:
            result = refine_map(name, workspace=workspace, model=model, on_stage=on_stage,
                                **({"progress": bar} if bar else {}))
        except KeyboardInterrupt:
            if bar:
                bar.close()
            print(f"interrupted: the fast map '{_printable(name)}' is saved as it was; "
                  f"`explorer refine \"{_printable(name)}\"` resumes the refinement where it stopped",
                  file=sys.stderr)
            return 130
        if bar:
            bar.close()
        if result.state != REFINE_DONE:
            print(f"not refined: {_printable(result.message)}")
            code = code or EXIT_USER_ERROR
            continue
        moved = result.displacement
        print(f"refined: {_printable(result.name)}  model: {_printable(result.saved.meta.model_id)}  "
              f"rows: {result.rows:,}  from cache: {result.n_cached:,}  seconds: {result.seconds:.1f}  "
              f"points moved: median {moved['median']:.1%}, 90th percentile {moved['p90']:.1%} of the map")
        _print_cluster_summary(result.saved)
    return code


RAY_ONLY_OPTIONS = ("address", "num_workers", "sample_rows", "num_gpus_per_worker")


def _check_engine_options(args: argparse.Namespace) -> None:
    given = [f"--{o.replace('_', '-')}" for o in RAY_ONLY_OPTIONS if getattr(args, o) is not None]
    if args.engine != "ray" and given:
        raise InputError(f"{', '.join(given)} only apply with --engine ray.")
    if args.engine == "ray" and args.mode != "auto":
        raise InputError("--mode applies to the local engine; the ray engine embeds with the transformer or --model.")


def _ray_engine():
    """explorer.engine_ray, imported only now: the local engine never loads Ray."""
    try:
        from . import engine_ray
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "ray":
            raise
        raise EngineError(
            "The ray engine needs Ray: pip install 'embedding-explorer[ray]' (on every node of the cluster)."
        ) from exc
    return engine_ray


def _build_on_ray(args: argparse.Namespace, common: dict):
    engine = _ray_engine()
    sample_rows = engine.DEFAULT_SAMPLE_ROWS if args.sample_rows is None else args.sample_rows
    ray_config = engine.RayConfig(address=args.address, num_workers=args.num_workers,
                                  num_gpus_per_worker=args.num_gpus_per_worker or 0.0)
    projection = replace(common["projection"], sample_rows=sample_rows)
    return engine.build_map_ray(args.file, ray_config=ray_config, **{**common, "projection": projection})


def _search(args: argparse.Namespace) -> int:
    from .search import SEMANTIC, search_map

    saved = Workspace(args.home).open(args.map)
    result = search_map(saved, args.query, k=args.k, threshold=args.threshold)
    row_ids = saved.points["row_id"].to_numpy()
    if saved.kind == "images":
        print(f"search: {'clip' if result.mode == SEMANTIC else result.mode}. {_printable(result.reason)}")
        column = saved.meta.images.path_column or "file"
        names = saved.points[column].astype("string").fillna("").tolist()
        labels = saved.points["label"].astype("string").fillna("").tolist() if "label" in saved.points \
            else [""] * len(names)
        lines = [f"{names[idx]}  {labels[idx]}" for idx in result.indices]
    else:
        for note in result.notes:
            print(f"note: {_printable(note)}")
        texts = saved.texts()
        lines = [_snippet(texts[idx]) for idx in result.indices]
    for rank, (idx, line) in enumerate(zip(result.indices, lines, strict=True), start=1):
        print(_printable(f"{rank:>3}  {result.scores[idx]:.3f}  {row_ids[idx]:>7}  {line}"))
    if len(result.indices) == 0:
        print("no result" if result.mode != SEMANTIC else "no result above the threshold")
    return 0


def _screen(args: argparse.Namespace) -> int:
    from .screening import IRRELEVANT, RELEVANT, decide, feature_matrix, progress, rank, screened, seed_rows, simulate

    workspace = Workspace(args.home)
    saved = workspace.open(args.map)
    if args.simulate:
        column, _, value = args.simulate.partition("=")
        if column not in saved.points.columns or not _:
            raise InputError(f"--simulate takes COLUMN=VALUE with a column of the map, not '{args.simulate}'.")
        on_map = saved.embedded
        labels = (saved.points[column].astype("string").fillna("") == value).to_numpy()[on_map]
        texts = [t for t, e in zip(saved.texts(), on_map, strict=True) if e] if args.features != "vectors" else None
        run = simulate(feature_matrix(saved.embeddings[on_map], texts, args.features), labels, seed=args.seed)
        print(f"{int(labels.sum()):,} relevant ({column} = {_printable(value)}) of {len(labels):,} rows, "
              f"features: {args.features}")
        print(f"WSS@95: {run.wss():.3f}   recall after 10 % screened: {run.recall_at(0.1):.3f}")
        print("screened  recall")
        for tenth in range(1, 11):
            print(f"{tenth * 10:>7} %  {run.recall_at(tenth / 10):.3f}")
        return 0
    who = args.who or os.environ.get("USER", "")
    if args.seeds:
        path = Path(args.seeds)
        seeds = seed_rows(saved, path.read_text(encoding="utf-8", errors="replace"), path.name)
        if seeds.row_ids:
            saved = decide(workspace, saved.name, seeds.row_ids, RELEVANT, who=who, base=saved)
        print(f"marked {len(seeds.row_ids):,} rows relevant from {_printable(path.name)}"
              + (f"; not found: {_printable(', '.join(seeds.unmatched[:10]))}" if seeds.unmatched else ""))
    for rows, decision in ((args.relevant, RELEVANT), (args.irrelevant, IRRELEVANT), (args.undo, None)):
        if args.save and _row_ids(rows):
            saved = decide(workspace, saved.name, _row_ids(rows), decision, who=who, base=saved)
    relevant, irrelevant, order = screened(saved)
    if not args.save:  # asked, not recorded: this run's decisions on top of the stored ones
        relevant = [*relevant, *_row_ids(args.relevant)]
        irrelevant = [*irrelevant, *_row_ids(args.irrelevant)]
    for out, write in ((args.bib, to_bibtex_bytes), (args.ris, to_ris_bytes)):
        if out:
            Path(out).write_bytes(write(export_points(saved, relevant)))
            print(f"wrote {len(relevant):,} relevant entries to {_printable(out)}")
    if args.csv:
        Path(args.csv).write_bytes(to_csv_bytes(export_points(saved, [*relevant, *irrelevant])))
        print(f"wrote {len(relevant) + len(irrelevant):,} decisions to {_printable(args.csv)}")
    ranking = rank(saved, relevant, irrelevant, features=args.features)
    print(_printable(progress(order, total=int(saved.embedded.sum())).hint()))
    print(f"ranked by {_printable(ranking.method)}")
    texts, position = saved.texts(), {int(r): i for i, r in enumerate(saved.points["row_id"])}
    for number, (row_id, score) in enumerate(ranking.head(args.k), start=1):
        print(_printable(f"{number:>3}  {score:.3f}  {row_id:>7}  {_snippet(texts[position[row_id]])}"))
    return 0


def _row_ids(text: str) -> list[int]:
    """Row ids written as "3,17, 42"."""
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise InputError(f"Row ids are whole numbers separated by commas, not '{text}'.") from None


def _explain(args: argparse.Namespace) -> int:
    from .explain import explain_hit

    saved = Workspace(args.home).open(args.map)
    explanation = explain_hit(saved, args.query, args.row_id)
    print(f"cosine: {explanation.cosine:.4f}  (row {args.row_id}; the sum of either side's shares)")
    print(f"hit: {_printable(' '.join(explanation.text.split())[:100])}")
    sides = (("query", explanation.query_tokens), ("hit", explanation.text_tokens))
    for name, side in sides:
        ranked = side.ranked(args.k)
        print(f"{name} tokens, largest share first ({len(ranked)} of {len(side.tokens)}):")
        for token, share in ranked:
            print(f"  {share:+.4f}  {_printable(token)}")
    return 0


def _cluster_config(args: argparse.Namespace) -> ClusterConfig:
    method = args.cluster_method or ("kmeans" if args.k else "hdbscan")
    return ClusterConfig(method=method, k=args.k, min_cluster_size=args.min_cluster_size,
                         space=args.cluster_space, seed=args.seed)


def _print_cluster_summary(saved) -> None:
    levels = saved.meta.cluster_levels
    if levels:
        print("clusters: " + "  ".join(f"{_printable(name)} {len(level.clusters)}" for name, level in levels.items())
              + f"  (list them with `explorer clusters \"{_printable(saved.name)}\"`)")


def _clusters(args: argparse.Namespace) -> int:
    from .map_clusters import add_clusters, cluster_levels, cluster_table

    workspace = Workspace(args.home)
    saved = workspace.open(args.map)
    if args.compute:
        saved = add_clusters(saved, config=_cluster_config(args), workspace=workspace)
    levels = cluster_levels(saved)
    for level in [args.level] if args.level else levels or ["coarse"]:
        table = cluster_table(saved, level)
        unclustered = saved.meta.cluster_levels[level].unclustered
        print(f"{_printable(level)}: {len(table)} clusters, {unclustered:,} points unclustered")
        for row in table.itertuples():
            print(f"{_printable(level)}\t{row.id}\t{row.size}\t{_printable(row.label)}")
    return 0


def _list(args: argparse.Namespace) -> int:
    maps = Workspace(args.home).list()
    if not maps:
        print("no saved maps yet: run `explorer build FILE`")
    for info in maps:
        print(f"{_printable(info.name)}\t{info.rows:,} rows\t{_printable(info.model_id)}\t{_printable(info.created)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    saved = Workspace(args.home).open(args.map)
    if args.format == "html":  # the map itself (points, labels, search), not its table
        from .html_export import build_page

        data, sizes, search = build_page(saved, search=args.search)
        # What the file holds and its size, before it is written.
        parts = ", ".join(f"{part} {size / 1e6:.2f} MB" for part, size in sizes.items() if size and part != "total")
        mode = f"by meaning ({search['model_id']})" if search["kind"] else f"keyword ({search['reason']})"
        print(f"search {mode}; {sizes['total'] / 1e6:.2f} MB: {parts}")
    else:
        data = EXPORT_WRITERS[args.format](export_points(saved))  # cluster names, with their ids beside them
    out = Path(args.output or f"{saved.name}.{args.format}")
    out.write_bytes(data)
    print(f"wrote {_printable(out)} ({len(saved.points):,} rows)")
    return 0


def _query(args: argparse.Namespace) -> int:
    from .draw import title_column
    from .sql_filter import condition_columns, sql_rows

    saved = Workspace(args.home).open(args.map)
    points = saved.points
    matched = sql_rows(points, args.condition)
    if args.csv:
        out = Path(args.csv)
        out.write_bytes(to_csv_bytes(export_points(saved, matched["row_id"].tolist())))
        print(f"wrote {_printable(out)} ({len(matched):,} of {len(points):,} rows)")
        return 0
    title = title_column(points, saved.meta.text_columns or [])
    named = condition_columns(points, args.condition)
    columns = list(dict.fromkeys(c for c in ["row_id", title, *named] if c is not None))
    shown = matched.head(args.limit)
    cells = [[_printable(_snippet(value, QUERY_CELL_CHARS)) for value in row]
             for row in shown[columns].astype("string").fillna("").itertuples(index=False)]
    header = [_printable(_snippet(c, QUERY_CELL_CHARS)) for c in columns]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(columns))]
    for line in [header, *cells]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    more = f" (the first {len(shown):,} shown: --limit)" if len(shown) < len(matched) else ""
    print(f"{len(matched):,} of {len(points):,} rows match{more}")
    return 0


QUERY_CELL_CHARS = 40
EXPORT_WRITERS = {"csv": to_csv_bytes, "parquet": to_parquet_bytes, "bib": to_bibtex_bytes, "ris": to_ris_bytes}


def _rename(args: argparse.Namespace) -> int:
    print(f"renamed to {_printable(Workspace(args.home).rename(args.map, args.new_name))}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    Workspace(args.home).delete(args.map)
    print(f"deleted {_printable(args.map)}")
    return 0


def _add_cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-method", choices=CLUSTER_METHODS, help="default hdbscan (kmeans with --k)")
    parser.add_argument("--k", type=int, help="number of KMeans clusters")
    parser.add_argument("--min-cluster-size", type=int, help="HDBSCAN (default: from the row count)")
    parser.add_argument("--cluster-space", choices=CLUSTER_SPACES, default="umap5",
                        help="cluster a 5-D UMAP of the embeddings (default) or the 2D map")


def _add(args: argparse.Namespace) -> int:
    from .grow import add_rows

    bar = _progress_bar(args)
    result = add_rows(args.map, Path(args.file), source_name=Path(args.file).name, workspace=Workspace(args.home),
                      **({"progress": bar} if bar else {}))
    if bar:
        bar.close()
    for note in result.notes:
        print(f"note: {_printable(note)}")
    print(f"added {result.added:,} rows to {_printable(result.saved.name)} as batch {result.batch} in "
          f"{result.seconds:.1f} s; no point moved")
    return 0


def _duplicates(args: argparse.Namespace) -> int:
    from .duplicates import near_duplicates

    saved = Workspace(args.home).open(args.map, mmap=True)
    found = near_duplicates(saved.embeddings, threshold=args.threshold, valid=saved.embedded)
    row_ids, texts = saved.points["row_id"].to_numpy(), saved.texts()
    how = "exact" if found.exact else "approximate: each row compared with its nearest 15"
    print(f"{len(found.groups):,} groups of rows at cosine >= {args.threshold:g} ({found.n_rows:,} rows, {how})")
    for group in found.groups[: args.limit]:
        ids = ",".join(str(row_ids[i]) for i in group)
        print(f"{len(group):>5}  {ids}  {_printable(_snippet(texts[group[0]]))}")
    if len(found.groups) > args.limit:
        print(f"... and {len(found.groups) - args.limit:,} more groups (--limit)")
    return 0


def _trust(args: argparse.Namespace) -> int:
    from .trust import add_trust, trust_summary

    workspace = Workspace(args.home)
    saved = add_trust(workspace.open(args.map), workspace=workspace)
    print(trust_summary(saved))
    scores = saved.points["trust"].to_numpy()
    order = [i for i in scores.argsort(kind="stable") if scores[i] == scores[i]][: args.limit]
    texts = saved.texts()
    print("least trusted points (trust, row_id, text):")
    for i in order:
        print(f"{scores[i]:.2f}  {saved.points['row_id'].iat[i]:>7}  {_printable(_snippet(texts[i]))}")
    return 0


def _app(args: argparse.Namespace) -> int:
    import subprocess
    from urllib.parse import quote_plus

    app = Path(__file__).resolve().parents[1] / "app.py"
    if not app.is_file():
        raise InputError(f"The app's entry point {app} is missing: run `explorer app` from a checkout of the "
                         "repository.")
    if args.map:
        Workspace(args.home).read_manifest(args.map)  # an unknown map fails here, with the maps there are
    if args.home:
        os.environ["EXPLORER_HOME"] = str(args.home)
    url = f"http://{'localhost' if args.host in ('127.0.0.1', 'localhost') else args.host}:{args.port}/"
    if args.map:
        url += f"?map={quote_plus(args.map)}"
    if args.host not in ("127.0.0.1", "localhost"):
        print(f"note: listening on {args.host}: anyone who can reach this machine on port {args.port} can open "
              "your maps and uploads", file=sys.stderr)
    print(f"open {_printable(url)}")
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", args.host,
               "--server.port", str(args.port), "--server.headless", "true"]
    return subprocess.call(command, cwd=app.parent)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `explorer` command."""
    parser = argparse.ArgumentParser(prog="explorer", description="Build and explore embedding maps.")
    parser.add_argument("--home", help="workspace folder (default: $EXPLORER_HOME or ~/.embedding-explorer)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="embed a table or images (a ZIP or folder), project and save the map")
    build.add_argument("file", help="CSV, TSV, JSON, JSONL, Parquet, XLSX, BibTeX (.bib) or RIS (.ris); images: a "
                       "ZIP, a folder or an image")
    build.add_argument("--text-column", action="append", help="a text column (repeat for several)")
    build.add_argument("--template", help='combine columns, e.g. "{title}. {abstract}"')
    build.add_argument("--model", help="sentence-transformers name or folder (default: bundled MiniLM; "
                       "for images clip-ViT-B-32, or 'pixels' for the offline image embedder)")
    build.add_argument("--mode", choices=MODES, default="auto",
                       help="text maps without --model: 'quality' (the transformer), 'fast' (TF-IDF + SVD fitted on "
                       "the data, ~1,000 rows/s, and nothing after it) or 'auto' (default: when the transformer "
                       "would take over a minute, the fast map first, then refined by the transformer in the same "
                       "command; Ctrl-C keeps the fast map and `explorer refine NAME` resumes)")
    build.add_argument("--device", choices=DEVICES, default="auto",
                       help="where the transformer runs, for the quality mode and a progressive build's refinement "
                       "(default: a GPU when torch sees one)")
    build.add_argument("--vector", dest="vectors", metavar="COL|FILE.npy",
                       help="keep your own vectors instead of embedding: a column of numeric lists (Parquet, JSON, "
                            "JSONL; JSON text in a CSV) or an .npy of shape (rows, dim); --model then names the "
                            "model that made them, for search by meaning (without it, search matches words)")
    build.add_argument("--x", metavar="COL", help="keep a 2D layout exactly instead of UMAP: the x column (with --y)")
    build.add_argument("--y", metavar="COL", help="the layout's y column (with --x)")
    build.add_argument("--neighbors", metavar="COL", help='keep Embedding Atlas\' neighbours column: per row '
                       '{"ids": [row numbers from 0], "distances": [...]}')
    build.add_argument("--images", metavar="ZIP", help="a ZIP of the images a table's path column names")
    build.add_argument("--path-column", help="the table's column of image paths inside --images")
    build.add_argument("--name", help="map name (default: the file name)")
    build.add_argument("--projection", choices=METHODS, default="umap")
    build.add_argument("--n-neighbors", type=int, default=15)
    build.add_argument("--min-dist", type=float, default=0.1)
    build.add_argument("--seed", type=int, default=42)
    build.add_argument("--no-cache", action="store_true", help="embed every text again")
    build.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    build.add_argument("--clusters", action="store_true", help="also find clusters and label them")
    build.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="where to embed and project: this process, or a Ray cluster (pip install "
                       "'embedding-explorer[ray]'); ray reads a CSV/Parquet file or a folder of them")
    build.add_argument("--address", help="ray: the cluster to use, e.g. ray://head:10001 or auto "
                       "(default: start a local Ray instance)")
    build.add_argument("--num-workers", type=int, help="ray: embedding actors (default: one per CPU, or per "
                       "GPU share with --num-gpus-per-worker)")
    build.add_argument("--num-gpus-per-worker", type=float, help="ray: GPUs per embedding actor (default 0: CPU)")
    build.add_argument("--sample-rows", type=int, help="ray: rows UMAP is fitted on; the rest are placed beside "
                       "their nearest sample rows (default 50,000)")
    _add_cluster_options(build)
    build.set_defaults(func=_build)

    clusters = sub.add_parser("clusters", help="list a map's clusters (level, id, size, label), largest first")
    clusters.add_argument("map")
    clusters.add_argument("--level", choices=("coarse", "fine"), help="only this level")
    clusters.add_argument("--compute", action="store_true", help="(re)compute the clusters first")
    clusters.add_argument("--seed", type=int, default=42)
    _add_cluster_options(clusters)
    clusters.set_defaults(func=_clusters)

    search = sub.add_parser("search", help="rank a map's rows by similarity to a query")
    search.add_argument("map")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--threshold", type=float)
    search.set_defaults(func=_search)

    screen = sub.add_parser("screen", help="list the unscreened rows most likely relevant given your decisions, "
                                           "or replay a labelled collection (--simulate) to measure the work saved")
    screen.add_argument("map")
    screen.add_argument("--relevant", default="", metavar="IDS", help="row ids judged relevant, e.g. 3,17,42")
    screen.add_argument("--irrelevant", default="", metavar="IDS", help="row ids judged irrelevant")
    screen.add_argument("-k", type=int, default=10)
    screen.add_argument("--features", choices=("vectors", "tfidf", "both"), default="vectors")
    screen.add_argument("--simulate", metavar="COLUMN=VALUE", help="rows where COLUMN is VALUE are the relevant ones")
    screen.add_argument("--seed", type=int, default=0, help="the simulation's random prior knowledge")
    screen.add_argument("--save", action="store_true", help="record --relevant/--irrelevant/--undo with the map")
    screen.add_argument("--undo", default="", metavar="IDS", help="with --save: forget these rows' decisions")
    screen.add_argument("--who", default="", help="who decides (default: $USER), kept in the map's history")
    screen.add_argument("--seeds", metavar="FILE", help="a .bib, .ris or list of ids/DOIs/titles: mark them relevant")
    screen.add_argument("--bib", metavar="OUT", help="write the relevant rows as BibTeX")
    screen.add_argument("--ris", metavar="OUT", help="write the relevant rows as RIS")
    screen.add_argument("--csv", metavar="OUT", help="write the decided rows, with their decision, as CSV")
    screen.set_defaults(func=_screen)

    explain = sub.add_parser("explain", help="show which tokens make a row match a query")
    explain.add_argument("map")
    explain.add_argument("query")
    explain.add_argument("row_id", type=int)
    explain.add_argument("-k", type=int, default=10, help="tokens to show per text (default 10)")
    explain.set_defaults(func=_explain)

    refine = sub.add_parser("refine", help="refine a fast map with the transformer (resumes an interrupted one)")
    refine.add_argument("map", nargs="?")
    refine.add_argument("--all", action="store_true", help="every map whose refinement is pending, oldest first")
    refine.add_argument("--model", dest="refine_model",
                        help="the model to refine with (default: the one the build recorded, the bundled MiniLM)")
    refine.add_argument("--device", choices=DEVICES, default="auto", help="default: a GPU when torch sees one")
    refine.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    refine.set_defaults(func=_refine)

    sub.add_parser("list", help="list saved maps").set_defaults(func=_list)

    add = sub.add_parser("add", help="add a table's rows to a map, placed on its layout without moving it")
    add.add_argument("map")
    add.add_argument("file", help="a table with the map's text columns (a ZIP of images for an image map)")
    add.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add.set_defaults(func=_add)

    duplicates = sub.add_parser("duplicates", help="list groups of near-duplicate rows (size, row_ids, text)")
    duplicates.add_argument("map")
    duplicates.add_argument("--threshold", type=float, default=0.95, help="cosine similarity (default: 0.95)")
    duplicates.add_argument("--limit", type=int, default=50, help="groups to list (default: 50)")
    duplicates.set_defaults(func=_duplicates)

    trust = sub.add_parser("trust", help="measure where the map misleads: a trust column and the map's mean")
    trust.add_argument("map")
    trust.add_argument("--limit", type=int, default=10, help="least trusted points to list (default: 10)")
    trust.set_defaults(func=_trust)

    app = sub.add_parser("app", help="start the web app (on MAP), for this machine only unless --host says so")
    app.add_argument("map", nargs="?")
    app.add_argument("--host", default="127.0.0.1", help="0.0.0.0 shares the app with the network")
    app.add_argument("--port", type=int, default=8501)
    app.set_defaults(func=_app)

    export = sub.add_parser("export", help="write a map's table as CSV or Parquet, or its entries as BibTeX or RIS")
    export.add_argument("map")
    export.add_argument("--format", choices=(*EXPORT_WRITERS, "html"), default="csv",
                        help="bib and ris: a bibliography's own entries, or entries built from the title, "
                        "authors, year, DOI... columns; html: the map as one offline page")
    export.add_argument("--search", choices=("meaning", "keyword"), default=None,
                        help="html only: put the map's model in the page to search by meaning (the default where "
                        "the model can run in a browser: the bundled or another sentence-transformers model, or the "
                        "fast mode's TF-IDF), or keep a keyword search only (a smaller file)")
    export.add_argument("-o", "--output")
    export.set_defaults(func=_export)

    query = sub.add_parser("query", help="list (or write as CSV) a map's rows for which a SQL condition holds")
    query.add_argument("map")
    query.add_argument("condition", help="a SQL condition over the map's columns, run by DuckDB, e.g. "
                       "\"year >= 2020 AND venue = 'NeurIPS'\" (no files, no other statements)")
    query.add_argument("--csv", metavar="OUT.csv", help="write the matching rows as CSV, as `explorer export` does")
    query.add_argument("--limit", type=int, default=20, help="rows to print (default: 20)")
    query.set_defaults(func=_query)

    rename = sub.add_parser("rename", help="rename a saved map")
    rename.add_argument("map")
    rename.add_argument("new_name")
    rename.set_defaults(func=_rename)

    delete = sub.add_parser("delete", help="delete a saved map")
    delete.add_argument("map")
    delete.set_defaults(func=_delete)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; user errors print one line and exit with status 2."""
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(_PrintableFormatter("%(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    try:
        return args.func(args)
    except (ExplorerError, OSError) as exc:
        # One line, whatever the message holds: scripts and people read just the first.
        print(f"error: {_printable(' '.join(str(exc).split()))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
