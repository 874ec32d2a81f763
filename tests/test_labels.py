"""Cluster labels (issue 14): term hygiene on mail-like and paper-like texts, one distinct label per
cluster, and the centroid re-rank."""

from __future__ import annotations

import numpy as np
import pytest

from explorer import labels as labelling
from explorer.labels import (
    ClusterLabel,
    clean_text,
    label_clusters,
    label_levels,
    rerank_by_centroid,
    unique_labels,
)

# Three newsgroups, each posting from its own site: without hygiene the site's name, domain and
# organisation are the most distinctive words of each group.
GROUPS = {
    "motorcycles": ("ridersnet.org", "Ridersnet Online Services", "motorcycle helmet engine throttle clutch"),
    "space": ("jpl.nasa.gov", "Jet Propulsion Laboratory", "orbit shuttle launch satellite rocket"),
    "hockey": ("rinkhall.edu", "Rinkhall University Athletics", "hockey goalie puck playoffs penalty"),
}
NEWS_DEBRIS = {
    "ridersnet", "jpl", "nasa", "gov", "rinkhall", "edu", "org", "com", "online", "services", "jet",
    "propulsion", "laboratory", "university", "athletics", "writes", "article", "subject", "lines",
    "organization", "nntp", "posting", "host", "http", "www", "faq", "html",
}
PAPER_FIELDS = {
    "robotics": "robot grasping manipulation locomotion gripper",
    "language": "translation multilingual sentence tokenizer parsing",
    "coding": "decoding codeword parity channel polar",
}
PAPER_DEBRIS = {"propose", "novel", "approach", "based", "model", "results", "mathbb", "paper", "using"}


def news_posts(per_group: int = 8) -> tuple[list[str], np.ndarray, list[set[str]]]:
    """Mail-like posts (headers, an attribution, a quote, a URL, a signature) and each one's group."""
    texts, groups = [], []
    for g, (domain, organisation, words) in enumerate(GROUPS.values()):
        vocab = words.split()
        for i in range(per_group):
            topic = " ".join(vocab[(i + j) % 5] for j in range(8))
            texts.append(
                f"From: user{i}@{domain} (User {i})\n"
                f"Subject: Re: {vocab[i % 5]} question\n"
                f"Organization: {organisation}\n"
                f"Lines: {10 + i}\n"
                f"NNTP-Posting-Host: news{i}.{domain}\n\n"
                f"In article <{i}x{g}@{domain}>, other{i}@{domain} writes:\n"
                f"> I think the {vocab[(i + 1) % 5]} matters\n\n"
                f"{topic}. See http://www.{domain}/faq.html or mail me at user{i}@{domain}\n"
                f"-- \nUser {i}, {organisation}, {domain}\n"
            )
            groups.append(g)
    return texts, np.array(groups), [set(w.split()) for _, _, w in GROUPS.values()]


def papers(per_field: int = 8) -> tuple[list[str], np.ndarray, list[set[str]]]:
    """Abstract-like texts: a field's words in the vocabulary of writing shared by every field, a word
    common to all ("model") and LaTeX."""
    texts, fields = [], []
    for f, words in enumerate(PAPER_FIELDS.values()):
        vocab = words.split()
        for i in range(per_field):
            topic = " ".join(vocab[(i + j) % 5] for j in range(8))
            texts.append(
                f"In this paper we propose a novel approach based on a model of {topic}, with "
                f"$x \\in \\mathbb{{R}}^n$ and a {vocab[i % 5]} model. Results using the model show "
                f"{vocab[(i + 2) % 5]} gains."
            )
            fields.append(f)
    return texts, np.array(fields), [set(w.split()) for w in PAPER_FIELDS.values()]


def label_words(label: ClusterLabel) -> set[str]:
    return {w for term, _ in label.terms for w in term.split()}


def test_clean_text_drops_headers_addresses_urls_and_latex_but_keeps_the_subject():
    text = (
        "From: jo@cs.cmu.edu (Jo)\nSubject: Re: Re: helmet laws\nOrganization: Carnegie Mellon\n"
        "In article <abc@x.edu>, bob@y.com writes:\n> quoted helmet\nsee www.bikes.com and "
        "https://x.org/a?b=1, $\\mathbb{F}_q$ codes \\cite{x}"
    )
    cleaned = clean_text(text).split()
    assert {"helmet", "laws", "quoted", "see", "and", "codes"} <= set(cleaned)
    for debris in ("jo@cs.cmu.edu", "Subject:", "Re:", "Carnegie", "writes:", "bikes.com", "https://x.org/a?b=1",
                   "\\mathbb{F}_q", "\\cite{x}", ">"):
        assert debris not in cleaned, debris


@pytest.mark.parametrize("corpus, debris", [(news_posts, NEWS_DEBRIS), (papers, PAPER_DEBRIS)])
def test_debris_never_reaches_a_label_and_each_groups_topic_words_do(corpus, debris):
    texts, groups, topics = corpus()

    labels = label_clusters(texts, groups)

    assert sorted(labels) == [0, 1, 2]
    for g, topic in enumerate(topics):
        words = label_words(labels[g])
        assert len(labels[g].terms) >= 3 and words <= topic, (g, labels[g].terms)
        assert not words & debris


