"""Progressive builds (issue 15): the fast map first with its refinement pending, then the refinement
(chunked, resumable, saved whole, found again after a rename) and the worker that runs them one at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from explorer import (
    ClusterConfig,
    HashingEmbedder,
    ProjectionConfig,
    Workspace,
    build_map,
    load_embedder,
    project,
    search_map,
)
from explorer.cli import main
from explorer.embed import EmbeddingCache
from explorer.map_clusters import cluster_table, rename_cluster
from explorer.modes import choose_mode, refine_model_spec
from explorer.refine import (
    GONE,
    LAYOUT_START,
    REFINE_DONE,
    REFINE_FAILED,
    STOPPED,
    layout_displacement,
    pending_refinements,
    refine_map,
    vector_texts,
)
from explorer.texts import title_stage_column
from explorer.worker import CANCELLED, DONE, FAILED, RefinementWorker

TESTS = Path(__file__).resolve().parent


class CountingHashing(HashingEmbedder):
    """The hashing embedder (same model id, so the same cache keys) that counts the texts it embeds,
    can sleep per text (a "slow transformer") and can fail after some calls (a crash part-way)."""

    def __init__(self, *, delay: float = 0.0, fail_after_calls: int | None = None):
        super().__init__(dimension=64)
        self.delay, self.fail_after_calls = delay, fail_after_calls
        self.calls = self.texts = 0
        self.active = self.most_active = 0
        self._lock = threading.Lock()

    def embed(self, texts, **options):
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
                raise RuntimeError("the embedder crashed")
            self.calls += 1
            self.texts += len(texts)
            if self.delay:
                time.sleep(self.delay * len(texts))
            return super().embed(texts, **options)
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def progressive(monkeypatch):
    """Every table takes the progressive build, however small (the real threshold is a minute of transformer)."""
    monkeypatch.setenv("EXPLORER_QUALITY_BUDGET_SECONDS", "0.001")


@pytest.fixture
def table() -> pd.DataFrame:
    """120 rows in three fields, every text distinct (so each is embedded once, none is a cache hit)."""
    topics = {
        "biology": "protein folding enzyme cell gene sequence membrane",
        "physics": "quantum particle field energy relativity photon",
        "economics": "market price inflation trade labour wage",
    }
    rows = []
    for field, words in topics.items():
        vocab = words.split()
        for i in range(40):
            text = " ".join(vocab[(i * 3 + j) % len(vocab)] for j in range(10))
            rows.append({"title": f"{vocab[i % len(vocab)]} note {field} {i}", "abstract": f"{text} item{i}",
                         "field": field})
    return pd.DataFrame(rows)


def _pending_map(table, workspace, *, name="papers", clusters=None):
    result = build_map(table, name=name, workspace=workspace, clusters=clusters)
    assert result.refine_pending and result.saved.manifest["model_id"].startswith("tfidf-svd")
    return result.saved


# ---------------------------------------------------------------- the build and the modes


def test_auto_mode_builds_the_fast_map_with_its_refinement_pending(progressive, table, workspace):
    saved = _pending_map(table, workspace)
    section = saved.manifest["refinement"]
    # The bundled transformer, in int8 on the CPU (modes.REFINE_QUANTIZE).
    assert section["state"] == "pending" and section["model"] == refine_model_spec()
    assert section["from_model"] == saved.manifest["model_id"] and len(saved.manifest["map_id"]) == 32
    assert pending_refinements(workspace) == ["papers"]
    # The fast mode asked for by name stops at the fast map; a named model is embedded as asked.
    fast = build_map(table, name="fast", mode="fast", workspace=workspace)
    named = build_map(table, name="named", model=HashingEmbedder(dimension=32), workspace=workspace)
    assert not fast.refine_pending and not named.refine_pending
    assert pending_refinements(workspace) == ["papers"]


def test_the_mode_choice_gives_both_waits():
    big = choose_mode(12_000, 1_000)
    assert big.mode == "fast" and big.refine and big.search_seconds > big.estimated_seconds
    assert big.summary.startswith("map in about ") and ", search by meaning in about " in big.summary
    assert "search by meaning in about" in big.reason
    small = choose_mode(100, 200)
    assert small.mode == "quality" and not small.refine and small.search_seconds == small.estimated_seconds
    assert choose_mode(12_000, 1_000, "fast").search_seconds is None
    assert big.automatic, "12k abstracts refine by themselves"
    huge = choose_mode(100_000, 1_000)
    assert huge.refine and not huge.automatic, "hours of transformer start only when asked"
    assert "when you ask" in huge.summary and "only when you ask" in huge.reason
    # With titles, search by meaning comes with them, long before the whole text is read.
    titled = choose_mode(12_000, 1_000, title_chars=80)
    assert titled.refine and titled.automatic and titled.search_seconds < big.search_seconds / 3
    assert "search by meaning on the titles in about" in titled.reason and "on the whole text in about" in titled.reason


def test_a_refinement_too_long_for_this_cpu_waits_to_be_asked(progressive, table, workspace, monkeypatch):
    import explorer.modes as modes

    monkeypatch.setattr(modes, "REFINE_AUTO_MAX_SECONDS", 0.0)
    saved = _pending_map(table, workspace)
    assert saved.manifest["refinement"]["automatic"] is False
    assert pending_refinements(workspace) == ["papers"], "explorer refine --all still finds it"
    assert pending_refinements(workspace, automatic_only=True) == [], "a server start does not start it"
    worker = RefinementWorker(workspace)
    try:
        assert worker.resume_pending() == []
    finally:
        worker.close()


def test_the_refinement_reads_128_tokens_of_the_bundled_model_in_int8(progressive, table, workspace, monkeypatch):
    import explorer.refine as refine
    from explorer.embedders.transformer import BUNDLED_MODEL, quantize_of

    asked = {}

    def recording_load(spec=None, **options):
        asked.update(spec=spec, **options)
        return CountingHashing()

    saved = _pending_map(table, workspace)
    assert saved.manifest["refinement"]["max_seq_length"] == 128
    monkeypatch.setattr(refine, "load_embedder", recording_load)
    refine_map("papers", workspace=workspace)
    assert asked["max_seq_length"] == 128, "the length the build recorded"
    # The step modes chose (int8 on the CPU; a GPU runs it in fp32), recorded by the build.
    assert asked["spec"] == saved.manifest["refinement"]["model"] == f"{BUNDLED_MODEL}#int8"
    assert quantize_of(asked["spec"]) == "int8"


# ---------------------------------------------------------------- the refinement


def test_refinement_saves_a_new_version_with_the_new_model(progressive, table, workspace):
    fast = _pending_map(table, workspace)
    before_hits = search_map(fast, "quantum photon energy", k=10).indices
    fast_stamp = fast.stamp
    result = refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64), chunk_rows=25)
    assert result.state == REFINE_DONE and result.rows == len(table) and result.n_cached == 0
    refined = workspace.open("papers")
    manifest = refined.manifest
    assert manifest["model_id"] == "hashing-64" and manifest["map_id"] == fast.manifest["map_id"]
    assert manifest["refinement"]["state"] == "done" and manifest["refinement"]["from_model"] == fast.manifest["model_id"]
    assert manifest["projection"]["init"] == LAYOUT_START
    assert refined.embeddings.shape == (len(table), 64) and refined.stamp != fast_stamp
    # The points kept their rows and columns; only the layout and the vectors are new.
    assert refined.points["row_id"].tolist() == fast.points["row_id"].tolist()
    assert not np.allclose(refined.coords, fast.coords)
    moved = manifest["refinement"]["displacement"]
    assert moved == result.displacement and 0 <= moved["median"] <= moved["p90"] <= moved["max"] <= 1
    after_hits = search_map(refined, "quantum photon energy", k=10).indices
    assert set(table["field"].iloc[after_hits]) == {"physics"} and list(after_hits) != list(before_hits)
    assert pending_refinements(workspace) == []
    assert refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64)).state == "not pending"


def test_layout_displacement_measures_what_the_map_shows():
    rng = np.random.default_rng(0)
    layout = rng.normal(size=(200, 2)).astype(np.float32)
    # Scaling and shifting the whole map changes nothing the user sees once zoomed to fit.
    assert layout_displacement(layout, layout * 3 + 7)["max"] < 1e-5
    shuffled = layout_displacement(layout, layout[rng.permutation(200)])
    assert shuffled["median"] > 0.1 and shuffled["rows"] == 200


def test_umap_started_from_a_layout_stays_close_to_it(table, tmp_path):
    vectors = HashingEmbedder(dimension=64).embed([f"{t} {a}" for t, a in zip(table.title, table.abstract,
                                                                                 strict=True)])
    config = ProjectionConfig(seed=1)
    spectral = project(vectors, config=config).coords
    # The same map turned a quarter: a start UMAP's own (spectral) start would not reproduce.
    start = np.column_stack([-spectral[:, 1], spectral[:, 0]])
    from_start = project(vectors, config=config, init=start, cache_dir=tmp_path).coords
    assert layout_displacement(start, from_start)["median"] < layout_displacement(start, spectral)["median"] / 2
    # The start is part of the layout cache's key: another start is not served the first one's layout.
    again = project(vectors, config=config, init=spectral, cache_dir=tmp_path).coords
    assert layout_displacement(spectral, again)["median"] < layout_displacement(spectral, from_start)["median"]
    with pytest.raises(ValueError, match="init must be"):
        project(vectors, config=config, init=start[:10])


def test_a_crash_part_way_keeps_the_fast_map_and_the_rerun_resumes_from_the_cache(progressive, table, workspace):
    fast = _pending_map(table, workspace)
    crashing = CountingHashing(fail_after_calls=2)
    with pytest.raises(RuntimeError, match="crashed"):
        refine_map("papers", workspace=workspace, model=crashing, chunk_rows=30)
    kept = workspace.open("papers")
    assert kept.manifest["model_id"] == fast.manifest["model_id"] and kept.manifest["refinement"]["state"] == REFINE_FAILED
    assert np.array_equal(kept.embeddings, fast.embeddings)
    # The two chunks of titles embedded before the crash are in the cache: the rerun embeds the other 60 titles
    # and every row's whole text.
    again = CountingHashing()
    result = refine_map("papers", workspace=workspace, model=again, chunk_rows=30)
    assert result.state == REFINE_DONE and result.n_cached == 60 and again.texts == 2 * len(table) - 60


def test_a_refinement_killed_in_another_process_resumes(progressive, table, workspace, tmp_path):
    _pending_map(table, workspace)
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); from test_refine import CountingHashing; "
            "from explorer import Workspace; from explorer.refine import refine_map; "
            f"refine_map('papers', workspace=Workspace({str(workspace.root)!r}), "
            "model=CountingHashing(delay=0.02), chunk_rows=10)")
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    cache = EmbeddingCache(workspace.cache_path)
    hashes = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if workspace.cache_path.exists():
                with cache._connect() as db:
                    hashes = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
                if hashes >= 20:
                    break
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert hashes and 20 <= hashes < len(table), "the child was not killed part-way"
    kept = Workspace(workspace.root).open("papers")
    assert kept.manifest["refinement"]["state"] == "pending" and kept.manifest["model_id"].startswith("tfidf")
    again = CountingHashing()
    result = refine_map("papers", workspace=Workspace(workspace.root), model=again, chunk_rows=10)
    assert result.state == REFINE_DONE and result.n_cached >= 20
    assert again.texts == 2 * len(table) - result.n_cached  # its titles, then its whole texts


def test_a_stopped_refinement_stays_pending(progressive, table, workspace):
    _pending_map(table, workspace)
    calls = iter(range(100))
    result = refine_map("papers", workspace=workspace, model=CountingHashing(), chunk_rows=40,
                        should_stop=lambda: next(calls) >= 1)
    assert result.state == STOPPED and "explorer refine" in result.message
    assert pending_refinements(workspace) == ["papers"]


def test_a_map_renamed_during_its_refinement_gets_it_under_the_new_name(progressive, table, workspace):
    _pending_map(table, workspace)
    renamed = []

    def rename_once() -> bool:
        if not renamed:
            renamed.append(workspace.rename("papers", "arXiv papers"))
        return False

    result = refine_map("papers", workspace=workspace, model=CountingHashing(), chunk_rows=40, should_stop=rename_once)
    assert result.state == REFINE_DONE and result.name == "arXiv papers"
    assert not workspace.exists("papers") and workspace.open("arXiv papers").manifest["model_id"] == "hashing-64"


def test_a_map_deleted_during_its_refinement_is_left_deleted(progressive, table, workspace):
    _pending_map(table, workspace)
    deleted = []

    def delete_once() -> bool:
        if not deleted:
            deleted.append(workspace.delete("papers"))
        return False

    result = refine_map("papers", workspace=workspace, model=CountingHashing(), chunk_rows=40, should_stop=delete_once)
    assert result.state == GONE and result.saved is None and "deleted" in result.message
    assert workspace.list() == []


def test_a_rebuilt_map_is_not_overwritten_by_the_old_refinement(progressive, table, workspace):
    _pending_map(table, workspace)
    rebuilt = []

    def rebuild_once() -> bool:
        if not rebuilt:
            rebuilt.append(build_map(table.head(50), name="papers", mode="fast", workspace=workspace))
        return False

    result = refine_map("papers", workspace=workspace, model=CountingHashing(), chunk_rows=40, should_stop=rebuild_once)
    assert result.state == GONE and len(workspace.open("papers").points) == 50


def test_clusters_are_recomputed_and_renamed_labels_follow_their_rows(progressive, table, workspace):
    fast = _pending_map(table, workspace, clusters=ClusterConfig(method="kmeans", k=3, space="2d"))
    clusters = cluster_table(fast, "coarse")
    biggest = int(clusters.iloc[0]["id"])
    rename_cluster(workspace, "papers", "coarse", biggest, "My favourite group")
    result = refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64), chunk_rows=60)
    refined = result.saved
    section = refined.manifest["clusters"]
    assert section["config"]["method"] == "kmeans" and "cluster" in refined.points
    carried = refined.manifest["refinement"]["labels"]
    assert carried["carried"] + carried["dropped"] == 1
    labels = cluster_table(refined, "coarse")["label"].tolist()
    assert ("My favourite group" in labels) == (carried["carried"] == 1)


# ---------------------------------------------------------------- the worker


def _wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_the_worker_runs_one_refinement_at_a_time_in_order(progressive, table, workspace):
    for name in ("first", "second", "third"):
        _pending_map(table, workspace, name=name)
    slow = CountingHashing(delay=0.002)
    worker = RefinementWorker(workspace, model=slow, chunk_rows=20)
    try:
        jobs = [worker.submit(name) for name in ("first", "second", "third")]
        assert worker.submit("first").map_id == jobs[0].map_id  # asked twice, queued once
        assert [j.state for j in jobs][1:] == ["queued", "queued"]
        running = _wait_for(lambda: (s := worker.status("first")) and s.rows_done > 0 and s)
        assert running.state == "running" and running.rows_total == len(table)
        assert worker.status("third").state == "queued"
        finished = [worker.wait(name, timeout=60) for name in ("first", "second", "third")]
    finally:
        worker.close()
    assert [j.state for j in finished] == [DONE, DONE, DONE]
    assert finished[0].finished <= finished[1].finished <= finished[2].finished
    assert slow.most_active == 1 and slow.texts == 2 * len(table)  # titles and texts; the 2nd and 3rd maps: cache hits
    assert all(workspace.read_manifest(n)["model_id"] == "hashing-64" for n in ("first", "second", "third"))
    assert finished[0].stamp == workspace.stamp("first")


def test_the_worker_cancels_resumes_and_survives_a_failure(progressive, table, workspace):
    _pending_map(table, workspace, name="broken")
    _pending_map(table.head(60), workspace, name="fine")
    _pending_map(table.head(90), workspace, name="later")
    worker = RefinementWorker(workspace, model=CountingHashing(fail_after_calls=0), chunk_rows=20)
    try:
        assert [j.name for j in worker.resume_pending()] == ["broken", "fine", "later"]
        worker.cancel("later")
        assert worker.wait("broken", timeout=30).state == FAILED
        assert "crashed" in worker.status("broken").message
    finally:
        worker.close()
    assert worker.status("later").state == CANCELLED
    # The failed map is not retried by itself; the others stay pending for the next worker.
    assert pending_refinements(workspace) == ["fine", "later"]
    second = RefinementWorker(workspace, model=CountingHashing(), chunk_rows=20, pause_seconds=0.01)
    try:
        second.resume_pending()
        assert second.wait("fine", timeout=30).state == DONE and second.wait("later", timeout=30).state == DONE
    finally:
        second.close()
    assert workspace.read_manifest("broken")["refinement"]["state"] == REFINE_FAILED


def test_the_worker_stops_part_way_when_closed(progressive, table, workspace):
    _pending_map(table, workspace)
    worker = RefinementWorker(workspace, model=CountingHashing(delay=0.01), chunk_rows=10)
    worker.submit("papers")
    _wait_for(lambda: worker.status("papers").rows_done >= 10)
    worker.close()
    status = worker.status("papers")
    assert status.state == CANCELLED and status.outcome == STOPPED and 10 <= status.rows_done < len(table)
    assert pending_refinements(workspace) == ["papers"]


# ---------------------------------------------------------------- the command line


def test_explorer_refine_names_or_all(progressive, table, workspace, capsys):
    _pending_map(table, workspace, name="one")
    _pending_map(table, workspace, name="two")
    home = ["--home", str(workspace.root)]
    assert main([*home, "refine"]) == 2
    assert main([*home, "refine", "one", "--model", "hashing-64", "-q"]) == 0
    out = capsys.readouterr().out
    assert "refined: one  model: hashing-64" in out and "points moved: median" in out
    assert main([*home, "refine", "--all", "--model", "hashing-64", "-q"]) == 0
    assert "refined: two" in capsys.readouterr().out
    assert main([*home, "refine", "--all", "-q"]) == 0 and "no refinement pending" in capsys.readouterr().out
    assert main([*home, "refine", "one", "-q"]) == 2  # done already


@pytest.mark.slow
def test_explorer_build_shows_the_fast_map_then_refines_with_the_transformer(progressive, table, tmp_path, capsys):
    source = tmp_path / "papers.csv"
    table.to_csv(source, index=False)
    home = tmp_path / "cli-home"
    assert main(["--home", str(home), "build", str(source), "--projection", "pca", "-q"]) == 0
    out = capsys.readouterr().out
    # Each stage as it is saved: the fast map, search by meaning on the titles, then the whole text.
    assert (out.index("ready: papers (fast map; search reads words")
            < out.index("stage titles: papers is saved; search reads meaning, on the titles")
            < out.index("stage full: papers is saved; search reads meaning, on the whole text")
            < out.index("refined: papers"))
    manifest = Workspace(home).read_manifest("papers")
    # The refinement reads the bundled MiniLM at 128 tokens (modes.REFINE_MAX_TOKENS), in int8 on this CPU.
    assert manifest["model_id"] == load_embedder(refine_model_spec(), max_seq_length=128).model_id
    assert manifest["model_id"].endswith("#int8#len128")
    assert manifest["refinement"]["state"] == "done"
    assert main(["--home", str(home), "build", str(source), "--name", "fast only", "--mode", "fast", "-q"]) == 0
    out = capsys.readouterr().out
    assert "ready:" not in out and Workspace(home).read_manifest("fast only")["model_id"].startswith("tfidf")


def test_ctrl_c_during_the_cli_refinement_keeps_the_fast_map(progressive, table, workspace, capsys, monkeypatch):
    import explorer.refine

    _pending_map(table, workspace)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(explorer.refine, "refine_map", interrupted)
    assert main(["--home", str(workspace.root), "refine", "papers", "-q"]) == 130
    assert 'explorer refine "papers"` resumes' in capsys.readouterr().err
    assert pending_refinements(workspace) == ["papers"]


def test_a_map_another_process_is_refining_is_left_to_it(progressive, table, workspace):
    from explorer.refine import BUSY, _refining

    saved = _pending_map(table, workspace)
    with _refining(workspace, saved.manifest["map_id"]) as free:
        assert free
        result = refine_map("papers", workspace=workspace, model=CountingHashing())
    assert result.state == BUSY and pending_refinements(workspace) == ["papers"]


# ---------------------------------------------------------------- stages: titles first, then the whole text


def test_titles_first_search_by_meaning_on_them_while_the_map_stays_as_drawn(progressive, table, workspace):
    fast = _pending_map(table, workspace, clusters=ClusterConfig(min_cluster_size=10))
    assert fast.meta.refinement.stage == "fast" and fast.meta.refinement.title_column == "title"
    fast_stamp, seen = fast.stamp, {}

    def on_stage(stage, saved):
        seen[stage] = saved
        # What the map is at this moment, read back from the workspace (the version the app would open).
        seen[stage + " on disk"] = workspace.open("papers")

    result = refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64), chunk_rows=40,
                        on_stage=on_stage)
    assert result.state == REFINE_DONE and list(seen) == ["titles", "titles on disk", "full", "full on disk"]
    titles = seen["titles on disk"]
    assert titles.meta.refinement.state == "pending" and titles.meta.refinement.stage == "titles"
    assert titles.manifest["model_id"] == "hashing-64" and titles.stamp != fast_stamp
    # The map as drawn: same layout and clusters; only search reads new vectors, those of the titles.
    assert np.array_equal(titles.coords, fast.coords)
    assert cluster_table(titles).equals(cluster_table(fast))
    assert np.allclose(titles.embeddings, HashingEmbedder(dimension=64).embed(table["title"].tolist()), atol=1e-6)
    hits = search_map(titles, "photon note physics", k=10).indices
    assert set(table["field"].iloc[hits]) == {"physics"}
    full = seen["full on disk"]
    assert full.meta.refinement.state == "done" and full.meta.refinement.stage == "full"
    assert set(full.meta.refinement.seconds) >= {"titles", "embed", "project", "total"}
    texts = [f"{t}. {a}" for t, a in zip(table.title, table.abstract, strict=True)]
    assert np.allclose(full.embeddings, HashingEmbedder(dimension=64).embed(texts), atol=1e-6)


def test_a_refinement_stopped_after_its_titles_resumes_with_the_whole_text(progressive, table, workspace):
    _pending_map(table, workspace)
    stages = []
    first = CountingHashing()
    result = refine_map("papers", workspace=workspace, model=first, chunk_rows=40,
                        on_stage=lambda stage, saved: stages.append(stage), should_stop=lambda: bool(stages))
    assert result.state == STOPPED and stages == ["titles"] and first.texts == len(table)
    kept = workspace.open("papers")
    assert kept.meta.refinement.stage == "titles" and pending_refinements(workspace) == ["papers"]
    again = CountingHashing()
    result = refine_map("papers", workspace=workspace, model=again, chunk_rows=40,
                        on_stage=lambda stage, saved: stages.append(stage))
    # The titles are not read again: only the whole text is left.
    assert result.state == REFINE_DONE and stages == ["titles", "full"] and again.texts == len(table)


def test_a_table_without_titles_is_refined_in_one_stage(progressive, table, workspace):
    result = build_map(table[["abstract", "field"]], name="papers", workspace=workspace)
    assert result.saved.meta.refinement.title_column is None
    stages = []
    counting = CountingHashing()
    refined = refine_map("papers", workspace=workspace, model=counting, on_stage=lambda s, saved: stages.append(s))
    assert refined.state == REFINE_DONE and stages == ["full"] and counting.texts == len(table)


@pytest.mark.parametrize(("columns", "expected"), [
    ({"title": ["Short"] * 5, "abstract": ["a long text " * 20] * 5}, "title"),
    ({"Headline": ["Short"] * 5, "body": ["a long text " * 20] * 5}, "Headline"),
    ({"heading": ["A paper's name"] * 5, "summary": ["a long text " * 20] * 5}, "heading"),  # shortest
    ({"abstract": ["a long text " * 20] * 5}, None),  # one column: the title is the whole text
    ({"title": ["a long text " * 20] * 5, "abstract": ["another long text " * 15] * 5}, None),  # no short one
    ({"title": [None] * 5, "abstract": ["a long text " * 20] * 5}, None),  # no titles at all
])
def test_the_title_column_is_named_or_detected(columns, expected):
    frame = pd.DataFrame(columns)
    assert title_stage_column(frame, list(columns)) == expected


def test_a_hit_on_the_titles_is_explained_by_its_title(progressive, table, workspace, monkeypatch):
    from explorer import explain

    _pending_map(table, workspace)
    stages = []
    refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64),
               on_stage=lambda stage, saved: stages.append(stage), should_stop=lambda: bool(stages))
    titles = workspace.open("papers")
    assert vector_texts(titles) == table["title"].tolist()
    read = []
    monkeypatch.setattr(explain, "explain_match", lambda query, text, embedder: read.append(text))
    explain.explain_hit(titles, "photon", 3, embedder=load_embedder("hashing-64"))
    assert read == [table["title"].iloc[3]], "the score came from the title: the explanation reads it"
    refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64))
    assert vector_texts(workspace.open("papers"))[3] == f"{table.title.iloc[3]}. {table.abstract.iloc[3]}"


def _laid_out_inputs(monkeypatch) -> list[np.ndarray]:
    """What the refinement passes to UMAP, recorded."""
    import explorer.refine as refine_module

    seen, real = [], refine_module.project
    monkeypatch.setattr(refine_module, "project", lambda x, **options: seen.append(np.asarray(x)) or real(x, **options))
    return seen


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_the_refined_layout_reads_the_transformer_s_vectors_joined_with_the_fast_map_s(
        progressive, table, workspace, tmp_path, monkeypatch):
    from explorer import embedder_for
    from explorer.refine import FAST_LAYOUT_WEIGHT

    fast = _pending_map(table, workspace)
    fast_input = np.asarray(embedder_for(fast).layout_vectors(np.asarray(fast.embeddings)))
    seen = _laid_out_inputs(monkeypatch)
    assert refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64)).state == REFINE_DONE
    refined = workspace.open("papers")
    (joined,) = seen
    assert joined.shape == (len(table), 64 + fast_input.shape[1])
    np.testing.assert_allclose(np.linalg.norm(joined, axis=1), 1.0, rtol=1e-5)
    # The transformer's unit rows beside the fast map's, weighted: the cosine the layout reads is both.
    np.testing.assert_allclose(_unit(joined[:, :64]), _unit(np.asarray(refined.embeddings)), atol=1e-5)
    np.testing.assert_allclose(_unit(joined[:, 64:]), _unit(fast_input), atol=1e-5)
    ratio = np.linalg.norm(joined[:, 64:], axis=1) / np.linalg.norm(joined[:, :64], axis=1)
    np.testing.assert_allclose(ratio, FAST_LAYOUT_WEIGHT, rtol=1e-4)
    projection = refined.manifest["projection"]
    assert projection["joined"] == {"model_id": fast.manifest["model_id"], "weight": FAST_LAYOUT_WEIGHT}
    assert projection["input_dimension"] == joined.shape[1]
    # Search reads the transformer's vectors alone.
    assert refined.embeddings.shape == (len(table), 64)

    # Resumed after its titles (the map then holds the titles' vectors), the fast map's input is made again
    # from the texts through the fast model the workspace keeps: the same input.
    other = Workspace(tmp_path / "other")
    _pending_map(table, other)
    stages: list[str] = []
    refine_map("papers", workspace=other, model=HashingEmbedder(dimension=64),
               on_stage=lambda stage, saved: stages.append(stage), should_stop=lambda: bool(stages))
    assert other.open("papers").meta.refinement.stage == "titles"
    assert refine_map("papers", workspace=other, model=HashingEmbedder(dimension=64)).state == REFINE_DONE
    np.testing.assert_allclose(seen[-1], joined, atol=1e-5)


def test_without_the_fast_model_the_refined_map_is_laid_out_from_the_transformer_alone(
        progressive, table, workspace, monkeypatch):
    import shutil

    from explorer.embedders.tfidf import models_dir

    _pending_map(table, workspace)
    shutil.rmtree(models_dir(workspace.root))
    seen = _laid_out_inputs(monkeypatch)
    assert refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64)).state == REFINE_DONE
    refined = workspace.open("papers")
    assert seen[0].shape == (len(table), 64) and refined.manifest["projection"]["joined"] is None
