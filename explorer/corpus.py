"""Step 1's result for every kind of data: any source becomes one Corpus, whatever it holds.

A table (a file, bytes, a LoadedTable or a DataFrame) becomes a text corpus: each row's text from
its text columns or a template. Image files, a ZIP, a folder, an ImageSet, or a table beside a ZIP
of the images it names become an image corpus. Everything after this step (embed, project, save,
search) reads the Corpus and never asks where it came from.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from .errors import InputError
from .hashing import text_hash
from .images import (
    DEFAULT_MAX_SIDE,
    IMAGE_COLUMNS,
    IMAGE_SUFFIXES,
    ImageLimits,
    ImageSequence,
    ImageSet,
    describe_skipped,
    is_image_source,
    read_image_table,
    read_images,
)
from .load import LoadedTable, load_table, tidy_columns
from .progress import ProgressFn, no_progress
from .texts import TextColumn, compose_texts
from .vectors import GivenInputs, read_given

# The kinds of data a corpus (and so a map, an embedder) holds; "auto" tells them apart by the source.
TEXT = "text"
IMAGES = "images"
DATA_KINDS = (TEXT, IMAGES)
KINDS = ("auto", *DATA_KINDS)


@dataclass
class Corpus:
    """What one build embeds: a row per item (the user's columns, plus file, label, width, height and
    format for images), which rows get a vector, the text or the image of each, and what the reader
    had to tell the user (notes, and for images the files it skipped and why)."""

    kind: str
    frame: pd.DataFrame
    embedded: np.ndarray
    text_columns: list[str]
    source_name: str
    format: str
    content_hash: str
    template: str | None = None
    encoding: str | None = None
    # In Arrow (a TextColumn) when read from a table: a million abstracts as Python strings are 1.1 GB.
    texts: list[str] | TextColumn | None = None
    images: ImageSet | None = None
    notes: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # Your own vectors, layout and neighbours read with the rows (ReadOptions' vectors, x, y, neighbors):
    # the embed and project steps take them from here instead of computing them.
    given: GivenInputs | None = None

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def n_embedded(self) -> int:
        """How many rows get a vector."""
        return int(self.embedded.sum())

    @property
    def path_column(self) -> str | None:
        """The column naming each image (None for text)."""
        return self.images.path_column if self.images is not None else None

    def items(self, *, max_side: int = DEFAULT_MAX_SIDE) -> Sequence:
        """What the embedder reads, one per embedded row: texts, or images decoded on access."""
        if self.kind == IMAGES:
            return ImageSequence(self.images.data, max_side=max_side)
        if isinstance(self.texts, TextColumn):
            return self.texts.filter(self.embedded)
        return [t for t, keep in zip(self.texts, self.embedded, strict=True) if keep]

    def item_hashes(self) -> list[str]:
        """A content hash per embedded row (the cache key of its vector, with the model's id)."""
        if self.kind == IMAGES:
            return list(self.images.hashes)
        return [text_hash(t) for t in self.items()]

    def default_name(self) -> str:
        """The map's name when none is given: the source's file name without its suffix."""
        first = self.source_name.split(" + ")[0]
        return Path(first).stem or ("images" if self.kind == IMAGES else "map")


def detect_kind(source, *, images=None) -> str:
    """"images" for an image source (image files, a ZIP, a folder, an ImageSet, or a table given with a
    ZIP of its images), else "text"."""
    if isinstance(source, Corpus):
        return source.kind
    if images is not None or isinstance(source, ImageSet):
        return IMAGES
    if isinstance(source, (LoadedTable, pd.DataFrame)):
        return TEXT
    if isinstance(source, (str, Path)):
        return IMAGES if is_image_source(source) else TEXT
    if isinstance(source, (bytes, bytearray, memoryview)):
        return IMAGES if _looks_like_images(bytes(source)) else TEXT
    if isinstance(source, (list, tuple)):
        return IMAGES  # several uploaded files or (name, bytes) pairs
    name = str(getattr(source, "name", "") or "")
    return IMAGES if name.lower().endswith((".zip", *IMAGE_SUFFIXES)) else TEXT


def _looks_like_images(data: bytes) -> bool:
    """Bytes of a ZIP or of an image (an XLSX workbook is a ZIP too, but it holds a table)."""
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "[Content_Types].xml" not in archive.namelist()
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)):
            return True
    except Exception:  # Pillow raises many types for bytes that are not an image
        return False


@dataclass(frozen=True)
class ReadOptions:
    """How a source is read into a Corpus: its kind, its name, which columns (or template) make each row's
    text, for images the ZIP a table's ``path_column`` names, and your own vectors, x/y layout and
    neighbours (column names, or an .npy file for ``vectors``), read as an input of their own."""

    kind: str = "auto"
    source_name: str | None = None
    text_columns: Sequence[str] | None = None
    template: str | None = None
    images: str | Path | bytes | BinaryIO | None = None
    path_column: str | None = None
    limits: ImageLimits | None = None
    vectors: str | Path | None = None
    x: str | None = None
    y: str | None = None
    neighbors: str | None = None

    @property
    def gives(self) -> bool:
        """Whether the source brings your own vectors, layout or neighbours."""
        return any(v is not None for v in (self.vectors, self.x, self.y, self.neighbors))


