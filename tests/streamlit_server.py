"""A real `streamlit run app.py` for browser tests, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    """Debian's Chromium binary (Playwright's own browser download does not work here)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(home: Path, *, env: dict[str, str] | None = None, timeout: float = 120,
                     repo: Path = REPO) -> Iterator[str]:
    """Start the app on a free port with its own EXPLORER_HOME; yield its URL once healthy.

    ``repo`` is the checkout whose app.py runs (a benchmark runs an older one beside this one)."""
    port = free_port()
    log_path = home / "streamlit.log"
    home.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "EXPLORER_HOME": str(home), "HF_HUB_OFFLINE": "1", **(env or {})}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(repo / "app.py"), "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=repo, env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not become healthy:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


# True once Streamlit has finished running the script (for sync and async Playwright pages alike).
IDLE_SCRIPT = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app && app.getAttribute('data-test-script-state') === 'notRunning';
}"""


def wait_until_idle(page, *, timeout: float = 180_000) -> None:
    """Wait until Streamlit has finished running the script (its status widget says not running)."""
    page.wait_for_function(IDLE_SCRIPT, timeout=timeout)


# The map widget's iframe (explorer/ui/frontend/map/index.html): Streamlit titles it with the component's name.
MAP_IFRAME = 'iframe[title*="explorer_map"]'


def map_frame(page):
    """The map widget's iframe, where plotly draws the map."""
    return page.frame_locator(MAP_IFRAME)


# The upload form's file picker (explorer/ui/frontend/upload/index.html): it sends a file in chunks.
UPLOAD_IFRAME = 'iframe[title*="explorer_upload"]'


def upload_file(page, path):
    """Choose ``path`` in the upload form's picker (its iframe's file input), as a person browsing to it would
    (with an async page, await what it returns)."""
    return page.frame_locator(UPLOAD_IFRAME).locator('input[type="file"]').set_input_files(str(path))


def open_sidebar(page):
    """The sidebar, opened: it folds when a map opens (the map fills the page), and holds the map's controls."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    button = page.get_by_test_id("stExpandSidebarButton")
    if button.is_visible():
        button.click()
    sidebar.get_by_test_id("stSidebarUserContent").wait_for(state="visible", timeout=30_000)
    return sidebar
