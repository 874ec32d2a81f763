"""Step 4b, labels: name clusters by their most distinctive words, and contrast two selections."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .limits import Limits
from .texts import pick_texts

log = logging.getLogger(__name__)

# Words that start with a letter and have three or more characters: drops numbers ("2024", "3d")
# and short tokens ("of", "ai") that make poor labels; "gpt4" and "llm" stay.
TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W_]{2,}\b"
LABEL_TERMS = 3
# Terms kept per cluster: the label's three, and spares to tell two alike labels apart or re-rank.
TOP_TERMS = 8
SEPARATOR = " · "
# A term is only a candidate when at least this many of the cluster's texts use it: a word that one
# long abstract repeats says nothing about the others.
MIN_TERM_DOCS = 2
# Above this many rows, clusters are named from a sample (label_sample).
LABEL_SAMPLE_ROWS = 20_000
MIN_SAMPLE_PER_CLUSTER = 50
# A term used by at least this share of a cluster's rows is "common" there; a term common in more
# than half the clusters of a level ("models", "based", "data" on arXiv) names none of them.
SPREAD_SHARE = 0.1
MAX_SPREAD = 1 / 2
# How many of the best c-TF-IDF terms a centroid re-rank (rerank_by_centroid) reorders.
RERANK_CANDIDATES = 10
# A two-word phrase stands for its word when it holds at least this share of the word's rows in the
# cluster: "heart failure" rather than "heart" and "failure" side by side.
PHRASE_SHARE = 0.5
MIN_PHRASE_DOCS = 3
# A word that follows a number this often is a unit or an abbreviation ("30 min", "5 ppm"): a
# fragment, never a label on its own or in a phrase.
AFTER_NUMBER_SHARE = 0.5
_AFTER_NUMBER = re.compile(r"\d\s*([^\W\d_]{3,})\b")

# Debris that is text but not topic: e-mail addresses and message ids, URLs, bare domain names,
# LaTeX commands and inline maths (arXiv abstracts: "\mathbb{F}_q" gave the label "codes · mathbb").
# Every pattern here runs on user text in time linear in it. Python's re tries a pattern from every
# position, so an address or a domain is only tried where its run of name characters starts (the
# look-behinds): tried from every letter of one 60 kB "a.a.a…" cell, each try reading to the run's end,
# the two took 101 s. A try from later in a run could only end where the try from its start ends, so
# the words left are those of before: an address directly after another is taken by the repeat, and a
# domain's leading "-." labels are taken with it (no word is in them).
_ADDRESS = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*>?"
_EMAIL = re.compile(rf"<?(?<![\w.+-]){_ADDRESS}(?:<?{_ADDRESS})*")
_URL = re.compile(r"(?:https?://|ftp://|www\.)\S+", re.IGNORECASE)
_DOMAIN = re.compile(
    r"(?<![\w-])(?<![\w-]\.)(?:-+\.)*-*\b[\w-]+(?:\.[\w-]+)*\.(?:com|edu|org|net|gov|mil|ac|uk|de|ca|au|fr|jp|nl|se|ch|io)\b",
    re.IGNORECASE,
)
# Inline maths only where a backslash, ^, _ or a brace shows it is maths: "$5 and $10" is prose.
_LATEX = re.compile(r"\$(?=[^$]*[\\^_{}])[^$]{1,200}\$|\\[A-Za-z]+")
# Mail and news headers (the whole line goes, except a subject's text, which is the post's topic)
# and attribution lines ("In article <…>, jo@cs.edu writes:").
_HEADER = re.compile(
    r"^(?:from|organi[sz]ation|lines|reply-to|nntp-posting-host|path|newsgroups|message-id|"
    r"references|date|sender|distribution|keywords|summary|expires|followup-to|approved|"
    r"in-reply-to|article-i\.d\.|x-[\w-]+)\s*:.*$",
    re.IGNORECASE | re.MULTILINE,
)
_SUBJECT = re.compile(r"^subject\s*:\s*(?:re\s*:\s*)*", re.IGNORECASE | re.MULTILINE)
_ATTRIBUTION = re.compile(
    r"^.*(?:\bin article\b.*|\b(?:writes|wrote|said)\s*:)\s*$", re.IGNORECASE | re.MULTILINE
)
_QUOTE = re.compile(r"^[>|:\s]+", re.MULTILINE)
# A signature follows the "-- " line (the sig-dash convention): a name, an employer, an address.
_SIGNATURE = re.compile(r"^-- ?$.*", re.MULTILINE | re.DOTALL)
# Words that survive the patterns above: address leftovers, LaTeX without its backslash, and the
# vocabulary of writing rather than of a topic ("we propose a novel approach based on").
# scikit-learn's English list already holds "from", "re", "show", "also".
# Only words that are never a topic: "lines", "host" or "article" are words of some fields, and the
# header lines that carry them are gone already.
MAIL_WORDS = frozenset("nntp writes wrote newsgroups edu com org gov www http https html ftp".split())
LATEX_WORDS = frozenset("mathbb mathcal mathrm mathbf frac textbf textit emph cdot ldots cdots".split())
WRITING_WORDS = frozenset(
    "using based paper propose proposed proposes approach approaches method methods novel new "
    "results present presents introduce introduces work existing study".split()
)
STOP_WORDS = MAIL_WORDS | LATEX_WORDS | WRITING_WORDS


@dataclass
class ClusterLabel:
    """A cluster's short label ("robot · grasping · manipulation"), top terms with scores, size."""

    cluster_id: int
    label: str
    terms: list[tuple[str, float]]
    size: int

    def to_dict(self) -> dict:
        """Plain dict for the manifest."""
        return {
            "id": self.cluster_id,
            "label": self.label,
            "size": self.size,
            "terms": [[t, round(float(s), 6)] for t, s in self.terms],
        }


