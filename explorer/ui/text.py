"""Text shown by Streamlit: its labels, captions and headers are Markdown, user data is not."""

from __future__ import annotations

import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$])")


def escape_markdown(text: str) -> str:
    """Text shown literally by a Markdown renderer (Streamlit labels and captions are Markdown)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))
