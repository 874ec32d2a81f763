"""The side panel's Screening tab: judge the paper the model ranks likeliest, with y / n / u on the keyboard,
the queue of the next ones, the progress so far with a hint on when to stop, seeds from a file, the
likely relevance as a heat layer on the map, and the relevant papers as BibTeX or RIS."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from explorer.errors import ExplorerError
from explorer.export import export_points, to_bibtex_bytes, to_csv_bytes, to_ris_bytes
from explorer.screening import (
    IRRELEVANT,
    RELEVANT,
    decide,
    decisions_of,
    history_of,
    progress,
    rank,
    screened,
    seed_rows,
)
from explorer.store import Workspace

from .text import escape_markdown

SCREEN_TAB = "Screening"
# The map coloured by the likely relevance (the heat layer), and the paper being judged (a row id).
HEAT_KEY, CURRENT_KEY = "screen_heat", "screen_current"
QUEUE_ROWS = 10
SNIPPET_CHARS = 600
# Who decides, in the map's history: the app (one person per server, or a shared server's sessions).
WHO = "app"
# Set when the panel saved the map: the page then runs again whole, on the new version.
MAP_SAVED_KEY = "map_saved_by_panel"


@st.cache_resource(max_entries=4, show_spinner=False)
def ranking_of(name: str, stamp: str, _saved):
    """The decisions and the ranking of the unscreened rows, once per saved version of the map."""
    relevant, irrelevant, order = screened(_saved)
    return relevant, irrelevant, order, rank(_saved, relevant, irrelevant)


def heat_values(saved, stamp: str) -> np.ndarray | None:
    """Every row's likely relevance for the heat layer (judged rows: 1 relevant, 0 irrelevant), row-aligned."""
    relevant, irrelevant, _, ranking = ranking_of(saved.name, stamp, saved)
    if not relevant:
        return None
    position = pd.Index(saved.points["row_id"])
    values = np.zeros(len(saved.points), dtype=float)
    values[position.get_indexer(ranking.row_ids)] = ranking.scores
    values[position.get_indexer(relevant)] = 1.0
    return values