@dataclass
class Contrast:
    """The terms most distinctive of selection A against B and of B against A, with z-scores."""

    a_terms: list[tuple[str, float]]
    b_terms: list[tuple[str, float]]
    n_a: int
    n_b: int


def clean_text(text: str) -> str:
    """The text without mail headers, attributions, signatures, addresses, URLs, domains and LaTeX."""
    text = _SIGNATURE.sub(" ", _SUBJECT.sub("", str(text)))
    text = _ATTRIBUTION.sub(" ", _HEADER.sub(" ", text))
    text = _QUOTE.sub("", text)
    for pattern in (_EMAIL, _URL, _DOMAIN, _LATEX):
        text = pattern.sub(" ", text)
    return text


def _vectorizer():
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    # Each text is cut to the text limit before any pattern reads it, as it was for the embedder: a map's
    # stored texts are whole, and a word past the limit says nothing the map was built from.
    limit = Limits.from_env().max_text_chars
    return CountVectorizer(
        ngram_range=(1, 2),
        stop_words=sorted(ENGLISH_STOP_WORDS | STOP_WORDS),
        token_pattern=TOKEN_PATTERN,
        preprocessor=lambda text: clean_text(str(text)[:limit]).lower(),
        dtype=np.float64,
    )


def _count(texts: Sequence[str]):
    """Document-term counts and the vocabulary, or None when no text holds a usable word."""
    vectorizer = _vectorizer()
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # scikit-learn's "empty vocabulary": only numbers, short words, stop words
        return None, np.array([], dtype=object)
    return counts.tocsr(), vectorizer.get_feature_names_out()


def default_label(cluster_id: int) -> str:
    """The label of a cluster whose texts give no usable word."""
    return f"Cluster {cluster_id}"


def label_clusters(
    texts: Sequence[str], labels: np.ndarray, *, top_n: int = TOP_TERMS
) -> dict[int, ClusterLabel]:
    """Label each cluster (labels >= 0) by class-based TF-IDF of its words and two-word phrases."""
    return label_levels(texts, {"": labels}, top_n=top_n)[""]


def label_levels(
    texts: Sequence[str], levels: dict[str, np.ndarray], *, top_n: int = TOP_TERMS
) -> dict[str, dict[int, ClusterLabel]]:
    """`label_clusters` for several levels of the same texts, counting their words once."""
    for labels in levels.values():
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts for {len(labels)} cluster labels")
    levels = {name: np.asarray(ids) for name, ids in levels.items()}
    rows = label_sample(levels)
    sample = list(pick_texts(texts, rows))
    counts, vocab = _count(sample)
    fragments = _fragments(sample, counts, vocab)
    return {name: _label(counts, vocab, ids[rows], top_n, sizes=_sizes(ids), excluded=fragments)
            for name, ids in levels.items()}


def _fragments(texts: Sequence[str], counts, vocab: np.ndarray) -> np.ndarray:
    """Which terms hold a word that mostly follows a number (a unit such as "min"): never label words."""
    if counts is None or not len(vocab):
        return np.zeros(len(vocab), dtype=bool)
    limit = Limits.from_env().max_text_chars
    after: dict[str, int] = {}
    for text in texts:
        for word in _AFTER_NUMBER.findall(clean_text(str(text)[:limit]).lower()):
            after[word] = after.get(word, 0) + 1
    totals = np.asarray(counts.sum(axis=0)).ravel()
    index = {term: i for i, term in enumerate(vocab)}
    units = {w for w, n in after.items() if w in index and n >= AFTER_NUMBER_SHARE * totals[index[w]]}
    return np.fromiter((bool(units) and any(w in units for w in term.split()) for term in vocab), dtype=bool,
                       count=len(vocab))


