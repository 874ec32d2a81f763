"""The open map: sidebar controls, the search row, the map, and the one side panel beside it.

Every panel draws from the one ``ViewState`` computed before the map (see ``state``); buttons
change session state through callbacks, or run a library action and rerun the app.
"""

from __future__ import annotations

import contextlib
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from explorer.cluster import ClusterConfig
from explorer.curate import remove_and_reproject
from explorer.draw import shorten
from explorer.errors import ExplorerError
from explorer.export import export_points, to_bibtex_bytes, to_csv_bytes, to_ris_bytes
from explorer.facets import parse_state, state_to_json
from explorer.filters import display_columns, positions_of
from explorer.grow import BATCH_COLUMN
from explorer.map_clusters import add_clusters, cluster_column, cluster_levels, rename_cluster
from explorer.pipeline import FAST_STAGE, TITLES_STAGE
from explorer.refine import search_stage
from explorer.search import KEYWORD
from explorer.store import Workspace
from explorer.trust import far_on_map

from . import loaders
from .build_page import IMAGE_TYPES
from .map_tools import add_rows_panel, duplicates_panel, select_rows, trust_panel
from .refinement import refinement_sidebar
from .screening_panel import MAP_SAVED_KEY, screening_buttons, screening_panel
from .state import (
    FACETS_KEY,
    FACETS_PARAM,
    RESULTS_TAB,
    SIDE_TAB,
    SIDE_TABS,
    SQL_KEY,
    SQL_PARAM,
    Controls,
    SearchInput,
    ViewState,
    chart_ack,
    chart_key,
    clear_facets,
    clear_selection,
    close_map,
    cluster_table_key,
    compute_view_state,
    explain_row,
    focus_row,
    forget,
    show_map,
    show_results,
    sync_query_param,
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
        st.caption(f"{saved.meta.embedded_rows:,} of {saved.meta.rows:,} rows on the map · "
                   f"{escape_markdown(saved.meta.model_id)}")
        st.caption(escape_markdown(built_line(saved)))
        st.button("New map", key="new_map", on_click=close_map)
        refinement_sidebar(saved)
        level = None
        show_labels = False
        if levels:
            show_labels = st.checkbox("Cluster labels on the map", value=True, key="show_labels")
            # The labels on the map follow the zoom by themselves; the level chosen here is the one
            # that colours, filters and fills the clusters table.
            level = levels[0] if len(levels) == 1 else st.segmented_control(
                "Cluster level", levels, default=levels[0], key="cluster_level", required=True,
                format_func=escape_markdown,  # its options are Markdown, and come from the map's manifest
                help="Coarse clusters are broad topics; finer levels split them. The map's labels refine "
                     "as you zoom in, whichever level is chosen here.")
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
        sql = st.text_input("SQL condition", key=SQL_KEY, placeholder="e.g. year >= 2020 AND venue = 'NeurIPS'",
                            help="A SQL WHERE condition over the map's columns (run by DuckDB, which reads nothing "
                                 "but this map's table); rows for which it does not hold are dimmed.").strip()
        sync_query_param(sql, SQL_PARAM)
        chosen = {}
        for col, values in roles["filters"].items():
            # A widget's label is Markdown: a column named like a link would be one. Its values are plain text.
            chosen[col] = st.multiselect(escape_markdown(col), values, key=f"filter_{col}")
        st.subheader("Tools")
        trust_panel(saved)
        add_rows_panel(saved)
        duplicates_panel(saved)
    return Controls(points=points, level=level, show_labels=show_labels,
                    colour=None if colour == "(none)" else colour, hover=hover, keyword=keyword, regex=regex,
                    sql=sql, categories=chosen)


def built_line(saved) -> str:
    """How long the open map took to build: this session's own build, else what its manifest recorded."""
    summary = st.session_state.get("build_summary")
    if summary and summary[0] == saved.name:
        return summary[1]
    seconds = saved.meta.seconds or {}
    created = str(saved.meta.created).replace("T", " ")[:16]
    total = sum(v for v in seconds.values() if isinstance(v, int | float))
    return f"Built {created} UTC in {total:,.0f} s." if seconds else f"Built {created} UTC."


def search_controls(*, images: bool) -> SearchInput:
    """The search bar in one row above the map: the box, colour by similarity, and the rest in a popover
    (how many results, the minimum similarity, and on image maps search by an example image)."""
    box, sim_col, more_col = st.columns([6, 1.6, 1.2], vertical_alignment="center")
    query = box.text_input("Search the map", key="query", on_change=show_results, label_visibility="collapsed",
                           placeholder="Search the map: a digit's label, or a description" if images
                           else "Search the map, e.g. protein folding")
    by_similarity = sim_col.checkbox("Colour by similarity", key="colour_by_similarity")
    example = None
    with more_col.popover("Search options", width="stretch"):
        k = st.slider("Results", 1, 50, 10, key="k")
        threshold = st.slider("Min. similarity", 0.0, 1.0, 0.0, 0.05, key="threshold")
        if images:
            upload = st.file_uploader("Search by an example image", key="example_image",
                                      type=[t for t in IMAGE_TYPES if t != "zip"])
            example = upload.getvalue() if upload is not None else None
    return SearchInput(query=query.strip(), k=k, threshold=threshold, by_similarity=by_similarity, example=example)


# ---------------------------------------------------------------- the map view

# Lists in the side panel read as lists: left-aligned, wrapped titles, not centred button captions.
LIST_CSS = """<style>
[class*="st-key-hitlist"] button, [class*="st-key-nnlist"] button { justify-content: flex-start; text-align: left; }
[class*="st-key-hitlist"] button > div, [class*="st-key-nnlist"] button > div { justify-content: flex-start; }
[class*="st-key-hitlist"] button p, [class*="st-key-nnlist"] button p { text-align: left; }
</style>"""


# The map page's main area: less padding around it, so the map takes the window's width (the upload page
# keeps Streamlit's own).
PAGE_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding: 3.2rem 1.2rem 1rem 1.2rem; }
</style>"""
# The map column's share of the main area beside the side panel (Streamlit stacks them on a narrow window).
MAP_COLUMNS = [3, 1]


@st.fragment
def map_view(saved, controls: Controls) -> None:
    """The search row, the status line, the map, and beside it the one side panel (results, details,
    selection, clusters).

    A fragment: a search, a click or a selection reruns only this part, not the sidebar."""
    if st.session_state.pop(MAP_SAVED_KEY, False):
        st.rerun(scope="app")  # a decision saved a new version: read it everywhere
    st.markdown(PAGE_CSS + LIST_CSS, unsafe_allow_html=True)
    search = search_controls(images=saved.kind == "images")
    sync_query_param(search.query)
    view = compute_view_state(saved, controls, search)
    sync_query_param(view.facets, FACETS_PARAM)
    for kind, text in view.messages:
        getattr(st, kind)(escape_markdown(text))
    stamp = st.session_state["map_stamp"]
    map_col, side_col = st.columns(MAP_COLUMNS, gap="small")
    with map_col:
        status_line(view)
        map_chart(view.points, view.style, revision=f"{saved.name}:{stamp}", key=chart_key(saved),
                  facets=loaders.facet_file(saved.name, stamp, view.level), facet_state=facet_state(view.facets),
                  facet_context=view.outside_facets, ack=chart_ack())
    with side_col, st.container(key="side_panel"):
        side_panel(saved, view)
        if view.level is not None:
            cluster_panel(saved, view)
        else:
            offer_clustering(saved)
        whats_new(saved, view)
    if view.why_row is not None and view.result is not None:
        why_dialog(saved, view)
    # Load the query model now, while the person looks at the map, not on their first search;
    # a model that cannot be loaded is reported by that search.
    with contextlib.suppress(ExplorerError):
        loaders.map_embedder(saved.name, stamp)


def facet_state(text: str) -> dict:
    """The facet filter's URL text in the browser's form ({} when there is none, or it is malformed:
    the page says why above the map)."""
    try:
        return state_to_json(parse_state(text)) if text else {}
    except ExplorerError:
        return {}


def status_line(view: ViewState) -> None:
    """One compact row above the map: the selection (with Clear), the facet filter (with Clear), and what is
    dimmed and how search matched."""
    notes = " · ".join(n for n in (view.dim_note, view.search_note) if n)
    if not (view.selection or view.facets or notes):
        return
    parts = [0.9, 0.5] if view.selection else []
    parts += [0.9] if view.facets else []
    cells = iter(st.columns([*parts, 5], vertical_alignment="center", gap="small"))
    if view.selection:
        next(cells).markdown(f"**{len(view.selection):,} selected**")
        next(cells).button("Clear", key="clear_selection_badge", on_click=clear_selection, type="tertiary",
                           help="Forget the box or lasso selection")
    if view.facets:
        next(cells).button("Clear facets", key="clear_facets", on_click=clear_facets, type="tertiary",
                           help=f"Facet filter: {escape_markdown(view.facets)}")
    if notes:
        next(cells).caption(escape_markdown(notes))


def side_panel(saved, view: ViewState) -> None:
    """Results, Details and Selection in tabs beside the map: opening a result keeps the list in its tab.

    Only the open tab runs (switching tabs reruns): on a 100k map the hidden tabs' tables and lists
    cost a box selection and a search redraw about 0.2 s each."""
    results, details, selection, screening = st.tabs(list(SIDE_TABS), key=SIDE_TAB, on_change="rerun",
                                                     default=st.session_state.get(SIDE_TAB, RESULTS_TAB))
    if results.open:
        with results:
            if view.result is not None:
                results_panel(saved, view)
            else:
                st.caption("Search above, or click a point to see its details and nearest neighbours.")
    if details.open:
        with details:
            if view.selected_row is not None:
                details_panel(saved, view)
            else:
                st.caption("Click a point on the map, a search result or a neighbour to read its row here.")
    if selection.open:
        with selection:
            selection_panel(saved, view)
    if screening.open:
        with screening:
            for key, kind in (("screen_note", st.info), ("screen_error", st.warning)):
                if note := st.session_state.pop(key, None):
                    kind(escape_markdown(note))
            screening_panel(saved, view.titles, loaders.get_texts(saved.name, st.session_state["map_stamp"]))


# ---------------------------------------------------------------- panels


def thumbnail_grid(saved, row_ids, captions, *, width: int = 72) -> None:
    """Thumbnails of an image map's rows with captions (labels, scores); nothing for text maps."""
    if saved.kind != "images" or not saved.has_thumbnails or not len(row_ids):
        return
    thumbs = saved.thumbnails(row_ids)
    shown = [(thumbs[r], c) for r, c in zip(row_ids, captions, strict=True) if r in thumbs]
    if shown:
        st.image([t for t, _ in shown], caption=[escape_markdown(c) for _, c in shown], width=width)


