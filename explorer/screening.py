"""Screening for a literature review: rank the unscreened rows by how likely each is relevant, from
the decisions made so far, and replay a labelled collection to measure how much reading it saves.

The model is a logistic regression retrained on every decision (active learning as in ASReview), on
the map's own vectors by default; TF-IDF features, alone or beside the vectors, are the measured
alternatives (benchmarks/screening.py). Everything here is pure: rows in, order and scores out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from .errors import InputError, MapChangedError
from .map_files import save_map
from .store import SavedMap, Workspace
from .texts import title_column

# The points column of the decisions, and its values (missing: not screened yet).
DECISION_COLUMN = "decision"
RELEVANT, IRRELEVANT = "relevant", "irrelevant"
# A decision that meets another one saved meanwhile on the same column is made again on the latest map.
DECIDE_TRIES = 8
FEATURES = ("vectors", "tfidf", "both")
DEFAULT_FEATURES = "vectors"
# Decisions between retrainings in a simulated screening (the app retrains after every decision).
SIMULATION_BATCH = 10
# How many of the latest decisions the stopping hint's rate is read from.
RECENT_WINDOW = 50
# The columns a seed list's identifiers are looked up in, besides the title.
ID_COLUMNS = ("doi", "key", "arxiv_id", "id", "pmid", "isbn")
# L2 penalty of the logistic regression: strong enough for a few dozen decisions in 384 dimensions.
REGULARISATION = 1.0


@dataclass(frozen=True)
class Ranking:
    """The unscreened rows, most likely relevant first, with the model's score for each."""

    row_ids: np.ndarray
    scores: np.ndarray
    method: str

    def head(self, k: int) -> list[tuple[int, float]]:
        """The first ``k`` (row id, score) pairs."""
        return [(int(r), float(s)) for r, s in zip(self.row_ids[:k], self.scores[:k], strict=True)]


@dataclass(frozen=True)
class Progress:
    """Where a screening stands: relevant found against papers screened, and a stopping hint."""

    screened: int
    relevant: int
    total: int
    since_last_relevant: int
    recent_rate: float
    estimated_left: float

    def hint(self) -> str:
        """One line on whether to stop, saying how the estimate is computed."""
        if self.screened == 0:
            return "Nothing screened yet."
        window = min(RECENT_WINDOW, self.screened)
        rest = self.total - self.screened
        return (f"{self.relevant:,} relevant in {self.screened:,} screened; "
                f"{self.since_last_relevant:,} screened since the last relevant one. "
                f"In the last {window} decisions {self.recent_rate:.0%} were relevant: "
                f"at that rate the {rest:,} unscreened would hold about {self.estimated_left:,.0f}, "
                "and as the most likely come first, expect fewer.")


def feature_matrix(vectors: np.ndarray | None, texts: Sequence[str] | None, kind: str = DEFAULT_FEATURES):
    """The rows' features for ``kind``: the map's vectors (unit length), TF-IDF of the texts, or both side by side."""
    if kind not in FEATURES:
        raise InputError(f"Unknown screening features '{kind}': choose one of {', '.join(FEATURES)}.")
    parts = []
    if kind in ("vectors", "both"):
        if vectors is None:
            raise InputError("This map has no vectors to screen with.")
        matrix = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        parts.append(matrix / np.where(norms > 0, norms, 1))
    if kind in ("tfidf", "both"):
        if texts is None:
            raise InputError("This map has no texts for TF-IDF features.")
        from sklearn.feature_extraction.text import TfidfVectorizer

        # A word in one paper only tells nothing about the others, except in tiny collections.
        vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2 if len(texts) >= 1000 else 1, max_df=0.5,
                                     stop_words="english", dtype=np.float32)
        try:
            parts.append(vectorizer.fit_transform(texts))
        except ValueError as exc:  # no word left once the stop words and the commonest are gone
            raise InputError("The texts have no words that tell them apart: screen on the map's vectors.") from exc
    if len(parts) == 1:
        return parts[0]
    from scipy.sparse import csr_matrix, hstack

    return hstack([csr_matrix(parts[0]), parts[1]], format="csr")


