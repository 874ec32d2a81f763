"""Big uploads in Chromium (issue 31): the file goes to disk in chunks with a progress bar, then builds;
over the limit, one clear line and nothing kept."""

from __future__ import annotations

import hashlib
import re

import pandas as pd
import pytest
from streamlit_server import ARTIFACTS, UPLOAD_IFRAME, map_frame, streamlit_server, upload_file, wait_until_idle
from test_browser import TOPICS, _new_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# Every text the progress bar shows, collected as the page changes (an upload of a few MB is over in a second).
WATCH_PROGRESS = """() => {
    window.__progress = [];
    const seen = () => document.querySelectorAll('[data-testid="stProgress"]').forEach(bar => {
        const text = bar.innerText.trim();
        if (text && window.__progress[window.__progress.length - 1] !== text) window.__progress.push(text);
    });
    new MutationObserver(seen).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def _big_csv(path, megabytes: int):
    """The test papers with a long column of filler (no words), so the file is ``megabytes`` big with few rows."""
    rows = [{"title": t, "abstract": a, "field": f} for f, items in TOPICS.items() for t, a in items] * 4
    filler = megabytes * 1_000_000 // len(rows)
    frame = pd.DataFrame(rows)
    frame["blob"] = [hashlib.sha256(str(i).encode()).hexdigest() * (filler // 64) for i in range(len(rows))]
    frame.to_csv(path, index=False)
    return path


def test_a_file_of_megabytes_goes_to_disk_in_chunks_with_a_progress_bar_and_builds(browser, tmp_path):
    csv_path = _big_csv(tmp_path / "big.csv", 20)
    size = csv_path.stat().st_size
    home = tmp_path / "home"
    with streamlit_server(home, env={"EXPLORER_DEFAULT_MODEL": "hashing"}) as url:
        page, errors = _new_page(browser, url)
        page.evaluate(WATCH_PROGRESS)
        upload_file(page, csv_path)
        page.get_by_role("button", name="Build map").wait_for(timeout=120_000)
        wait_until_idle(page)
        shown = page.evaluate("window.__progress")
        # 20 MB in 8 MB chunks: the bar said what was on disk after each chunk, then that the file was there.
        partial = [t for t in shown if re.match(r"Uploading big\.csv: \d+ of 20 MB \(\d+ MB/s\)", t)]
        assert partial and all(int(re.search(r": (\d+) of", t).group(1)) < 20 for t in partial), shown
        assert shown[-1] == f"Uploaded big.csv: {size / 1e6:,.1f} MB", shown
        stored = list((home / "uploads").glob("*/upload-*"))
        assert len(stored) == 1 and stored[0].read_bytes() == csv_path.read_bytes()
        picker = page.frame_locator(UPLOAD_IFRAME)
        assert picker.locator("#main").inner_text() == "big.csv"
        page.get_by_role("button", name="Build map").click()
        map_frame(page).locator("#map[data-points-total]").first.wait_for(timeout=180_000)
        drawn = map_frame(page).locator("#map[data-points-drawn]")
        drawn.wait_for(timeout=60_000)
        assert int(drawn.get_attribute("data-points-total")) == 4 * sum(len(v) for v in TOPICS.values())
        assert not errors, errors


def test_a_file_over_the_limit_gets_one_clear_line_and_leaves_nothing(browser, tmp_path):
    too_big = _big_csv(tmp_path / "too big.csv", 2)
    small = tmp_path / "small.csv"
    pd.DataFrame([{"title": t, "abstract": a} for items in TOPICS.values() for t, a in items]).to_csv(small, index=False)
    home = tmp_path / "home"
    with streamlit_server(home, env={"EXPLORER_DEFAULT_MODEL": "hashing", "EXPLORER_MAX_UPLOAD_MB": "1"}) as url:
        page, errors = _new_page(browser, url)
        upload_file(page, too_big)
        alert = page.get_by_test_id("stAlert").filter(has_text="more than the limit")
        alert.wait_for(timeout=60_000)
        size = too_big.stat().st_size / 1e6
        assert alert.inner_text().strip() == (f"too big.csv: the file is {size:,.1f} MB, more than the limit of 1 MB. "
                                              "Upload a smaller file, or raise the limit (EXPLORER_MAX_UPLOAD_MB).")
        assert not list((home / "uploads").glob("*/upload-*")), "nothing of it was written"
        assert page.get_by_test_id("stProgress").count() == 0
        # The picker is ready for the next file, which goes through.
        upload_file(page, small)
        page.get_by_role("button", name="Build map").wait_for(timeout=60_000)
        assert page.get_by_test_id("stAlert").filter(has_text="more than the limit").count() == 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "upload_after_refusal.png"))
        assert not errors, errors
