"""Embedding Explorer: the first screen (upload, build, map, search)."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Embedding Explorer", layout="wide")
st.title("Embedding Explorer")
st.write("Upload a dataset to see its map.")