@pytest.mark.parametrize("corpus, debris", [(news_posts, NEWS_DEBRIS), (papers, PAPER_DEBRIS)])
def test_without_the_hygiene_the_same_corpora_put_debris_in_labels(corpus, debris, monkeypatch):
    # The check that the corpora above are a real test: scikit-learn's stop words alone let debris in.
    monkeypatch.setattr(labelling, "STOP_WORDS", frozenset())
    monkeypatch.setattr(labelling, "clean_text", str)
    monkeypatch.setattr(labelling, "MAX_SPREAD", float("inf"))
    texts, groups, _ = corpus()

    labels = label_clusters(texts, groups)

    assert any(label_words(label) & debris for label in labels.values())


def test_a_word_common_to_most_clusters_is_dropped_but_one_clusters_own_word_stays():
    # "learning" is in every text of four clusters out of five: it names none of them.
    topics = ["robot gripper", "parsing tokenizer", "decoding parity", "orbit rocket", "hockey puck"]
    texts, ids = [], []
    for c, topic in enumerate(topics):
        for i in range(6):
            texts.append(f"{topic} {'learning' if c < 4 else 'skating'} {topic.split()[i % 2]}")
            ids.append(c)

    labels = label_clusters(texts, np.array(ids))

    assert all("learning" not in label_words(label) for label in labels.values())
    assert label_words(labels[4]) >= {"hockey", "puck", "skating"}


def test_a_cluster_whose_words_are_all_common_still_gets_them():
    texts = ["shared words here"] * 4 + ["shared words there"] * 4
    labels = label_clusters(texts, np.repeat([0, 1], 4))
    assert all(label.terms and not label.label.startswith("Cluster") for label in labels.values())


def test_no_two_clusters_of_a_level_share_a_label():
    # Two clusters with the same three best words: the next word tells them apart.
    texts = (["robot gripper arm wheel"] * 5 + ["robot gripper arm wheel", "robot gripper arm leg"] * 3
             + ["orbit rocket launch"] * 5)
    ids = np.repeat([0, 1, 2], [5, 6, 5])

    labels = label_levels(texts, {"coarse": ids, "fine": ids})

    for level in labels.values():
        names = [label.label for label in level.values()]
        assert len(set(names)) == len(names) and all(names), names


def test_unique_labels_adds_terms_then_numbers_what_stays_alike():
    terms = [("a", 3.0), ("b", 2.0), ("c", 1.0)]
    labels = {
        0: ClusterLabel(0, "a · b · c", [*terms, ("d", 0.5)], 10),
        1: ClusterLabel(1, "a · b · c", [*terms, ("e", 0.5)], 20),
        2: ClusterLabel(2, "x · y · z", [("x", 1.0), ("y", 1.0), ("z", 1.0)], 5),
        3: ClusterLabel(3, "x · y · z", [("x", 1.0), ("y", 1.0), ("z", 1.0)], 9),
    }

    out = unique_labels(labels)

    assert out[0].label == "a · b · c · d" and out[1].label == "a · b · c · e"
    assert out[3].label == "x · y · z" and out[2].label == "x · y · z (2)"  # the bigger keeps it
    assert labels[0].label == "a · b · c"  # the input is left as it was


def test_plurals_in_es_fold_into_their_singular():
    texts = ["mesh meshes surface voronoi"] * 3 + ["orbit rocket launch"] * 3
    terms = [t for t, _ in label_clusters(texts, np.repeat([0, 1], 3))[0].terms]
    assert not {"mesh", "meshes"} <= set(terms)


def test_centroid_rerank_orders_the_candidates_by_cosine_to_the_clusters_mean_embedding():
    basis = {"alpha": [1.0, 0.0], "beta": [0.6, 0.8], "gamma": [0.0, 1.0]}
    label = ClusterLabel(0, "alpha · beta · gamma", [("alpha", 3.0), ("beta", 2.0), ("gamma", 1.0)], 7)
    calls = []

    def embed(terms):
        calls.append(list(terms))
        return np.array([basis[t] for t in terms])

    out = rerank_by_centroid({0: label}, {0: np.array([0.0, 2.0])}, embed)

    assert calls == [["alpha", "beta", "gamma"]]
    assert [t for t, _ in out[0].terms] == ["gamma", "beta", "alpha"]
    assert out[0].label == "gamma · beta · alpha" and out[0].size == 7
    assert [s for _, s in out[0].terms] == pytest.approx([1.0, 0.8, 0.0])


def test_phrases_that_read_better_and_never_a_unit_on_its_own():
    rng = np.random.default_rng(3)
    openings = ["In patients with", "We followed", "Outcomes of", "A cohort with", "Rats with induced"]
    findings = ["mortality fell", "dosing mattered", "outcomes improved", "scores rose", "risk dropped"]
    cardiology = [f"{rng.choice(openings)} heart failure, {rng.choice(findings)} after {m} min. "
                  f"{rng.choice(['Early', 'Late', 'Repeated'])} myocardial infarction {rng.choice(findings)}; "
                  f"reperfusion took {m + 5} min." for m in rng.integers(10, 90, 40)]
    other = [f"Compilers schedule {rng.choice(['loops', 'registers', 'threads'])} with polyhedral "
             f"analysis and vectorization for {m} cores." for m in rng.integers(2, 64, 40)]
    labels = label_clusters(cardiology + other, np.array([0] * 40 + [1] * 40))
    heart = [term for term, _ in labels[0].terms]
    assert {"heart failure", "myocardial infarction"} <= set(heart[:4]), heart
    assert not any("min" in term.split() for term in heart), heart
