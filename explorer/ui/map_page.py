"""The open map: sidebar controls, the search bar, the map, and the panels around it.

Every panel draws from the one ``ViewState`` computed before the map (see ``state``); buttons
change session state through callbacks, or run a library action and rerun the app.
"""

from __future__ import annotations

import contextlib
from functools import partial

import numpy as np
import streamlit as st

from explorer.cluster import ClusterConfig
from explorer.curate import remove_and_reproject
from explorer.draw import shorten
from explorer.errors import ExplorerError
from explorer.export import to_csv_bytes
from explorer.filters import display_columns, positions_of
from explorer.map_clusters import add_clusters, cluster_column, cluster_levels, rename_cluster
from explorer.search import nearest_neighbors
from explorer.store import Workspace

from . import loaders
from .build_page import IMAGE_TYPES
from .state import (
    Controls,
    SearchInput,
    ViewState,
    chart_key,
    close_map,
    cluster_table_key,
    compute_view_state,
    explain_row,
    focus_row,
    forget,
    show_map,
)
from .text import escape_markdown
from .widget import map_chart

SELECTION_TABLE_ROWS = 1_000


# ---------------------------------------------------------------- controls


def sidebar_controls(saved) -> Controls:
    """Colour, hover, cluster and filter choices for the open map."""
    levels = cluster_levels(saved)
    with st.sidebar:
        st.header(escape_markdown(saved.name))
        st.caption(f"{saved.manifest['embedded_rows']:,} of {saved.manifest['rows']:,} rows on the map · "
                   f"{escape_markdown(saved.manifest['model_id'])}")
        st.button("New map", key="new_map", on_click=close_map)
        level = None
        show_labels = False
        if levels:
            show_labels = st.checkbox("Cluster labels on the map", value=True, key="show_labels")
            fine = "fine" in levels and st.toggle("Fine clusters", key="fine_clusters",
                                                  help="Smaller clusters with more specific labels.")
            level = "fine" if fine else levels[0]
        stamp = st.session_state["map_stamp"]
        points = loaders.display_points(saved.name, stamp, level)
        roles = loaders.column_roles(saved.name, stamp, level)
        candidates, default_colour = roles["candidates"], roles["default_colour"]
        options = ["(none)", *candidates]
        colour = st.selectbox("Colour by", options, key="colour_by",
                              index=options.index(default_colour) if default_colour in options else 0)
        hover = st.multiselect("Show on hover", candidates, key="hover_fields", max_selections=2,
                               default=[c for c in ("year", "field") if c in candidates][:2])
        st.subheader("Filter")
        keyword = st.text_input("Keyword in text", key="keyword")
        regex = st.checkbox("Regular expression", key="keyword_regex")
        chosen = {}
        for col, values in roles["filters"].items():
            chosen[col] = st.multiselect(f"{col}", values, key=f"filter_{col}")
    return Controls(points=points, level=level, show_labels=show_labels,
                    colour=None if colour == "(none)" else colour, hover=hover, keyword=keyword, regex=regex,
                    categories=chosen)


def search_controls(*, images: bool) -> SearchInput:
    """The search box and its sliders (plus search by an example image on image maps)."""
    box, k_col, t_col, sim_col = st.columns([4, 1.2, 1.2, 1.2])
    query = box.text_input("Search the map", key="query",
                           placeholder="e.g. a digit's label, or a description" if images else "e.g. protein folding")
    k = k_col.slider("Results", 1, 50, 10, key="k")
    threshold = t_col.slider("Min. similarity", 0.0, 1.0, 0.0, 0.05, key="threshold")
    by_similarity = sim_col.checkbox("Colour by similarity", key="colour_by_similarity")
    example = None
    if images:
        upload = st.file_uploader("…or search by an example image", key="example_image",
                                  type=[t for t in IMAGE_TYPES if t != "zip"])
        example = upload.getvalue() if upload is not None else None
    return SearchInput(query=query.strip(), k=k, threshold=threshold, by_similarity=by_similarity, example=example)


