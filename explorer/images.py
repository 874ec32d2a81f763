"""Step 1 for images: read image files, a ZIP or a folder into an ImageSet, refusing what is unsafe.

Every image is decoded once here (to check it and make its thumbnail) and again, lazily and a batch
at a time, when it is embedded: holding thousands of decoded images would take gigabytes.
"""

from __future__ import annotations

import io
import logging
import lzma
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from .errors import InputError
from .hashing import bytes_hash, combined_hash
from .limits import Limits
from .load import LoadedTable, load_table, tidy_columns
from .progress import ProgressFn, no_progress
from .thumbnails import THUMBNAIL_SIZE, make_thumbnail

log = logging.getLogger(__name__)

# MPO is what Pillow calls JPEGs from multi-lens cameras; they are JPEGs to everyone else.
IMAGE_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "GIF": "GIF",
                 "BMP": "BMP", "DIB": "BMP", "TIFF": "TIFF"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".dib",
                  ".tif", ".tiff")
SUPPORTED_IMAGES = "JPEG, PNG, WebP, GIF, BMP and TIFF can be read"
IMAGE_COLUMNS = ("file", "label", "width", "height", "format")
# Images are kept at most this many pixels on a side for embedding: CLIP looks at 224 x 224.
DEFAULT_MAX_SIDE = 512
# Names a table's image-path column often has, in the order they are preferred.
PATH_COLUMN_NAMES = ("path", "image_path", "file", "filename", "file_name", "image", "img", "filepath")
DEFAULT_MAX_PIXELS = Limits.max_image_pixels


@dataclass(frozen=True)
class ImageLimits:
    """Caps on what one upload may hold, so a hostile ZIP cannot exhaust memory or time."""

    max_files: int = Limits.max_zip_files
    max_total_bytes: int = Limits.max_unzipped_bytes
    max_pixels: int = Limits.max_image_pixels

    @classmethod
    def from_env(cls) -> ImageLimits:
        """The caps of ``Limits.from_env()``: the defaults, or what the environment sets."""
        limits = Limits.from_env()
        return cls(max_files=limits.max_zip_files, max_total_bytes=limits.max_unzipped_bytes,
                   max_pixels=limits.max_image_pixels)


@dataclass
class ImageSet:
    """Readable images, row-aligned: a table (file, label, width, height, format, ...), the original
    bytes, a thumbnail and a content hash per image; plus every file that was skipped and why.
    ``path_column`` names the column with each image's name (a table's own path column, or file)."""

    frame: pd.DataFrame
    data: list[bytes]
    thumbnails: list[bytes]
    hashes: list[str]
    skipped: list[tuple[str, str]]
    source_name: str
    format: str
    content_hash: str
    notes: list[str] = field(default_factory=list)
    path_column: str = "file"

    def __len__(self) -> int:
        return len(self.data)

    def images(self, *, max_side: int = DEFAULT_MAX_SIDE) -> ImageSequence:
        """The images as normalised RGB PIL images, decoded only when indexed."""
        return ImageSequence(self.data, max_side=max_side)


class ImageSequence(Sequence):
    """A read-only sequence of images decoded on access (an index or a slice) from their bytes."""

    def __init__(self, data: Sequence[bytes], *, max_side: int = DEFAULT_MAX_SIDE):
        self.data = data
        self.max_side = max_side

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return open_image(self.data[index], max_side=self.max_side)


@dataclass
class _Entry:
    """One candidate file: its name inside the upload, its folder label and how to read its bytes."""

    name: str
    label: str | None
    read: Callable[[], bytes]


