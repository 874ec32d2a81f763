"""Library: every saved map, with open, rename, delete and downloads."""

from __future__ import annotations

import streamlit as st

from explorer import ExplorerError, Workspace
from explorer.export import export_points, to_csv_bytes, to_html_bytes, to_parquet_bytes
from explorer.ui import escape_markdown, show_map
from explorer.ui.host import guard_host
from explorer.ui.widget import forget_map

st.set_page_config(page_title="Library · Embedding Explorer", page_icon="🗺️", layout="wide")
guard_host()
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
# A rename or delete of the last run picks the map to show now, before the picker is drawn: the
# picker must stay on the renamed map, or the next download would be another map's.
if (pending := st.session_state.pop("library_pending", None)) in names:
    st.session_state["library_map"] = pending
if message := st.session_state.pop("library_message", None):
    st.success(message)
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
            st.error(escape_markdown(exc))
        else:
            if st.session_state.get("map_name") == name:
                st.session_state["map_name"] = renamed
            st.session_state["library_pending"] = renamed
            st.session_state["library_message"] = f"Renamed '{escape_markdown(name)}' to '{escape_markdown(renamed)}'."
            st.rerun()

with delete_col:
    st.subheader("Delete")
    confirm = st.checkbox(f"Yes, delete {escape_markdown(name)} for good", key="library_confirm_delete")
    if st.button("Delete", key="library_delete", disabled=not confirm):
        try:
            workspace.delete(name)
            forget_map(name)  # the titles and points staged for the browser go with it
        except ExplorerError as exc:
            st.error(escape_markdown(exc))
        else:
            if st.session_state.get("map_name") == name:
                st.session_state.pop("map_name", None)
            st.session_state.pop("library_confirm_delete", None)
            st.session_state["library_message"] = f"Deleted '{escape_markdown(name)}'."
            st.rerun()

st.subheader("Download")
try:
    saved = workspace.open(name)
except ExplorerError as exc:
    st.error(escape_markdown(exc))
    st.stop()
csv_col, parquet_col, html_col = st.columns(3)
# Cluster columns hold the clusters' names, with their ids beside them (explorer.export.export_points).
table = export_points(saved)
csv_col.download_button("Table as CSV", to_csv_bytes(table), file_name=f"{saved.name}.csv",
                        mime="text/csv", key="library_csv")
parquet_col.download_button("Table as Parquet", to_parquet_bytes(table),
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
