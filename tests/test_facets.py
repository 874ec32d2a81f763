"""Facets: which columns get one, the browser's encoding, the state's URL text and the mask it keeps."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from explorer.errors import InputError
from explorer.facets import (
    CATEGORY,
    DATE,
    NUMBER,
    OTHER_VALUES,
    TOP_CATEGORIES,
    decode_facets,
    encode_facets,
    facet_columns,
    facet_mask,
    format_state,
    parse_state,
    state_from_json,
    state_to_json,
)


def table(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    venues = np.array([f"venue {i:02d}" for i in range(30)], dtype=object)
    years = rng.integers(2010, 2024, rows).astype("float64")
    years[::17] = np.nan
    return pd.DataFrame({
        "row_id": np.arange(rows), "x": rng.normal(size=rows), "y": rng.normal(size=rows),
        "embedded": np.ones(rows, bool),
        "title": [f"Paper number {i}" for i in range(rows)],
        "abstract": ["A long abstract about a subject that runs well past any category's length. " * 2] * rows,
        "paper_id": np.arange(1000, 1000 + rows), "year": years,
        "citations": rng.exponential(30, rows),
        "venue": venues[rng.zipf(1.5, rows) % 30],
        "field": rng.choice(["bio", "cs", "med"], rows),
        "published": pd.to_datetime("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, rows), unit="D"),
        "cluster": rng.integers(0, 5, rows),
    })


def test_columns_get_a_facet_by_their_type():
    points = table()
    facets = {f.name: f for f in facet_columns(points, skip=["cluster"])}
    assert list(facets) == ["year", "citations", "venue", "field", "published"], "ids, free text, x/y skipped"
    assert facets["year"].kind == NUMBER and facets["published"].kind == DATE
    assert facets["venue"].kind == CATEGORY and len(facets["venue"].categories) == TOP_CATEGORIES
    assert facets["venue"].other == points["venue"].nunique() - TOP_CATEGORIES > 0, "the rest is Other"
    counts = points["field"].value_counts()
    assert facets["field"].categories == tuple(counts.index), "most frequent first"
    assert facet_columns(table().assign(when=lambda t: t["published"].dt.strftime("%Y-%m-%d")),
                         max_facets=8)[-1].kind == DATE, "ISO date text is a date"
    assert len(facet_columns(table(), max_facets=2)) == 2


def test_the_encoding_round_trips():
    points = table()
    facets = facet_columns(points)
    header, blob = encode_facets(points, facets)
    decoded = decode_facets(header, blob)
    assert [f for f, _ in decoded] == facets
    by_name = {f.name: v for f, v in decoded}
    assert np.array_equal(by_name["year"], points["year"].to_numpy(), equal_nan=True)
    assert by_name["published"][0] == (points["published"][0] - pd.Timestamp("1970-01-01")).days
    venue = next(f for f in facets if f.name == "venue")
    codes = by_name["venue"]
    assert codes.dtype == np.int32 and codes.max() == TOP_CATEGORIES, "code n is Other"
    named = codes < TOP_CATEGORIES
    assert (np.array(venue.categories, dtype=object)[codes[named]] == points["venue"][named]).all()


def test_the_url_text_round_trips_with_escapes():
    state = {"year": (2019.0, 2023.0), "venue": frozenset({"Neur;IPS", "a|b=c:d%", OTHER_VALUES}),
             "citations": (0.5, 12.25), "odd:name=": frozenset({"x*"})}
    text = format_state(state)
    assert text.startswith("year:2019..2023;venue=")
    assert parse_state(text) == state
    assert format_state({"published": (18262.0, 18627.0)}, dates=["published"]) == "published:2020-01-01..2020-12-31"
    assert parse_state("published:2020-01-01..2020-12-31") == {"published": (18262.0, 18627.0)}
    assert state_from_json(state_to_json(state)) == state
    assert parse_state("") == {}


@pytest.mark.parametrize("text, says", [
    ("year", "is neither a range"),
    ("year:2019", "is not a range"),
    ("year:2023..2019", "ends before it starts"),
    ("year:a..b", "is not a number or a date"),
    ("year:1..inf", "is not a number or a date"),
    ("venue=", "chooses no value"),
    ("venue=a%b", "is not escaped"),
    ("year:1..2;year:3..4", "named twice"),
    ("=x", "names no column"),
    ("v=" + "x" * 5000, "characters long"),
])
def test_bad_url_text_is_refused_in_one_line(text, says):
    with pytest.raises(InputError) as caught:
        parse_state(text)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_mask_of_a_state():
    points = table()
    years = points["year"].to_numpy()
    keep = facet_mask(points, {"year": (2019, 2020)})
    assert keep.tolist() == ((years >= 2019) & (years <= 2020)).tolist(), "inclusive; missing years are out"
    venue = next(f for f in facet_columns(points) if f.name == "venue")
    keep = facet_mask(points, {"venue": frozenset({OTHER_VALUES}), "field": frozenset({"cs"})})
    expected = ~points["venue"].isin(venue.categories) & (points["field"] == "cs")
    assert keep.tolist() == expected.tolist() and keep.any()
    assert facet_mask(points, {}).all()
    infinite = points.assign(citations=np.where(np.arange(len(points)) % 5 == 0, np.inf, points["citations"]))
    _, blob = encode_facets(infinite, [f for f in facet_columns(infinite) if f.name == "citations"])
    assert np.isnan(np.frombuffer(blob, "<f8")[::5]).all(), "±inf is missing: the browser cannot bin it"
    assert not facet_mask(infinite, {"citations": (0, np.inf)})[::5].any(), "and a range leaves it out, as there"
    with pytest.raises(InputError, match="does not have"):
        facet_mask(points, {"nope": (1, 2)})
    with pytest.raises(InputError, match="holds no numbers"):
        facet_mask(points, {"field": (1, 2)})


def test_the_apps_facets_skip_cluster_ids_and_keep_their_labels(papers_frame, workspace):
    from explorer import build_map
    from explorer.cluster import ClusterConfig
    from explorer.facets import decode_facets
    from explorer.ui import loaders

    build_map(papers_frame, name="papers", model="hashing", workspace=workspace,
                      clusters=ClusterConfig(method="kmeans", k=3, levels=1))
    stamp = str(workspace.stamp("papers"))
    header, blob = loaders.facet_payload("papers", stamp, "coarse")
    decoded = {facet.name: values for facet, values in decode_facets(header, blob)}
    assert set(decoded) == {"year", "field", "cluster label"}, "the cluster id column is shown by its labels"
    keep, text, error = loaders.get_facet_mask("papers", stamp, "coarse", "year:2002..2003;field=physics")
    assert error == "" and text == "year:2002..2003;field=physics" and keep.sum() == 2
    assert len(keep) == len(papers_frame)


def test_a_facets_file_carries_the_header_the_blob_and_each_rows_id():
    from explorer.facets import pack_facets, unpack_facets

    points = pd.DataFrame({"year": [2001.0, 2002.0, np.nan], "venue": ["a", "b", "a"], "row_id": [4, 9, 11]})
    header, blob = encode_facets(points, facet_columns(points))
    packed = pack_facets(header, blob, points["row_id"].to_numpy())
    assert packed[:4] == b"EMF1" and (len(packed) - 8 - int.from_bytes(packed[4:8], "little")) % 4 == 0
    back = unpack_facets(packed)
    assert json.loads(back[0]) == json.loads(header)
    assert back[1] == blob and back[2].tolist() == [4, 9, 11]