def empty_result_message(view: ViewState, threshold: float) -> str:
    """Why a search has no hits, in the terms of how it searched."""
    result = view.result
    if result.mode == KEYWORD:
        return f"No file name, label or text contains the words of “{result.query}”."
    if threshold > 0:
        return f"Nothing reaches the minimum similarity of {threshold:.2f}: lower it to see the closest rows."
    return "No row has a vector to compare with."


def results_panel(saved, view: ViewState) -> None:
    """Ranked search hits with full, wrapped titles; each opens its row in the Details tab."""
    result, titles = view.result, view.titles
    if len(result.indices) == 0:
        st.caption(escape_markdown(empty_result_message(view, st.session_state.get("threshold", 0.0))))
        return
    stage = search_stage(saved.meta.refinement) if result.mode == "semantic" else None
    how = {KEYWORD: "words matched", "example": "nearest to the example image"}.get(
        result.mode, {FAST_STAGE: "by words, fast map", TITLES_STAGE: "by meaning, on titles"}.get(stage, "by meaning"))
    follow = "read it and see why it matches" if result.mode == "semantic" and saved.kind == "text" else "open it"
    st.caption(f"{len(result.indices)} results ({how}); click one to {follow}.")
    row_ids = saved.points["row_id"].to_numpy()
    thumbnail_grid(saved, row_ids[result.indices].tolist(),
                   [f"#{r} {shorten(titles[i], 14)} · {result.scores[i]:.2f}" for r, i in
                    enumerate(result.indices, start=1)])
    with st.container(key="hitlist"):
        for rank, idx in enumerate(result.indices, start=1):
            row_id = int(row_ids[idx])
            marker = "▶ " if row_id == view.selected_row else ""
            label = f"{marker}**{rank}.** {escape_markdown(shorten(titles[idx], 300))} · `{result.scores[idx]:.2f}`"
            st.button(label, key=f"hit_{rank}_{row_id}", width="stretch", type="tertiary", wrap=True,
                      on_click=focus_row, args=(row_id,))


