"""Two things happening to a map at once (issue 25): versioned saves merge what is independent, raise
MapChangedError on the rest, follow renames, and builds reserve their names atomically.

The unit tests force each interleaving of the issue's findings; the last test lets processes and threads
race on one workspace for a fixed time and checks that nothing a successful operation did was lost."""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

from explorer import ClusterConfig, HashingEmbedder, MapChangedError, MapNotFoundError, Workspace, build_map
from explorer.map_clusters import cluster_table, rename_cluster
from explorer.project import ProjectionConfig
from explorer.refine import REFINE_DONE, refine_map
from explorer.screening import RELEVANT, decisions_of
from explorer.store import RESERVED_FILE, STALE_TMP_SECONDS, VERSION_KEY
from explorer.trust import TRUST_COLUMN, add_trust

PCA = ProjectionConfig(method="pca")
KMEANS = ClusterConfig(method="kmeans", k=3, space="2d")


@pytest.fixture
def progressive(monkeypatch):
    """Every table takes the progressive build (a fast map, its refinement pending), however small."""
    monkeypatch.setenv("EXPLORER_QUALITY_BUDGET_SECONDS", "0.001")


def topic_table(rows_per_field: int = 20, *, tag: str = "") -> pd.DataFrame:
    """Rows in three fields, every text distinct; ``tag`` marks whose rows they are."""
    topics = {"biology": "protein folding enzyme cell gene sequence membrane",
              "physics": "quantum particle field energy relativity photon",
              "economics": "market price inflation trade labour wage"}
    rows = []
    for field, words in topics.items():
        vocab = words.split()
        for i in range(rows_per_field):
            text = " ".join(vocab[(i * 3 + j) % len(vocab)] for j in range(10))
            rows.append({"title": f"{vocab[i % len(vocab)]} note {field} {i}", "abstract": f"{text} item{i} {tag}",
                         "owner": tag})
    return pd.DataFrame(rows)


def pending_map(workspace: Workspace, name: str = "papers", *, clusters: ClusterConfig | None = None):
    result = build_map(topic_table(), name=name, workspace=workspace, projection=PCA, clusters=clusters)
    assert result.refine_pending
    return result.saved


def maps_by_id(workspace: Workspace) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for info in workspace.list():
        found.setdefault(info.extra.get("map_id"), []).append(info.name)
    return found


# ---------------------------------------------------------------- the findings, forced


def test_a_trust_column_saved_while_the_refinement_ran_is_kept(progressive, workspace):
    pending_map(workspace, clusters=KMEANS)
    measured = []

    def trust_meanwhile(stage: str, fraction: float, message: str = "") -> None:
        # The refinement has read the latest map and is clustering its new layout: trust lands now.
        if stage == "cluster" and not measured:
            measured.append(add_trust(workspace.open("papers"), workspace=workspace))

    result = refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64), progress=trust_meanwhile)
    assert measured and result.state == REFINE_DONE
    final = workspace.open("papers")
    assert final.manifest["model_id"] == "hashing-64" and final.manifest["refinement"]["state"] == "done"
    assert "trust" in final.manifest and TRUST_COLUMN in final.points  # before: the manifest said so, no column


def test_a_rename_while_the_refinement_saves_leaves_one_map(progressive, workspace, monkeypatch):
    pending_map(workspace)
    real_save = workspace.save
    renamed = []

    def save_after_a_rename(name, **parts):
        if not renamed:  # the refinement found its map as "papers"; a rename lands before its save
            renamed.append(workspace.rename("papers", "arXiv papers"))
        return real_save(name, **parts)

    monkeypatch.setattr(workspace, "save", save_after_a_rename)
    result = refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64))
    assert result.state == REFINE_DONE and result.name == "arXiv papers"
    assert [m.name for m in workspace.list()] == ["arXiv papers"]  # before: "papers" came back, fast, beside it
    assert all(len(names) == 1 for names in maps_by_id(workspace).values())
    assert workspace.open("arXiv papers").manifest["refinement"]["state"] == "done"


