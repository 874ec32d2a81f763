"""The real app in Chromium with an image ZIP: build with the offline embedder, thumbnails render."""

from __future__ import annotations

import re
import zipfile

import pytest
from streamlit_server import ARTIFACTS, MAP_IFRAME, REPO, map_frame, streamlit_server, wait_until_idle
from test_browser import _new_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """A server of its own, so this module's maps never mix with the text tests'."""
    with streamlit_server(tmp_path_factory.mktemp("images-home")) as url:
        yield url


def _digits_zip(path, digits=("1", "3", "8"), per_digit: int = 12):
    """A ZIP of sample digits in one folder per digit, plus one file that is not an image."""
    with zipfile.ZipFile(path, "w") as archive:
        for digit in digits:
            for png in sorted((REPO / "sample_data" / "images" / digit).glob("*.png"))[:per_digit]:
                archive.write(png, f"{digit}/{png.name}")
        archive.writestr("notes/readme.txt", "not an image")
    return path


def _rendered_images(page, selector: str) -> int:
    """How many <img> under ``selector`` decode to a real picture (lazy ones are made to load first)."""
    return page.locator(f"{selector} img").evaluate_all(
        """async els => {
            const widths = await Promise.all(els.map(e => {
                e.loading = "eager";
                return e.decode().then(() => e.naturalWidth, () => 0);
            }));
            return widths.filter(w => w > 0).length;
        }"""
    )


def test_zip_upload_builds_a_map_with_thumbnails(browser, app_url, tmp_path):
    page, errors = _new_page(browser, app_url)
    archive = _digits_zip(tmp_path / "digits.zip")
    # Tables go through the chunked upload component (explorer/ui/upload.py); images keep Streamlit's uploader.
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(archive))
    page.get_by_text("1 file(s) skipped").wait_for(timeout=60_000)
    wait_until_idle(page)
    assert _rendered_images(page, '[data-testid="stImage"]') >= 20
    page.get_by_text("Offline pixel features (no weights)").click()
    wait_until_idle(page)
    page.get_by_role("button", name="Build map").click()
    map_frame(page).locator("#map[data-points-total]").first.wait_for(timeout=180_000)
    wait_until_idle(page)
    _hover_shows_a_thumbnail(page)

    box = page.get_by_label("Search the map")
    box.fill("3")
    box.press("Enter")
    page.locator('[class*="st-key-hitlist"] button').first.wait_for(timeout=60_000)
    wait_until_idle(page)
    assert page.get_by_text(re.compile("matches words in file names and labels")).first.is_visible()
    assert _rendered_images(page, '[data-testid="stImage"]') >= 10
    hits = page.locator('[class*="st-key-hitlist"] button')
    assert all("3/" in label for label in hits.all_inner_texts())
    hits.first.click()
    page.get_by_role("tab", name="Details", selected=True).wait_for(timeout=60_000)
    wait_until_idle(page)
    widths = page.locator('[data-testid="stImage"] img').evaluate_all("els => els.map(e => e.width)")
    assert max(widths) >= 200, "the details panel shows the picked image large"
    page.screenshot(path=str(ARTIFACTS / "images_map.png"))
    assert not errors


def _hover_shows_a_thumbnail(page) -> None:
    """A pointer over a point of the image map shows that point's thumbnail beside the hover card (the map core
    fetches the thumbnails file once; retried while Python is still writing it)."""
    frame = page.locator(MAP_IFRAME).bounding_box()
    shown = None
    for attempt in range(40):
        x, y = map_frame(page).locator("#map").evaluate(f"m => m.explorerMap.at({attempt % 5})")
        page.mouse.move(frame["x"] + x, frame["y"] + y)
        page.wait_for_timeout(250)
        shown = map_frame(page).locator("#map").get_attribute("data-thumbnail")
        if shown:
            break
        page.mouse.move(frame["x"] + 2, frame["y"] + frame["height"] - 2)
    assert shown, "no thumbnail on hover"
    hovered = map_frame(page).locator("#map").get_attribute("data-hover-id")
    assert shown == hovered
    width = map_frame(page).locator("#map .tip img").evaluate("img => img.complete ? img.naturalWidth : 0")
    assert width > 0 and map_frame(page).locator("#map .tip").is_visible()