def is_image_source(path: str | Path) -> bool:
    """Whether a path is something `read_images` takes: a folder, a ZIP or an image file."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in (".zip", *IMAGE_SUFFIXES)


def read_images(
    source: str | Path | bytes | BinaryIO | Iterable,
    *,
    name: str | None = None,
    limits: ImageLimits | None = None,
    thumbnail_size: int = THUMBNAIL_SIZE,
    progress: ProgressFn = no_progress,
) -> ImageSet:
    """Read a ZIP (path, bytes or file object), a folder, one image file, or several files given as
    (name, bytes) pairs or uploaded-file objects; a file inside a ZIP folder gets that folder as label."""
    limits = limits or ImageLimits.from_env()
    skipped: list[tuple[str, str]] = []
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        root = Path(source)
        entries, fmt, digest = _folder_entries(root, limits, skipped), "folder", ""
        source_name = name or root.resolve().name
    elif isinstance(source, (str, Path, bytes, bytearray, memoryview)) or hasattr(source, "read"):
        data, source_name = _read_bytes(source, name, limits)
        if zipfile.is_zipfile(io.BytesIO(data)):
            entries, fmt = _zip_entries(_open_zip(data, source_name), source_name, limits, skipped), "zip"
        else:
            entries, fmt = [_Entry(source_name, None, lambda: data)], "images"
        digest = bytes_hash(data)
    else:
        entries, fmt, digest = _file_entries(source, limits), "images", ""
        source_name = name or "images"
    images = _decode_entries(entries, skipped, limits=limits, thumbnail_size=thumbnail_size,
                             progress=progress)
    frame = pd.DataFrame(images.rows, columns=list(IMAGE_COLUMNS))
    frame["label"] = frame["label"].astype("string")
    return images.to_set(frame, skipped, source_name=source_name, fmt=fmt,
                         content_hash=digest or combined_hash([e.name for e in entries] + images.hashes))


def read_image_table(
    table: str | Path | bytes | LoadedTable | pd.DataFrame,
    archive: str | Path | bytes | BinaryIO,
    *,
    path_column: str | None = None,
    table_name: str | None = None,
    archive_name: str | None = None,
    limits: ImageLimits | None = None,
    thumbnail_size: int = THUMBNAIL_SIZE,
    progress: ProgressFn = no_progress,
) -> ImageSet:
    """A table (CSV, Parquet, ...) whose ``path_column`` names images inside a ZIP: its rows with a
    readable image, with its own columns plus file, label, width, height and format."""
    limits = limits or ImageLimits.from_env()
    if isinstance(table, pd.DataFrame):
        tidied: list[str] = []
        loaded = LoadedTable(frame=tidy_columns(table.reset_index(drop=True), notes=tidied),
                             source_name=table_name or "table", format="dataframe", content_hash="",
                             notes=tidied)
    else:
        loaded = table if isinstance(table, LoadedTable) else load_table(table, name=table_name)
    data, zip_name = _read_bytes(archive, archive_name, limits)
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise InputError(f"{zip_name}: not a ZIP file. Upload the images as one ZIP beside the table.")
    skipped: list[tuple[str, str]] = []
    by_name = {e.name: e for e in _zip_entries(_open_zip(data, zip_name), zip_name, limits, skipped)}
    frame = loaded.frame
    column = path_column or detect_path_column(frame, by_name)
    if column not in frame.columns:
        raise InputError(f"No column named '{column}'. Columns: {', '.join(map(str, frame.columns))}.")
    resolve = _path_resolver(by_name)
    entries, rows = [], []
    for i, value in enumerate(frame[column].tolist()):
        wanted = "" if pd.isna(value) else str(value).strip()
        entry = resolve(wanted) if wanted else None
        if entry is None:
            skipped.append((f"row {i + 1} ({wanted or 'empty'})",
                            "no image path" if not wanted else f"not found in {zip_name}"))
            continue
        entries.append(entry)
        rows.append(i)
    images = _decode_entries(entries, skipped, limits=limits, thumbnail_size=thumbnail_size,
                             progress=progress)
    kept = frame.iloc[[rows[i] for i in images.kept]].reset_index(drop=True)
    meta = pd.DataFrame(images.rows, columns=list(IMAGE_COLUMNS))
    notes = list(loaded.notes)
    for col in IMAGE_COLUMNS:
        if col not in kept.columns:
            kept[col] = meta[col].astype("string") if col == "label" else meta[col]
        elif col != column:
            notes.append(f"The table's own '{col}' column is kept; the image's {col} is not added.")
    return images.to_set(
        kept, skipped, source_name=f"{loaded.source_name} + {zip_name}", fmt="table+zip",
        content_hash=combined_hash([loaded.content_hash or loaded.source_name, bytes_hash(data), column]),
        notes=notes, path_column=column,
    )


def detect_path_column(frame: pd.DataFrame, names: Iterable[str] = ()) -> str:
    """The column holding image paths: the one whose values most often name an image file."""
    known = set(names)
    best, best_score = None, 0.0
    for col in frame.columns:
        values = frame[col].dropna()
        values = [str(v).strip() for v in values if isinstance(v, str)]
        if not values:
            continue
        images = sum(v.lower().endswith(IMAGE_SUFFIXES) for v in values) / len(values)
        found = sum(_normalise_member(v) in known for v in values) / len(values) if known else 0.0
        named = str(col).strip().lower() in PATH_COLUMN_NAMES
        score = images + 2 * found + 0.1 * named
        if images > 0 and score > best_score:
            best, best_score = col, score
    if best is None:
        raise InputError(
            "No column of image paths was found: name the column that holds each image's path "
            "inside the ZIP (such as cats/001.jpg)."
        )
    return str(best)


def open_image(
    data: bytes, *, max_side: int | None = DEFAULT_MAX_SIDE, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode image bytes to an upright RGB image (transparency on white) at most ``max_side`` wide
    and high; InputError says why an image cannot be used."""
    return _decode(data, max_side=max_side, max_pixels=max_pixels)[0]