def test_trust_on_a_copy_read_before_the_refinement_keeps_the_refinement(progressive, workspace):
    pending_map(workspace)
    stale = workspace.open("papers")
    refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64))
    add_trust(stale, workspace=workspace)
    final = workspace.open("papers")
    # Before: the fast model's id came back and the refinement was pending again.
    assert final.manifest["model_id"] == "hashing-64" and final.manifest["refinement"]["state"] == "done"
    assert TRUST_COLUMN in final.points and "trust" in final.manifest
    assert np.array_equal(final.embeddings, workspace.open("papers").embeddings)


def test_two_builds_of_one_file_started_together_get_two_names(workspace):
    class Slow(HashingEmbedder):
        def embed(self, texts, **options):
            time.sleep(0.3)  # both builds are past their start before either saves
            return super().embed(texts, **options)

    results: dict[str, object] = {}

    def upload(who: str) -> None:
        results[who] = build_map(topic_table(tag=who), source_name="data.csv", workspace=Workspace(workspace.root),
                                 model=Slow(dimension=32), projection=PCA, reserve=True)

    threads = [threading.Thread(target=upload, args=(who,)) for who in ("alice", "bob")]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    names = {who: result.saved.name for who, result in results.items()}
    assert sorted(names.values()) == ["data", "data (2)"]
    for who, name in names.items():  # each person's map holds their own rows
        assert set(workspace.open(name).points["owner"]) == {who}
    second = next(result for result in results.values() if result.saved.name == "data (2)")
    assert "A map named 'data' already exists: this one is 'data (2)'." in second.notes


# ---------------------------------------------------------------- the merge rule, at the store


def test_a_save_on_a_stale_version_merges_what_the_other_did_not_touch(progressive, workspace):
    saved = pending_map(workspace)
    assert len(saved.version) == 32
    add_trust(workspace.open("papers"), workspace=workspace)  # another session, meanwhile
    moved = saved.points.assign(x=saved.points["x"] + 1.0)
    merged = workspace.save("papers", points=moved, embeddings=saved.embeddings,
                            manifest={**saved.manifest, "note": "mine"}, base=saved)
    final = workspace.open("papers")
    assert final.version == merged.version != saved.version
    assert np.allclose(final.points["x"], moved["x"]) and TRUST_COLUMN in final.points
    assert final.manifest["note"] == "mine" and "trust" in final.manifest


def test_both_changing_the_same_thing_is_a_conflict_and_nothing_is_written(progressive, workspace):
    saved = pending_map(workspace)
    other = workspace.save("papers", points=saved.points.assign(x=0.0), embeddings=saved.embeddings,
                           manifest=saved.manifest, base=saved)
    with pytest.raises(MapChangedError, match="redo this on the latest version") as caught:
        workspace.save("papers", points=saved.points.assign(x=1.0), embeddings=saved.embeddings,
                       manifest=saved.manifest, base=saved)
    assert "\n" not in str(caught.value) and "x on both sides" in str(caught.value)
    assert workspace.open("papers").version == other.version
    assert [p.name for p in workspace.maps_dir.iterdir()] == ["papers"]  # no temporary folder left


def test_a_save_follows_a_rename_and_a_deleted_map_stays_deleted(progressive, workspace):
    saved = pending_map(workspace)
    workspace.rename("papers", "renamed")
    again = workspace.save("papers", points=saved.points, embeddings=saved.embeddings,
                           manifest={**saved.manifest, "note": "after"}, base=saved)
    assert again.name == "renamed" and not workspace.exists("papers")
    assert workspace.open("renamed").manifest["note"] == "after"
    workspace.delete("renamed")
    with pytest.raises(MapChangedError, match="deleted, rebuilt or grown"):
        workspace.save("renamed", points=saved.points, embeddings=saved.embeddings, manifest=saved.manifest,
                       base=again)
    assert workspace.list() == []