def why_panel_offer(saved, view: ViewState, index: int) -> None:
    """On a hit's details: "Why this match" where the model can explain it, else the shared words."""
    result, row_id = view.result, view.selected_row
    if result is None or result.mode != "semantic" or saved.kind != "text" or index not in set(result.indices):
        return
    from explorer.explain import can_explain, shared_words

    try:
        embedder = loaders.map_embedder(saved.name, st.session_state["map_stamp"])
    except ExplorerError:
        return
    if can_explain(embedder):
        st.button("Why this match?", key=f"why_{row_id}", on_click=explain_row, args=(row_id,),
                  help="Which words of the query and of this row made the score")
        return
    words = shared_words(result.query, loaders.get_texts(saved.name, st.session_state["map_stamp"])[index])
    st.caption("Words shared with the query: " + (escape_markdown(", ".join(words)) if words else "none; "
               "the fast mode also matches words that occur together in your data."))


@st.dialog("Why this match", width="large", on_dismiss=lambda: forget("why_row"))
def why_dialog(saved, view: ViewState) -> None:
    """The query's and the hit's tokens shaded by their share of the cosine, at a readable width."""
    from explorer.explain import explain_hit
    from explorer.explain_figures import match_figure

    row_id = view.why_row
    try:
        explanation = explain_hit(saved, view.result.query, row_id,
                                  embedder=loaders.map_embedder(saved.name, st.session_state["map_stamp"]))
    except ExplorerError as exc:
        st.info(escape_markdown(exc))
        return
    position = positions_of(saved.points, [row_id])
    if len(position):
        st.markdown(f"**{escape_markdown(shorten(view.titles[int(position[0])], 200))}**")
    st.caption(f"Cosine {explanation.cosine:.3f}: each token's share of it; the shares add up to the score. "
               "Red tokens raise the score, blue ones lower it; the darker, the bigger the share.")
    st.plotly_chart(match_figure(explanation), key="why_figure", config={"displayModeBar": False})


