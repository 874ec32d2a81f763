"""The chunked upload (issue 31): each chunk appended once, at the file's length; limits, disk and cancel."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from uploads import send_file

from explorer.limits import Limits
from explorer.ui.text import escape_markdown
from explorer.ui.upload import Upload, decode_chunk, encode_chunk, receive_chunk, remove_stale_uploads

DATA = bytes(range(256)) * 40  # 10,240 bytes
REPO = Path(__file__).resolve().parents[1]
PLENTY = lambda folder: 10**12  # noqa: E731 - a disk with room for anything


def _message(action: str, n: int = 1, upload_id: str = "upload-0001", data: bytes = b"", **header) -> bytes:
    return encode_chunk({"id": upload_id, "n": n, "action": action, **header}, data)


def _started(folder, *, size: int = len(DATA), limit: int = 10**9, name: str = "papers.csv") -> Upload:
    upload = receive_chunk(None, _message("start", name=name, size=size, modified=5), folder=folder, limit=limit,
                           free_bytes=PLENTY)
    assert upload is not None
    return upload


def _chunk(upload, offset: int, size: int = 4096, *, folder, limit: int = 10**9, n: int = 2) -> Upload | None:
    return receive_chunk(upload, _message("chunk", n, offset=offset, data=DATA[offset:offset + size]),
                         folder=folder, limit=limit, free_bytes=PLENTY)


def test_chunks_in_order_make_the_file(tmp_path):
    upload = _started(tmp_path)
    assert upload.path.parent == tmp_path and upload.path.read_bytes() == b"" and upload.ack()["state"] == "receiving"
    for n, offset in enumerate(range(0, len(DATA), 4096), start=2):
        upload = _chunk(upload, offset, folder=tmp_path, n=n)
    assert upload.done and upload.path.read_bytes() == DATA
    assert upload.ack() == {"id": "upload-0001", "received": len(DATA), "size": len(DATA), "name": "papers.csv",
                            "modified": 5, "state": "done", "n": 4}


def test_a_repeated_or_out_of_order_chunk_is_not_appended(tmp_path):
    upload = _chunk(_started(tmp_path), 0, folder=tmp_path)
    upload = _chunk(upload, 0, folder=tmp_path, n=3)  # the same chunk again (a rerun re-delivers the last value)
    assert upload.received == 4096 and upload.path.read_bytes() == DATA[:4096]
    upload = _chunk(upload, 8192, folder=tmp_path, n=4)  # a gap: the chunk at 4096 has not arrived
    assert upload.received == 4096 and upload.path.read_bytes() == DATA[:4096]
    assert upload.ack()["received"] == 4096, "the ack tells the browser where to go on"
    upload = _chunk(upload, 4096, folder=tmp_path, n=5)
    upload = _chunk(upload, 8192, folder=tmp_path, n=6)
    assert upload.done and upload.path.read_bytes() == DATA


def test_a_chunk_of_another_upload_or_a_malformed_message_changes_nothing(tmp_path):
    upload = _chunk(_started(tmp_path), 0, folder=tmp_path)
    other = receive_chunk(upload, _message("chunk", upload_id="someone-else", offset=4096, data=b"x" * 10),
                          folder=tmp_path, limit=10**9)
    assert other is upload and upload.path.read_bytes() == DATA[:4096]
    for junk in (b"", b"\x00\x00", b"\xff\xff\xff\xff{}", encode_chunk({"id": "../../etc", "action": "start"}),
                 encode_chunk({"id": "x"}), b"\x00\x00\x00\x02[]", None, {"not": "bytes"}):
        assert receive_chunk(upload, junk, folder=tmp_path, limit=10**9) is upload
    assert upload.path.read_bytes() == DATA[:4096]


def test_the_same_file_picked_again_goes_on_from_what_is_on_disk(tmp_path):
    upload = _chunk(_started(tmp_path), 0, folder=tmp_path)
    again = receive_chunk(upload, _message("start", 7, name="papers.csv", size=len(DATA), modified=5),
                          folder=tmp_path, limit=10**9)
    assert again is upload and again.ack()["received"] == 4096 and again.ack()["n"] == 7


def test_the_file_name_never_makes_a_path(tmp_path):
    upload = _started(tmp_path / "session", name="../../../etc/passwd")
    assert upload.path.parent == tmp_path / "session" and upload.path.name.startswith("upload-")
    assert upload.name == "../../../etc/passwd"
    assert oct(upload.path.stat().st_mode & 0o777) == oct(0o600)
    assert oct((tmp_path / "session").stat().st_mode & 0o777) == oct(0o700)


def test_over_the_limit_is_refused_before_a_byte_is_written(tmp_path):
    upload = _started(tmp_path, size=2_500_000, limit=Limits.from_env({"EXPLORER_MAX_UPLOAD_MB": "2"}).max_upload_bytes)
    assert upload.error == ("papers.csv: the file is 2.5 MB, more than the limit of 2 MB. Upload a smaller file, "
                            "or raise the limit (EXPLORER_MAX_UPLOAD_MB).")
    assert upload.path is None and list(tmp_path.iterdir()) == [] and upload.ack()["state"] == "error"
    assert _chunk(upload, 0, folder=tmp_path) is upload and list(tmp_path.iterdir()) == []


def test_more_bytes_than_declared_or_than_the_limit_fail_and_remove_the_part(tmp_path):
    upload = _chunk(_started(tmp_path, size=5000), 0, folder=tmp_path)
    path = upload.path
    upload = _chunk(upload, 4096, folder=tmp_path, n=3)  # 4096 more: 8192 > 5000 declared
    assert upload.error.startswith("papers.csv: more bytes arrived") and not path.exists()
    # A browser that declares a small size and then keeps sending stops at the limit.
    upload = _chunk(_started(tmp_path, limit=6000), 0, folder=tmp_path, limit=6000)
    upload = _chunk(upload, 4096, folder=tmp_path, limit=6000, n=3)
    assert "more than the limit" in upload.error and list(tmp_path.iterdir()) == []


def test_a_disk_without_room_is_refused_at_the_start(tmp_path):
    upload = receive_chunk(None, _message("start", name="big.csv", size=1_400_000_000), folder=tmp_path,
                           limit=2 * 10**9, free_bytes=lambda folder: 2_000_000_000)
    assert upload.error == ("big.csv: the file is 1,400.0 MB and the disk holding the workspace has 2,000 MB free; "
                            "the upload and the map built from it need about 2,905 MB. Free some space, or set "
                            "EXPLORER_HOME to a bigger disk.")
    assert upload.path is None and list(tmp_path.iterdir()) == []


def test_cancel_and_a_new_upload_remove_the_part(tmp_path):
    upload = _chunk(_started(tmp_path), 0, folder=tmp_path)
    path = upload.path
    assert receive_chunk(upload, _message("cancel", 3), folder=tmp_path, limit=10**9) is None
    assert not path.exists()
    upload = _chunk(_started(tmp_path), 0, folder=tmp_path)
    first = upload.path
    second = receive_chunk(upload, _message("start", upload_id="upload-0002", name="b.csv", size=10), folder=tmp_path,
                           limit=10**9, free_bytes=PLENTY)
    assert not first.exists() and second.path.exists() and [p.name for p in tmp_path.iterdir()] == [second.path.name]


def test_old_session_folders_are_removed(tmp_path):
    old, new, kept = tmp_path / "old", tmp_path / "new", tmp_path / "mine"
    for folder in (old, new, kept):
        folder.mkdir()
        (folder / "upload-1").write_bytes(b"x")
    hour_ago = time.time() - 3600
    for path in (old, old / "upload-1", kept, kept / "upload-1"):
        os.utime(path, (hour_ago, hour_ago))
    remove_stale_uploads(tmp_path, max_age_s=600, keep=kept)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "new"]


def test_decode_reads_what_encode_wrote():
    header, data = decode_chunk(encode_chunk({"id": "abcdefgh", "offset": 3}, b"\x00\x01"))
    assert header == {"id": "abcdefgh", "offset": 3} and bytes(data) == b"\x00\x01"


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("EXPLORER_DEFAULT_MODEL", "hashing")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    return at


def _send(at, n: int, action: str, data: bytes = b"", **header) -> None:
    at.session_state["upload"] = encode_chunk({"id": "app-upload-01", "n": n, "action": action, **header}, data)
    at.run()
    assert not at.exception, at.exception


def test_the_app_shows_progress_then_the_form_and_keeps_the_file_on_disk(app, explorer_home, papers_frame):
    data = papers_frame.to_csv(index=False).encode()
    half = len(data) // 2
    send_file(app, "earlier.csv", b"a,b\n1,2\n")
    assert app.button(key="build_upload").label == "Build map"
    _send(app, 1, "start", name="papers.csv", size=len(data))
    _send(app, 2, "chunk", data[:half], offset=0)
    bars = app.get("progress")
    assert len(bars) == 1 and bars[0].proto.value == round(100 * half / len(data)), "the bar shows what is on disk"
    assert bars[0].proto.text.startswith(escape_markdown("Uploading papers.csv: 0 of 0 MB"))
    assert "build_upload" not in [b.key for b in app.button], "the earlier file's form went with it"
    files = list((explorer_home / "uploads").rglob("upload-*"))
    assert len(files) == 1 and files[0].read_bytes() == data[:half], "the earlier upload's file went too"
    app.run()  # a rerun of the page (another widget) re-delivers the last chunk: it is not appended again
    assert files[0].read_bytes() == data[:half] and app.get("progress")[0].proto.value == bars[0].proto.value
    _send(app, 3, "chunk", data[half:], offset=half)
    assert app.get("progress")[0].proto.value == 100
    assert app.get("progress")[0].proto.text.startswith(escape_markdown("Uploaded papers.csv"))
    assert app.multiselect(key="upload_columns").value == ["title", "abstract"]
    assert files[0].read_bytes() == data
    _send(app, 4, "chunk", offset=len(data))  # the browser's empty message after the last chunk: nothing changes
    app.button(key="build_upload").click().run()
    assert not app.exception, app.exception
    assert app.session_state["map_name"] == "papers"


def test_the_app_refuses_a_file_over_the_limit_in_one_line(app, monkeypatch, explorer_home):
    monkeypatch.setenv("EXPLORER_MAX_UPLOAD_MB", "2")
    data = b"a,b\n" + b"1,2\n" * 625_000
    send_file(app, "big.csv", data, chunk=len(data))
    assert not app.exception, app.exception
    assert [e.value for e in app.error] == [escape_markdown(
        "big.csv: the file is 2.5 MB, more than the limit of 2 MB. Upload a smaller file, or raise the limit "
        "(EXPLORER_MAX_UPLOAD_MB).")]
    assert not list((explorer_home / "uploads").rglob("upload-*")), "nothing of it on disk"
    assert "build_upload" not in [b.key for b in app.button]


def test_cancel_in_the_app_removes_the_part_and_the_bar(app, explorer_home):
    _send(app, 1, "start", name="papers.csv", size=100)
    _send(app, 2, "chunk", b"title\n" * 10, offset=0)
    assert len(app.get("progress")) == 1 and len(list((explorer_home / "uploads").rglob("upload-*"))) == 1
    _send(app, 3, "cancel")
    assert len(app.get("progress")) == 0 and not list((explorer_home / "uploads").rglob("upload-*"))