def test_a_map_saved_before_versions_is_version_0(workspace):
    saved = build_map(topic_table(), name="old", workspace=workspace, model=HashingEmbedder(dimension=16),
                      projection=PCA).saved
    manifest_file = saved.path / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest[VERSION_KEY]
    manifest_file.write_text(json.dumps(manifest))
    old = workspace.open("old")
    assert old.version == "0"
    assert add_trust(old, workspace=workspace).version not in ("0", saved.version)


def test_a_label_renamed_during_the_refinement_survives_it(progressive, workspace):
    fast = pending_map(workspace, clusters=KMEANS)
    biggest = int(cluster_table(fast, "coarse").iloc[0]["id"])
    renamed = []

    def rename_meanwhile(stage: str, fraction: float, message: str = "") -> None:
        if stage == "cluster" and not renamed:  # the refinement's first try then meets a newer clusters section
            renamed.append(rename_cluster(workspace, "papers", "coarse", biggest, "My group"))

    result = refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64), progress=rename_meanwhile)
    assert renamed and result.state == REFINE_DONE
    refined = workspace.open("papers")
    carried = refined.manifest["refinement"]["labels"]
    assert carried["carried"] + carried["dropped"] == 1  # redone on the latest: the renamed label was seen
    assert ("My group" in cluster_table(refined, "coarse")["label"].tolist()) == (carried["carried"] == 1)


def test_a_label_renamed_on_a_copy_read_before_a_recluster_is_a_conflict(progressive, workspace):
    pending_map(workspace, clusters=KMEANS)
    stale = workspace.open("papers")
    refine_map("papers", workspace=workspace, model=HashingEmbedder(dimension=64))
    changes = {"clusters": {**stale.manifest["clusters"], "notes": ["renamed on the old clusters"]}}
    with pytest.raises(MapChangedError, match="clusters on both sides"):
        workspace.update_manifest("papers", changes, base=stale)
    assert workspace.open("papers").manifest["clusters"].get("notes") != ["renamed on the old clusters"]


# ---------------------------------------------------------------- reserved names


def test_a_reserved_name_is_taken_unlisted_and_released(workspace):
    assert workspace.reserve_name("data") == "data"
    assert workspace.reserve_name("data") == "data (2)"
    assert workspace.unique_name("data") == "data (3)" and workspace.list() == []
    assert not workspace.exists("data")
    with pytest.raises(MapNotFoundError):
        workspace.rename("data", "x")  # a placeholder, not a map
    workspace.release_name("data (2)")
    assert workspace.reserve_name("data") == "data (2)"