# ---------------------------------------------------------------- the map view


@st.fragment
def map_view(saved, controls: Controls) -> None:
    """Search bar, the map, the side panel, the selection table and the cluster panel.

    A fragment: a search, a click or a selection reruns only this part, not the sidebar."""
    search = search_controls(images=saved.kind == "images")
    view = compute_view_state(saved, controls, search)
    for kind, text in view.messages:
        getattr(st, kind)(text)
    stamp = st.session_state["map_stamp"]
    map_col, side_col = st.columns([3, 1.3], gap="medium")
    with map_col:
        if not view.keep.all():
            st.caption(f"{int(view.keep.sum()):,} of {len(view.points):,} rows match the filters; "
                       "the rest are dimmed.")
        map_chart(view.points, view.style, revision=f"{saved.name}:{stamp}", key=chart_key(saved))
    with side_col:
        if view.selected_row is not None:
            details_panel(saved, view)
        if view.result is not None:
            results_panel(saved, view)
        elif view.selected_row is None:
            st.caption("Search above, or click a point to see its details and nearest neighbours.")
    selection_table(saved, view)
    if view.level is not None:
        cluster_panel(saved, view)
    else:
        offer_clustering(saved)
    # Load the query model now, while the person looks at the map, not on their first search;
    # a model that cannot be loaded is reported by that search.
    with contextlib.suppress(ExplorerError):
        loaders.map_embedder(saved.name, stamp)


# ---------------------------------------------------------------- panels


def thumbnail_grid(saved, row_ids, captions, *, width: int = 72) -> None:
    """Thumbnails of an image map's rows with captions (labels, scores); nothing for text maps."""
    if saved.kind != "images" or not saved.has_thumbnails or not len(row_ids):
        return
    thumbs = saved.thumbnails(row_ids)
    shown = [(thumbs[r], c) for r, c in zip(row_ids, captions, strict=True) if r in thumbs]
    if shown:
        st.image([t for t, _ in shown], caption=[c for _, c in shown], width=width)


def results_panel(saved, view: ViewState) -> None:
    """Ranked search hits, each a button that focuses the point and opens its details."""
    result, titles = view.result, view.titles
    st.subheader("Results")
    if len(result.indices) == 0:
        st.caption("Nothing above the similarity threshold.")
    row_ids = saved.points["row_id"].to_numpy()
    thumbnail_grid(saved, row_ids[result.indices].tolist(),
                   [f"#{r} {shorten(titles[i], 14)} · {result.scores[i]:.2f}" for r, i in
                    enumerate(result.indices, start=1)])
    explainable = saved.kind != "images"
    for rank, idx in enumerate(result.indices, start=1):
        label = f"{rank}. {result.scores[idx]:.2f} · {escape_markdown(shorten(titles[idx], 90))}"
        if not explainable:
            st.button(label, key=f"hit_{rank}_{row_ids[idx]}", width="stretch", on_click=focus_row,
                      args=(int(row_ids[idx]),))
            continue
        hit_col, why_col = st.columns([4, 1.4], gap="small", vertical_alignment="center")
        hit_col.button(label, key=f"hit_{rank}_{row_ids[idx]}", width="stretch", on_click=focus_row,
                       args=(int(row_ids[idx]),))
        why_col.button("why?", key=f"why_{rank}_{row_ids[idx]}", help="Which words made this a match",
                       on_click=explain_row, args=(int(row_ids[idx]),))
    if view.why_row is not None and view.why_row in set(row_ids[result.indices].tolist()):
        why_panel(saved, result.query, view.why_row)