def _decode(data: bytes, *, max_side: int | None, max_pixels: int) -> tuple[Image.Image, str, int, int]:
    """The normalised image, its format and its upright width and height."""
    with warnings.catch_warnings():
        # Pillow only warns between its limit and twice it; we refuse at our own limit instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise InputError(f"refused as a possible decompression bomb ({exc})") from exc
        except Exception as exc:  # Pillow raises many types for bytes that are not an image
            raise InputError(f"not an image, or not in a readable format ({SUPPORTED_IMAGES})") from exc
        fmt = IMAGE_FORMATS.get(image.format or "")
        if fmt is None:
            raise InputError(f"unsupported image format {image.format} ({SUPPORTED_IMAGES})")
        width, height = image.size
        if width * height > max_pixels:
            raise InputError(f"refused: {width:,} x {height:,} pixels is more than the limit of "
                             f"{max_pixels:,} (a possible decompression bomb; the cap is EXPLORER_MAX_IMAGE_PIXELS)")
        try:
            if fmt == "JPEG" and max_side:
                # Decoding at 1/2, 1/4 or 1/8 scale is far faster than decoding whole and shrinking.
                image.draft(image.mode, (max_side, max_side))
            image.load()
            if max_side:
                image = _shrink_early(image, max_side)
            loaded_size = image.size
            image = upright_rgb(image)
        except Exception as exc:  # truncated or corrupt data surfaces as many exception types
            raise InputError(f"corrupt or truncated image ({type(exc).__name__}: {exc})") from exc
    if image.size != loaded_size:  # EXIF turned it a quarter turn
        width, height = height, width
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image, fmt, width, height


def _shrink_early(image: Image.Image, max_side: int) -> Image.Image:
    """A large decoded image cut down to about ``max_side`` before anything converts it: a 157 kB PNG of
    9,000 x 9,000 16-bit pixels took 2.5 GB once scaled to 8 bits and converted at full size."""
    factor = max(image.size) // max_side
    if factor < 2:
        return image
    if image.mode in ("P", "PA", "1") or image.mode.startswith("I;16"):  # palettes and modes reduce() cannot take
        size = (max(1, image.width // factor), max(1, image.height // factor))
        return image.resize(size, Image.Resampling.NEAREST)
    if image.mode in ("RGBA", "LA"):
        # reduce() would first make a premultiplied copy of the whole image: one band at a time instead.
        return Image.merge(image.mode, [image.getchannel(band).reduce(factor) for band in image.getbands()])
    return image.reduce(factor)


def upright_rgb(image: Image.Image) -> Image.Image:
    """EXIF rotation applied; 16-bit and float greys scaled to 8 bits; transparency composited on
    white; palette, CMYK and the rest converted to RGB."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a malformed EXIF block must not cost the image, only its rotation
        log.info("ignoring an unreadable EXIF orientation")
    if image.mode.startswith("I") or image.mode == "F":
        image = _to_8bit(image)
    if image.mode in ("P", "PA", "LA", "La", "RGBA", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return image.convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """A grey image of 16-bit, 32-bit or float samples as 8-bit grey, keeping its full range."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16") or (values.min() >= 0 and 255 < values.max() <= 65535):
        scaled = values / 257.0
    elif image.mode == "F" and values.min() >= 0 and values.max() <= 1:
        scaled = values * 255.0
    elif values.min() >= 0 and values.max() <= 255:
        scaled = values
    else:
        low, high = values.min(), values.max()
        scaled = (values - low) * (255.0 / (high - low) if high > low else 0.0)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


@dataclass
class _Decoded:
    """What the decode pass produced, row-aligned, and which entries (by position) it kept."""

    rows: list[tuple] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)
    thumbnails: list[bytes] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)

    def to_set(self, frame: pd.DataFrame, skipped: list[tuple[str, str]], *, source_name: str,
               fmt: str, content_hash: str, notes: list[str] | None = None,
               path_column: str = "file") -> ImageSet:
        notes = list(notes or [])
        if skipped:
            notes.append(f"Skipped {len(skipped):,} file(s) that are not usable images: {describe_skipped(skipped)}")
        return ImageSet(frame=frame, data=self.data, thumbnails=self.thumbnails, hashes=self.hashes,
                        skipped=skipped, source_name=source_name, format=fmt,
                        content_hash=content_hash, notes=notes, path_column=path_column)


