"""Step 5, store: saved maps on disk, listed, renamed and deleted, and every save atomic."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from explorer import InputError, MapNotFoundError, Workspace
from explorer.points_file import POINTS_FILE
from explorer.store import (
    EMBEDDINGS_FILE,
    MANIFEST_FILE,
    STALE_TMP_SECONDS,
    sanitise_map_name,
)


def make_map(rows: int = 4, *, label: str = "first") -> dict:
    """The three parts of a map, as save() takes them."""
    points = pd.DataFrame(
        {
            "row_id": np.arange(rows, dtype=np.int64),
            "title": [f"{label} {i}" for i in range(rows)],
            "x": np.linspace(0, 1, rows, dtype=np.float32),
            "y": np.linspace(1, 2, rows, dtype=np.float32),
            "embedded": [True] * (rows - 1) + [False],
        }
    )
    points.loc[rows - 1, ["x", "y"]] = np.nan
    embeddings = np.random.default_rng(rows).normal(size=(rows, 8)).astype(np.float32)
    manifest = {"rows": rows, "embedded_rows": rows - 1, "model_id": "hashing-8",
                "created": f"2024-01-0{rows}T00:00:00+00:00", "label": label}
    return {"points": points, "embeddings": embeddings, "manifest": manifest}


def test_save_and_open_round_trip(workspace):
    parts = make_map()
    saved = workspace.save("My map", **parts)
    assert saved.path == workspace.maps_dir / "My map"
    assert {p.name for p in saved.path.iterdir()} == {POINTS_FILE, EMBEDDINGS_FILE, MANIFEST_FILE}

    opened = workspace.open("My map")
    assert opened.name == "My map"
    pd.testing.assert_frame_equal(opened.points, parts["points"], check_dtype=False)
    assert opened.embeddings.dtype == np.float32
    np.testing.assert_array_equal(opened.embeddings, parts["embeddings"])
    assert opened.manifest["name"] == "My map" and opened.manifest["label"] == "first"
    assert "saved" in opened.manifest
    np.testing.assert_array_equal(opened.embedded, [True, True, True, False])
    assert opened.coords.dtype == np.float32 and np.isnan(opened.coords[3]).all()


def test_files_on_disk_are_plain_formats(workspace):
    workspace.save("plain", **make_map())
    folder = workspace.maps_dir / "plain"
    points = pd.read_parquet(folder / POINTS_FILE)
    assert list(points.columns[:1]) == ["row_id"] and {"x", "y"} <= set(points.columns)
    assert np.load(folder / EMBEDDINGS_FILE).shape == (4, 8)
    assert json.loads((folder / MANIFEST_FILE).read_text())["rows"] == 4


def test_open_memory_mapped(workspace):
    workspace.save("m", **make_map())
    opened = workspace.open("m", mmap=True)
    assert isinstance(opened.embeddings, np.memmap)
    assert opened.embeddings.shape == (4, 8)


def test_saving_again_replaces_the_map(workspace):
    workspace.save("m", **make_map(4, label="first"))
    workspace.save("m", **make_map(6, label="second"))
    opened = workspace.open("m")
    assert opened.manifest["label"] == "second" and len(opened.points) == 6
    assert [p.name for p in workspace.maps_dir.iterdir()] == ["m"], "no temporary folder is left"


def test_list_newest_first(workspace):
    assert workspace.list() == []
    workspace.save("older", **make_map(3))
    workspace.save("newer", **make_map(5))
    infos = workspace.list()
    assert [i.name for i in infos] == ["newer", "older"]
    assert (infos[0].rows, infos[0].embedded_rows, infos[0].model_id) == (5, 4, "hashing-8")


def test_list_skips_folders_that_are_not_maps(workspace):
    workspace.save("good", **make_map())
    (workspace.maps_dir / "stray").mkdir()
    broken = workspace.maps_dir / "broken"
    broken.mkdir()
    (broken / MANIFEST_FILE).write_text("{not json")
    assert [i.name for i in workspace.list()] == ["good"]


def test_rename(workspace):
    workspace.save("old", **make_map())
    assert workspace.rename("old", "new/name") == "new_name"
    assert not workspace.exists("old")
    assert workspace.open("new_name").manifest["name"] == "new_name"
    workspace.save("taken", **make_map())
    with pytest.raises(InputError, match="'taken' already exists"):
        workspace.rename("new_name", "taken")
    with pytest.raises(MapNotFoundError, match="'ghost'"):
        workspace.rename("ghost", "anything")


def test_update_manifest(workspace):
    workspace.save("m", **make_map())
    workspace.update_manifest("m", {"label": "changed", "extra": 1})
    manifest = workspace.open("m").manifest
    assert (manifest["label"], manifest["extra"], manifest["rows"]) == ("changed", 1, 4)
    with pytest.raises(MapNotFoundError):
        workspace.update_manifest("ghost", {})


def test_delete(workspace):
    workspace.save("m", **make_map())
    workspace.delete("m")
    assert not workspace.exists("m")
    assert list(workspace.maps_dir.iterdir()) == []
    with pytest.raises(MapNotFoundError, match="No saved map named 'm'"):
        workspace.delete("m")


def test_open_unknown_map_names_the_known_ones(workspace):
    workspace.save("alpha", **make_map())
    with pytest.raises(MapNotFoundError, match="No saved map named 'beta'. Saved maps: alpha."):
        workspace.open("beta")


def test_unique_name(workspace):
    assert workspace.unique_name("m") == "m"
    workspace.save("m", **make_map())
    assert workspace.unique_name("m") == "m (2)"
    workspace.save("m (2)", **make_map())
    assert workspace.unique_name("m") == "m (3)"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("long_name", ["a" * 100, "a" * 98, "résumé " * 20, "地図" * 45])
def test_unique_name_of_a_long_name_ends(workspace, long_name):
    """A second upload of a file with a 100-character name hung: the suffix was cut off again by the cap."""
    first = workspace.unique_name(long_name)
    workspace.save(first, **make_map())
    second = workspace.unique_name(long_name)
    assert second != first and second.endswith(" (2)") and not workspace.exists(second)
    workspace.save(second, **make_map())
    assert workspace.unique_name(long_name).endswith(" (3)")
    assert {info.name for info in workspace.list()} == {first, second}


def test_a_name_of_90_cjk_characters_saves_again_and_again(workspace):
    """270 bytes of name saved once; every re-save then failed (the trash folder's name passed 255 bytes)."""
    name = workspace.unique_name("地" * 90)
    assert len(name.encode("utf-8")) <= 255 - len(".trash-") - 32
    for label in ("first", "second", "third"):
        saved = workspace.save(name, **make_map(label=label))
    assert workspace.open(saved.name).points["title"].iloc[0].startswith("third")
    renamed = workspace.rename(name, "図" * 90)
    assert workspace.open(renamed).points["title"].iloc[0].startswith("third")


def test_unique_name_gives_up_with_one_line(workspace, monkeypatch):
    monkeypatch.setattr("explorer.store.MAX_NAME_TRIES", 3)
    for name in ("m", "m (2)", "m (3)"):
        workspace.save(name, **make_map())
    with pytest.raises(InputError, match=r"'m' and its 2 numbered copies are all taken"):
        workspace.unique_name("m")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("papers 2024", "papers 2024"),
        ("Café (v2)", "Café (v2)"),
        ("a/b", "a_b"),
        ("a\\b", "a_b"),
        ("../../etc", "etc"),
        ("..", None),
        (".hidden", "hidden"),
        ("", None),
        ("   ", None),
        ("///", None),
        ("x" * 300, "x" * 100),
    ],
)
def test_map_names_are_sanitised(name, expected):
    if expected is None:
        with pytest.raises(InputError, match="cannot be used as a map name"):
            sanitise_map_name(name)
    else:
        assert sanitise_map_name(name) == expected