def label_sample(levels: dict[str, np.ndarray], *, rows: int = LABEL_SAMPLE_ROWS, seed: int = 0) -> np.ndarray:
    """The rows whose words name the clusters: all of them up to ``rows``, else a seeded sample in
    which every cluster of every level keeps its share and at least MIN_SAMPLE_PER_CLUSTER rows.

    Counting the words and phrases of 100k abstracts took 2.5 GB and two minutes; a 20k sample
    gives the same top terms for clusters of hundreds of rows."""
    n = len(next(iter(levels.values()))) if levels else 0
    if n <= rows:
        return np.arange(n)
    # One random rank per row, shared by all levels: each level takes its clusters' best-ranked
    # rows, so the levels' samples mostly coincide instead of adding up.
    rank = np.random.default_rng(seed).permutation(n)
    chosen = np.zeros(n, dtype=bool)
    for labels in levels.values():
        for cluster in np.unique(labels):
            members = np.flatnonzero(labels == cluster)
            take = max(int(round(rows * len(members) / n)), min(len(members), MIN_SAMPLE_PER_CLUSTER))
            chosen[members[np.argsort(rank[members])[:take]]] = True
    return np.flatnonzero(chosen)


def _sizes(labels: np.ndarray) -> dict[int, int]:
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    return {int(c): int(k) for c, k in zip(ids, counts, strict=True)}


def _label(counts, vocab: np.ndarray, labels: np.ndarray, top_n: int, *,
           sizes: dict[int, int] | None = None, excluded: np.ndarray | None = None) -> dict[int, ClusterLabel]:
    """Labels from counts of (a sample of) the rows; ``sizes`` are the whole clusters' sizes; ``excluded``
    terms (fragments) are never label words."""
    import scipy.sparse as sp

    ids = np.unique(labels[labels >= 0])
    sizes = sizes or _sizes(labels)
    if counts is None or not len(ids):
        return {c: ClusterLabel(c, default_label(c), [], size) for c, size in sizes.items()}

    # Unclustered texts form a class of their own: their words count towards how common a term is.
    classes = np.unique(labels)
    rows = np.searchsorted(classes, labels)
    member = sp.csr_matrix(
        (np.ones(len(labels)), (rows, np.arange(len(labels)))), shape=(len(classes), len(labels))
    )
    class_counts = (member @ counts).tocsr()
    class_docs = (member @ (counts > 0).astype(np.float64)).tocsr()
    # c-TF-IDF (Grootendorst, BERTopic): term frequency within the class times log(1 + A / f_t),
    # A = the mean word count of a class, f_t = the term's count over all classes.
    totals = np.asarray(class_counts.sum(axis=1)).ravel()
    term_totals = np.asarray(class_counts.sum(axis=0)).ravel()
    idf = np.log1p(totals.mean() / np.maximum(term_totals, 1e-12))
    tf = sp.diags(1.0 / np.maximum(totals, 1e-12)) @ class_counts
    scores = tf.multiply(idf).tocsr()

    clustered = np.searchsorted(classes, ids)
    common = _common_everywhere(class_docs[clustered], np.bincount(rows, minlength=len(classes))[clustered])
    if excluded is not None:
        common = common | excluded
    phrases = _phrases_of(vocab)
    out: dict[int, ClusterLabel] = {}
    for c, row in zip(ids, clustered, strict=True):
        row_scores = scores.getrow(row).toarray().ravel()
        docs = class_docs.getrow(row).toarray().ravel()
        eligible = (docs >= min(MIN_TERM_DOCS, sizes[int(c)])) & (row_scores > 0)
        # A cluster whose every word is common elsewhere still gets those words, not "Cluster 7".
        candidates = np.flatnonzero(eligible & ~common) if (eligible & ~common).any() else np.flatnonzero(eligible)
        ranked = candidates[np.argsort(-row_scores[candidates], kind="stable")]
        shown = ((_as_phrase(i, vocab, docs, phrases, eligible & ~common), float(row_scores[i])) for i in ranked)
        terms = _distinct_terms(shown, top_n)
        out[int(c)] = ClusterLabel(int(c), short_label(terms) or default_label(int(c)), terms, sizes[int(c)])
    return unique_labels(out)