def describe_skipped(skipped: list[tuple[str, str]], *, reasons: int = 5, names: int = 3) -> str:
    """Skipped files grouped by reason, a few names each, such as "a.txt, b.txt and 9 more (not an image)"."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in skipped:
        by_reason.setdefault(reason, []).append(name)
    parts = []
    for reason, files in list(by_reason.items())[:reasons]:
        more = f" and {len(files) - names:,} more" if len(files) > names else ""
        parts.append(f"{', '.join(files[:names])}{more} ({reason})")
    return "; ".join(parts) + (" …" if len(by_reason) > reasons else "")


def _decode_entries(
    entries: list[_Entry], skipped: list[tuple[str, str]], *, limits: ImageLimits,
    thumbnail_size: int, progress: ProgressFn,
) -> _Decoded:
    out = _Decoded()
    total = len(entries)
    for position, entry in enumerate(entries):
        try:
            data = entry.read()
            huge = _pixel_count(data) >= KEEP_REDUCED_PIXELS
            image, fmt, width, height = _decode(data, max_side=DEFAULT_MAX_SIDE if huge else thumbnail_size,
                                                max_pixels=limits.max_pixels)
        except InputError as exc:
            skipped.append((entry.name, str(exc)))
        else:
            out.rows.append((entry.name, entry.label, width, height, fmt))
            out.data.append(_png(image) if huge else data)
            out.thumbnails.append(make_thumbnail(image, size=thumbnail_size))
            out.hashes.append(bytes_hash(data))
            out.kept.append(position)
        if (position + 1) % 50 == 0 or position + 1 == total:
            progress("load", (position + 1) / total, f"{position + 1:,} / {total:,} files")
    log.info("read %d images, skipped %d", len(out.data), len(skipped))
    return out


# An image of this many pixels or more is kept for the embedding pass as the PNG of its decoded copy at
# DEFAULT_MAX_SIDE (the largest side an embedder asks for), not as its file: decoding a 9,000 x 9,000 PNG a
# second time cost another second of server time.
KEEP_REDUCED_PIXELS = 16_000_000


def _pixel_count(data: bytes) -> int:
    """Width x height from the image's header alone (0 where it has none: _decode says why)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # _decode refuses at our own cap
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.width * image.height
        except Exception:  # not an image: _decode gives the one-line reason
            return 0


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _read_bytes(source, name: str | None, limits: ImageLimits) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "upload"
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{path}: no such file or folder. Check the path and try again.")
        if path.stat().st_size > limits.max_total_bytes:
            raise InputError(_too_big(path.name, path.stat().st_size, limits))
        return path.read_bytes(), name or path.name
    data = source.read(limits.max_total_bytes + 1)
    source_name = name or getattr(source, "name", None) or "upload"
    if len(data) > limits.max_total_bytes:
        raise InputError(_too_big(source_name, len(data), limits))
    return data, str(source_name)


def _too_big(name: str, size: int, limits: ImageLimits) -> str:
    return (f"{name}: {size / 1e6:,.1f} MB of images is more than the limit of "
            f"{limits.max_total_bytes / 1e6:,.0f} MB. Upload fewer or smaller images "
            "(or raise EXPLORER_MAX_UNZIPPED_MB).")


def _too_many(name: str, count: int, limits: ImageLimits) -> str:
    return (f"{name}: {count:,} files is more than the limit of {limits.max_files:,}. "
            "Upload fewer files at a time (or raise EXPLORER_MAX_ZIP_FILES).")


