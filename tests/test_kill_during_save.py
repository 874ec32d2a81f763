"""SIGKILL a real build while it saves over an existing map: the map on disk is always one whole version.

The build runs in a child process with a test-only hook that pauses it at one point of
`Workspace.save`; the test kills it there (nothing in the child runs after SIGKILL: no `finally`, no
cleanup) and opens the workspace afresh, as the next app or CLI start would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile_inputs import papers

from explorer import ProjectionConfig, Workspace, build_map
from explorer.cli import main
from explorer.store import STALE_TMP_SECONDS

# Runs in the child: patch one step of the save to write "paused" to READY and sleep, then build.
HOOKED_BUILD = r"""
import io, os, shutil, sys, time
from pathlib import Path

import numpy as np

pause_at, ready, source, home = sys.argv[1:5]
real_save, real_rename, real_rmtree = np.save, os.rename, shutil.rmtree


def pause():
    Path(ready).write_text("paused")
    time.sleep(300)


def half_written_save(file, array, *args, **kwargs):
    # Killed halfway through writing the embeddings into the temporary folder.
    buffer = io.BytesIO()
    real_save(buffer, array, *args, **kwargs)
    with open(file, "wb") as fh:
        fh.write(buffer.getvalue()[: buffer.tell() // 2])
        fh.flush()
        os.fsync(fh.fileno())
    pause()


def rename_then_pause(src, dst):
    # Killed between the two renames: the old map is set aside, the new one not yet in place.
    real_rename(src, dst)
    if Path(dst).name.startswith(".trash-"):
        pause()


def pause_before_cleanup(path, *args, **kwargs):
    # Killed after the swap, before the old version is deleted.
    if Path(path).name.startswith(".trash-"):
        pause()
    return real_rmtree(path, *args, **kwargs)


if pause_at == "write":
    np.save = half_written_save
elif pause_at == "swap":
    os.rename = rename_then_pause
elif pause_at == "cleanup":
    shutil.rmtree = pause_before_cleanup

from explorer import ProjectionConfig, Workspace, build_map

build_map(Path(source), name="papers", model="hashing", projection=ProjectionConfig(method="pca"),
          workspace=Workspace(home))
Path(ready).write_text("finished")
"""


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _build_killed_at(pause_at: str, source: Path, home: Path, ready: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EXPLORER_HOME": str(home)}
    child = subprocess.Popen([sys.executable, "-c", HOOKED_BUILD, pause_at, str(ready), str(source), str(home)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (ready.exists() and ready.read_text() == "paused"):
            if child.poll() is not None:
                raise AssertionError(f"the build ended before the pause: {child.communicate()[1][-2000:]}")
            assert time.monotonic() < deadline, "the build never reached the pause"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL


def _kinds(folder: Path) -> list[str]:
    return sorted(p.name.split("-")[0] if p.name.startswith(".") else p.name for p in folder.iterdir())


# Where the build is killed, what that leaves in the maps folder, and which version must open after.
KILL_POINTS = [
    pytest.param("write", [".tmp", "papers"], "previous", id="while-writing-the-temporary-folder"),
    pytest.param("swap", [".tmp", ".trash"], "previous", id="between-the-two-renames"),
    pytest.param("cleanup", [".trash", "papers"], "new", id="before-deleting-the-old-version"),
]


@pytest.mark.parametrize(("pause_at", "left", "survivor"), KILL_POINTS)
def test_a_build_killed_mid_save_leaves_one_whole_version(pause_at, left, survivor, tmp_path, capsys):
    home = tmp_path / "home"
    build_map(papers(6), name="papers", model="hashing", projection=ProjectionConfig(method="pca"),
              workspace=Workspace(home))
    previous = _snapshot(Workspace(home).map_path("papers"))
    source = tmp_path / "papers.csv"
    papers(9).to_csv(source, index=False)

    _build_killed_at(pause_at, source, home, tmp_path / "ready")
    assert _kinds(home / "maps") == left, "the kill happened at the intended point"

    workspace = Workspace(home)  # what the next start of the app or the CLI does first
    assert [info.name for info in workspace.list()] == ["papers"], "no half map is listed"
    opened = workspace.open("papers")
    if survivor == "previous":
        assert _snapshot(workspace.map_path("papers")) == previous, "the previous version, byte for byte"
    else:
        assert len(opened.points) == opened.manifest["rows"] == len(opened.embeddings) == 9
    assert opened.embeddings.shape == (len(opened.points), opened.manifest["dimension"])
    leftovers = [p.name for p in workspace.maps_dir.iterdir() if p.name != "papers"]
    assert all(name.startswith(".tmp-") for name in leftovers), leftovers
    assert main(["--home", str(home), "list"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["papers"]

    # A temporary folder may be another process's save in progress; once stale it is cleared away.
    for name in leftovers:
        an_hour_ago = time.time() - STALE_TMP_SECONDS - 60
        os.utime(workspace.maps_dir / name, (an_hour_ago, an_hour_ago))
    assert [p.name for p in Workspace(home).maps_dir.iterdir()] == ["papers"]
