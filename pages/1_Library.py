"""Library: every saved map, with open, rename, delete and downloads."""

from __future__ import annotations

import streamlit as st

from explorer import ExplorerError, Workspace
from explorer.export import to_csv_bytes, to_html_bytes, to_parquet_bytes
from explorer.ui import escape_markdown, show_map

st.set_page_config(page_title="Library · Embedding Explorer", page_icon="🗺️", layout="wide")
st.title("Library")
workspace = Workspace()
maps = workspace.list()
if not maps:
    st.info("No saved maps yet. Build one on the main page: upload a table or try the sample papers.")
    st.stop()

st.dataframe(
    {
        "map": [m.name for m in maps],
        "rows": [m.rows for m in maps],
        "on the map": [m.embedded_rows for m in maps],
        "model": [m.model_id for m in maps],
        "created": [m.created.replace("T", " ")[:16] for m in maps],
    },
    hide_index=True,
    width="stretch",
)

names = [m.name for m in maps]
name = st.selectbox("Map", names, key="library_map")
open_col, rename_col, delete_col = st.columns(3, gap="large")

with open_col:
    st.subheader("Open")
    if st.button("Open on the map page", type="primary", key="library_open"):
        show_map(name)
        st.switch_page("app.py")

with rename_col:
    st.subheader("Rename")
    new_name = st.text_input("New name", key="library_new_name")
    if st.button("Rename", key="library_rename", disabled=not new_name.strip()):
        try:
            renamed = workspace.rename(name, new_name)
        except ExplorerError as exc:
            st.error(str(exc))
        else:
            if st.session_state.get("map_name") == name:
                st.session_state["map_name"] = renamed
            st.success(f"Renamed to {escape_markdown(renamed)}.")
            st.rerun()

with delete_col:
    st.subheader("Delete")
    confirm = st.checkbox(f"Yes, delete {escape_markdown(name)} for good", key="library_confirm_delete")
    if st.button("Delete", key="library_delete", disabled=not confirm):
        try:
            workspace.delete(name)
        except ExplorerError as exc:
            st.error(str(exc))
        else:
            if st.session_state.get("map_name") == name:
                st.session_state.pop("map_name", None)
            st.session_state.pop("library_confirm_delete", None)
            st.rerun()

st.subheader("Download")
try:
    saved = workspace.open(name)
except ExplorerError as exc:
    st.error(str(exc))
    st.stop()
csv_col, parquet_col, html_col = st.columns(3)
csv_col.download_button("Table as CSV", to_csv_bytes(saved.points), file_name=f"{saved.name}.csv",
                        mime="text/csv", key="library_csv")
parquet_col.download_button("Table as Parquet", to_parquet_bytes(saved.points),
                            file_name=f"{saved.name}.parquet", mime="application/octet-stream",
                            key="library_parquet")
if html_col.button("Prepare interactive HTML", key="library_prepare_html"):
    st.session_state["library_html"] = (name, to_html_bytes(saved))
prepared = st.session_state.get("library_html")
if prepared and prepared[0] == name:
    html_col.download_button("Download HTML map", prepared[1], file_name=f"{saved.name}.html",
                             mime="text/html", key="library_html_download")
st.caption("CSV cells that start with =, +, - or @ are prefixed with ' so spreadsheets do not run them; "
           "Parquet keeps every value exact. The HTML map opens offline in any browser.")