def why_panel(saved, query: str, row_id: int) -> None:
    """The query's and the hit's tokens shaded by their share of the cosine similarity."""
    from explorer.explain import explain_hit
    from explorer.explain_figures import match_figure

    with st.expander("Why this match", expanded=True):
        try:
            explanation = explain_hit(saved, query, row_id,
                                      embedder=loaders.map_embedder(saved.name, st.session_state["map_stamp"]))
        except ExplorerError as exc:
            st.info(str(exc))
            return
        st.caption(f"Cosine {explanation.cosine:.3f}: each token's share of it; the shares add up to the score.")
        st.plotly_chart(match_figure(explanation), key="why_figure")
        st.button("Hide", key="why_hide", on_click=forget, args=("why_row",))


def details_panel(saved, view: ViewState) -> None:
    """The full row and its ten nearest neighbours in embedding space, each clickable."""
    row_id, titles = view.selected_row, view.titles
    pos = positions_of(saved.points, [row_id])
    if len(pos) == 0:
        return
    i = int(pos[0])
    st.subheader("Details")
    st.text(shorten(titles[i], 300))
    thumbnail_grid(saved, [row_id], [str(titles[i])], width=240)
    row = saved.points.iloc[i][display_columns(saved.points)]
    st.dataframe({"field": [str(c) for c in row.index], "value": [str(v) for v in row.to_numpy()]},
                 hide_index=True, width="stretch")
    st.button("Close details", key="close_details", on_click=forget, args=("selected_row",))
    if not saved.embedded[i]:
        st.caption("This row has no text, so it has no neighbours.")
        return
    st.markdown("**Nearest neighbours**")
    neighbours = nearest_neighbors(saved.embeddings, i, k=10, valid=saved.embedded)
    row_ids = saved.points["row_id"].to_numpy()
    thumbnail_grid(saved, row_ids[neighbours.indices].tolist(),
                   [f"{shorten(titles[j], 14)} · {neighbours.scores[j]:.2f}" for j in neighbours.indices],
                   width=56)
    for idx in neighbours.indices:
        label = f"{neighbours.scores[idx]:.2f} · {escape_markdown(shorten(titles[idx], 80))}"
        st.button(label, key=f"nn_{row_id}_{row_ids[idx]}", width="stretch", on_click=focus_row,
                  args=(int(row_ids[idx]),))


def selection_table(saved, view: ViewState) -> None:
    """The lasso/box selection as a table with a CSV download."""
    ids = view.selection
    if not ids:
        st.caption("Tip: drag a lasso or a box on the map to select points; click a point for details.")
        return
    positions = positions_of(saved.points, ids)
    rows = saved.points.iloc[positions][display_columns(saved.points)]
    st.subheader(f"Selection: {len(rows):,} rows")
    if len(rows) > SELECTION_TABLE_ROWS:
        st.caption(f"The table shows the first {SELECTION_TABLE_ROWS:,}; the CSV holds all {len(rows):,}.")
    left, right = st.columns([1, 1])
    # Written on click: a 10k-row CSV costs half a second, too much for every rerun.
    left.download_button("Download CSV", partial(to_csv_bytes, rows), file_name=f"{saved.name}-selection.csv",
                         mime="text/csv", key="download_selection", on_click="ignore")
    right.button("Clear selection", key="clear_selection", on_click=forget, args=("selection",))
    curate_button(saved, [int(i) for i in ids], key="remove_selection", what="the selected rows")
    shown = positions[:60]
    thumbnail_grid(saved, saved.points["row_id"].to_numpy()[shown].tolist(),
                   [shorten(view.titles[p], 14) for p in shown])
    # Every shown cell travels to the browser: a big selection would send megabytes of abstracts.
    st.dataframe(rows.head(SELECTION_TABLE_ROWS), hide_index=True, width="stretch")


def offer_clustering(saved) -> None:
    """A map built without clusters can get them afterwards."""
    with st.expander("Clusters"):
        st.caption("Find groups of similar rows and label each with its most distinctive words.")
        if st.button("Find clusters", key="find_clusters"):
            with st.spinner("Clustering and labelling…"):
                try:
                    add_clusters(saved, config=ClusterConfig(), workspace=Workspace())
                except ExplorerError as exc:
                    st.error(str(exc))
                    return
            st.rerun()


