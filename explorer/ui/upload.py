"""The upload form's file picker: a file of any size goes to disk as it arrives, with a progress bar.

``st.file_uploader`` holds the whole file in the server's memory (and Streamlit refuses one over
``server.maxUploadSize``); a 1.4 GB CSV of a million abstracts must never be held whole. So the picker is
a small component (frontend/upload/index.html, our own script) that reads the chosen File with
``File.slice``, CHUNK_BYTES at a time, and sends each chunk as the component's value: bytes, a JSON
header (upload id, offset, size) then the data. Python appends a chunk only when it starts exactly where
the file on disk ends, and acknowledges the length on disk; the browser sends the next chunk from there.
So a chunk delivered twice (every rerun re-delivers the component's last value) or out of order is never
appended twice, and an upload interrupted by a rerun, or picked again after the page lost it, goes on from
what is on disk. Each chunk reruns only the picker's fragment, not the page.

Files go to a folder of this session's own under the workspace (``uploads/<random>/``, mode 0700), named by
the server, never by the user; the user's file name is only shown and gives the format. One upload is kept
per session (a new one, or Cancel, removes the last), and folders unused for UPLOAD_MAX_AGE_S are removed
when any session starts an upload.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import secrets
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from explorer.home import explorer_home
from explorer.limits import Limits, too_big_message

from .text import escape_markdown
from .widget import upload_folder

# A few MB a message: big enough that the round trip per chunk (a fragment rerun) is a small share of the
# time, small enough to stay well under Streamlit's 25 MB cap on one message's widget state.
CHUNK_BYTES = 8 * 1024 * 1024
# Room the disk must keep besides the file: the map built from it (its vectors, points and caches) is
# about as big again, and a full disk must fail here, at once, not in the middle of a save.
DISK_HEADROOM_BYTES = 100 * 1024 * 1024
UPLOAD_MAX_AGE_S = 24 * 3600
# Each chunk arrives in a protobuf message that Streamlit's runs leave in reference cycles, freed only by a
# full collection, which the app's config turns off after runs (runner.postScriptGC: 0.5 s with a big map
# in memory). Without one every so often the server's memory crept up by ~0.2 MB per MB uploaded
# (docs/benchmarks.md, "Big uploads"); a collection per GC_EVERY_BYTES keeps it flat, at a small cost.
GC_EVERY_BYTES = 64 * 1024 * 1024
# An upload id is the browser's: a name for a stream of chunks, checked, and never part of a path.
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_HEADER_LENGTH = struct.Struct(">I")
# session_state keys: this session's folder token, and each picker's upload (by the picker's key).
_FOLDER_KEY = "upload_folder_token"
log = logging.getLogger(__name__)


@dataclass
class Upload:
    """One file arriving (or arrived) in chunks: what the browser declared and what is on disk."""

    id: str
    name: str  # the user's file name: shown, and gives the format; never part of a path
    size: int  # the size the browser declared
    path: Path | None  # the file on disk (None when refused before a byte was written)
    modified: int = 0  # the File's lastModified, so the same file picked again resumes
    received: int = 0
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    last: int = 0  # the number of the last message handled (echoed, so every message gets an answer)
    collected: int = 0  # the bytes received at the last garbage collection (GC_EVERY_BYTES)

    @property
    def done(self) -> bool:
        """Whether every declared byte is on disk."""
        return self.error is None and self.path is not None and self.received == self.size

    def ack(self) -> dict:
        """What the browser is told: how much is on disk, and whether to go on."""
        state = "error" if self.error else "done" if self.done else "receiving"
        return {"id": self.id, "received": self.received, "size": self.size, "name": self.name,
                "modified": self.modified, "state": state, "n": self.last}


def encode_chunk(header: dict, data: bytes = b"") -> bytes:
    """One message as the component sends it: a 4-byte big-endian header length, the JSON header, the data."""
    raw = json.dumps(header).encode()
    return _HEADER_LENGTH.pack(len(raw)) + raw + data


def decode_chunk(message: bytes) -> tuple[dict, memoryview] | None:
    """The header and data of a message (encode_chunk), or None when it is not one."""
    view = memoryview(message)
    if len(view) < _HEADER_LENGTH.size:
        return None
    (length,) = _HEADER_LENGTH.unpack_from(view)
    if length > 4096 or len(view) < _HEADER_LENGTH.size + length:
        return None
    try:
        header = json.loads(bytes(view[_HEADER_LENGTH.size:_HEADER_LENGTH.size + length]))
    except ValueError:
        return None
    if not isinstance(header, dict) or not _UPLOAD_ID.match(str(header.get("id", ""))):
        return None
    return header, view[_HEADER_LENGTH.size + length:]


def receive_chunk(upload: Upload | None, message: bytes | None, *, folder: Path, limit: int,
                  free_bytes: Callable[[Path], int] | None = None) -> Upload | None:
    """The upload after one message from the browser: "start" (a file declared), "chunk" (data at an
    offset) or "cancel". A chunk is appended only when its offset is the length on disk; anything else
    (a repeat, a gap, another upload's chunk, a malformed message) leaves the upload as it was."""
    decoded = decode_chunk(message) if isinstance(message, (bytes, bytearray, memoryview)) else None
    if decoded is None:
        return upload
    header, data = decoded
    number = _int(header.get("n"))
    same = upload is not None and upload.id == header["id"]
    action = header.get("action")
    if action == "cancel":
        if same or upload is None:
            discard(upload)
            return None
        return upload
    if action == "start":
        if same:
            upload.last = max(upload.last, number)
            return upload  # the same file picked again: it goes on from what is on disk
        discard(upload)
        return _start(header, folder=folder, limit=limit, free_bytes=free_bytes or _free_bytes, number=number)
    if action != "chunk" or not same or upload.error or upload.path is None:
        return upload
    upload.last = max(upload.last, number)
    try:
        on_disk = upload.path.stat().st_size
    except FileNotFoundError:
        upload.error = f"{upload.name}: the part uploaded so far was removed. Upload the file again."
        return upload
    upload.received = on_disk
    if _int(header.get("offset"), -1) != on_disk or not len(data):
        return upload  # a repeat or a gap: the ack tells the browser where to go on
    if on_disk + len(data) > min(upload.size, limit):
        return _failed(upload, too_big_message(upload.name, on_disk + len(data), limit) if on_disk + len(data) > limit
                       else f"{upload.name}: more bytes arrived than the file's size. Upload it again.")
    try:
        with open(upload.path, "ab") as file:
            file.write(data)
    except OSError as exc:
        return _failed(upload, f"{upload.name}: the upload could not be written to disk ({exc.strerror or exc}). "
                               "Free some space, or set EXPLORER_HOME to a bigger disk.")
    upload.received = on_disk + len(data)
    return upload


def _start(header: dict, *, folder: Path, limit: int, free_bytes: Callable[[Path], int], number: int) -> Upload:
    name = str(header.get("name") or "upload")[:255]
    size = _int(header.get("size"), -1)
    upload = Upload(id=header["id"], name=name, size=size, path=None, modified=_int(header.get("modified")),
                    last=number)
    if size <= 0:
        upload.error = f"{name}: the file is empty. Choose a file with a header and rows."
    elif size > limit:
        upload.error = too_big_message(name, size, limit)
    else:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        free = free_bytes(folder)
        if free < 2 * size + DISK_HEADROOM_BYTES:
            upload.error = (f"{name}: the file is {size / 1e6:,.1f} MB and the disk holding the workspace has "
                            f"{free / 1e6:,.0f} MB free; the upload and the map built from it need about "
                            f"{(2 * size + DISK_HEADROOM_BYTES) / 1e6:,.0f} MB. Free some space, or set "
                            "EXPLORER_HOME to a bigger disk.")
        else:
            upload.path = folder / f"upload-{secrets.token_hex(8)}"
            # Created empty and private; its name is the server's, whatever the user's file is called.
            os.close(os.open(upload.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return upload


def _failed(upload: Upload, message: str) -> Upload:
    discard(upload)
    upload.error, upload.received = message, 0
    return upload


def discard(upload: Upload | None) -> None:
    """Remove an upload's file (a partial one too)."""
    if upload is not None and upload.path is not None:
        upload.path.unlink(missing_ok=True)


def _int(value, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def uploads_root() -> Path:
    """The workspace's folder of uploads, one subfolder per session."""
    return explorer_home() / "uploads"


def remove_stale_uploads(root: Path, *, max_age_s: float = UPLOAD_MAX_AGE_S, keep: Path | None = None) -> None:
    """Remove the session folders under ``root`` whose files (and the folder) are older than ``max_age_s``:
    uploads of sessions that ended, or were left half done."""
    if not root.is_dir():
        return
    cutoff = time.time() - max_age_s
    for folder in root.iterdir():
        if folder == keep or folder.is_symlink() or not folder.is_dir():
            continue
        try:
            newest = max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.iterdir())])
        except OSError:
            continue
        if newest < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


def session_folder() -> Path:
    """This session's folder of uploads: a random name, made on first use."""
    token = st.session_state.setdefault(_FOLDER_KEY, secrets.token_hex(12))
    return uploads_root() / token


# ---------------------------------------------------------------- the picker


def file_upload(key: str, *, label: str, types: list[str]) -> Upload | None:
    """The picker with its progress bar; returns the finished upload (its file on disk), else None."""
    _picker(key, label, tuple(types))
    upload = st.session_state.get(_state_key(key))
    if upload is None or not upload.done:
        return None
    try:
        os.utime(upload.path)  # in use: not removed as stale
    except FileNotFoundError:
        st.session_state[_state_key(key)] = None
        st.error(escape_markdown(f"{upload.name}: the uploaded file was removed after a day unused. Upload it again."))
        return None
    return upload


def _state_key(key: str) -> str:
    return f"{key}__upload"


@st.fragment
def _picker(key: str, label: str, types: tuple[str, ...]) -> None:
    # The component's value is read before it is drawn, so its ack answers the message just handled.
    before = st.session_state.get(_state_key(key))
    outline = _outline(before)
    limit = Limits.from_env().max_upload_bytes
    folder = session_folder()
    upload = receive_chunk(before, st.session_state.get(key), folder=folder, limit=limit)
    if upload is not None and upload is not before:
        remove_stale_uploads(uploads_root(), keep=folder)
    st.session_state[_state_key(key)] = upload
    if upload is not None and upload.received - upload.collected >= GC_EVERY_BYTES:
        upload.collected = upload.received
        gc.collect()
    if _outline(upload) != outline:
        st.rerun()  # started, finished, failed or cancelled: the form below changes with it
    component = components.declare_component("explorer_upload", path=upload_folder())
    component(key=key, default=None, label=label, accept=",".join(f".{t}" for t in types), limit=limit,
              chunk=CHUNK_BYTES, ack=None if upload is None else upload.ack())
    if upload is None:
        return
    if upload.error:
        st.error(escape_markdown(upload.error))
        return
    fraction = upload.received / upload.size
    if upload.done:
        text = f"Uploaded {upload.name}: {upload.size / 1e6:,.1f} MB"
    else:
        seconds = max(time.monotonic() - upload.started, 1e-3)
        text = (f"Uploading {upload.name}: {upload.received / 1e6:,.0f} of {upload.size / 1e6:,.0f} MB "
                f"({upload.received / 1e6 / seconds:,.0f} MB/s)")
    st.progress(fraction, text=escape_markdown(text))


def _outline(upload: Upload | None) -> tuple:
    return (None,) if upload is None else (upload.id, upload.done, upload.error)
