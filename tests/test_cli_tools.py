"""`explorer add`, `duplicates`, `trust` and `app`: growing maps, near-duplicates, trust, the web app."""

from __future__ import annotations

import subprocess

import pandas as pd

from explorer import ProjectionConfig, Workspace, build_map
from explorer.cli import main

PCA = ProjectionConfig(method="pca")


def test_add_puts_a_files_rows_on_the_map(papers_frame, workspace, tmp_path, capsys):
    build_map(papers_frame, name="papers", model="hashing", projection=PCA, workspace=workspace)
    more = tmp_path / "more.csv"
    papers_frame.head(4).assign(title=lambda f: f["title"] + " (new)").to_csv(more, index=False)

    assert main(["add", "papers", str(more)]) == 0

    assert "added 4 rows to papers as batch 1" in capsys.readouterr().out
    assert len(Workspace().open("papers").points) == 34
    assert main(["add", "papers", str(tmp_path / "missing.csv")]) == 2


def test_duplicates_lists_groups_with_their_row_ids(papers_frame, workspace, capsys):
    table = pd.concat([papers_frame, papers_frame.iloc[[3]]], ignore_index=True)
    build_map(table, name="dups", model="hashing", projection=PCA, workspace=workspace)

    assert main(["duplicates", "dups", "--threshold", "0.999"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("1 groups of rows at cosine >= 0.999 (2 rows, exact)")
    assert out[1].split()[:2] == ["2", "3,30"]


def test_trust_stores_the_column_and_lists_the_least_trusted(papers_frame, workspace, capsys):
    build_map(papers_frame, name="papers", model="hashing", projection=PCA, workspace=workspace, clusters=None)

    assert main(["trust", "papers", "--limit", "3"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Trust ") and out[1].startswith("least trusted")
    assert len(out) == 5 and "trust" in Workspace().open("papers").points


def test_app_listens_on_this_machine_only_unless_told(papers_frame, workspace, monkeypatch, capsys):
    build_map(papers_frame, name="my papers", model="hashing", projection=PCA, workspace=workspace)
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda command, cwd=None: calls.append(command) or 0)

    assert main(["app", "my papers"]) == 0
    assert calls[-1][calls[-1].index("--server.address") + 1] == "127.0.0.1"
    captured = capsys.readouterr()
    assert "open http://localhost:8501/?map=my+papers" in captured.out and "listening on" not in captured.err

    assert main(["app", "--host", "0.0.0.0", "--port", "8600"]) == 0
    assert calls[-1][calls[-1].index("--server.address") + 1] == "0.0.0.0"
    assert "anyone who can reach this machine on port 8600" in capsys.readouterr().err

    assert main(["app", "no such map"]) == 2
    assert "No saved map named 'no such map'" in capsys.readouterr().err