def test_a_failed_build_releases_its_name_and_a_dead_ones_is_cleaned(workspace, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the embedder crashed")

    monkeypatch.setattr("explorer.pipeline.embed_cached", broken)
    with pytest.raises(RuntimeError):
        build_map(topic_table(), source_name="data.csv", workspace=workspace, reserve=True, mode="fast")
    assert not workspace.map_path("data").exists()
    stale = workspace.map_path(workspace.reserve_name("left"))
    (stale / RESERVED_FILE).write_text("999999999")  # a process that is gone
    old = time.time() - STALE_TMP_SECONDS - 10
    os.utime(stale / RESERVED_FILE, (old, old))
    Workspace(workspace.root)
    assert not stale.exists()


# ---------------------------------------------------------------- the race, for a fixed time

RACE_SECONDS = 20.0
DECLARED = ("MapChangedError",)


class SlowHashing(HashingEmbedder):
    """The hashing embedder, slow enough per chunk that renames, trust and rows land during a refinement."""

    def embed(self, texts, **options):
        time.sleep(0.15)
        return super().embed(texts, **options)


def lineages(workspace: Workspace) -> dict[str, list[str]]:
    """Each owner's maps that are not curated copies (a build's map, however renamed or grown)."""
    found: dict[str, list[str]] = {}
    for info in workspace.list():
        if "parent" not in info.extra:
            try:
                owners = set(workspace.open(info.name, mmap=True).points["owner"])
            except MapNotFoundError:  # renamed meanwhile
                continue
            for owner in owners:
                found.setdefault(owner, []).append(info.name)
    return found


def _race(root: str, who: str, until: float, log_path: str) -> None:
    """One process of the race: a builder, a refiner and a mutator thread, each logging what it did."""
    os.environ["EXPLORER_QUALITY_BUDGET_SECONDS"] = "0.001"  # every build is progressive: refinements to race
    lock = threading.Lock()
    rng = np.random.default_rng(abs(hash(who)) % 2**32)

    def record(op: str, tag: str, started: float, error: BaseException | None = None, **details) -> None:
        entry = {"op": op, "tag": tag, "who": who, "t0": started, "t1": time.time(), "ok": error is None,
                 "error": f"{type(error).__name__}: {error}" if error else None, **details}
        with lock, open(log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry, default=str) + "\n")

    def attempt(op: str, tag: str, action, **details) -> None:
        started = time.time()
        try:
            result = action()
        except MapNotFoundError:
            return  # the name was stale (renamed a moment ago): not an operation, the next loop looks again
        except Exception as exc:  # recorded: the check says which errors are declared
            record(op, tag, started, exc, **details)
            return
        record(op, tag, started, **details, **(result or {}))

    def builder() -> None:
        for k in range(1000):
            if time.time() > until:
                return
            tag = f"{who}-b{k}"
            attempt("build", tag, lambda tag=tag: {"name": build_map(
                topic_table(8, tag=tag), source_name="data.csv", workspace=Workspace(root), projection=PCA,
                reserve=True).saved.name})
            time.sleep(1.0)  # a few maps, each worked on by many

    def refiner() -> None:
        from explorer.refine import pending_refinements

        while time.time() < until:
            workspace = Workspace(root)
            for name in pending_refinements(workspace)[:1]:
                _refine_one(workspace, name, attempt)
            time.sleep(0.2)

    def mutator() -> None:
        for k in range(10_000):
            if time.time() > until:
                return
            workspace = Workspace(root)
            found = lineages(workspace)
            if not found:
                time.sleep(0.1)
                continue
            shared = [tag for tag in found if tag.startswith("shared")]
            pool = shared if shared and rng.random() < 0.5 else sorted(found)
            tag = pool[int(rng.integers(len(pool)))]
            _mutate_one(workspace, ["rename", "add", "trust", "curate", "decide"][k % 5], tag, found[tag][0],
                        f"{who}x{k}", attempt)

    threads = [threading.Thread(target=t) for t in (builder, refiner, mutator)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _refine_one(workspace: Workspace, name: str, attempt) -> None:
    """Refine the pending map ``name`` with a slow embedder (logged under its rows' owner)."""
    try:
        pending = workspace.open(name)
    except MapNotFoundError:
        return
    # A curated copy of a pending map is pending too, and shares its owner: the check follows a build's own map.
    attempt("refine", str(pending.points["owner"].iloc[0]),
            lambda: {"state": refine_map(name, workspace=workspace, model=SlowHashing(dimension=64),
                                         chunk_rows=8).state}, copy="parent" in pending.manifest)


def _mutate_one(workspace: Workspace, op: str, tag: str, name: str, mark: str, attempt) -> None:
    """One rename, add_rows, trust or curation of the map ``name`` (``tag``'s), logged with what to check."""
    from explorer.curate import remove_and_reproject
    from explorer.grow import add_rows

    if op == "rename":
        attempt(op, tag, lambda: {"target": workspace.rename(name, f"{tag} r{mark}")})
    elif op == "add":
        rows = topic_table(1, tag=tag)
        rows["title"] = rows["title"] + f" add{mark}"
        attempt(op, tag, lambda: add_rows(name, rows, source_name="more.csv", workspace=workspace) and None,
                marker=f"add{mark}", added=len(rows))
    elif op == "trust":
        attempt(op, tag, lambda: add_trust(workspace.open(name), workspace=workspace) and None)
    elif op == "decide":
        from explorer.screening import decide

        def screen() -> dict:
            row = int(workspace.open(name).points["row_id"].iloc[int(mark.split("x")[-1]) % 8])
            decide(workspace, name, [row], RELEVANT, who=mark)
            return {"row": row}
        attempt(op, tag, screen)
    else:
        def curate() -> dict:
            removed = [int(r) for r in workspace.open(name).points["row_id"].iloc[:2]]
            return {"name": remove_and_reproject(workspace, name, removed).name, "removed": removed}
        attempt(op, tag, curate)


@pytest.mark.slow
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # a thread's crash fails it
def test_processes_and_threads_racing_on_one_workspace_lose_nothing(progressive, workspace, tmp_path):
    import multiprocessing

    for tag in ("shared A", "shared B"):  # maps every process works on
        build_map(topic_table(8, tag=tag), name=tag, workspace=workspace, projection=PCA)
    context = multiprocessing.get_context("spawn")
    until = time.time() + RACE_SECONDS + 5  # a spawned process takes a few seconds to import
    logs = [tmp_path / f"log-{i}.jsonl" for i in range(2)]
    processes = [context.Process(target=_race, args=(str(workspace.root), f"p{i}", until, str(logs[i])))
                 for i in range(2)]
    for process in processes:
        process.start()
    _race(str(workspace.root), "main", until, str(tmp_path / "log-main.jsonl"))  # threads of this process too
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    ops = [json.loads(line) for path in tmp_path.glob("log-*.jsonl") for line in path.read_text().splitlines()]
    check_the_race(Workspace(workspace.root), ops)


def check_the_race(workspace: Workspace, ops: list[dict]) -> None:
    """What must hold after the race (see the module's docstring)."""
    done = [op for op in ops if op["ok"]]
    undeclared = [op["error"] for op in ops if not op["ok"] and not op["error"].startswith(DECLARED)
                  and "already exists" not in op["error"]]
    assert not undeclared, undeclared[:5]
    assert {op["op"] for op in done} >= {"build", "refine", "rename", "add", "trust", "curate", "decide"}, \
        sorted({op["op"] for op in done})
    maps = {info.name: workspace.open(info.name) for info in workspace.list()}
    for name, saved in maps.items():  # no map holds another's rows; trust is a column and a summary, or neither
        assert saved.points["owner"].nunique() == 1, name
        assert saved.points["row_id"].is_unique and len(saved.embeddings) == len(saved.points), name
        assert ("trust" in saved.manifest) == (TRUST_COLUMN in saved.points), name
    assert all(len(names) == 1 for names in maps_by_id(workspace).values()), maps_by_id(workspace)
    found = lineages(workspace)
    assert all(len(names) == 1 for names in found.values()), found
    last_add = {}
    for op in ops:
        if op["op"] == "add":
            last_add[op["tag"]] = max(last_add.get(op["tag"], 0.0), op["t1"])
    for op in done:
        tag = op["tag"]
        if op["op"] == "curate":
            copy = maps[op["name"]]
            assert copy.manifest["parent"] and not set(op["removed"]) & set(copy.points["row_id"]), op
            continue
        if op["op"] == "refine" and op["copy"]:
            continue  # a curated copy's refinement: the copy is not its owner's lineage
        assert tag in found, op
        saved = maps[found[tag][0]]
        if op["op"] == "add":
            assert saved.points["title"].str.endswith(op["marker"]).sum() == op["added"], op
        elif op["op"] == "trust" and last_add.get(tag, 0.0) < op["t1"]:
            assert TRUST_COLUMN in saved.points, op
        elif op["op"] == "decide":  # a screening decision is never lost to a refinement, a rename or trust
            assert decisions_of(saved)[saved.points["row_id"] == op["row"]].tolist() == [RELEVANT], op
        elif op["op"] == "refine" and op["state"] == REFINE_DONE:
            assert saved.manifest["refinement"]["state"] == "done" and saved.manifest["model_id"] == "hashing-64", op
    for tag, names in found.items():
        renames = [op for op in done if op["op"] == "rename" and op["tag"] == tag]
        if renames:
            assert names[0] == max(renames, key=lambda op: op["t1"])["target"], (tag, names, renames)
