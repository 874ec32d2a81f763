"""The progressive build in the app: one refinement worker per server, its progress in the sidebar,
and the refined map offered with a one-line note and a button, never swapped under the cursor.

The map page opens a map by its name and save stamp (loaders.get_map), so the refined version is a
new stamp: the session keeps drawing the fast map until it reruns the whole page (the button, or
its next sidebar interaction), while searches inside the map's fragment keep the version on screen.
"""

from __future__ import annotations

import os

import streamlit as st

from explorer.home import explorer_home
from explorer.manifest import RefinementSection
from explorer.modes import duration_text
from explorer.pipeline import REFINE_PENDING, TITLES_STAGE
from explorer.refine import DEFAULT_CHUNK_ROWS, REFINE_DONE, REFINE_FAILED, SEARCH_READS, search_stage
from explorer.store import Workspace
from explorer.worker import DONE, FAILED, QUEUED, JobStatus, RefinementWorker

from .text import escape_markdown

# How often the sidebar's progress redraws itself (its fragment alone, not the page).
REFRESH_SECONDS = 2.0


@st.cache_resource(show_spinner=False)
def get_refinement_worker(home: str) -> RefinementWorker:
    """The server's one worker for a workspace, shared by every session; it starts by resuming the
    refinements a previous run left pending. $EXPLORER_REFINE_CHUNK_ROWS and
    $EXPLORER_REFINE_PAUSE_SECONDS (a rest between chunks) tune it for a busy machine or a test."""
    worker = RefinementWorker(Workspace(home),
                              chunk_rows=int(os.environ.get("EXPLORER_REFINE_CHUNK_ROWS") or DEFAULT_CHUNK_ROWS),
                              pause_seconds=float(os.environ.get("EXPLORER_REFINE_PAUSE_SECONDS") or 0))
    worker.resume_pending()
    return worker


def refinement_worker() -> RefinementWorker:
    """The worker of this server's workspace (started, and pending maps resumed, on first use)."""
    return get_refinement_worker(str(explorer_home()))


def submit_refinement(result) -> None:
    """After a build: queue the transformer's refinement when the build was progressive (its fast map),
    unless it would take too long to start unasked (the sidebar then offers it)."""
    if result.refine_pending and result.saved.meta.refinement.automatic is not False:
        refinement_worker().submit(result.saved.name)


def refinement_sidebar(saved) -> None:
    """Where the open map's refinement stands, for the sidebar: progress while it runs, then the switch."""
    section = saved.meta.refinement
    state = section.state
    if (stage := search_stage(section)) is not None:
        st.caption(f"Search reads {SEARCH_READS[stage]}.")
    if state == REFINE_DONE:
        moved = section.displacement or {}
        st.caption(f"Refined by {escape_markdown(section.model_id or 'the transformer')} from the fast map"
                   + (f"; points moved {moved['median']:.0%} of the map's size (median)." if moved else "."))
    elif state in (REFINE_PENDING, REFINE_FAILED):
        map_id = str(saved.meta.map_id or saved.name)
        if (state == REFINE_PENDING and section.automatic is False
                and refinement_worker().status(map_id) is None):
            offer_refinement(saved.name, section)
            return
        refinement_progress(saved.name, map_id, st.session_state.get("map_stamp", saved.stamp),
                            state == REFINE_FAILED)


def offer_refinement(name: str, section: RefinementSection) -> None:
    """A map too big to refine unasked: say what search does now, and start the transformer on request."""
    wait = duration_text(section.estimated_seconds or 0)
    st.caption(f"Search matches the words of this map (fast mode). The transformer would make it search by "
               f"meaning in about {wait} on this CPU, using both cores meanwhile.")
    if st.button("Refine with the transformer", key="start_refinement"):
        refinement_worker().submit(name)
        st.rerun()


@st.fragment(run_every=REFRESH_SECONDS)
def refinement_progress(name: str, map_id: str, stamp: str, failed: bool) -> None:
    """Rows done and time left, redrawn every few seconds by this fragment alone; once the refined
    map is saved, a one-line note and a button that switches to it."""
    worker = refinement_worker()
    job = worker.status(map_id)
    if job is None and not failed:
        # A map built elsewhere (the CLI, the API) or before a restart: refine it now.
        try:
            job = worker.submit(name)
        except OSError:
            return
    if failed and (job is None or job.state == FAILED):
        st.warning("The transformer could not refine this map"
                   + (f": {escape_markdown(job.message)}" if job else ".")
                   + f" `explorer refine \"{escape_markdown(name)}\"` tries again.")
        return
    if job.active:
        if job.saved_stage == TITLES_STAGE and job.stage_stamp and job.stage_stamp != stamp:
            # The titles' version is the map as drawn, searched by meaning: offered at once, not swapped in.
            st.info("Search by meaning is ready on the titles; the map stays as it is.")
            if st.button("Search by meaning", key="use_title_vectors", type="primary"):
                st.rerun(scope="app")
        st.caption(_progress_line(job, worker))
        st.progress(job.rows_done / job.rows_total if job.rows_total else 0.0)
        return
    workspace = Workspace(worker.workspace.root)
    current = workspace.stamp(job.name) if workspace.exists(job.name) else None
    if job.state == DONE and current is not None and current != stamp:
        st.info("The transformer's map is ready: search, neighbours and clusters use it once you switch.")
        if st.button("Use the refined map", key="use_refined_map", type="primary"):
            st.rerun(scope="app")
    elif job.state == FAILED:
        st.warning(f"The transformer could not refine this map: {escape_markdown(job.message)}")
    elif job.state != DONE:
        st.caption(escape_markdown(job.message))


def _progress_line(job: JobStatus, worker: RefinementWorker) -> str:
    """One line: rows embedded by the transformer so far and about how long is left."""
    if job.state == QUEUED:
        ahead = sum(1 for j in worker.jobs() if j.active and j.submitted < job.submitted)
        return f"Search by meaning: waiting for {ahead} other map(s) to be refined first."
    left = "" if job.seconds_left is None else f" · about {duration_text(job.seconds_left)} left"
    if job.stage in ("project", "cluster", "save"):
        return f"The transformer's map: laying it out{left}."
    if job.stage == TITLES_STAGE:
        return f"Search by meaning: the transformer has read {job.rows_done:,} of {job.rows_total:,} titles{left}."
    if job.saved_stage == TITLES_STAGE:
        return (f"The transformer's map: it has read the whole text of {job.rows_done:,} of {job.rows_total:,} "
                f"rows{left}.")
    return f"Search by meaning: the transformer has read {job.rows_done:,} of {job.rows_total:,} rows{left}."

