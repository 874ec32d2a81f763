"""BibTeX and RIS: read through load_table (one row per entry), written back from a map or a selection."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from explorer import InputError, ProjectionConfig, Workspace, build_map, load_table
from explorer.bibliography import latex_to_unicode, to_bibtex, to_ris
from explorer.cli import main
from explorer.export import export_points, to_bibtex_bytes, to_ris_bytes
from explorer.texts import compose_texts

PCA = ProjectionConfig(method="pca")

# A reference manager's export, as people have them: macros, comments, accents in three spellings,
# protected capitals, a DOI as a URL, and one entry whose closing brace is missing in the middle.
BIBTEX = r"""% Exported from a reference manager
@string{jmlr = "Journal of Machine Learning Research"}
@comment{Entries below were checked by hand.}

@article{goedel1931,
  author    = {G{\"o}del, Kurt and Caf\'e, Ren\'{e}},
  title     = {{\"U}ber formal unentscheidbare S{\"a}tze --- Teil {I}},
  journal   = jmlr,
  year      = 1931,
  doi       = {https://doi.org/10.1007/BF01700692},
  keywords  = {logic, incompleteness},
  abstract  = {We show that {\em every} consistent system is incomplete; 5% of it \& more.}
}

@inproceedings{broken2020,
  author = {Smith, John},
  title  = {A title whose brace never closes,
  year   = {2020}

@book{knuth1984,
  author    = "Donald E. Knuth",
  title     = "The {\TeX}book",
  publisher = {Addison-Wesley},
  year      = {1984},
  month     = jan
}

Free text between entries is a comment too.

@InProceedings{vaswani2017,
  Author    = {Vaswani, Ashish and Shazeer, Noam and {Google Brain}},
  Title     = {Attention Is All You Need},
  BookTitle = {Advances in Neural Information Processing Systems},
  Year      = {2017},
  Keywords  = {transformers; attention},
  Abstract  = {The dominant sequence transduction models are based on recurrent networks
               with $O(n^2)$ cost and na\"{\i}ve attention.},
}
"""

RIS = """Provider: A database
Content: text/plain; charset="UTF-8"

TY  - JOUR
ID  - smith2020
TI  - Protein folding in the cell
AU  - Smith, John
AU  - Müller, Jörg
PY  - 2020/05/01/
T2  - Journal of Biology
DO  - https://doi.org/10.1000/xyz123
KW  - proteins
KW  - folding
AB  - Proteins fold into their native shape.
  The abstract goes on on a second line.
ER  -

T Y - JOUR
TI  - An entry whose TY line is broken
AU  - Nobody, A.
ER  -

TY - CPAPER
TI - Tags with one space, from an odd exporter
AU - Doe, Jane
PY - 2019
ER -

TY  - BOOK
TI  - A book whose ER is missing
PY  - 2001
"""


def test_bibtex_one_row_per_entry_in_unicode():
    table = load_table(BIBTEX.encode(), name="refs.bib")
    frame = table.frame
    assert table.format == "bibtex"
    assert list(frame.columns) == ["title", "abstract", "authors", "year", "venue", "doi", "keywords", "key",
                                   "entry_type", "bibtex"]
    assert frame["key"].tolist() == ["goedel1931", "knuth1984", "vaswani2017"]
    assert frame["title"].tolist() == ["Über formal unentscheidbare Sätze — Teil I", "The TeXbook",
                                       "Attention Is All You Need"]
    first = frame.iloc[0]
    assert first["authors"] == "Gödel, Kurt; Café, René"
    assert first["venue"] == "Journal of Machine Learning Research", "the @string macro is resolved"
    assert first["doi"] == "10.1007/BF01700692"
    assert first["keywords"] == "logic; incompleteness"
    assert first["abstract"] == "We show that every consistent system is incomplete; 5% of it & more."
    third = frame.iloc[2]
    assert third["authors"] == "Vaswani, Ashish; Shazeer, Noam; Google Brain"
    assert third["venue"] == "Advances in Neural Information Processing Systems"
    assert third["entry_type"] == "inproceedings"
    assert third["abstract"].endswith("networks with O(n^2) cost and naïve attention.")
    assert frame["year"].tolist() == [1931, 1984, 2017] and str(frame["year"].dtype) == "Int64"
    assert pd.isna(frame.loc[1, "venue"]) and pd.isna(frame.loc[1, "abstract"])


def test_a_malformed_bibtex_entry_is_skipped_with_its_line_and_the_rest_kept():
    table = load_table(BIBTEX.encode(), name="refs.bib")
    line = BIBTEX.splitlines().index("@inproceedings{broken2020,") + 1
    assert table.skipped_lines == [line]
    assert any(f"Skipped 1 malformed BibTeX entry (line {line}: Unexpected block start: `@book`." in note
               and "after it were kept" in note for note in table.notes), table.notes
    assert "broken2020" not in table.frame["key"].tolist()
    assert "knuth1984" in table.frame["key"].tolist(), "the entry right after the broken one is kept"


def test_the_default_text_is_title_and_abstract():
    table = load_table(BIBTEX.encode(), name="refs.bib")
    assert table.text_columns == ["title", "abstract"]
    texts = compose_texts(table.frame, columns=table.text_columns).texts
    assert texts[0] == ("Über formal unentscheidbare Sätze — Teil I. We show that every consistent system is "
                        "incomplete; 5% of it & more.")
    assert texts[1] == "The TeXbook", "an entry without an abstract is embedded by its title"


def test_a_bib_file_builds_a_map_of_title_and_abstract(tmp_path, workspace, capsys):
    from explorer.cli import main

    path = tmp_path / "refs.bib"
    path.write_text(BIBTEX, encoding="utf-8")
    assert main(["build", str(path), "--model", "hashing", "--projection", "pca", "--name", "refs", "-q"]) == 0
    manifest = workspace.read_manifest("refs")
    assert manifest["text_columns"] == ["title", "abstract"], "not the raw entry text"


@pytest.mark.parametrize(("latex", "text"), [
    (r"{\"o}", "ö"), (r"\'e", "é"), (r"Ren\'{e}", "René"), ("a---b", "a—b"), ("pages 1--9", "pages 1–9"),
    (r"{{Protected}} {BERT}", "Protected BERT"), (r"na\"{\i}ve", "naïve"), (r"\c{c}a \ss{} \o", "ça ß ø"),
    (r"\emph{every} \textbf{bold}", "every bold"), (r"50\% \& 5% more", "50% & 5% more"),
    (r"$\alpha$-helix", "α-helix"), (r"\LaTeX{} and \TeX", "LaTeX and TeX"), ("``quoted''", "\u201cquoted\u201d"),
    ("spread\n   over\tlines", "spread over lines"), (r"\url{https://a.org/x_y}", "https://a.org/x_y"),
])
def test_latex_to_unicode(latex, text):
    assert latex_to_unicode(latex) == text


def test_a_huge_bibtex_field_is_read_in_seconds():
    abstract = "{" + r"Caf\'e $x_1$ and {\em more} words " * 40_000 + "}"
    table = load_table(f"@article{{big, title = {{Big}}, abstract = {abstract}}}\n".encode(), name="big.bib")
    assert table.frame.loc[0, "abstract"].startswith("Café x_1 and more words Café")


def test_ris_one_row_per_entry():
    table = load_table(RIS.encode(), name="refs.ris")
    frame = table.frame
    assert table.format == "ris" and table.text_columns == ["title", "abstract"]
    assert frame["title"].tolist() == ["Protein folding in the cell", "Tags with one space, from an odd exporter",
                                       "A book whose ER is missing"]
    first = frame.iloc[0]
    assert first["authors"] == "Smith, John; Müller, Jörg"
    assert first["abstract"] == "Proteins fold into their native shape. The abstract goes on on a second line."
    assert (first["year"], first["venue"], first["doi"]) == (2020, "Journal of Biology", "10.1000/xyz123")
    assert (first["keywords"], first["key"], first["entry_type"]) == ("proteins; folding", "smith2020", "JOUR")
    assert frame["year"].tolist() == [2020, 2019, 2001]
    assert frame.loc[0, "ris"].startswith("TY  - JOUR\nID  - smith2020") and frame.loc[0, "ris"].endswith("ER  -")


def test_a_malformed_ris_entry_is_skipped_with_its_line_and_the_rest_kept():
    table = load_table(RIS.encode(), name="refs.ris")
    lines = RIS.splitlines()
    broken = lines.index("TI  - An entry whose TY line is broken") + 1
    unended = lines.index("TY  - BOOK") + 1
    assert table.skipped_lines == [broken]
    assert any(f"Skipped 1 malformed RIS entry (line {broken}" in note for note in table.notes), table.notes
    assert any(f"(line {unended}) had no ER line" in note for note in table.notes), table.notes


def test_ris_in_a_txt_file_is_read_as_ris():
    table = load_table(RIS.split("\n", 3)[3].encode(), name="export.txt")
    assert table.format == "ris" and len(table.frame) == 3
    assert "export.txt is a RIS bibliography: it was read as one." in table.notes


@pytest.mark.parametrize(("name", "data", "message"), [
    ("empty.bib", b"% only a comment\n@comment{nothing}\n", "no BibTeX entry could be read."),
    ("broken.bib", b"@article{a, title = {never closed\n", "no BibTeX entry could be read (1 malformed, line 1)."),
    ("notes.ris", b"Some text\nthat is not RIS\n", "no RIS entry could be read"),
])
def test_a_bibliography_without_entries_is_one_clear_error(name, data, message):
    with pytest.raises(InputError, match=None) as error:
        load_table(data, name=name)
    assert message in str(error.value) and "\n" not in str(error.value)


RUSSIAN = [("Машинное обучение для распознавания изображений", "Иванов, Пётр",
            "Предварительная обработка данных и извлечение признаков занимает много времени."),
           ("Обработка естественного языка с помощью нейронных сетей", "Смирнова, Анна",
            "Исследователи из Москвы предложили новый метод автоматического реферирования.")]


def test_a_bibliography_in_a_legacy_encoding_is_decoded():
    text = "\n".join(f"@article{{ru{i}, title = {{{t}}}, author = {{{a}}}, abstract = {{{b}}}, year = 2020}}"
                     for i, (t, a, b) in enumerate(RUSSIAN))
    table = load_table(text.encode("cp1251"), name="refs.bib")
    assert table.encoding == "cp1251"
    assert table.frame[["title", "authors", "abstract"]].values.tolist() == [list(r) for r in RUSSIAN]


# --- out ------------------------------------------------------------------------------------------------


def test_imported_entries_are_exported_as_they_were():
    table = load_table(BIBTEX.encode(), name="refs.bib")
    written = to_bibtex(table.frame)
    assert written.count('@string{jmlr = "Journal of Machine Learning Research"}') == 1, "macros travel along"
    goedel = BIBTEX[BIBTEX.index("@article{goedel1931"):BIBTEX.index("@inproceedings{broken2020")].strip()
    assert goedel in written
    again = load_table(written.encode(), name="again.bib")
    pd.testing.assert_frame_equal(again.frame.drop(columns="bibtex"), table.frame.drop(columns="bibtex"))
    assert again.notes == []


def test_ris_entries_are_exported_as_they_were():
    table = load_table(RIS.encode(), name="refs.ris")
    written = to_ris(table.frame)
    assert "AB  - Proteins fold into their native shape.\n  The abstract goes on on a second line." in written
    again = load_table(written.encode(), name="again.ris")
    pd.testing.assert_frame_equal(again.frame.drop(columns="ris"), table.frame.drop(columns="ris"))


HARD_TITLES = ["Plain title", "50% of {braces} & $money$ #1 in_c ~ ^ back\\slash -- dash", "Über naïve café — Ωmega",
               "Line\nbreak in a title", "ER  - not an end"]


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "title": HARD_TITLES,
        "Authors": ["Gödel, Kurt; Smith, J.", "Barnes and Noble Inc.; Smith, J.", None, "Doe, Jane and Roe, R.",
                    "Roe, R."],
        "year": [1931, 1931, 2001, None, 2020],
        "doi": ["https://doi.org/10.1/a_b--c", "10.2/x", None, None, "10.5/{odd}"],
        "abstract": ["An abstract.", None, "Long\n\ntext", "x", "y"],
        "other": ["ignored"] * 5,
    })


@pytest.mark.parametrize("fmt", ["bib", "ris"])
def test_entries_built_from_columns_read_back_to_the_same_fields(fmt):
    frame = _table()
    written = (to_bibtex if fmt == "bib" else to_ris)(frame)
    again = load_table(written.encode(), name=f"out.{fmt}")
    assert again.notes == [] and len(again.frame) == len(frame)
    assert again.frame["title"].tolist() == [" ".join(t.split()) for t in HARD_TITLES]
    assert again.frame["year"].tolist() == [1931, 1931, 2001, pd.NA, 2020]
    assert again.frame["doi"].tolist() == ["10.1/a_b--c", "10.2/x", pd.NA, pd.NA,
                                           "10.5/%7Bodd%7D" if fmt == "bib" else "10.5/{odd}"]
    assert again.frame["authors"].tolist() == ["Gödel, Kurt; Smith, J.", "Barnes and Noble Inc.; Smith, J.", pd.NA,
                                               "Doe, Jane; Roe, R.", "Roe, R."]
    assert again.frame["abstract"].tolist()[2] == "Long text"


def test_made_up_keys_are_the_first_author_and_year_and_unique():
    frame = pd.DataFrame({"title": ["One", "Two", "Three", "Fourth paper"],
                          "authors": ["Gödel, Kurt", "Kurt Gödel", "Gödel, K.", None], "year": [1931] * 4})
    keys = load_table(to_bibtex(frame).encode(), name="k.bib").frame["key"].tolist()
    assert keys == ["godel1931", "godel1931a", "godel1931b", "fourth1931"]


def test_a_table_without_titles_cannot_be_written_as_a_bibliography():
    with pytest.raises(InputError, match="no title column"):
        to_bibtex(pd.DataFrame({"x": [1]}))


def test_a_map_and_a_selection_export_as_bibtex_and_ris(workspace):
    saved = build_map(BIBTEX.encode(), source_name="refs.bib", model="hashing", projection=PCA,
                      workspace=workspace).saved
    whole = to_bibtex_bytes(export_points(saved)).decode()
    assert [whole.count(f"@{t}{{{k},") for t, k in [("article", "goedel1931"), ("book", "knuth1984"),
                                                      ("InProceedings", "vaswani2017")]] == [1, 1, 1]
    chosen = saved.points["row_id"].iloc[[2]].tolist()
    selection = load_table(to_bibtex_bytes(export_points(saved, chosen)), name="s.bib").frame
    assert selection["key"].tolist() == ["vaswani2017"]
    ris = load_table(to_ris_bytes(export_points(saved)), name="m.ris").frame
    assert ris["title"].tolist() == saved.points["title"].tolist()
    assert ris["entry_type"].tolist() == ["JOUR", "BOOK", "CPAPER"]


def test_cli_builds_a_bib_file_and_exports_bib_and_ris(tmp_path, capsys):
    source = tmp_path / "refs.bib"
    source.write_text(BIBTEX, encoding="utf-8")
    assert main(["build", str(source), "--model", "hashing", "--projection", "pca", "-q"]) == 0
    out = capsys.readouterr().out
    assert "rows: 3" in out and "note: Skipped 1 malformed BibTeX entry" in out
    for fmt in ("bib", "ris"):
        target = tmp_path / f"out.{fmt}"
        assert main(["export", "refs", "--format", fmt, "-o", str(target)]) == 0
        assert capsys.readouterr().out.strip() == f"wrote {target} (3 rows)"
        back = load_table(target)
        assert back.frame["title"].tolist() == Workspace().open("refs").points["title"].tolist()
        assert back.frame["doi"].tolist()[0] == "10.1007/BF01700692"


def test_the_app_uploads_a_bib_file_with_title_and_abstract_chosen(monkeypatch, workspace):
    from streamlit.testing.v1 import AppTest
    from uploads import send_file

    monkeypatch.setenv("EXPLORER_DEFAULT_MODEL", "hashing")
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.run()
    send_file(at, "refs.bib", BIBTEX.encode())
    assert not at.exception, at.exception
    assert at.multiselect(key="upload_columns").value == ["title", "abstract"]


def test_each_entry_keeps_exactly_the_macros_it_uses_among_thousands():
    from hostile_inputs import bib_many_macros

    frame = load_table(bib_many_macros(), name="macros.bib").frame
    assert len(frame) == 1_000
    assert frame.loc[7, "bibtex"].splitlines() == [
        '@string{jn0007 = "Journal of Field 0007"}', '@string{jn0008 = "Journal of Field 0008"}',
        '@article{key0007, title = {Protein folding 7}, journal = jn0007 # ", " # jn0008, year = 2007}']
