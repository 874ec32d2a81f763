"""The exceptions the library raises: one type per kind of failure, each with a message a person can act on."""

from __future__ import annotations

import re

# Every character str.splitlines() breaks at.
_LINE_BREAKS = re.compile(r"[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+")


class ExplorerError(Exception):
    """Base class: every failure the user can fix is an ExplorerError with a one-line message."""

    def __str__(self) -> str:
        # What a message quotes (a column name, a parser's own error) may hold line breaks: it stays one line.
        return _LINE_BREAKS.sub(" ", super().__str__())


class InputError(ExplorerError):
    """The input data cannot be used: unreadable file, unsupported format, no text, too large."""


class ModelError(ExplorerError):
    """The embedding model cannot be loaded or fails its integrity check."""


class MapNotFoundError(ExplorerError):
    """No saved map has the requested name."""


class MapChangedError(ExplorerError):
    """The map was changed by someone else since it was read, in a way this save cannot merge."""


class EngineError(ExplorerError):
    """The compute engine cannot run: Ray is not installed, the cluster is unreachable, or a run lost rows."""


def shown_lines(line_numbers: list[int]) -> str:
    """Line numbers as messages list them: the first ten, then an ellipsis."""
    return ", ".join(str(n) for n in line_numbers[:10]) + (" …" if len(line_numbers) > 10 else "")