def screening_panel(saved, titles, texts) -> None:
    """The Screening tab (see the module's docstring)."""
    stamp = st.session_state["map_stamp"]
    relevant, irrelevant, order, ranking = ranking_of(saved.name, stamp, saved)
    state = progress(order, total=int(saved.embedded.sum()))
    position = pd.Index(saved.points["row_id"])
    current = st.session_state.get(CURRENT_KEY)
    decided = set(relevant) | set(irrelevant)
    if current is None or current in decided or position.get_indexer([current])[0] < 0:
        current = int(ranking.row_ids[0]) if len(ranking.row_ids) else None
    st.markdown(f"**{state.relevant:,} relevant** · {state.screened:,} screened of {state.total:,}",
                help=f"Ranked by {ranking.method}. Keys: y relevant, n irrelevant, u undo the last decision.")
    if current is not None:
        at = int(position.get_indexer([current])[0])
        with st.container(border=True, key="screen_current_paper"):
            st.markdown(f"**{escape_markdown(titles[at])}**")
            text = str(texts[at])
            if text and text != titles[at]:
                st.caption(escape_markdown(text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")))
            yes, no, undo = st.columns(3)
            yes.button("Relevant", key="screen_yes", shortcut="y", type="primary", on_click=_decide,
                       args=(saved.name, current, RELEVANT), help="y", width="stretch")
            no.button("Irrelevant", key="screen_no", shortcut="n", on_click=_decide,
                      args=(saved.name, current, IRRELEVANT), help="n", width="stretch")
            undo.button("Undo", key="screen_undo", shortcut="u", on_click=_undo, args=(saved.name,),
                        disabled=not history_of(saved), help="u: forget the last decision", width="stretch")
    else:
        st.success("Every paper on the map is screened.")
    if order:
        found = np.cumsum(order)
        st.line_chart(pd.DataFrame({"screened": np.arange(1, len(order) + 1), "relevant found": found}),
                      x="screened", y="relevant found", height=150)
    st.caption(escape_markdown(state.hint()))
    st.toggle("Likely relevance on the map", key=HEAT_KEY, disabled=not relevant,
              help="Colour every paper by the model's estimate (judged ones: 1 relevant, 0 irrelevant)")
    if len(ranking.row_ids) > 1:
        st.markdown("**Most likely relevant next**")
        for row_id, score in ranking.head(QUEUE_ROWS + 1)[1:]:
            at = int(position.get_indexer([row_id])[0])
            st.button(f"{score:.2f} · {titles[at][:90]}", key=f"screen_queue_{row_id}", type="tertiary",
                      on_click=st.session_state.__setitem__, args=(CURRENT_KEY, row_id))
    seeds = st.file_uploader("Mark relevant from a file (.bib, .ris, or one DOI, key or title a line)",
                             type=["bib", "ris", "txt", "csv"], key="screen_seeds")
    if seeds is not None and st.session_state.get("screen_seeded") != seeds.file_id:
        st.session_state["screen_seeded"] = seeds.file_id
        _seed(saved, seeds.getvalue().decode("utf-8", errors="replace"), seeds.name)
    if relevant or irrelevant:
        bib, ris, csv = st.columns(3)
        chosen = export_points(saved, relevant)
        bib.download_button("BibTeX", _safe(to_bibtex_bytes, chosen), file_name=f"{saved.name} relevant.bib",
                            key="screen_bib", help="The relevant papers")
        ris.download_button("RIS", _safe(to_ris_bytes, chosen), file_name=f"{saved.name} relevant.ris",
                            key="screen_ris", help="The relevant papers")
        csv.download_button("CSV", to_csv_bytes(export_points(saved, [*relevant, *irrelevant])),
                            file_name=f"{saved.name} decisions.csv", key="screen_csv", help="Every decision")


def screening_buttons(saved, row_id: int, position: int) -> None:
    """Details' screening row: this paper's decision, and buttons to make or change it."""
    decision = decisions_of(saved).iloc[position]
    decision = None if pd.isna(decision) else str(decision)
    state = decision or "not screened"
    note, yes, no = st.columns([2, 1, 1], vertical_alignment="center")
    note.caption(f"Screening: {state}")
    yes.button("Relevant", key="details_yes", on_click=_decide, args=(saved.name, row_id, RELEVANT),
               disabled=decision == RELEVANT, width="stretch")
    no.button("Irrelevant", key="details_no", on_click=_decide, args=(saved.name, row_id, IRRELEVANT),
              disabled=decision == IRRELEVANT, width="stretch")


def _decide(name: str, row_id: int, decision: str) -> None:
    try:
        decide(Workspace(), name, [row_id], decision, who=WHO)
        st.session_state[CURRENT_KEY] = None
    except ExplorerError as exc:
        st.session_state["screen_error"] = str(exc)
    # A button of the map's fragment reruns only the fragment, which holds the map as it was read: the
    # whole page runs again on the saved decision (map_view reads this).
    st.session_state[MAP_SAVED_KEY] = True


def _undo(name: str) -> None:
    workspace = Workspace()
    history = history_of(workspace.open(name, mmap=True))
    if history:
        last = int(history[-1]["row_id"])
        decide(workspace, name, [last], None, who=WHO)
        st.session_state[CURRENT_KEY] = last
    st.session_state[MAP_SAVED_KEY] = True


def _seed(saved, text: str, name: str) -> None:
    try:
        seeds = seed_rows(saved, text, name)
        if seeds.row_ids:
            decide(Workspace(), saved.name, seeds.row_ids, RELEVANT, who=WHO)
    except ExplorerError as exc:
        st.warning(escape_markdown(exc))
        return
    missing = f"; not found: {', '.join(seeds.unmatched[:10])}" if seeds.unmatched else ""
    st.session_state["screen_note"] = f"Marked {len(seeds.row_ids):,} papers relevant from {name}{missing}."
    st.rerun()


def _safe(write, frame) -> bytes:
    try:
        return write(frame)
    except ExplorerError as exc:
        return f"% {exc}\n".encode()
