"""The ray engine (issue 9): the local engine's map on a local Ray instance, every row once despite a dead worker."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.manifold import trustworthiness
from sklearn.neighbors import KNeighborsClassifier

from explorer import HashingEmbedder, ProjectionConfig, Workspace, build_map

REPO = Path(__file__).resolve().parents[1]
ARXIV = REPO.parent / "shared" / "data" / "arxiv_cs" / "arxiv_cs10_2500.csv"
RAY_CPUS = 2
# Ray Data's context copies itself with fields it has deprecated; nothing this project sets.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


def titles_csv(path: Path, rows: int) -> Path:
    """``rows`` short texts: arXiv titles when the shared data is there, else generated sentences."""
    if ARXIV.is_file():
        frame = pd.read_csv(ARXIV, dtype={"arxiv_id": str})[["arxiv_id", "title", "primary_category"]]
        frame = frame.head(rows)
    else:
        subjects = ["Graph networks", "Protein folding", "Market prices", "Quantum fields", "Robot arms",
                    "Image segmentation", "Language models", "Game theory", "Coding theory", "Ray tracing"]
        frame = pd.DataFrame({
            "title": [f"{subjects[i % 10]} under constraint {i % 37}, case {i}" for i in range(rows)],
            "primary_category": [f"c{i % 10}" for i in range(rows)],
        })
    assert len(frame) == rows
    frame.to_csv(path, index=False)
    return path


def run_python(code: str, *, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_import_and_local_build_never_import_ray(tmp_path, papers_frame):
    csv = tmp_path / "papers.csv"
    papers_frame.to_csv(csv, index=False)
    code = f"""
import json, sys
import explorer
after_import = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
from explorer.cli import main
status = main(["--home", {str(tmp_path / "home")!r}, "build", {str(csv)!r}, "--model", "hashing",
               "--projection", "pca", "-q"])