def details_panel(saved, view: ViewState) -> None:
    """The full row (title, its text, the other fields) and its ten nearest neighbours, each clickable."""
    row_id, titles = view.selected_row, view.titles
    pos = positions_of(saved.points, [row_id])
    if len(pos) == 0:
        st.caption("This row is no longer on the map.")
        return
    i = int(pos[0])
    stamp = st.session_state["map_stamp"]
    st.markdown(f"#### {escape_markdown(str(titles[i]))}")
    thumbnail_grid(saved, [row_id], [str(titles[i])], width=240)
    named = loaders.get_named_points(saved.name, stamp).iloc[i]
    text_columns = [c for c in (saved.meta.text_columns or [])
                    if c in named.index and c != view.title_column]
    # The embedded text is what the row is about: read in full, not in a table cell cut to its width.
    long_text = [c for c in text_columns if str(named[c]).strip() and str(named[c]) != "<NA>"]
    for column in long_text:
        with st.container(height=220 if len(str(named[column])) > 900 else "content", border=False):
            st.markdown(f"*{escape_markdown(column)}:* {escape_markdown(str(named[column]))}")
    why_panel_offer(saved, view, i)
    screening_buttons(saved, int(row_id), i)
    fields = [c for c in display_columns(saved.points) if c not in long_text and c != view.title_column]
    st.dataframe({"field": [str(c) for c in fields], "value": [str(named[c]) for c in fields]},
                 hide_index=True, width="stretch")
    st.button("Close details", key="close_details", on_click=forget, args=("selected_row",))
    if not saved.embedded[i]:
        st.caption("This row has no text, so it has no neighbours.")
        return
    st.markdown("**Nearest neighbours** (in the embedding space; ringed on the map)")
    neighbours = view.neighbours
    row_ids = saved.points["row_id"].to_numpy()
    thumbnail_grid(saved, row_ids[neighbours.indices].tolist(),
                   [f"{shorten(titles[j], 14)} · {neighbours.scores[j]:.2f}" for j in neighbours.indices],
                   width=56)
    # Neighbours in meaning that the map draws far away: where the map misleads about this row.
    far = far_on_map(saved.coords, i, neighbours.indices)
    if far.any():
        st.caption(f"{int(far.sum())} of them sit far from it on the map (marked ↗): the map does not show "
                   "them as its neighbours.")
    with st.container(key="nnlist"):
        for idx, away in zip(neighbours.indices, far, strict=True):
            mark = "↗ " if away else ""
            label = f"{mark}{escape_markdown(shorten(titles[idx], 200))} · `{neighbours.scores[idx]:.2f}`"
            st.button(label, key=f"nn_{row_id}_{row_ids[idx]}", width="stretch", type="tertiary", wrap=True,
                      on_click=focus_row, args=(int(row_ids[idx]),))