def _phrases_of(vocab: np.ndarray) -> dict[str, list[int]]:
    """For each word, the two-word phrases of the vocabulary that hold it (by index)."""
    phrases: dict[str, list[int]] = {}
    for i, term in enumerate(vocab):
        if " " in term:
            for word in set(term.split()):
                phrases.setdefault(word, []).append(i)
    return phrases


def _as_phrase(i: int, vocab: np.ndarray, docs: np.ndarray, phrases: dict[str, list[int]],
               allowed: np.ndarray) -> list[str]:
    """The ways to show term i, best first: a word's commonest phrase in the cluster when it holds
    PHRASE_SHARE of the word's rows, then the word; none for a phrase that is no phrase of the
    cluster ("helmet matters", where "matters" is said everywhere)."""
    term = str(vocab[i])
    if " " in term:
        return [term] if _words_allowed(term, vocab, allowed) else []
    found = [j for j in phrases.get(term, []) if allowed[j]] if docs[i] else []
    best = max(found, key=lambda j: docs[j], default=None)
    if best is None or docs[best] < max(PHRASE_SHARE * docs[i], MIN_PHRASE_DOCS) or \
            not _words_allowed(vocab[best], vocab, allowed):
        return [term]
    return [str(vocab[best]), term]


def _words_allowed(term: str, vocab: np.ndarray, allowed: np.ndarray) -> bool:
    """Whether each word of ``term`` is itself a label word of the cluster."""
    words = term.split()
    index = np.searchsorted(vocab, words)  # scikit-learn sorts its features
    return all(k < len(vocab) and vocab[k] == w and allowed[k] for k, w in zip(index, words, strict=True))


def _common_everywhere(class_docs, class_rows: np.ndarray) -> np.ndarray:
    """Terms that more than MAX_SPREAD of the clusters use in SPREAD_SHARE of their rows or more."""
    import scipy.sparse as sp

    share = sp.diags(1.0 / np.maximum(class_rows, 1)) @ class_docs
    spread = np.asarray((share >= SPREAD_SHARE).sum(axis=0)).ravel()
    # One cluster has nothing to be common with.
    return spread > MAX_SPREAD * len(class_rows) if len(class_rows) > 1 else np.zeros(class_docs.shape[1], bool)


def unique_labels(labels: dict[int, ClusterLabel]) -> dict[int, ClusterLabel]:
    """The labels with no two alike: a repeated label takes more of its own terms until it differs,
    and a label whose terms run out is numbered ("a · b · c (2)"), the biggest cluster keeping it."""
    out = dict(labels)
    shown = {c: LABEL_TERMS for c in out}
    while True:
        groups: dict[str, list[int]] = {}
        for c, label in out.items():
            groups.setdefault(label.label, []).append(c)
        repeated = [ids for ids in groups.values() if len(ids) > 1]
        if not repeated:
            return out
        grew = False
        for ids in repeated:
            for c in ids:
                if len(out[c].terms) > shown[c]:
                    shown[c] += 1
                    out[c] = replace(out[c], label=short_label(out[c].terms, n=shown[c]))
                    grew = True
        if not grew:
            break
    for ids in repeated:
        for number, c in enumerate(sorted(ids, key=lambda c: (-out[c].size, c))[1:], start=2):
            out[c] = replace(out[c], label=f"{out[c].label} ({number})")
    return out


def rerank_by_centroid(
    labels: dict[int, ClusterLabel],
    centroids: dict[int, np.ndarray],
    embed: Callable[[list[str]], np.ndarray],
    *,
    candidates: int = RERANK_CANDIDATES,
) -> dict[int, ClusterLabel]:
    """Labels whose best c-TF-IDF terms are reordered by cosine to the cluster's mean embedding.

    ``embed`` is the map's own embedder (L2-normalised rows); the scores become those cosines."""
    out: dict[int, ClusterLabel] = {}
    for c, label in labels.items():
        terms = [t for t, _ in label.terms[:candidates]]
        if c not in centroids or len(terms) < 2:
            out[c] = label
            continue
        centroid = np.asarray(centroids[c], dtype=np.float64)
        cosines = np.asarray(embed(terms), dtype=np.float64) @ (centroid / max(np.linalg.norm(centroid), 1e-12))
        ranked = [(terms[i], float(cosines[i])) for i in np.argsort(-cosines, kind="stable")]
        out[c] = replace(label, terms=ranked, label=short_label(ranked) or label.label)
    return unique_labels(out)