def read_corpus(
    source: str | Path | bytes | BinaryIO | LoadedTable | pd.DataFrame | ImageSet | Sequence | Corpus,
    options: ReadOptions | None = None,
    *,
    progress: ProgressFn = no_progress,
    **keywords,
) -> Corpus:
    """Read any source into a Corpus (``options``, or the same fields as keywords); ``kind`` "auto" tells
    text from images by the source itself.

    For text, ``text_columns`` or ``template`` choose each row's text (detected when neither is given).
    For images, ``images`` is a ZIP holding the images a table's ``path_column`` names. Your own vectors,
    layout and neighbours come out as ``corpus.given``, their columns taken out of the table, and a row
    is on the map when it has a vector."""
    options = dataclasses.replace(options or ReadOptions(), **keywords)
    kind, source_name, images = options.kind, options.source_name, options.images
    text_columns = list(options.text_columns) if options.text_columns else None
    template, path_column, limits = options.template, options.path_column, options.limits
    if kind not in KINDS:
        raise InputError(f"Unknown kind '{kind}': choose one of {', '.join(KINDS)}.")
    if isinstance(source, Corpus):
        return source
    kind = detect_kind(source, images=images) if kind == "auto" else kind
    if kind == IMAGES:
        if options.gives:
            raise InputError("Your own vectors, layout and neighbours go with a table of text; an image map embeds "
                             "its images.")
        if text_columns or template:
            raise InputError("Text columns and templates apply to tables of text; an image map embeds the images.")
        return _image_corpus(source, source_name=source_name, images=images, path_column=path_column,
                             limits=limits, progress=progress)
    if images is not None:
        raise InputError("A ZIP of images goes with an image map: build it with kind='images'.")
    table = read_table(source, source_name)
    given = None
    if options.gives:
        table, given = _split_given(table, source, options)
    # A bibliography names its own text (title + abstract), not its longest column (the raw entry).
    columns = text_columns or (None if template else table.text_columns)
    selection = compose_texts(table.frame, columns=columns, template=template, arrow=True)
    # With your own vectors a row is on the map when it has a vector; its text is what hover and keyword
    # search read.
    embedded = given.vectors.present.copy() if given is not None and given.vectors is not None \
        else selection.embedded
    return Corpus(
        kind=TEXT, frame=table.frame, embedded=embedded, text_columns=selection.columns,
        template=selection.template, texts=selection.texts, source_name=table.source_name,
        format=table.format, content_hash=table.content_hash, encoding=table.encoding,
        notes=[*table.notes, *selection.notes], given=given,
    )


def _split_given(table: LoadedTable, source, options: ReadOptions) -> tuple[LoadedTable, GivenInputs]:
    """The table without the columns that held vectors or neighbours, and what it gave instead."""
    base = Path(source).parent if isinstance(source, (str, Path)) else None
    given = read_given(table.frame, vectors=options.vectors, x=options.x, y=options.y, neighbors=options.neighbors,
                       base=base)
    frame = table.frame.drop(columns=list(given.consumed))
    kept = [c for c in table.text_columns or [] if c in frame.columns] or None
    return dataclasses.replace(table, frame=frame, text_columns=kept), given


def read_table(source, source_name: str | None = None) -> LoadedTable:
    """A table source (a file, bytes, a LoadedTable or a DataFrame) read once, with the file's column rules."""
    if isinstance(source, LoadedTable):
        return source
    if isinstance(source, pd.DataFrame):
        # The same column rules as a file: a user's x, y or row_id must not clash with the map's.
        notes: list[str] = []
        frame = tidy_columns(source.reset_index(drop=True), notes=notes)
        return LoadedTable(frame=frame, source_name=source_name or "dataframe", format="dataframe",
                           content_hash="", notes=notes)
    return load_table(source, name=source_name)


def _image_corpus(source, *, source_name, images, path_column, limits, progress) -> Corpus:
    if isinstance(source, ImageSet):
        image_set = source
    elif images is not None:
        image_set = read_image_table(source, images, path_column=path_column, table_name=source_name,
                                     limits=limits, progress=progress)
    else:
        image_set = read_images(source, name=source_name, limits=limits, progress=progress)
    if len(image_set) == 0:
        reasons = describe_skipped(image_set.skipped) or "it holds no files"
        raise InputError(f"{image_set.source_name}: no readable image was found: {reasons}.")
    return Corpus(
        kind=IMAGES, frame=image_set.frame, embedded=np.ones(len(image_set), dtype=bool),
        text_columns=keyword_columns(image_set), images=image_set, source_name=image_set.source_name,
        format=image_set.format, content_hash=image_set.content_hash, notes=list(image_set.notes),
        skipped=list(image_set.skipped),
    )


def keyword_columns(images: ImageSet) -> list[str]:
    """What keyword search reads for an image: its name, its label, and any text columns a table
    brought along (captions, tags)."""
    frame = images.frame
    columns = [images.path_column, *(["label"] if "label" in frame.columns else [])]
    columns += [c for c in frame.columns if c not in IMAGE_COLUMNS
                and (pd.api.types.is_string_dtype(frame[c]) or frame[c].dtype == object)]
    return list(dict.fromkeys(columns))