def selection_panel(saved, view: ViewState) -> None:
    """The lasso/box selection as a table with a CSV download, Clear, and remove-and-re-project."""
    ids = view.selection
    if not ids:
        st.caption("Drag a lasso or a box on the map to select points (the lasso and box tools are in "
                   "the map's toolbar); the rows show up here.")
        return
    positions = positions_of(saved.points, ids)
    stamp = st.session_state["map_stamp"]
    # Only the rows the table shows are copied: a box over a 100k map selects tens of thousands.
    named = loaders.get_named_points(saved.name, stamp).iloc[positions[:SELECTION_TABLE_ROWS]]
    shown_rows = named[display_columns(saved.points)]
    st.markdown(f"**{len(positions):,} rows selected**")
    if len(positions) > SELECTION_TABLE_ROWS:
        st.caption(f"The table shows the first {SELECTION_TABLE_ROWS:,}; the CSV holds all {len(positions):,}.")
    left, right = st.columns([1, 1])
    # Written on click: a 10k-row CSV costs half a second, too much for every rerun.
    left.download_button("Download CSV", partial(selection_csv, saved, ids), file_name=f"{saved.name}-selection.csv",
                         mime="text/csv", key="download_selection", on_click="ignore")
    right.button("Clear selection", key="clear_selection", on_click=clear_selection)
    if saved.kind == "text" and "title" in saved.points:
        # A bibliography's own entries back to the reference manager (or entries built from the columns).
        bib, ris = st.columns([1, 1])
        bib.download_button("Download BibTeX", partial(selection_bibliography, saved, ids, to_bibtex_bytes),
                            file_name=f"{saved.name}-selection.bib", mime="application/x-bibtex",
                            key="download_selection_bib", on_click="ignore")
        ris.download_button("Download RIS", partial(selection_bibliography, saved, ids, to_ris_bytes),
                            file_name=f"{saved.name}-selection.ris", mime="application/x-research-info-systems",
                            key="download_selection_ris", on_click="ignore")
    curate_button(saved, [int(i) for i in ids], key="remove_selection", what="the selected rows")
    shown = positions[:60]
    thumbnail_grid(saved, saved.points["row_id"].to_numpy()[shown].tolist(),
                   [shorten(view.titles[p], 14) for p in shown])
    # Every shown cell travels to the browser: a big selection would send megabytes of abstracts.
    st.dataframe(shown_rows, hide_index=True, width="stretch")


def selection_bibliography(saved, row_ids: list[int], write) -> bytes:
    """The selected rows as BibTeX or RIS (explorer.export); what cannot be an entry says why in the file."""
    try:
        return write(export_points(saved, row_ids))
    except ExplorerError as exc:
        return f"% {exc}\n".encode()


def selection_csv(saved, row_ids: list[int]) -> bytes:
    """The selected rows as CSV: cluster names, each with its id beside it (explorer.export)."""
    rows = export_points(saved, row_ids)
    return to_csv_bytes(rows[display_columns(rows)])


def whats_new(saved, view: ViewState) -> None:
    """A grown map's newest batch (explorer.grow.newest_batch): the clusters that gained most of its rows,
    the rows that landed apart (select them), and the map filtered to that batch."""
    summary = loaders.get_newest_batch(saved.name, st.session_state["map_stamp"], view.level)
    if summary is None:
        return
    with st.expander(f"What is new: batch {summary.batch}, {summary.rows:,} rows", expanded=False):
        when = f" on {summary.added[:10]}" if summary.added else ""
        source = f" from {summary.source}" if summary.source else ""
        st.caption(escape_markdown(f"Added{when}{source}."))
        if summary.gained:
            st.caption(escape_markdown("Gained most: " + ", ".join(f"{name} (+{n})" for name, n in summary.gained)))
        only = f"{BATCH_COLUMN}:{summary.batch}..{summary.batch}"
        st.button("Show only this batch", key="whats_new_only", on_click=st.session_state.__setitem__,
                  args=(FACETS_KEY, only), help="Dims the other batches (a facet filter: Clear facets undoes it)")
        if summary.apart:
            st.caption(f"{len(summary.apart):,} of its rows are unlike anything on the map: drawn apart, right of it.")
            st.button("Select them", key="whats_new_apart", on_click=select_rows, args=(summary.apart,))


