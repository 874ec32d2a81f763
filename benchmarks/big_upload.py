"""Big uploads (issue 31): the server's memory while a file of hundreds of MB goes up, and how long it takes.

A CSV of --megabytes is chosen in the upload form in headless Chromium; the server's RSS (/proc/PID/status)
is sampled every 50 ms from the landing page, idle, until the form appears under the finished upload. With
--repo pointing at an older checkout whose form is Streamlit's st.file_uploader, the same file goes through
that instead (it keeps the whole file in the server's memory). Screenshots of the upload's progress bar,
at 1440x900 and 420 px wide, go to test-artifacts/ (--screenshots).

    flock /tmp/bench.lock .venv/bin/python benchmarks/big_upload.py --megabytes 300 [--repo /older/checkout]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from streamlit_server import (  # noqa: E402
    ARTIFACTS,
    CHROMIUM_ARGS,
    chromium_path,
    streamlit_server,
    upload_file,
    wait_until_idle,
)


def write_csv(path: Path, megabytes: int) -> Path:
    """A CSV of about ``megabytes`` MB: titles and abstracts in words, repeated."""
    block = "".join(f"Paper {i} on protein folding and markets,\"An abstract of words about topic {i % 97}, "
                    f"{'with enough words to look like an abstract ' * 6}\"\n" for i in range(2000)).encode()
    with open(path, "wb") as out:
        out.write(b"title,abstract\n")
        for _ in range(megabytes * 1_000_000 // len(block) + 1):
            out.write(block)
    return path


def server_pid(url: str) -> int:
    """The pid of the `streamlit run` serving ``url`` (found by its port on the command line)."""
    port = url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"streamlit" in b" ".join(argv) and port.encode() in argv:
                return int(proc.name)
    raise RuntimeError(f"no streamlit process on port {port}")


def rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024


class Sampler(threading.Thread):
    """The peak RSS of ``pid`` since start(), sampled every 50 ms, and the peak and time at the moment the
    upload's file under ``uploads`` reaches ``size`` bytes (before the form reads it)."""

    def __init__(self, pid: int, uploads: Path, size: int):
        super().__init__(daemon=True)
        self.pid, self.uploads, self.size = pid, uploads, size
        self.peak, self.running, self.series, self.on_disk = 0.0, True, [], None

    def run(self) -> None:
        started = time.perf_counter()
        while self.running:
            # Checked before this sample: the form starts reading the file the moment its last chunk is written.
            if self.on_disk is None and any(p.stat().st_size >= self.size for p in self.uploads.glob("*/upload-*")):
                self.on_disk = (time.perf_counter() - started, self.peak)
            rss = rss_mb(self.pid)
            self.peak = max(self.peak, rss)
            self.series.append((time.perf_counter() - started, rss))
            time.sleep(0.05)


def measure(repo: Path, csv_path: Path, *, screenshots: bool, upload_only: bool = False) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as home, streamlit_server(Path(home), repo=repo) as url, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(url)
        wait_until_idle(page)
        # The server compiles UMAP's kernels in a thread as it starts (hundreds of MB): idle means after that.
        log = Path(home) / "streamlit.log"
        deadline = time.monotonic() + 600
        while "UMAP warm-up done" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)
        pid = server_pid(url)
        idle = rss_mb(pid)
        sampler = Sampler(pid, Path(home) / "uploads", csv_path.stat().st_size)
        sampler.start()
        started = time.perf_counter()
        chunked = (repo / "explorer" / "ui" / "upload.py").is_file()
        if chunked:
            upload_file(page, csv_path)
        else:
            page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(csv_path))
        if screenshots and chunked:
            bar = page.get_by_test_id("stProgress").filter(has_text=re.compile(r"Uploading .* of"))
            bar.wait_for(timeout=120_000)
            third = csv_path.stat().st_size / 3e6
            while int(re.search(r": ([\d,]+) of", bar.inner_text()).group(1).replace(",", "")) < third:
                time.sleep(0.2)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "big_upload_1440.png"))
            page.set_viewport_size({"width": 420, "height": 900})
            time.sleep(0.5)
            page.screenshot(path=str(ARTIFACTS / "big_upload_420.png"), full_page=True)
            page.set_viewport_size({"width": 1440, "height": 900})
        uploaded = None
        if chunked:  # the file is on disk: what the upload itself cost, before the form reads the file
            page.get_by_test_id("stProgress").filter(has_text="Uploaded").wait_for(timeout=1_200_000)
            while sampler.on_disk is None:
                time.sleep(0.05)
            uploaded = sampler.on_disk
            if os.environ.get("BIG_UPLOAD_LOG"):
                print((Path(home) / "streamlit.log").read_text()[-6000:])
            print("RSS (MB) every ~1 s:", [round(rss) for t, rss in sampler.series[::20] if t <= uploaded[0]])
            if upload_only:
                sampler.running = False
                return {"seconds": uploaded[0], "idle": idle, "peak": sampler.peak, "after": rss_mb(pid),
                        "uploaded": uploaded}
        page.get_by_role("button", name="Build map").wait_for(timeout=1_200_000)
        seconds = time.perf_counter() - started
        wait_until_idle(page, timeout=600_000)
        sampler.running = False
        sampler.join()
        after = rss_mb(pid)
        browser.close()
    return {"seconds": seconds, "idle": idle, "peak": sampler.peak, "after": after, "uploaded": uploaded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=300)
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose app runs (default: this one)")
    parser.add_argument("--screenshots", action="store_true")
    parser.add_argument("--upload-only", action="store_true", help="stop when the file is on disk (no preview)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        csv_path = write_csv(Path(folder) / "big.csv", args.megabytes)
        size = csv_path.stat().st_size / 1e6
        result = measure(args.repo, csv_path, screenshots=args.screenshots, upload_only=args.upload_only)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores; load average before/after: "
          f"{os.getloadavg()[0]:.2f}")
    print(f"app: {args.repo}; file {size:,.1f} MB")
    if result["uploaded"]:
        seconds, peak = result["uploaded"]
        print(f"upload until the file is on disk: {seconds:.1f} s ({size / seconds:.0f} MB/s); server RSS peak "
              f"{peak:,.0f} MB (+{peak - result['idle']:,.0f} MB over idle)")
    print(f"upload until the form (the file read for its preview): {result['seconds']:.1f} s")
    print(f"server RSS: idle {result['idle']:,.0f} MB, peak until the form {result['peak']:,.0f} MB "
          f"(+{result['peak'] - result['idle']:,.0f} MB, the preview's read included), after {result['after']:,.0f} MB")


if __name__ == "__main__":
    main()
