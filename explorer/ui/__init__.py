"""The Streamlit app, the only package of explorer that imports Streamlit.

    state       session keys, callbacks, and the one view state computed before anything is drawn
    loaders     every st.cache_* loader (maps, texts, titles, models, warm-ups)
    build_page  the first screen: upload, samples, saved maps, and the build
    upload      the file picker that sends a table to disk in chunks, with its progress bar (frontend/upload/)
    map_page    the open map: sidebar, search bar, the map and its panels
    widget      the map component (frontend/map/index.html, shipped as package data)
    text        Markdown escaping for user data

app.py calls ``main()``; the pages import what they share from here, never from app.py.
"""

from __future__ import annotations

import streamlit as st
import streamlit.components.v1 as components

from .build_page import landing
from .loaders import get_embedder, start_umap_warm_up
from .map_page import map_view, sidebar_controls
from .refinement import refinement_worker
from .state import VIEW_STATE_KEYS, open_current_map, reset_view, show_map
from .text import escape_markdown

__all__ = ["VIEW_STATE_KEYS", "escape_markdown", "get_embedder", "main", "reset_view", "show_map"]


# A just-built map opens at the top of the page, not scrolled down to where the form's button was.
SCROLL_TO_TOP = """<script>
const scrolled = '[data-testid="stMain"], [data-testid="stAppViewContainer"]';
for (const el of window.parent.document.querySelectorAll(scrolled)) {
  el.scrollTo({top: 0});
}
window.parent.scrollTo({top: 0});
</script>"""


def main() -> None:
    """Route between the first screen and the open map."""
    start_umap_warm_up()
    refinement_worker()  # resumes the refinements a stopped server left pending, whichever map is opened
    saved = open_current_map()
    if saved is None:
        if error := st.session_state.pop("link_error", None):
            st.error(escape_markdown(error))
        landing()
        return
    if st.session_state.pop("scroll_to_map", False):
        components.html(SCROLL_TO_TOP, height=0)
    for note in st.session_state.pop("build_notes", []):
        st.info(escape_markdown(note))
    # The map fills the page: the sidebar's controls fold away (its chevron opens them) when a map opens.
    st.set_page_config(initial_sidebar_state="collapsed")
    map_view(saved, sidebar_controls(saved))