def offer_clustering(saved) -> None:
    """A map built without clusters can get them afterwards."""
    with st.expander("Clusters"):
        st.caption("Find groups of similar rows and label each with its most distinctive words.")
        if st.button("Find clusters", key="find_clusters"):
            with st.spinner("Clustering and labelling…"):
                try:
                    add_clusters(saved, config=ClusterConfig(), workspace=Workspace())
                except ExplorerError as exc:
                    st.error(escape_markdown(exc))
                    return
            st.rerun()


def cluster_panel(saved, view: ViewState) -> None:
    """Clusters by size, in the side panel under its tabs: pick one to highlight it, rename it, remove it, or
    contrast two groups.

    Drawn on every run, not in a tab, so the pick (the table's state) lasts while another tab is open. The pick
    itself was read from the table's state before the map was drawn (``view.chosen_cluster``), so the map dims
    the other clusters in the same run as the click."""
    table, level, chosen = view.clusters, view.level, view.chosen_cluster
    st.subheader(f"Clusters ({len(table)})")
    st.dataframe(table[["label", "size"]], hide_index=True, width="stretch", height=220,
                 on_select="rerun", selection_mode="single-row", key=cluster_table_key(saved, level))
    if chosen is None:
        st.caption("Select a cluster to highlight it on the map (the others are dimmed).")
    else:
        cluster_card(saved, level, int(chosen["id"]))
        new_label = st.text_input("Rename this cluster", key=f"rename_{level}_{int(chosen['id'])}",
                                  placeholder="empty restores the automatic label")
        if st.button("Save label", key="save_label"):
            rename_cluster(Workspace(), saved.name, level, int(chosen["id"]), new_label)
            st.rerun()
        ids = saved.points["row_id"].to_numpy()[(saved.points[cluster_column(saved, level)] ==
                                                  int(chosen["id"])).to_numpy()]
        curate_button(saved, ids.tolist(), key="remove_cluster", what="this cluster")
    contrast_panel(saved, view)


def cluster_card(saved, level: str, cluster_id: int) -> None:
    """What the picked cluster is about (explorer.cluster_cards): its most central papers, distinctive terms
    with how many of its papers use them, its years, its top venues and authors, and its points' trust."""
    card = loaders.get_cluster_cards(saved.name, st.session_state["map_stamp"], level).get(cluster_id)
    if card is None:
        return
    trust = f" · trust {card.trust:.2f}" if card.trust is not None else ""
    with st.container(border=True, key="cluster_card"):
        st.markdown(f"**{escape_markdown(card.label)}** · {card.size:,} rows{trust}")
        if card.central:
            st.markdown("**Most central**\n" + "\n".join(f"1. {escape_markdown(title[:140])}"
                                                           for _, title in card.central))
        if card.terms:
            st.caption("Terms (papers using them): " + escape_markdown(", ".join(f"{t} ({n})" for t, n in card.terms)))
        if card.year_span:
            low, high = card.year_span
            st.caption(f"Years {low}–{high}" if low != high else f"Year {low}")
            if len(card.years) > 1:
                st.bar_chart(pd.Series(card.years, name="papers").rename_axis("year"), height=110)
        for column, values in card.top_values.items():
            if values:
                st.caption(escape_markdown(f"{column}: " + ", ".join(f"{v} ({n})" for v, n in values)))


def curate_button(saved, row_ids: list[int], *, key: str, what: str) -> None:
    """Save a new version of the map without ``row_ids``; the original stays as it is."""
    if st.button(f"Remove {what} and re-project", key=key,
                 help="Saves a new version of the map without these rows; this map stays as it is."):
        with st.spinner("Re-projecting without those rows…"):
            try:
                new = remove_and_reproject(Workspace(), saved.name, row_ids)
            except ExplorerError as exc:
                st.error(escape_markdown(exc))
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