def rank_rows(features, relevant: Sequence[int], irrelevant: Sequence[int]) -> tuple[np.ndarray, np.ndarray, str]:
    """(positions of the unscreened rows best first, their scores, how): the model on the decisions so far.

    Positions index the rows of ``features``. With decisions of one kind only, the rows nearest the
    mean of the relevant ones come first (no model can be trained yet); with none, the given order."""
    n = features.shape[0]
    relevant = np.asarray(sorted(set(int(i) for i in relevant)), dtype=np.int64)
    irrelevant = np.asarray(sorted(set(int(i) for i in irrelevant) - set(relevant.tolist())), dtype=np.int64)
    screened = np.zeros(n, dtype=bool)
    screened[relevant] = True
    screened[irrelevant] = True
    rest = np.flatnonzero(~screened)
    if len(relevant) == 0:
        return rest, np.zeros(len(rest), dtype=np.float32), "no relevant decision yet: the table's order"
    if len(irrelevant) == 0:
        centre = np.asarray(features[relevant].mean(axis=0)).ravel()
        scores = np.asarray(features @ centre.astype(np.float32)).ravel()[rest]
        how = "similarity to the mean of the relevant papers (no irrelevant decision yet)"
    else:
        from sklearn.linear_model import LogisticRegression

        labelled = np.concatenate([relevant, irrelevant])
        target = np.concatenate([np.ones(len(relevant)), np.zeros(len(irrelevant))])
        model = LogisticRegression(C=REGULARISATION, class_weight="balanced", max_iter=200)
        model.fit(features[labelled], target)
        # The probability by hand: predict_proba's checks cost more than the product at 100k rows.
        # Every row's margin, then the unscreened ones: features[rest] would copy the whole matrix.
        margin = np.asarray(features @ model.coef_[0].astype(np.float32)).ravel()[rest] + model.intercept_[0]
        scores = 1.0 / (1.0 + np.exp(-margin))
        how = f"logistic regression on {len(relevant):,} relevant and {len(irrelevant):,} irrelevant decisions"
    order = np.argsort(-scores, kind="stable")
    return rest[order], np.asarray(scores, dtype=np.float32)[order], how


def rank(saved, relevant: Iterable[int] = (), irrelevant: Iterable[int] = (), *,
         features: str = DEFAULT_FEATURES) -> Ranking:
    """The saved map's unscreened rows (by row id), most likely relevant first, from the decisions by row id."""
    row_ids = saved.points["row_id"].to_numpy()
    position = {int(r): i for i, r in enumerate(row_ids)}
    unknown = sorted({int(r) for r in (*relevant, *irrelevant)} - set(position))
    if unknown:
        shown = ", ".join(map(str, unknown[:5]))
        raise InputError(f"No row {shown} in the map '{saved.name}' "
                         f"(row ids run from {row_ids.min()} to {row_ids.max()}).")
    embedded = saved.embedded
    matrix = feature_matrix(np.asarray(saved.embeddings)[embedded] if features != "tfidf" else None,
                            [t for t, e in zip(saved.texts(), embedded, strict=True) if e] if features != "vectors"
                            else None, features)
    on_map = np.flatnonzero(embedded)
    local = {int(row_ids[i]): k for k, i in enumerate(on_map)}
    order, scores, how = rank_rows(matrix, [local[r] for r in relevant if r in local],
                                   [local[r] for r in irrelevant if r in local])
    return Ranking(row_ids=row_ids[on_map][order], scores=scores, method=how)


def progress(decisions: Sequence[bool], total: int) -> Progress:
    """The progress of a screening whose decisions (True: relevant), in the order made, are ``decisions``."""
    made = np.asarray(decisions, dtype=bool)
    found = np.flatnonzero(made)
    since = len(made) - 1 - int(found[-1]) if len(found) else len(made)
    recent = made[-RECENT_WINDOW:]
    rate = float(recent.mean()) if len(recent) else 0.0
    return Progress(screened=len(made), relevant=len(found), total=total, since_last_relevant=since,
                    recent_rate=rate, estimated_left=rate * (total - len(made)))


@dataclass(frozen=True)
class Simulation:
    """A labelled collection replayed: the order the rows were screened in and what it saved."""

    order: np.ndarray
    labels: np.ndarray

    @property
    def found(self) -> np.ndarray:
        """Relevant rows found after each row screened (the recall curve, in counts)."""
        return np.cumsum(self.labels[self.order])

    def wss(self, recall: float = 0.95) -> float:
        """Work saved over sampling at ``recall``: the share of rows never read, minus what random order saves."""
        need = int(np.ceil(recall * self.labels.sum()))
        read = int(np.searchsorted(self.found, need) + 1)
        return (len(self.labels) - read) / len(self.labels) - (1 - recall)

    def recall_at(self, fraction: float = 0.1) -> float:
        """The share of the relevant rows found after screening ``fraction`` of all rows."""
        return float(self.found[max(1, int(round(fraction * len(self.labels)))) - 1] / self.labels.sum())