@pytest.mark.parametrize("name", ["../../etc", "a/b", "../outside", "/abs/path"])
def test_saved_maps_stay_inside_the_workspace(workspace, name):
    saved = workspace.save(name, **make_map())
    assert saved.path.parent == workspace.maps_dir
    assert workspace.open(name).path == saved.path


def test_default_workspace_is_explorer_home(explorer_home):
    assert Workspace().root == explorer_home
    assert Workspace().cache_path == explorer_home / "cache" / "embeddings.sqlite"


# --- atomic saves -------------------------------------------------------------------------------------


def fail_renames(monkeypatch, *, from_call: int, until_call: int | None = None) -> None:
    """Make os.rename raise from its ``from_call``-th call on (to ``until_call``), like a crash."""
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append((src, dst))
        if from_call <= len(calls) <= (until_call or len(calls)):
            raise OSError("simulated crash")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)


def test_crash_between_the_two_renames_keeps_the_previous_version(workspace, monkeypatch):
    workspace.save("m", **make_map(4, label="first"))
    # The first rename moves the old map aside; the second, moving the new one in, fails.
    fail_renames(monkeypatch, from_call=2, until_call=2)
    with pytest.raises(OSError, match="simulated crash"):
        workspace.save("m", **make_map(6, label="second"))
    monkeypatch.undo()

    # The failed save put the old version back itself: no need to wait for a new Workspace.
    assert [p.name for p in workspace.maps_dir.iterdir()] == ["m"]
    for current in (workspace, Workspace(workspace.root)):
        opened = current.open("m")
        assert opened.manifest["label"] == "first" and len(opened.points) == 4
        assert [i.name for i in current.list()] == ["m"]


