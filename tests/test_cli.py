"""The `explorer` command, run in-process (main) and once as the installed console script."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from explorer import ProjectionConfig, Workspace, build_map
from explorer.cli import EXIT_USER_ERROR, _ProgressBar, main

CONSOLE_SCRIPT = Path(sys.executable).parent / "explorer"
FORMULAS = ["=1+1", "+SUM(A1:A9)", "-cmd|' /C calc'!A0", "@risk", "plain text"]
PCA = ["--projection", "pca"]


@pytest.fixture
def papers_csv(tmp_path, papers_frame) -> Path:
    """The papers as a CSV file with a column of formula-like cells."""
    papers_frame["note"] = [FORMULAS[i % len(FORMULAS)] for i in range(len(papers_frame))]
    path = tmp_path / "papers.csv"
    papers_frame.to_csv(path, index=False)
    return path


@pytest.fixture
def built(papers_csv, capsys) -> str:
    """A map named "papers" built from papers_csv with the hashing model."""
    assert main(["build", str(papers_csv), "--model", "hashing", "--text-column", "title",
                 "--text-column", "abstract", *PCA]) == 0
    capsys.readouterr()
    return "papers"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code: int, err: str, *fragments: str) -> None:
    assert code == EXIT_USER_ERROR
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


# --- build ------------------------------------------------------------------------------------------


def test_build_with_repeated_text_columns(papers_csv, capsys, explorer_home):
    code, out, err = run(capsys, "build", str(papers_csv), "--model", "hashing",
                         "--text-column", "abstract", "--text-column", "title", *PCA)
    assert code == 0, err
    assert f"saved: {explorer_home / 'maps' / 'papers'}" in out
    assert "rows: 30  embedded: 30  from cache: 0  model: hashing-256" in out
    assert "seconds: load" in out
    manifest = Workspace().open("papers").manifest
    assert manifest["text_columns"] == ["abstract", "title"]
    assert manifest["projection"]["method_used"] == "pca"


def test_build_with_a_template_and_a_name(papers_csv, capsys):
    code, out, _ = run(capsys, "build", str(papers_csv), "--model", "hashing", "--name", "by template",
                       "--template", "{title}. {abstract}", *PCA)
    assert code == 0
    saved = Workspace().open("by template")
    assert saved.manifest["template"] == "{title}. {abstract}"
    assert saved.texts()[0].startswith(f"{saved.points.loc[0, 'title']}. ")


def test_build_prints_notes_and_uses_the_cache(papers_csv, capsys):
    papers_csv.write_text(papers_csv.read_text().replace(",", ";"))
    run(capsys, "build", str(papers_csv), "--model", "hashing", "--text-column", "title", *PCA)
    code, out, _ = run(capsys, "build", str(papers_csv), "--model", "hashing", "--text-column",
                       "title", "--name", "again", *PCA)
    assert code == 0
    assert "note: Columns are separated by semicolons." in out
    assert "from cache: 30" in out


def test_build_options_reach_the_projection(papers_csv, capsys):
    code, _, _ = run(capsys, "build", str(papers_csv), "--model", "hashing", "--seed", "7",
                     "--n-neighbors", "5", "--min-dist", "0.3", "--no-cache", "-q", *PCA)
    assert code == 0
    projection = Workspace().open("papers").manifest["projection"]
    assert (projection["seed"], projection["n_neighbors"], projection["min_dist"]) == (7, 5, 0.3)


def test_home_option(papers_csv, capsys, tmp_path):
    home = tmp_path / "elsewhere"
    code, _, _ = run(capsys, "--home", str(home), "build", str(papers_csv), "--model", "hashing", *PCA)
    assert code == 0
    assert Workspace(home).exists("papers") and not Workspace().exists("papers")


# --- search, list, export, rename, delete -----------------------------------------------------------


def test_search_prints_ranked_rows(built, capsys):
    code, out, _ = run(capsys, "search", built, "quantum particle energy", "-k", "4")
    assert code == 0
    rows = [line.split(None, 3) for line in out.splitlines()]
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4]
    scores = [float(r[1]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    points = Workspace().open(built).points.set_index("row_id")
    assert {points.loc[int(r[2]), "field"] for r in rows} == {"physics"}
    assert all(r[3].startswith(points.loc[int(r[2]), "title"]) for r in rows)


def test_search_threshold_with_no_result(built, capsys):
    code, out, _ = run(capsys, "search", built, "protein", "--threshold", "1.01")
    assert code == 0
    assert out.strip() == "no result above the threshold"


def test_list(built, capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    name, rows, model, created = out.strip().split("\t")
    assert (name, rows, model) == ("papers", "30 rows", "hashing-256")
    assert created.startswith("20")


def test_list_when_empty(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "no saved maps yet" in out


def test_export_csv_neutralises_formulas(built, capsys, tmp_path):
    target = tmp_path / "out.csv"
    code, out, _ = run(capsys, "export", built, "--format", "csv", "-o", str(target))
    assert code == 0 and out.strip() == f"wrote {target} (30 rows)"
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    exported = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig")
    assert exported["note"].tolist()[:5] == ["'=1+1", "'+SUM(A1:A9)", "'-cmd|' /C calc'!A0", "'@risk",
                                             "plain text"]
    original = Workspace().open(built).points
    assert exported["title"].tolist() == original["title"].tolist()
    assert exported["x"].tolist() == pytest.approx(original["x"].tolist())


def test_export_csv_neutralises_column_names(tmp_path, capsys, workspace, fake_embedder):
    frame = pd.DataFrame({"title": ["one two", "three four"], "=HYPERLINK(1)": ["a", "b"]})
    build_map(frame, name="m", model=fake_embedder, workspace=workspace,
              projection=ProjectionConfig(method="pca"))
    target = tmp_path / "m.csv"
    assert run(capsys, "export", "m", "-o", str(target))[0] == 0
    header = target.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert "'=HYPERLINK(1)" in header and "title" in header


def test_export_parquet_is_exact(built, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "export", built, "--format", "parquet")
    assert code == 0 and "wrote papers.parquet" in out
    exported = pd.read_parquet(tmp_path / "papers.parquet")
    assert exported["note"].tolist()[:5] == FORMULAS
    pd.testing.assert_frame_equal(exported, Workspace().open(built).points)


def test_rename_and_delete(built, capsys):
    code, out, _ = run(capsys, "rename", built, "new/name")
    assert code == 0 and out.strip() == "renamed to new_name"
    assert [i.name for i in Workspace().list()] == ["new_name"]
    code, out, _ = run(capsys, "delete", "new_name")
    assert code == 0 and out.strip() == "deleted new_name"
    assert Workspace().list() == []


# --- names from the data reach the terminal as text ------------------------------------------------------

# Colour, a window title (OSC ... BEL), a bidi override and a newline, in column, map and file names.
HOSTILE = "\x1b[31mred\x1b]0;title\x07\u202eevil\nfake line"
# What a terminal obeys instead of showing: C0 and C1 controls (the newline only between lines) and bidi controls.
UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def test_names_from_the_data_are_printed_through_one_filter(tmp_path, capsys, papers_frame):
    frame = papers_frame.rename(columns={"title": f"title{HOSTILE}"})
    frame[f"emb{HOSTILE}"] = [json.dumps([1.0 + i, 2.0, (i % 3) * 1.0]) for i in range(len(frame))]
    frame[f"title{HOSTILE}"] = [f"{HOSTILE} {t}" for t in frame[f"title{HOSTILE}"]]
    source = tmp_path / "hostile.csv"
    frame.to_csv(source, index=False)
    runs = [
        run(capsys, "build", str(source), "--vector", f"emb{HOSTILE}", "--name", f"mine{HOSTILE}", *PCA, "-q"),
        run(capsys, "build", str(source), "--model", "hashing", "--text-column", f"title{HOSTILE}",
            "--name", HOSTILE, *PCA, "-q"),
        run(capsys, "list"),
        run(capsys, "search", "31mred_0_title_evil_fake line", "protein"),
        run(capsys, "export", "31mred_0_title_evil_fake line", "-o", str(tmp_path / f"out{HOSTILE}.csv")),
        run(capsys, "rename", "31mred_0_title_evil_fake line", f"renamed{HOSTILE}"),
        run(capsys, "delete", f"renamed{HOSTILE}"),
    ]
    for code, out, err in runs:
        assert code == 0, err
        assert not UNPRINTABLE.search(out + err), out + err
    listed = runs[2][1].splitlines()
    assert len(listed) == 2 and all(line.count("\t") == 3 for line in listed), "one line a map, four fields"
    assert "\\x1b[31m" in runs[0][1] + runs[0][2], "shown escaped, so the user sees what is there"


def test_the_progress_bar_shows_messages_through_the_filter():
    stream = io.StringIO()
    _ProgressBar(stream)("embed", 0.5, f"Kept your vectors from emb{HOSTILE}")
    drawn = stream.getvalue()
    assert drawn.endswith("\x1b[K") and drawn.count("\x1b") == 1, "only the bar's own erase-line code"
    assert not UNPRINTABLE.search(drawn.replace("\r", "").removesuffix("\x1b[K")), drawn


def test_a_map_folder_named_with_escape_codes_is_listed_escaped(built, capsys, explorer_home):
    os.rename(explorer_home / "maps" / built, explorer_home / "maps" / f"copied{HOSTILE}")
    code, out, err = run(capsys, "list")
    assert code == 0 and not UNPRINTABLE.search(out + err), out
    assert out.splitlines()[0].startswith("copied\\x1b[31mred\\x1b]0;title\\x07\\u202eevil\\nfake line\t30 rows\t")


# --- every error is one line and exit status 2 ---------------------------------------------------------


def test_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "build", str(tmp_path / "nope.csv"), "--model", "hashing")
    assert_one_error_line(code, err, "nope.csv: no such file")


def test_unsupported_format(capsys, tmp_path):
    path = tmp_path / "paper.docx"
    path.write_bytes(b"PK\x03\x04 not a table")
    code, _, err = run(capsys, "build", str(path), "--model", "hashing")
    assert_one_error_line(code, err, "unsupported file type '.docx'")


def test_no_usable_text_column(capsys, tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    code, _, err = run(capsys, "build", str(path), "--model", "hashing")
    assert_one_error_line(code, err, "No text column was found")


def test_unknown_text_column(papers_csv, capsys):
    code, _, err = run(capsys, "build", str(papers_csv), "--model", "hashing", "--text-column", "body")
    assert_one_error_line(code, err, "No column named 'body'")


def test_every_row_empty(capsys, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("title,year\n,1\n ,2\n")
    code, _, err = run(capsys, "build", str(path), "--model", "hashing", "--text-column", "title")
    assert_one_error_line(code, err, "Every row's text is empty")
    assert Workspace().list() == []


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "ghost", "query"],
        ["export", "ghost"],
        ["rename", "ghost", "other"],
        ["delete", "ghost"],
    ],
)
def test_unknown_map(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert_one_error_line(code, err, "No saved map named 'ghost'")


def test_empty_query(built, capsys):
    code, _, err = run(capsys, "search", built, "   ")
    assert_one_error_line(code, err, "query is empty")


def test_bad_model_name(papers_csv, capsys):
    code, _, err = run(capsys, "build", str(papers_csv), "--model", "hashing-big", *PCA)
    assert_one_error_line(code, err, "'hashing-big' is not a hashing model")


@pytest.mark.slow  # imports torch and sentence-transformers
def test_model_that_cannot_be_loaded(papers_csv, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = run(capsys, "build", str(papers_csv), "--model", "no-such-org/no-such-model", *PCA)
    assert_one_error_line(code, err, "Cannot load the model 'no-such-org/no-such-model'")
    assert Workspace().list() == []


def test_unwritable_export_target(built, capsys, tmp_path):
    code, _, err = run(capsys, "export", built, "-o", str(tmp_path / "no" / "such" / "dir.csv"))
    assert_one_error_line(code, err, "No such file or directory")


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["export", "m", "--format", "xml"])
    assert caught.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


# --- the installed console script, for real ---------------------------------------------------------


def test_console_script(papers_csv, tmp_path):
    env = {**os.environ, "EXPLORER_HOME": str(tmp_path / "script-home"), "HF_HUB_OFFLINE": "1"}

    def script(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(CONSOLE_SCRIPT), *argv], capture_output=True, text=True, env=env,
                              timeout=120)

    built = script("build", str(papers_csv), "--model", "hashing", *PCA)
    assert built.returncode == 0, built.stderr
    assert "rows: 30  embedded: 30" in built.stdout
    assert built.stderr == "", "no progress bar when stderr is not a terminal"

    failed = script("search", "ghost", "protein")
    assert failed.returncode == EXIT_USER_ERROR
    assert failed.stdout == ""
    assert failed.stderr.splitlines() == [failed.stderr.strip()]
    assert failed.stderr.startswith("error: No saved map named 'ghost'. Saved maps: papers.")


# --- the progress bar -------------------------------------------------------------------------------


def test_progress_bar_draws_one_line_per_stage():
    stream = io.StringIO()
    bar = _ProgressBar(stream=stream, width=10)
    bar("load", 0.0, "Reading")
    bar("load", 1.0, "done")
    bar("embed", 0.5, "half")
    bar.close()
    lines = stream.getvalue().split("\n")
    assert len(lines) == 3 and lines[2] == ""
    assert lines[0].rsplit("\r", 1)[1].startswith("load    [##########] 100% done")
    assert "embed   [#####-----]  50% half" in lines[1]


def test_manifest_is_json_on_disk(built):
    manifest = json.loads((Workspace().map_path(built) / "manifest.json").read_text())
    assert manifest["source"]["name"] == "papers.csv"


def test_device_reaches_every_transformer_the_command_loads(monkeypatch, capsys):
    import os

    from explorer.embedders.transformer import DEVICE_ENV, SentenceTransformerEmbedder, resolve_device

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert main(["refine", "--all", "--device", "cpu"]) == 0
    assert "no refinement pending" in capsys.readouterr().out
    # Through the environment, so a refinement keeps the model and length its build recorded.
    assert os.environ[DEVICE_ENV] == "cpu" and resolve_device(None) == "cpu"
    assert SentenceTransformerEmbedder(max_seq_length=128).seq_length == 128


# --- query ------------------------------------------------------------------------------------------


def test_query_prints_the_matching_rows_and_writes_csv(built, capsys, tmp_path):
    points = Workspace().open(built).points
    expected = points[points["year"] >= 2005]
    code, out, _ = run(capsys, "query", built, "year >= 2005", "--limit", "2")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["row_id", "title", "year"]
    assert lines[1].split()[0] == str(expected["row_id"].iloc[0])
    assert lines[-1] == f"{len(expected):,} of {len(points):,} rows match (the first 2 shown: --limit)"
    target = tmp_path / "q.csv"
    code, out, _ = run(capsys, "query", built, "year >= 2005", "--csv", str(target))
    written = pd.read_csv(target, encoding="utf-8-sig")
    assert code == 0 and written["row_id"].tolist() == expected["row_id"].tolist()
    assert not written["note"].astype(str).str.startswith(("=", "+", "@")).any(), "formulas are neutralised"


def test_query_refuses_bad_sql_in_one_line(built, capsys):
    code, _, err = run(capsys, "query", built, '"nope\x1b[31m" > 1')
    assert_one_error_line(code, err, "nope\\x1b[31m", "not found")
    code, _, err = run(capsys, "query", built, "1=1; COPY points TO '/tmp/x.csv'")
    assert_one_error_line(code, err, "is not valid SQL")