after_build = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
print(json.dumps({{"status": status, "after_import": after_import, "after_build": after_build}}))
"""
    done = run_python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"status": 0, "after_import": [], "after_build": []}
    assert Workspace(tmp_path / "home").exists("papers")  # the build did run


def test_ray_only_options_need_the_ray_engine(tmp_path, papers_frame, capsys):
    from explorer.cli import main

    csv = tmp_path / "papers.csv"
    papers_frame.to_csv(csv, index=False)
    assert main(["build", str(csv), "--model", "hashing", "--num-workers", "2"]) == 2
    assert capsys.readouterr().err.strip() == "error: --num-workers only apply with --engine ray."


def test_an_unreachable_cluster_fails_in_seconds_with_one_line(tmp_path, papers_frame, capsys):
    pytest.importorskip("ray")
    from explorer.cli import main

    csv = tmp_path / "papers.csv"
    papers_frame.to_csv(csv, index=False)
    # Port 1 on this machine refuses at once; ray.init alone would retry for minutes.
    assert main(["build", str(csv), "--engine", "ray", "--address", "127.0.0.1:1", "--model", "hashing"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Cannot reach the Ray cluster at 127.0.0.1:1: ") and "\n" not in err


def test_shards_with_a_repeated_missing_or_unknown_row_are_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("ray")
    from explorer.engine_ray import _write_shard, read_shards
    from explorer.errors import EngineError

    def shard(name: str, ids: list[int]) -> None:
        vectors = np.repeat(np.asarray(ids, dtype=np.float32)[:, None], 3, axis=1)
        embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 3)
        _write_shard(pa.table({"row_id": pa.array(ids, pa.int64()), "embedding": embedding}), tmp_path / name)

    row_ids = np.array([1, 4, 7, 10])
    shard("part-000000.parquet", [7, 1])
    shard("part-000001.parquet", [10, 4])
    np.testing.assert_array_equal(read_shards(tmp_path, row_ids)[:, 0], [1, 4, 7, 10])  # put back in row order
    with pytest.raises(EngineError, match="1 missing, 0 repeated, 0 unknown"):
        read_shards(tmp_path, np.array([1, 4, 7, 10, 13]))
    shard("part-000002.parquet", [4, 11])
    with pytest.raises(EngineError, match="0 missing, 1 repeated, 1 unknown"):
        read_shards(tmp_path, row_ids)


@pytest.mark.slow
def test_cli_starts_a_local_ray_instance_and_prints_only_its_own_lines(tmp_path):
    pytest.importorskip("ray")
    csv = titles_csv(tmp_path / "titles.csv", 300)
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-m", "explorer.cli", "--home", str(home), "build", str(csv), "--engine", "ray",
         "--num-workers", "2", "--model", "hashing", "--projection", "pca", "--name", "on-ray"],
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # Ray's start-up lines, progress bars and INFO logs stay out of the terminal.
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == f"saved: {home / 'maps' / 'on-ray'}"
    assert lines[1].startswith("rows: 300  embedded: 300  from cache: 0  model: hashing-256")
    saved = Workspace(home).open("on-ray")
    assert saved.manifest["engine"]["name"] == "ray"
    assert saved.manifest["engine"]["address"] == "local"
    assert saved.points["row_id"].tolist() == list(range(300))


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance limited to 2 CPUs for the module's builds."""
    ray = pytest.importorskip("ray")
    from explorer.engine_ray import init_local_ray

    init_local_ray(num_cpus=RAY_CPUS, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_build_of_2000_titles_equals_the_local_build(ray_instance, tmp_path, workspace):
    from explorer.engine_ray import RayConfig, build_map_ray

    csv = titles_csv(tmp_path / "titles.csv", 2000)
    # The model named: without one the local engine may pick its fast (TF-IDF) mode by the data's size.
    local = build_map(csv, name="local", model="all-MiniLM-L6-v2", workspace=workspace, use_cache=False).saved
    reports: list[tuple[str, float, str]] = []
    remote = build_map_ray(csv, name="ray", workspace=workspace, ray_config=RayConfig(num_workers=2, batch_rows=250),
                           progress=lambda stage, fraction, message="": reports.append((stage, fraction, message)))
    remote = workspace.open(remote.saved.name)  # what the app would open

    assert remote.points["row_id"].tolist() == local.points["row_id"].tolist() == list(range(2000))
    pd.testing.assert_frame_equal(remote.points.drop(columns=["x", "y"]), local.points.drop(columns=["x", "y"]))
    assert remote.embeddings.shape == local.embeddings.shape == (2000, 384)
    assert np.abs(remote.embeddings - local.embeddings).max() < 1e-5
    same_fields = ("rows", "embedded_rows", "text_columns", "template", "model_id", "model_hash", "dimension", "source")
    assert {k: remote.manifest[k] for k in same_fields} == {k: local.manifest[k] for k in same_fields}
    assert set(local.manifest) <= set(remote.manifest)
    # 2,000 rows is below the 50,000-row sample: UMAP is fitted on every row, as the local engine does.
    assert remote.manifest["projection"]["method_used"] == "umap"
    assert remote.manifest["projection"]["fit_rows"] == 2000

    coords = remote.coords
    assert np.isfinite(coords).all() and (coords.std(axis=0) > 0.5).all()
    assert trustworthiness(remote.embeddings, coords, n_neighbors=10) > 0.85

    embed = [(fraction, message) for stage, fraction, message in reports if stage == "embed"]
    fractions = [fraction for fraction, _ in embed]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert embed[-1][1] == "2,000 / 2,000 rows embedded on 2 worker(s)"
    assert len(embed) >= 1 + 2000 // 250  # one report per task, as its rows come back


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_retried_and_every_row_comes_back_once(ray_instance, tmp_path, monkeypatch):
    from explorer.engine_ray import CRASH_ENV, RayConfig, embed_on_ray

    texts = [f"record {i} on topic {i % 7} with detail {i % 11}" for i in range(3000)]
    row_ids = np.arange(3000, dtype=np.int64) * 3 + 1  # ids that are not positions
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ENV, f"3:{marker}")  # one actor dies on its third batch, once
    shards = tmp_path / "shards"
    vectors = embed_on_ray(texts, row_ids, model="hashing", shards=shards, workers=2,
                           config=RayConfig(batch_rows=100))
    assert marker.exists(), "no actor was killed: the test hook did not fire"

    written = np.concatenate([pq.read_table(f).column("row_id").to_numpy() for f in sorted(shards.glob("*.parquet"))])
    assert len(written) == len(row_ids)
    assert sorted(written.tolist()) == row_ids.tolist()  # every row exactly once
    np.testing.assert_array_equal(vectors, HashingEmbedder().embed(texts))  # each vector beside its own row