def simulate(features, labels: np.ndarray, *, seed: int = 0, batch: int = SIMULATION_BATCH) -> Simulation:
    """Replay a screening of rows whose relevance is known: one relevant and one irrelevant row at random
    as the prior knowledge, then the model's top ``batch`` rows read between retrainings."""
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        raise InputError("A simulation needs both relevant and irrelevant rows.")
    rng = np.random.default_rng(seed)
    order = [int(rng.choice(np.flatnonzero(labels))), int(rng.choice(np.flatnonzero(~labels)))]
    while len(order) < len(labels) and labels[order].sum() < labels.sum():
        done = np.asarray(order)
        ranked, _, _ = rank_rows(features, done[labels[done]], done[~labels[done]])
        order.extend(int(i) for i in ranked[:batch])
    # Every relevant row found: the order of the rest changes neither WSS nor recall.
    rest = np.setdiff1d(np.arange(len(labels)), order)
    return Simulation(order=np.concatenate([np.asarray(order), rest]), labels=labels)


def random_order(labels: np.ndarray, *, seed: int = 0) -> Simulation:
    """Screening in random order: the baseline a model must beat."""
    labels = np.asarray(labels, dtype=bool)
    return Simulation(order=np.random.default_rng(seed).permutation(len(labels)), labels=labels)


@dataclass(frozen=True)
class Seeds:
    """The rows a seed file names, and the identifiers it names that no row has."""

    row_ids: list[int]
    unmatched: list[str]


def seed_rows(saved, text: str, name: str) -> Seeds:
    """The rows a file marks as relevant: a .bib or .ris (matched by DOI, key, then title) or a list of
    identifiers, one per line (a DOI, a key, an arXiv id… or a title)."""
    from .bibliography import read_bibtex, read_ris

    points = saved.points
    lookups = {column: _normalised(points[column]) for column in ID_COLUMNS if column in points.columns}
    title = title_column(points, saved.meta.text_columns or [])
    if title:
        lookups["title"] = _normalised(points[title])
    index = {column: {value: i for i, value in reversed(list(enumerate(values))) if value}
             for column, values in lookups.items()}
    lower = name.lower()
    if lower.endswith((".bib", ".ris")):
        frame = (read_bibtex if lower.endswith(".bib") else read_ris)(text, name).frame
        wanted = [[(c, v) for c in ("doi", "key", "title") if c in frame.columns
                   for v in [_normalise(frame[c].iloc[i])] if v] for i in range(len(frame))]
        shown = [str(frame["key"].iloc[i] if "key" in frame.columns and _present(frame["key"].iloc[i])
                     else frame["title"].iloc[i]) for i in range(len(frame))]
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        wanted = [[(c, _normalise(line)) for c in index] for line in lines]
        shown = lines
    row_ids, unmatched = [], []
    for candidates, label in zip(wanted, shown, strict=True):
        found = next((index[c][v] for c, v in candidates if c in index and v in index[c]), None)
        if found is None:
            unmatched.append(label)
        else:
            row_ids.append(int(points["row_id"].iloc[found]))
    return Seeds(row_ids=list(dict.fromkeys(row_ids)), unmatched=unmatched)


def _present(value) -> bool:
    """Whether a table value is present (not None, NaN or <NA>)."""
    import pandas as pd

    return not pd.isna(value)


def _normalise(value) -> str:
    """An identifier or title as compared: no DOI prefix, case, punctuation or extra spaces."""
    if value is None or not _present(value):
        return ""
    text = str(value).strip().lower()
    for prefix in ("https://doi.org/", "http://doi.org/", "doi:", "https://arxiv.org/abs/", "arxiv:"):
        text = text.removeprefix(prefix)
    return " ".join("".join(ch if ch.isalnum() or ch in "./_-:" else " " for ch in text).split())


def _normalised(values) -> list[str]:
    return [_normalise(v) for v in values]


# ---------------------------------------------------------------- decisions, stored with the map


