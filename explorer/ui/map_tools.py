"""Tools for the open map in the sidebar: add rows to it, lay it out afresh, find near-duplicates, and
see where it misleads (its trust). Each runs a library step and reruns the app on the saved result."""

from __future__ import annotations

import streamlit as st

from explorer.curate import relayout_map
from explorer.duplicates import THRESHOLD
from explorer.grow import BATCH_COLUMN, add_rows
from explorer.modes import duration_text
from explorer.store import Workspace
from explorer.trust import TRUST_COLUMN, add_trust, trust_seconds_estimate, trust_summary

from . import loaders
from .build_page import IMAGE_TYPES, TABLE_TYPES, run_with_progress
from .state import SELECTION_TAB, SIDE_TAB, show_map
from .text import escape_markdown
from .upload import file_upload

MAX_GROUPS_LISTED = 20


def select_rows(row_ids: list[int]) -> None:
    """Button callback: make ``row_ids`` the selection (drawn on the map, listed in the Selection tab)."""
    st.session_state["selection"] = [int(i) for i in row_ids]
    st.session_state[SIDE_TAB] = SELECTION_TAB


def add_rows_panel(saved) -> None:
    """Upload more rows; they are placed among their nearest rows and no point on the map moves."""
    with st.expander("Add rows"):
        images = saved.kind == "images"
        st.caption("New rows are embedded with this map's own model and placed beside their nearest rows; "
                   "every point already on the map stays where it is. They get a batch number (filter by "
                   f"`{BATCH_COLUMN}` to see them)." + ("" if images else " The table needs the map's text columns."))
        if images:  # image files and ZIPs keep Streamlit's uploader, as on the first screen
            upload = st.file_uploader("Rows to add", type=IMAGE_TYPES, key="add_rows_file")
            source = None if upload is None else upload.getvalue()
        else:  # a table of any size goes to disk in chunks (explorer/ui/upload.py)
            upload = file_upload("add_rows_file", label="Rows to add", types=TABLE_TYPES)
            source = None if upload is None else upload.path
        if st.button("Add to this map", key="add_rows", disabled=upload is None):
            result = run_with_progress(
                "Adding rows…",
                lambda progress: add_rows(saved.name, source, source_name=upload.name,
                                          workspace=Workspace(), progress=progress),
                done=lambda r: f"Added {r.added:,} rows in {r.seconds:.1f} s", failed="The rows could not be added")
            if result is not None:
                st.session_state["build_notes"] = [
                    f"Added {result.added:,} rows to '{saved.name}' as batch {result.batch}; no point moved.",
                    *result.notes]
                st.rerun()
        if BATCH_COLUMN in saved.points and int(saved.points[BATCH_COLUMN].max()) > 0:
            st.caption("Added rows are placed on the layout as it was. A fresh layout of every row is a new "
                       "version of the map; this one stays as it is.")
            if st.button("Lay out all rows afresh", key="relayout"):
                fresh = run_with_progress(
                    "Laying out every row…",
                    lambda progress: relayout_map(Workspace(), saved.name, progress=progress),
                    done=lambda m: f"Saved '{m.name}'", failed="The map could not be laid out again")
                if fresh is not None:
                    show_map(fresh.name)
                    st.session_state["build_notes"] = [f"Saved '{fresh.name}', every row laid out afresh; "
                                                       f"'{saved.name}' is unchanged in the Library."]
                    st.rerun()


def trust_panel(saved) -> None:
    """How far the map can be believed: the trust line, or a button to measure it."""
    summary = trust_summary(saved)
    if summary is not None and TRUST_COLUMN in saved.points:
        st.caption(escape_markdown(summary) + " To see where the map misleads, choose `trust` under *Colour by*: "
                   "low values mark points whose neighbours on the map are not their neighbours in meaning.")
        return
    with st.expander("Where the map misleads"):
        st.caption("Two points close on the map can be far apart in meaning, and the reverse. Trust measures, "
                   "for every point, how many of its neighbours on the map are true neighbours.")
        seconds = trust_seconds_estimate(int(saved.embedded.sum()))
        if st.button("Measure trust", key="measure_trust",
                     help=f"About {duration_text(seconds)}." if seconds is not None else "Minutes on a big map."):
            measured = run_with_progress(
                "Measuring trust…", lambda progress: add_trust(saved, workspace=Workspace(), progress=progress),
                done=lambda m: "Trust measured", failed="Trust could not be measured")
            if measured is not None:
                st.rerun()


def duplicates_panel(saved) -> None:
    """Groups of near-identical rows, each selectable (the Selection tab can then remove them)."""
    with st.expander("Near-duplicates"):
        threshold = st.slider("Similarity at least", 0.80, 1.00, THRESHOLD, 0.01, key="duplicate_threshold")
        if st.button("Find near-duplicates", key="find_duplicates"):
            st.session_state["duplicates_asked"] = (saved.name, threshold)
        if st.session_state.get("duplicates_asked") != (saved.name, threshold):
            return
        stamp = st.session_state["map_stamp"]
        with st.spinner("Comparing every row with every other…"):
            found = loaders.duplicates_of(saved.name, stamp, threshold)
        if not found.groups:
            st.caption(f"No two rows are at least {threshold:.2f} similar.")
            return
        row_ids = saved.points["row_id"].to_numpy()
        titles = loaders.get_titles(saved.name, stamp, None, None)
        st.markdown(f"**{len(found.groups):,} groups** · {found.n_rows:,} rows"
                    + ("" if found.exact else " (approximate: pairs beyond each row's nearest 15 are not compared)"))
        st.button("Select all but the first of each group", key="select_duplicates",
                  on_click=select_rows, args=(row_ids[found.extra_rows()].tolist(),),
                  help="Then 'Remove the selected rows and re-project' in the Selection tab drops them.")
        for i, group in enumerate(found.groups[:MAX_GROUPS_LISTED]):
            st.button(f"{len(group)} × {escape_markdown(titles[group[0]][:60])}", key=f"duplicate_group_{i}",
                      type="tertiary", on_click=select_rows, args=(row_ids[group].tolist(),))
        if len(found.groups) > MAX_GROUPS_LISTED:
            st.caption(f"…and {len(found.groups) - MAX_GROUPS_LISTED:,} more groups.")