def topic_texts(rows: int, *, seed: int = 0) -> pd.DataFrame:
    """Sentences drawn from ten topics' own words: their layout should keep the topics apart."""
    rng = np.random.default_rng(seed)
    vocab = [[f"t{topic}w{word}" for word in range(12)] for topic in range(10)]
    topics = rng.integers(0, 10, size=rows)
    texts = [" ".join(rng.choice(vocab[t], size=8)) for t in topics]
    return pd.DataFrame({"text": texts, "topic": topics})


@pytest.mark.slow
def test_large_input_fits_umap_on_a_sample_and_transforms_the_rest_on_the_cluster(ray_instance, tmp_path, workspace):
    from explorer.engine_ray import RayConfig, build_map_ray
    from explorer.project import sample_indices

    folder = tmp_path / "parts"
    folder.mkdir()
    frame = topic_texts(1500)
    for part, start in enumerate(range(0, 1500, 500)):
        frame.iloc[start : start + 500].to_parquet(folder / f"part-{part}.parquet", index=False)

    result = build_map_ray(folder, model="hashing-64", workspace=workspace, projection=ProjectionConfig(sample_rows=600),
                           ray_config=RayConfig(num_workers=2, batch_rows=200))
    saved = result.saved
    assert saved.name == "parts" and saved.manifest["source"]["format"] == "parquet"
    assert saved.points["text"].tolist() == frame["text"].tolist()  # the folder's files, in order
    assert saved.manifest["projection"]["fit_rows"] == 600
    coords = saved.coords
    assert np.isfinite(coords).all()
    # The 900 rows placed by transform land among the fitted rows of their own topic.
    sample = sample_indices(1500, 600, seed=ProjectionConfig().seed)
    placed = np.setdiff1d(np.arange(1500), sample)
    knn = KNeighborsClassifier(n_neighbors=10).fit(coords[sample], frame["topic"].to_numpy()[sample])
    assert knn.score(coords[placed], frame["topic"].to_numpy()[placed]) > 0.9
    assert not list((workspace.root / "ray-work").glob("*/part-*.parquet"))  # the shards go once the map is saved


@pytest.mark.slow
def test_a_rerun_embeds_only_the_rows_its_shards_lack(ray_instance, tmp_path):
    pa = pytest.importorskip("pyarrow")
    from explorer.engine_ray import RayConfig, _write_shard, embed_on_ray

    texts = [f"note {i} on subject {i % 5}" for i in range(600)]
    row_ids = np.arange(600, dtype=np.int64)
    expected = HashingEmbedder().embed(texts)
    shards = tmp_path / "shards"
    shards.mkdir()
    # What a driver killed after 200 rows leaves behind.
    earlier = pa.FixedSizeListArray.from_arrays(pa.array(expected[:200].reshape(-1)), expected.shape[1])
    _write_shard(pa.table({"row_id": pa.array(row_ids[:200]), "embedding": earlier}), shards / "part-000000.parquet")
    reports: list[str] = []
    vectors = embed_on_ray(texts, row_ids, model="hashing", shards=shards, workers=2, config=RayConfig(batch_rows=100),
                           progress=lambda stage, fraction, message="": reports.append(message))
    assert reports[0] == "Starting 2 worker(s); 200 / 600 rows embedded"
    assert reports[-1] == "600 / 600 rows embedded on 2 worker(s)"
    assert len(reports) == 1 + 400 // 100  # only the 400 missing rows went to the workers
    np.testing.assert_array_equal(vectors, expected)


def test_ray_workers_skip_fsspecs_http_import_race(ray_instance):
    """Ray Data lists files in its workers, in threads: there too fsspec's HTTP filesystem is marked absent
    when aiohttp is (a half-done import seen by another thread failed a CI read with an ImportError)."""
    import importlib.util

    import ray

    @ray.remote
    def mark() -> str:
        import sys

        return repr(sys.modules.get("fsspec.implementations.http", "not marked"))

    if importlib.util.find_spec("aiohttp") is not None:
        pytest.skip("aiohttp is installed: fsspec's HTTP filesystem loads, nothing to mark")
    assert ray.get(mark.remote()) == "None"