def _distinct_terms(ranked, top_n: int) -> list[tuple[str, float]]:
    """The best terms that share no word with a better one ("robot" hides "robots", "robot arm").

    Each ranked item is (the ways to show a term, best first, its score): a phrase that would repeat
    a word already shown gives way to the next way, usually the word alone."""
    chosen: list[tuple[str, float]] = []
    seen: set[str] = set()
    for ways, score in ranked:
        for term in ways:
            words = {stem(w) for w in term.split()}
            if not words & seen:
                chosen.append((term, score))
                seen |= words
                break
        if len(chosen) == top_n:
            break
    return chosen


def stem(word: str) -> str:
    """A word with its plural ending folded ("robots" → "robot"), for comparing words, not for showing them."""
    # Enough to fold plurals ("robots", "meshes"); a real stemmer would also mangle the label.
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def short_label(terms: Sequence[tuple[str, float]], *, n: int = LABEL_TERMS) -> str:
    """The first ``n`` terms joined as "a · b · c"."""
    return SEPARATOR.join(t for t, _ in terms[:n])


def label_by_category(
    values: Sequence, labels: np.ndarray, *, top_n: int = 5
) -> dict[int, ClusterLabel]:
    """Label clusters by their most common value (e.g. an image's folder label), with its share."""
    frame = pd.DataFrame(
        {"value": pd.Series(values, dtype="string"), "cluster": np.asarray(labels)}
    )
    frame = frame[frame["cluster"] >= 0]
    out: dict[int, ClusterLabel] = {}
    for c, group in frame.groupby("cluster", sort=True):
        shares = group["value"].dropna().str.strip().replace("", pd.NA).dropna().value_counts()
        if shares.empty:
            continue
        shares = shares / len(group)
        terms = [(str(v), float(s)) for v, s in shares.head(top_n).items()]
        out[int(c)] = ClusterLabel(int(c), terms[0][0], terms, len(group))
    return out


def contrast_terms(
    texts: Sequence[str], mask_a: np.ndarray, mask_b: np.ndarray, *, top_n: int = 10
) -> Contrast:
    """The words and phrases most distinctive of rows A against rows B, and of B against A."""
    mask_a, mask_b = np.asarray(mask_a, dtype=bool), np.asarray(mask_b, dtype=bool)
    if not (len(texts) == len(mask_a) == len(mask_b)):
        raise ValueError(
            f"{len(texts)} texts for selections of {len(mask_a)} and {len(mask_b)} rows"
        )
    n_a, n_b = int(mask_a.sum()), int(mask_b.sum())
    # A row in both selections counts for both: the contrast is then about the rows that differ.
    union = np.flatnonzero(mask_a | mask_b)
    counts, vocab = _count([texts[i] for i in union])
    if counts is None or not n_a or not n_b:
        return Contrast([], [], n_a, n_b)
    in_a, in_b = mask_a[union], mask_b[union]
    y_a = np.asarray(counts[in_a].sum(axis=0)).ravel()
    y_b = np.asarray(counts[in_b].sum(axis=0)).ravel()
    docs = counts > 0
    docs_a = np.asarray(docs[in_a].sum(axis=0)).ravel()
    docs_b = np.asarray(docs[in_b].sum(axis=0)).ravel()
    z = _log_odds_z(y_a, y_b, prior=y_a + y_b)
    return Contrast(
        a_terms=_top_contrast(z, vocab, docs_a >= min(MIN_TERM_DOCS, n_a), top_n),
        b_terms=_top_contrast(-z, vocab, docs_b >= min(MIN_TERM_DOCS, n_b), top_n),
        n_a=n_a,
        n_b=n_b,
    )


def _log_odds_z(y_a: np.ndarray, y_b: np.ndarray, *, prior: np.ndarray) -> np.ndarray:
    """Log-odds ratios with an informative Dirichlet prior, as z-scores (Monroe et al. 2008).

    Plain frequency ratios crown rare words seen once on one side; the prior (the pooled counts)
    shrinks those, and dividing by the standard error favours differences that are well attested."""
    alpha = prior.astype(np.float64)
    a0, n_a, n_b = alpha.sum(), y_a.sum(), y_b.sum()
    odds_a = np.log((y_a + alpha) / (n_a + a0 - y_a - alpha))
    odds_b = np.log((y_b + alpha) / (n_b + a0 - y_b - alpha))
    variance = 1.0 / (y_a + alpha) + 1.0 / (y_b + alpha)
    return (odds_a - odds_b) / np.sqrt(variance)


def _top_contrast(z: np.ndarray, vocab: np.ndarray, eligible: np.ndarray, top_n: int):
    candidates = np.flatnonzero(eligible & (z > 0))
    ranked = candidates[np.argsort(-z[candidates], kind="stable")]
    return _distinct_terms((([str(vocab[i])], float(z[i])) for i in ranked), top_n)
