"""Your own vectors and layout: read, checked and normalised, with one clear message for each bad shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explorer import InputError
from explorer.vectors import offered_columns, read_layout, read_neighbors, read_vectors


def frame(vectors) -> pd.DataFrame:
    return pd.DataFrame({"title": [f"t{i}" for i in range(len(vectors))], "vec": vectors})


def test_a_column_of_lists_becomes_unit_vectors_with_missing_rows_left_out():
    given = read_vectors(frame([[3.0, 4.0], None, np.array([0.0, 2.0])]), "vec")
    assert given.dimension == 2 and given.present.tolist() == [True, False, True]
    np.testing.assert_allclose(given.vectors, [[0.6, 0.8], [0, 0], [0, 1]], rtol=1e-6)


def test_json_text_of_lists_reads_as_csv_stores_it():
    given = read_vectors(frame(["[1, 0, 0]", "[0, 2, 0]"]), "vec")
    np.testing.assert_allclose(given.vectors, [[1, 0, 0], [0, 1, 0]])


def test_an_npy_beside_the_table(tmp_path):
    np.save(tmp_path / "vectors.npy", np.array([[1.0, 1.0], [2.0, 0.0]]))
    given = read_vectors(frame([None, None]).drop(columns="vec"), "vectors.npy", base=tmp_path)
    np.testing.assert_allclose(given.vectors, [[2 ** -0.5, 2 ** -0.5], [1, 0]], rtol=1e-6)
    np.save(tmp_path / "wrong.npy", np.ones((3, 2)))
    with pytest.raises(InputError, match=r"shape \(3, 2\).*2 rows"):
        read_vectors(frame([None, None]), "wrong.npy", base=tmp_path)


@pytest.mark.parametrize(("values", "message"), [
    ([[1.0, 2.0], [1.0, 2.0, 3.0]], r"different lengths \(2, 3; row 2"),
    ([[1.0, np.nan], [1.0, 2.0]], r"Row 1 .* NaN or infinite"),
    ([[0.0, 0.0], [1.0, 2.0]], r"Row 1 .* all zeros"),
    ([[1.0], [2.0]], r"1 number\(s\) each"),
    (["not a list", "[1, 2]"], r"Row 1 of 'vec' is not a list of numbers"),
    ([["a", "b"], [1, 2]], r"Row 1 of 'vec' is not a list of numbers"),
    ([None, None], r"holds no vectors"),
])
def test_bad_vectors_get_one_clear_message(values, message):
    with pytest.raises(InputError, match=message):
        read_vectors(frame(values), "vec")


def test_an_unknown_column_names_the_columns_there_are():
    with pytest.raises(InputError, match=r"No column named 'emb'.*Columns: title, vec"):
        read_vectors(frame([[1, 2]]), "emb")


def test_a_given_layout_is_kept_exactly_and_bad_coordinates_are_refused():
    table = pd.DataFrame({"x": [0.5, 1.25, None], "y": [2.0, -1.0, None]})
    coords, present = read_layout(table, "x", "y")
    assert coords[:2].tolist() == [[0.5, 2.0], [1.25, -1.0]] and present.tolist() == [True, True, False]
    with pytest.raises(InputError, match=r"1 rows have an 'x' or 'y' that is not a finite number \(row 2 first\)"):
        read_layout(pd.DataFrame({"x": [0.0, "oops"], "y": [1.0, 2.0]}), "x", "y")
    with pytest.raises(InputError, match="No column named 'u'"):
        read_layout(table, "u", "y")


def test_offered_columns_judges_cells_by_their_first_values():
    # What the upload form offers as vectors, a layout and neighbours.
    frame = pd.DataFrame({"emb": ["[0.1, 0.2, 0.3]", None, "[1, 2, 3]"], "one": ["[0.5]", "[0.4]", "[0.3]"],
                          "flags": ["[true, false]"] * 3, "text": ["a [b] c"] * 3, "year": [2001, 2002, 2003],
                          "nb": ['{"ids": [1], "distances": [0.5]}'] * 3, "arr": [np.ones(3)] * 3,
                          "ok": [True, False, True]})
    found = offered_columns(frame)
    assert found.vectors == ["emb", "arr"]
    assert found.numeric == ["year"] and found.neighbors == ["nb"]
    assert found.any and found.likely


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(("values", "message"), [
    (["[1, 2]", DEEP], r"^Row 2 of 'vec' is nested too deeply to be a list of numbers\.$"),
    (["[1, 2]", "[" + "9" * 400 + ", 1]"], r"^Row 2 of 'vec' holds a number too large for a vector"),
    ([[1.0, 2.0], [float("inf"), 1.0]], r"Row 2 of 'vec' holds NaN or infinite numbers"),
    (["[1, 2]", "[1e400, 1]"], r"Row 2 of 'vec' holds NaN or infinite numbers"),
])
def test_deep_or_overflowing_cells_are_one_line_never_a_crash(values, message):
    with pytest.raises(InputError, match=message):
        read_vectors(frame(values), "vec")


def test_deep_neighbours_are_one_line_never_a_crash():
    with pytest.raises(InputError, match=r"Row 1 of 'nb' is not neighbours as Embedding Atlas writes them"):
        read_neighbors(pd.DataFrame({"nb": [DEEP]}), "nb")


@pytest.mark.parametrize(("vector", "unit"), [
    ([1e200] * 3, [3 ** -0.5] * 3),  # its norm overflows float64: divided by it, it came out as zeros
    ([-1e308, 1e308], [-(2 ** -0.5), 2 ** -0.5]),
    ([1e-320] * 3, [3 ** -0.5] * 3),  # subnormal: its norm underflows to 0
    ([1e200, 1e-200, 1.0], [1.0, 0.0, 0.0]),
    ([3e-310, 4e-310], [0.6, 0.8]),
])
def test_huge_and_tiny_vectors_are_normalised_not_zeroed(vector, unit):
    given = read_vectors(frame([vector, [3.0, 4.0] + [0.0] * (len(vector) - 2)]), "vec")
    np.testing.assert_allclose(given.vectors[0], unit, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(given.vectors, axis=1), 1.0, rtol=1e-6)


def test_a_huge_npy_is_normalised_too(tmp_path):
    np.save(tmp_path / "v.npy", np.array([[1e200, 1e200], [1e-320, 0.0]]))
    given = read_vectors(frame([None, None]).drop(columns="vec"), "v.npy", base=tmp_path)
    np.testing.assert_allclose(given.vectors, [[2 ** -0.5, 2 ** -0.5], [1.0, 0.0]], rtol=1e-6)
