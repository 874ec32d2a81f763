"""Uploads in AppTest: the picker's messages (explorer.ui.upload) set as its value, one run each, as the
browser's component sends them."""

from __future__ import annotations

import secrets

from explorer.ui.upload import encode_chunk

TEST_CHUNK = 64 * 1024


def send_file(at, name: str, data: bytes, *, key: str = "upload", chunk: int = TEST_CHUNK, upload_id: str | None = None):
    """Send ``data`` as the file ``name`` through the picker ``key``: "start", then each chunk, with a run after
    each (AppTest runs the whole script; the browser's runs are the picker's fragment's)."""
    upload_id = upload_id or f"test-{secrets.token_hex(6)}"  # a new file each call, as a browser's pick is
    number = 0

    def message(header: dict, payload: bytes = b"") -> None:
        nonlocal number
        number += 1
        at.session_state[key] = encode_chunk({"id": upload_id, "n": number, **header}, payload)
        at.run()

    message({"action": "start", "name": name, "size": len(data), "modified": 0})
    for offset in range(0, len(data), chunk):
        message({"action": "chunk", "offset": offset}, data[offset:offset + chunk])
    return at