def _open_zip(data: bytes, name: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{name}: the ZIP file is damaged and cannot be opened ({exc}).") from exc


def unsafe_member_reason(name: str) -> str | None:
    """Why a ZIP member name is refused (absolute, a drive, or climbing out with ..), else None."""
    posix = name.replace("\\", "/")
    if not PurePosixPath(posix.strip()).name:  # "", "." or "./": no file name to show or to match
        return "refused: a file without a name"
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        return "refused: an absolute path inside the ZIP"
    if ".." in posix.split("/"):
        return "refused: a path with '..' inside the ZIP"
    return None


def _zip_entries(archive: zipfile.ZipFile, name: str, limits: ImageLimits, skipped: list) -> list[_Entry]:
    # Not ZipInfo.is_dir(): it fails (IndexError) on a member whose name is empty.
    infos = [info for info in archive.infolist() if not info.filename.endswith("/")]
    if len(infos) > limits.max_files:
        raise InputError(_too_many(name, len(infos), limits))
    # The sizes in the ZIP's directory are what zipfile lets each member inflate to, at most.
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_total_bytes:
        raise InputError(
            f"{name}: the ZIP would unpack to {declared / 1e6:,.1f} MB, more than the limit of "
            f"{limits.max_total_bytes / 1e6:,.0f} MB. Upload fewer or smaller images "
            "(or raise EXPLORER_MAX_UNZIPPED_MB)."
        )
    entries = []
    for info in infos:
        reason = unsafe_member_reason(info.filename)
        if reason is None and info.flag_bits & 0x1:
            reason = "encrypted: upload the ZIP without a password"
        if reason is None and _is_system_file(info.filename):
            reason = "a hidden or system file, not an image"
        if reason:
            skipped.append((info.filename, reason))
            continue
        entries.append(_Entry(info.filename, _folder_label(info.filename),
                              _member_reader(archive, info)))
    return entries


def _member_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            return archive.read(info)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, zlib.error,
                lzma.LZMAError) as exc:
            # zlib and CRC failures of one member must not cost the others.
            raise InputError(f"cannot be unpacked from the ZIP ({exc})") from exc

    return read


def _is_system_file(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1] == "Thumbs.db"


def _folder_label(name: str) -> str | None:
    """The folder a file sits in (`cats/001.jpg` gives `cats`); None at the top level."""
    return PurePosixPath(name.replace("\\", "/")).parent.name or None


def _normalise_member(path: str) -> str:
    posix = path.strip().replace("\\", "/")
    while posix.startswith("./"):
        posix = posix[2:]
    return posix


def _path_resolver(by_name: dict[str, _Entry]) -> Callable[[str], _Entry | None]:
    """Find a table's path in the ZIP: exactly, under the ZIP's single top folder, or ignoring case."""
    tops = {n.split("/", 1)[0] for n in by_name if "/" in n}
    prefix = f"{tops.pop()}/" if len(tops) == 1 else ""
    folded = {n.lower(): e for n, e in by_name.items()}

    def resolve(path: str) -> _Entry | None:
        wanted = _normalise_member(path)
        for candidate in (wanted, prefix + wanted):
            if candidate in by_name:
                return by_name[candidate]
        return folded.get(wanted.lower()) or folded.get((prefix + wanted).lower())

    return resolve


def _folder_entries(root: Path, limits: ImageLimits, skipped: list) -> list[_Entry]:
    files = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for file_name in sorted(names):
            files.append(Path(folder) / file_name)
    if len(files) > limits.max_files:
        raise InputError(_too_many(root.name, len(files), limits))
    total = sum(p.stat().st_size for p in files if p.is_file())
    if total > limits.max_total_bytes:
        raise InputError(_too_big(root.name, total, limits))
    entries = []
    for path in files:
        relative = path.relative_to(root).as_posix()
        if _is_system_file(relative):
            skipped.append((relative, "a hidden or system file, not an image"))
            continue
        entries.append(_Entry(relative, _folder_label(relative), _file_reader(path)))
    return entries


def _file_reader(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot be read ({exc.strerror or exc})") from exc

    return read


def _file_entries(files: Iterable, limits: ImageLimits) -> list[_Entry]:
    """Entries for (name, bytes) pairs, paths, or uploaded-file objects (with .name and .getvalue())."""
    entries, total = [], 0
    for item in files:
        if isinstance(item, (tuple, list)):
            file_name, data = item
        elif isinstance(item, (str, Path)):
            file_name, data = Path(item).name, _file_reader(Path(item))()
        else:
            file_name = getattr(item, "name", "upload")
            data = item.getvalue() if hasattr(item, "getvalue") else item.read()
        data = bytes(data)
        total += len(data)
        if len(entries) >= limits.max_files:
            raise InputError(_too_many("The upload", len(entries) + 1, limits))
        if total > limits.max_total_bytes:
            raise InputError(_too_big("The upload", total, limits))
        entries.append(_Entry(str(file_name), _folder_label(str(file_name)), lambda d=data: d))
    if not entries:
        raise InputError("No files were given. Choose image files or a ZIP of images.")
    return entries
