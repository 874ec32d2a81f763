"""Embedding Explorer: upload a dataset (or open the sample, or a saved map), see its map, search it.

`streamlit run app.py`. Everything the app draws lives in explorer/ui: this file sets up the page
and hands over to its router.
"""

from __future__ import annotations

import streamlit as st

from explorer.ui import main
from explorer.ui.host import guard_host

st.set_page_config(page_title="Embedding Explorer", page_icon="🗺️", layout="wide")
guard_host()  # first on every page: a name other than this machine's (DNS rebinding) gets one line
main()
