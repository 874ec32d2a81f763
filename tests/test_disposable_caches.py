"""The embedding and projection caches are disposable: a damaged file is moved aside with a note the
user sees, and the build goes on (and the next one uses a fresh cache)."""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from explorer import ProjectionConfig, Workspace, build_map
from explorer.cli import main
from explorer.embed import EmbeddingCache

PCA = ProjectionConfig(method="pca")
MOVED = "was moved aside"


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(24).randbytes(8192))


def _truncated(path: Path) -> None:
    """A cache of 2,000 vectors cut after its first two pages (a disk that filled up, a copy cut short)."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE vectors (model TEXT, hash TEXT, vector BLOB, PRIMARY KEY (model, hash)) "
                   "WITHOUT ROWID")
        db.executemany("INSERT INTO vectors VALUES (?, ?, ?)",
                       [("hashing-256", f"h{i}", bytes(256)) for i in range(2_000)])
    db.close()
    path.write_bytes(path.read_bytes()[:8192])


def _wrong_schema(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE vectors (id INTEGER PRIMARY KEY, payload TEXT)")
        db.execute("INSERT INTO vectors VALUES (1, 'not a vector')")


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "something").write_text("a folder where the cache file should be")


def _unreadable(path: Path) -> None:
    _random_bytes(path)
    path.chmod(0)


DAMAGES = {"random_bytes": _random_bytes, "truncated": _truncated, "wrong_schema": _wrong_schema,
           "directory": _directory, "unreadable": _unreadable, "empty_file": lambda p: p.write_bytes(b"")}


def build(workspace: Workspace, frame, **kwargs):
    return build_map(frame, model="hashing", projection=PCA, workspace=workspace, **kwargs)


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_embedding_cache_is_moved_aside_and_the_build_goes_on(damage, workspace, papers_frame):
    if damage == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads a file whatever its mode")
    workspace.cache_path.parent.mkdir(parents=True, exist_ok=True)
    DAMAGES[damage](workspace.cache_path)

    first = build(workspace, papers_frame, name="first")
    moved = [n for n in first.notes if MOVED in n]
    if damage == "empty_file":  # SQLite takes an empty file for a new database: nothing to move aside
        assert not moved
    else:
        assert moved and "embeddings.sqlite" in moved[0], first.notes
        assert list(workspace.cache_path.parent.glob("embeddings.sqlite.corrupt-*"))
    again = build(workspace, papers_frame, name="again")
    assert not [n for n in again.notes if MOVED in n], again.notes
    assert again.n_cached == len(papers_frame), "the fresh cache holds the first build's vectors"
    np.testing.assert_array_equal(first.saved.embeddings, again.saved.embeddings)


def test_damage_found_while_reading_is_moved_aside_and_the_cache_goes_on(tmp_path):
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    cache.put_many("m", ["a"], np.ones((1, 4), dtype=np.float32))
    _random_bytes(cache.path)  # damaged after the cache was opened: found by the next read
    assert cache.get_many("m", ["a"]) == {}
    assert len(cache.notes) == 1 and MOVED in cache.notes[0], cache.notes
    cache.put_many("m", ["b"], np.full((1, 4), 2.0, dtype=np.float32))
    assert cache.get_many("m", ["a", "b"])["b"].tolist() == [2.0] * 4 and len(cache.notes) == 1


def test_cached_blobs_of_the_wrong_size_are_embedded_again(workspace, papers_frame):
    built = build(workspace, papers_frame, name="first")
    with sqlite3.connect(workspace.cache_path) as db:
        db.execute("UPDATE vectors SET vector = x'0102'")  # 2 bytes: no float32 vector
    db.close()
    again = build(workspace, papers_frame, name="again")
    assert again.n_cached == 0
    np.testing.assert_array_equal(built.saved.embeddings, again.saved.embeddings)
    with sqlite3.connect(workspace.cache_path) as db:
        db.execute("UPDATE vectors SET vector = ?", (np.full(64, np.nan, dtype=np.float32).tobytes(),))
    db.close()
    third = build(workspace, papers_frame, name="third")
    assert third.n_cached == 0 and np.isfinite(third.saved.embeddings).all()


def test_a_locked_embedding_cache_is_left_out_of_the_build(workspace, papers_frame, monkeypatch):
    build(workspace, papers_frame, name="first")
    monkeypatch.setattr(EmbeddingCache, "busy_seconds", 0.2)
    holder = sqlite3.connect(workspace.cache_path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=DELETE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        locked = build(workspace, papers_frame, name="locked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert any("is locked" in n and "embeds without it" in n for n in locked.notes), locked.notes
    assert workspace.cache_path.is_file() and not list(workspace.cache_path.parent.glob("*.corrupt-*")), \
        "a file another process holds is not damaged: it stays"


def _garbage_entry(entry: Path) -> None:
    entry.write_bytes(random.Random(5).randbytes(3000))


def _pickled_entry(entry: Path) -> None:
    np.save(entry.with_suffix(".npy"), np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    entry.with_suffix(".npy").replace(entry)


def _short_entry(entry: Path) -> None:
    np.savez(entry, coords=np.zeros((3, 2), dtype=np.float32), method=np.array("pca"))


def _nan_entry(entry: Path) -> None:
    np.savez(entry, coords=np.full((30, 2), np.nan, dtype=np.float32), method=np.array("pca"))


def _folder_entry(entry: Path) -> None:
    entry.unlink()
    entry.mkdir()


ENTRY_DAMAGES = {"garbage": _garbage_entry, "pickled": _pickled_entry, "too_few_rows": _short_entry,
                 "nan": _nan_entry, "folder": _folder_entry}


@pytest.mark.parametrize("damage", ENTRY_DAMAGES)
def test_a_damaged_projection_cache_entry_is_moved_aside_and_the_build_goes_on(damage, workspace, papers_frame):
    first = build(workspace, papers_frame, name="first")
    (entry,) = workspace.projection_cache_dir.glob("*.npz")
    ENTRY_DAMAGES[damage](entry)

    again = build(workspace, papers_frame, name="again")
    moved = [n for n in again.notes if MOVED in n]
    assert moved and "projection cache" in moved[0], again.notes
    assert list(workspace.projection_cache_dir.glob("*.corrupt-*"))
    np.testing.assert_array_equal(first.saved.coords, again.saved.coords)
    third = build(workspace, papers_frame, name="third")
    assert not [n for n in third.notes if MOVED in n], third.notes
    assert entry.is_file()
    np.testing.assert_array_equal(first.saved.coords, third.saved.coords)


@pytest.mark.parametrize("cache", ["projections", "cache"])
def test_a_file_in_place_of_a_cache_folder_is_moved_aside(cache, workspace, papers_frame):
    folder = workspace.projection_cache_dir if cache == "projections" else workspace.cache_path.parent
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_bytes(b"not a folder")
    first = build(workspace, papers_frame, name="first")
    assert any(MOVED in n for n in first.notes), first.notes
    again = build(workspace, papers_frame, name="again")
    assert not [n for n in again.notes if MOVED in n], again.notes
    assert len(list(workspace.projection_cache_dir.glob("*.npz"))) == 1


def test_the_cli_says_what_was_moved_aside_and_builds_twice(tmp_path, papers_frame, capsys):
    source = tmp_path / "papers.csv"
    papers_frame.to_csv(source, index=False)
    home = tmp_path / "cli-home"
    (home / "cache").mkdir(parents=True)
    _random_bytes(home / "cache" / "embeddings.sqlite")
    argv = ["--home", str(home), "build", str(source), "--model", "hashing", "--projection", "pca", "-q"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("note: ") and MOVED in line and "embeddings.sqlite" in line
               for line in out.splitlines()), out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert MOVED not in out and f"from cache: {len(papers_frame)}" in out
