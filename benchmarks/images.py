"""Image benchmark (issue 4): the offline pixel embedder on sample_data/images, scored by k-NN."""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from metrics import knn_accuracy
from PIL import Image
from quality import DOC, publish

from explorer import PixelFeatureEmbedder, Workspace, build_map, read_images

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "sample_data" / "images"
K = 10
# The bar of issue 4: the fallback's 2D map must keep digits apart.
TARGET = 0.8
BEGIN, END = "<!-- images:begin -->", "<!-- images:end -->"
VERSIONED = ("pillow", "numpy", "umap-learn", "scikit-learn")
PHOTOS = 40
PHOTO_SIZE = (1024, 768)


@dataclass
class ImageBenchmark:
    """What one run measured."""

    data: Path
    images: int
    classes: int
    read_seconds: float
    embed_seconds: float
    stage_seconds: dict[str, float]
    knn_2d: float
    knn_embedding: float
    photo_read_per_second: float
    photo_embed_per_second: float
    load_averages: tuple[float, float]


def run_benchmark(data: Path = DEFAULT_DATA) -> ImageBenchmark:
    """Read the images, build a map with the pixel embedder (no cache) and score it."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    images = read_images(data)
    read_seconds = time.perf_counter() - started
    embedder = PixelFeatureEmbedder()
    # Throughput of the embedder alone (decoding included), apart from reading and thumbnails.
    started = time.perf_counter()
    embedder.embed_images(images.images(max_side=embedder.image_side))
    embed_seconds = time.perf_counter() - started
    photo_read, photo_embed = photo_speeds(embedder)
    with tempfile.TemporaryDirectory() as home:
        result = build_map(images, name="digits", model=embedder, workspace=Workspace(home),
                                 use_cache=False)
        saved = result.saved
        labels = saved.points["label"].to_numpy()
        return ImageBenchmark(
            data=data,
            images=len(images),
            classes=len(set(labels)),
            read_seconds=read_seconds,
            embed_seconds=embed_seconds,
            stage_seconds=dict(result.seconds),
            knn_2d=knn_accuracy(saved.coords, labels, k=K),
            knn_embedding=knn_accuracy(saved.embeddings, labels, k=K, metric="cosine"),
            photo_read_per_second=photo_read,
            photo_embed_per_second=photo_embed,
            load_averages=(load_before, os.getloadavg()[0]),
        )


def photo_speeds(embedder: PixelFeatureEmbedder, *, count: int = PHOTOS) -> tuple[float, float]:
    """Images/s reading and embedding photo-sized JPEGs: the digits are tiny, most uploads are not."""
    rng = np.random.default_rng(0)
    files = []
    for i in range(count):
        # Smooth noise compresses and decodes like a photo; white noise would be far slower than one.
        small = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        picture = Image.fromarray(small).resize(PHOTO_SIZE, Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=85)
        files.append((f"photo_{i}.jpg", buffer.getvalue()))
    started = time.perf_counter()
    images = read_images(files)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    embedder.embed_images(images.images(max_side=embedder.image_side))
    return count / read_seconds, count / (time.perf_counter() - started)


def render_section(result: ImageBenchmark, *, invocation: str) -> str:
    """The images section of docs/benchmarks.md, between its markers."""
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in VERSIONED)
    stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in result.stage_seconds.items())
    verdict = "meets" if result.knn_2d >= TARGET else "misses"
    lines = [
        BEGIN,
        "## Images: the offline pixel embedder on the sample digits",
        "",
        f"Data: `{_relative(result.data)}`, {result.images:,} PNGs of scikit-learn's handwritten "
        f"digits ({result.classes} labels, from the folders). Embedder: `pixels` "
        f"(`{PixelFeatureEmbedder().model_id}`: grey 16x16 + HOG + colour histogram, no weights).",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| {K}-NN accuracy of the digit label on the 2D map | **{result.knn_2d:.3f}** "
        f"({verdict} the bar of {TARGET}) |",
        f"| {K}-NN accuracy in the embedding space (cosine) | {result.knn_embedding:.3f} |",
        f"| embedding speed (decode + features, one process) | "
        f"{result.images / result.embed_seconds:,.0f} images/s |",
        f"| reading speed (open, check, thumbnail) | {result.images / result.read_seconds:,.0f} images/s |",
        f"| the same two speeds on {PHOTOS} synthetic {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEGs | "
        f"embed {result.photo_embed_per_second:,.0f} images/s, read "
        f"{result.photo_read_per_second:,.0f} images/s |",
        f"| build stages (`build_map` of the images, no cache) | {stages} |",
        "",
        f"- The machine is shared: load average {result.load_averages[0]:.1f} before the run and "
        f"{result.load_averages[1]:.1f} after, so the speeds are pessimistic. `project` includes "
        "numba compiling UMAP's kernels (once per process).",
        f"- {K}-NN is a leave-one-out majority vote; a tie goes to the nearest tied label.",
        f"- Benchmark: `{invocation}`. Versions: {versions}.",
        END,
    ]
    return "\n".join(lines) + "\n"


def _relative(path: Path) -> str:
    try:
        # absolute(), not resolve(): the venv's python is a symlink that should read as .venv/bin/python.
        return str(Path(path).absolute().relative_to(REPO))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its section and optionally write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="a folder of images, one subfolder per label")
    parser.add_argument("--write", action="store_true", help=f"replace the images section of {_relative(DOC)}")
    args = parser.parse_args(argv)
    result = run_benchmark(args.data)
    invocation = shlex.join([_relative(Path(sys.executable)), _relative(Path(__file__)),
                             *(sys.argv[1:] if argv is None else argv)])
    section = render_section(result, invocation=invocation)
    publish(section, write=args.write, marker="images")
    return 0 if result.knn_2d >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