def test_hard_crash_mid_save_is_recovered_by_a_new_workspace(workspace, monkeypatch):
    workspace.save("m", **make_map(4, label="first"))
    # A killed process runs no more code: every later rename and cleanup is lost.
    fail_renames(monkeypatch, from_call=2)
    monkeypatch.setattr(shutil, "rmtree", lambda *args, **kwargs: None)
    with pytest.raises(OSError, match="simulated crash"):
        workspace.save("m", **make_map(6, label="second"))
    monkeypatch.undo()
    left = sorted(p.name.split("-")[0] for p in workspace.maps_dir.iterdir())
    assert left == [".tmp", ".trash"], "the crash left the old map aside and the new one half-done"
    assert workspace.list() == [], "half-saved maps are never listed"

    recovered = Workspace(workspace.root)
    assert recovered.open("m").manifest["label"] == "first"
    assert [i.name for i in recovered.list()] == ["m"]
    # The temp folder may be another process's save in progress until it is an hour old.
    (tmp,) = workspace.maps_dir.glob(".tmp-*")
    an_hour_ago = time.time() - STALE_TMP_SECONDS - 60
    os.utime(tmp, (an_hour_ago, an_hour_ago))
    Workspace(workspace.root)
    assert [p.name for p in workspace.maps_dir.iterdir()] == ["m"]


def test_a_save_in_progress_elsewhere_is_left_alone(workspace):
    in_progress = workspace.maps_dir / ".tmp-0123456789abcdef0123456789abcdef"
    in_progress.mkdir()
    (in_progress / POINTS_FILE).write_bytes(b"being written")
    Workspace(workspace.root)
    assert (in_progress / POINTS_FILE).is_file()


def test_failed_first_save_leaves_nothing(workspace, monkeypatch):
    fail_renames(monkeypatch, from_call=1)
    with pytest.raises(OSError):
        workspace.save("m", **make_map())
    monkeypatch.undo()
    assert list(workspace.maps_dir.iterdir()) == []
    assert not workspace.exists("m")


def test_failed_write_leaves_the_previous_version(workspace, monkeypatch):
    workspace.save("m", **make_map(4, label="first"))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        workspace.save("m", **make_map(6, label="second"))
    assert workspace.open("m").manifest["label"] == "first"
    assert [p.name for p in workspace.maps_dir.iterdir()] == ["m"]


def test_a_workspace_made_during_another_save_waits_for_it(workspace, monkeypatch):
    """Another session's Workspace() in the middle of a save must not take its trash for a crash's."""
    import threading

    workspace.save("m", **make_map(4, label="first"))
    real_rename, aside, errors = os.rename, threading.Event(), []

    def slow_rename(src, dst):
        real_rename(src, dst)
        if ".trash-" in str(dst):  # the old version is aside; the new one is not in yet
            aside.set()
            time.sleep(0.5)

    def other_session():
        aside.wait(5)
        try:
            Workspace(workspace.root)
        except OSError as exc:  # pragma: no cover - the failure this test guards against
            errors.append(exc)

    other = threading.Thread(target=other_session)
    other.start()
    monkeypatch.setattr(os, "rename", slow_rename)
    workspace.save("m", **make_map(6, label="second"))
    monkeypatch.undo()
    other.join()
    assert aside.is_set() and not errors
    assert Workspace(workspace.root).open("m").manifest["label"] == "second"
    assert [p.name for p in workspace.maps_dir.iterdir()] == ["m"]