def cluster_panel(saved, view: ViewState) -> None:
    """Clusters by size: pick one to highlight it, rename it, remove it, or contrast two groups.

    The pick itself was read from the table's state before the map was drawn (``view.chosen_cluster``),
    so the map dims the other clusters in the same run as the click."""
    table, level, chosen = view.clusters, view.level, view.chosen_cluster
    st.subheader(f"Clusters ({len(table)})")
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.dataframe(table[["label", "size"]], hide_index=True, width="stretch", height=260,
                     on_select="rerun", selection_mode="single-row", key=cluster_table_key(saved, level))
        if chosen is None:
            st.caption("Select a cluster to highlight it on the map (the others are dimmed).")
    with right:
        if chosen is not None:
            st.markdown(f"**{escape_markdown(chosen['label'])}** · {int(chosen['size']):,} rows")
            st.caption("Top terms: " + escape_markdown(", ".join(chosen["terms"])))
            new_label = st.text_input("Rename this cluster", key=f"rename_{level}_{int(chosen['id'])}",
                                      placeholder="empty restores the automatic label")
            if st.button("Save label", key="save_label"):
                rename_cluster(Workspace(), saved.name, level, int(chosen["id"]), new_label)
                st.rerun()
            ids = saved.points["row_id"].to_numpy()[(saved.points[cluster_column(saved, level)] ==
                                                      int(chosen["id"])).to_numpy()]
            curate_button(saved, ids.tolist(), key="remove_cluster", what="this cluster")
    contrast_panel(saved, view)


def curate_button(saved, row_ids: list[int], *, key: str, what: str) -> None:
    """Save a new version of the map without ``row_ids``; the original stays as it is."""
    if st.button(f"Remove {what} and re-project", key=key,
                 help="Saves a new version of the map without these rows; this map stays as it is."):
        with st.spinner("Re-projecting without those rows…"):
            try:
                new = remove_and_reproject(Workspace(), saved.name, row_ids)
            except ExplorerError as exc:
                st.error(str(exc))
                return
        show_map(new.name)
        st.session_state["build_notes"] = [f"Saved '{new.name}' without {len(row_ids):,} rows; "
                                           f"'{saved.name}' is unchanged in the Library."]
        st.rerun()


def contrast_panel(saved, view: ViewState) -> None:
    """The words most distinctive of group A against group B, and of B against A."""
    table, level = view.clusters, view.level
    with st.expander("Contrast two groups"):
        options = {f"{r.label} ({r.size})": int(r.id) for r in table.itertuples()}
        if view.selection:
            options = {"Current selection": "selection", **options}
        names = list(options)
        if len(names) < 2:
            st.caption("Needs two clusters, or a selection and a cluster.")
            return
        a_col, b_col = st.columns(2)
        a = a_col.selectbox("Group A", names, index=0, key="contrast_a")
        b = b_col.selectbox("Group B", names, index=1, key="contrast_b")
        column = saved.points[cluster_column(saved, level)].to_numpy()
        selected = saved.points["row_id"].isin(view.selection).to_numpy()

        def mask(choice) -> np.ndarray:
            return selected if options[choice] == "selection" else column == options[choice]

        # Counting words over every row takes seconds on a big map, so it runs on request, once per pair.
        if not st.toggle("Compare", key="contrast_on", help="Count the words of both groups"):
            return
        selection_key = hash(tuple(view.selection))
        result = loaders.contrast_of(saved.name, st.session_state["map_stamp"], level, a, b, selection_key,
                                     _a=mask(a) & saved.embedded, _b=mask(b) & saved.embedded)
        a_col.dataframe({"word": [t for t, _ in result.a_terms], "z": [round(z, 1) for _, z in result.a_terms]},
                        hide_index=True, width="stretch")
        b_col.dataframe({"word": [t for t, _ in result.b_terms], "z": [round(z, 1) for _, z in result.b_terms]},
                        hide_index=True, width="stretch")
