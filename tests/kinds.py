"""One small source of each kind of data (a table of papers, a ZIP of coloured squares), built through
the same build_map: shared by the tests that run once per kind."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from explorer import (
    BuildResult,
    HashingEmbedder,
    PixelFeatureEmbedder,
    ProjectionConfig,
    Workspace,
    build_map,
    read_images,
)

PCA = ProjectionConfig(method="pca")
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def square(colour: str, *, size=(40, 32), seed: int = 0) -> Image.Image:
    """A noisy square of one colour (noise so no two images are byte-identical)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(COLOURS[colour]) + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def colour_members(per_colour: int = 4, *, fmt: str = "PNG", top: str = "") -> dict[str, bytes]:
    """Noisy squares in one folder per colour, the folder first to last as in COLOURS."""
    return {
        f"{top}{colour}/{colour}_{i}.{fmt.lower()}": encode(square(colour, seed=10 * k + i), fmt)
        for k, colour in enumerate(COLOURS) for i in range(per_colour)
    }


def colour_zip(per_colour: int = 4, *, fmt: str = "PNG", top: str = "") -> bytes:
    return make_zip(colour_members(per_colour, fmt=fmt, top=top))


KINDS = ("text", "images")


class Recorder:
    """A progress callback that keeps every report."""

    def __init__(self):
        self.calls: list[tuple[str, float, str]] = []

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        self.calls.append((stage, fraction, message))

    @property
    def stages(self) -> list[str]:
        return list(dict.fromkeys(stage for stage, _, _ in self.calls))


# --- one small source of each kind, built through the same build_map -------------------------------


class CountingHashing(HashingEmbedder):
    """The deterministic text embedder, counting the texts it is actually given."""

    def __init__(self):
        super().__init__(dimension=64)
        self.embedded = 0

    def embed(self, texts, **kwargs):
        self.embedded += len(texts)
        return super().embed(texts, **kwargs)


class CountingPixels(PixelFeatureEmbedder):
    """The pixel embedder, counting the images it is actually given."""

    def __init__(self):
        super().__init__()
        self.embedded = 0

    def embed_images(self, images, **kwargs):
        self.embedded += len(images)
        return super().embed_images(images, **kwargs)


@dataclass
class Case:
    """A source of one kind with a twin of its first item, the embedder to build it with, and what
    the map must hold: each row's group (field or colour), the manifest's model and text columns."""

    kind: str
    source: object
    embedder: CountingHashing | CountingPixels
    group_column: str
    text_columns: list[str]
    model: str  # the manifest's "model": what loads the embedder again
    rows: int
    twin: int  # the row that repeats row 0's text or image

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    def expected_vectors(self) -> np.ndarray:
        """What the embedder alone makes of the source's items, row by row."""
        if self.kind == "text":
            frame = self.source
            return self.embedder.embed([f"{t}. {a}" for t, a in zip(frame["title"], frame["abstract"], strict=True)])
        images = read_images(self.source)
        return self.embedder.embed_images(images.images(max_side=self.embedder.image_side))

    def example(self, saved, row: int) -> tuple[str | None, bytes | None]:
        """(query, image) that search_map takes as the example of a row: its text or its image."""
        if self.kind == "text":
            return saved.texts()[row], None
        return None, image_members()[saved.points["file"].iloc[row]]


def image_members() -> dict[str, bytes]:
    """Four noisy squares of each colour, and a byte-identical twin of the first red one."""
    members = colour_members(4)
    return {**members, "red/red_twin.png": members["red/red_0.png"]}


def make_case(kind: str, frame: pd.DataFrame, tmp_path: Path) -> Case:
    """The case of ``kind``: the papers (30 rows in three fields) or 12 coloured squares (three
    colours), each with its first item repeated at the end."""
    if kind == "text":
        source = pd.concat([frame, frame.head(1)], ignore_index=True)
        return Case(kind, source, CountingHashing(), "field", ["title", "abstract"], "hashing-64",
                    rows=31, twin=30)
    archive = tmp_path / "colours.zip"
    archive.write_bytes(make_zip(image_members()))
    return Case(kind, archive, CountingPixels(), "label", ["file", "label"], "pixels", rows=13, twin=12)


def build(case: Case, workspace: Workspace, **options) -> BuildResult:
    """The one build_map call every case goes through."""
    options = {"name": "m", "model": case.embedder, "projection": PCA, **options}
    return build_map(case.source, kind=case.kind, workspace=workspace, **options)