def decisions_of(saved: SavedMap) -> pd.Series:
    """Each row's decision (RELEVANT, IRRELEVANT or <NA>), row-aligned with the points."""
    if DECISION_COLUMN in saved.points.columns:
        return saved.points[DECISION_COLUMN].astype("string")
    return pd.Series(pd.NA, index=saved.points.index, dtype="string", name=DECISION_COLUMN)


def history_of(saved: SavedMap) -> list[dict]:
    """Every decision in the order made: {row_id, decision (None: undone), at, who}."""
    return list(saved.meta.screening.history or [])


def with_decisions(points: pd.DataFrame, manifest: dict, row_ids: Sequence[int], decision: str | None, *,
                   who: str = "", at: str | None = None) -> tuple[pd.DataFrame, dict]:
    """The map with ``row_ids`` decided (None: their decisions undone), and the decisions appended to the
    manifest's screening history with the time and who made them."""
    if decision not in (RELEVANT, IRRELEVANT, None):
        raise InputError(f"A decision is '{RELEVANT}', '{IRRELEVANT}' or none (undo), not '{decision}'.")
    row_ids = [int(r) for r in row_ids]
    where = pd.Index(points["row_id"]).get_indexer(row_ids)
    if (where < 0).any():
        missing = [r for r, w in zip(row_ids, where, strict=True) if w < 0][:5]
        raise InputError(f"No row {', '.join(map(str, missing))} in this map.")
    column = points[DECISION_COLUMN].astype("string") if DECISION_COLUMN in points.columns else \
        pd.Series(pd.NA, index=points.index, dtype="string")
    column = column.copy()
    column.iloc[where] = decision if decision is not None else pd.NA
    when = at or datetime.now(UTC).isoformat(timespec="seconds")
    section = dict(manifest.get("screening") or {})
    section["history"] = [*(section.get("history") or []),
                          *({"row_id": r, "decision": decision, "at": when, "who": who} for r in row_ids)]
    return points.assign(**{DECISION_COLUMN: column}), {**manifest, "screening": section}


def decide(workspace: Workspace, name: str, row_ids: Sequence[int], decision: str | None, *, who: str = "",
           base: SavedMap | None = None) -> SavedMap:
    """Record a decision on rows of the map ``name`` (None undoes it): one save. When another decision,
    a refinement or a rename lands meanwhile, what is independent merges; a decision saved on the same
    column meanwhile makes this one be made again on the latest map, so neither is lost."""
    with workspace.edits():
        saved = _latest(workspace, base) if base is not None else workspace.open(name, mmap=True)
        for _ in range(DECIDE_TRIES):
            points, manifest = with_decisions(saved.points, saved.manifest, row_ids, decision, who=who)
            try:
                return save_map(workspace, saved.name, points=points, embeddings=saved.embeddings,
                                manifest=manifest, base=saved, thumbnails_from=saved)
            except MapChangedError:  # a save that does not take turns (a refinement) landed meanwhile
                saved = _latest(workspace, saved)
    raise MapChangedError(f"'{name}' kept changing while a decision was saved: it was tried {DECIDE_TRIES} times.")


def screened(saved: SavedMap) -> tuple[list[int], list[int], list[bool]]:
    """(relevant row ids, irrelevant row ids, the standing decisions in the order made: True relevant)."""
    standing: dict[int, str] = {}
    for entry in history_of(saved):
        standing.pop(int(entry["row_id"]), None)  # a later decision (or an undo) moves it to the end
        if entry.get("decision") in (RELEVANT, IRRELEVANT):
            standing[int(entry["row_id"])] = entry["decision"]
    current = dict(zip(saved.points["row_id"].astype(int), decisions_of(saved), strict=True))
    order = [(r, d) for r, d in standing.items() if current.get(r) == d]
    # Decisions present in the column but not in the history (a table brought them): first, in row order.
    known = {r for r, _ in order}
    order = [(r, d) for r, d in current.items() if not pd.isna(d) and r not in known] + order
    relevant = [r for r, d in order if d == RELEVANT]
    irrelevant = [r for r, d in order if d == IRRELEVANT]
    return relevant, irrelevant, [d == RELEVANT for _, d in order]


def _latest(workspace: Workspace, saved: SavedMap) -> SavedMap:
    """The map ``saved`` is now (followed by its id through a rename)."""
    map_id = saved.meta.map_id
    for info in workspace.list():
        if info.name == saved.name or not map_id:
            continue
        if workspace.read_manifest(info.name).get("map_id") == map_id:
            return workspace.open(info.name, mmap=True)
    return workspace.open(saved.name, mmap=True)
