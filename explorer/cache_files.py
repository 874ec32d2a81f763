"""Caches are disposable: a damaged cache file is set aside, with one line saying so, and a fresh one
started; the embedding cache (embed.py) and the layout cache (project.py) share these two helpers."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


def set_aside(path: Path, what: str, reason: object, *, companions: Sequence[str] = ()) -> str:
    """Rename a damaged cache file or folder (and its ``companions``, suffixes such as SQLite's "-wal") to
    ``<name>.corrupt-<time>``, kept for a look and never read again, and say so in one line: caches are
    disposable, the caller starts a fresh one. OSError when it cannot be moved."""
    target = path.with_name(f"{path.name}.corrupt-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}")
    os.rename(path, target)
    for suffix in companions:  # they belong to the damaged file: beside a fresh one they would be misread
        with contextlib.suppress(FileNotFoundError):
            os.rename(path.with_name(path.name + suffix), target.with_name(target.name + suffix))
    why = " ".join(str(reason).split())[:120]
    message = (f"The {what} {path} could not be used ({why}): it was moved aside as {target.name} and a fresh "
               "one started, so only cached work is redone; no map was touched.")
    log.warning(message)
    return message


def cache_folder(folder: Path) -> str | None:
    """Make a cache's ``folder``, first setting aside a file that stands where it or a folder above it
    should be: the note saying so, or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return None
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (folder, *folder.parents) if os.path.lexists(p) and not p.is_dir()), folder)
    note = set_aside(blocker, "cache folder", "a file stands where a folder should be")
    folder.mkdir(parents=True, exist_ok=True)
    return note
