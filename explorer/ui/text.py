"""Text shown by Streamlit: its labels, captions and headers are Markdown, user data is not.

Every string that comes from a file, a map, a link or the library's messages goes through
``escape_markdown`` before Streamlit renders it: alerts, captions, headers, widget labels and help
texts, expander and tab labels, radio options, image captions. Select box and multiselect options
are shown as plain text by Streamlit and need none.
"""

from __future__ import annotations

import re

from explorer.texts import UNPRINTABLE

# Every character CommonMark, GFM and Streamlit give a meaning to: links and images ([]()!), emphasis
# (*_~), code (`), HTML and autolinks (<>), entities (&), bare URLs and Streamlit's directives (:),
# LaTeX ($), headings, lists, tables and quotes (#+-.|>). A backslash before any of them shows it as it is.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&])")
# GFM turns bare URLs, www. names and e-mail addresses into links after the escapes are read, so a
# backslash cannot stop it: an invisible word joiner inside "://", "www." and after "@" does.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def escape_markdown(text: object) -> str:
    """``text`` shown literally, on one line, by Streamlit's Markdown (alerts, captions, labels, help)."""
    plain = " ".join(UNPRINTABLE.sub(" ", str(text)).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _AUTOLINK.sub(WORD_JOINER, plain))
