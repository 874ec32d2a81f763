"""Thumbnails: about 96 px WebP per image, made once and kept in the saved map's folder."""

from __future__ import annotations

import base64
import io
import os
import uuid
from collections.abc import Iterable, Sequence

from PIL import Image

from .errors import InputError

THUMBNAIL_SIZE = 96
THUMBNAIL_FORMAT = "WEBP"
THUMBNAIL_QUALITY = 80
THUMBNAILS_FILE = "thumbnails.parquet"


def make_thumbnail(image: Image.Image, *, size: int = THUMBNAIL_SIZE, fmt: str = THUMBNAIL_FORMAT) -> bytes:
    """The image shrunk to fit ``size`` x ``size`` (aspect kept), encoded as WebP or PNG."""
    small = image.convert("RGB")
    if max(small.size) > size:
        small = small.copy()
        small.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    # method=4 is Pillow's default speed/size balance; lossy WebP keeps a 96 px photo near 3 kB.
    options = {"quality": THUMBNAIL_QUALITY, "method": 4} if fmt.upper() == "WEBP" else {"optimize": True}
    small.save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()


def save_thumbnails(saved, thumbnails: Sequence[bytes]) -> None:
    """Write one thumbnail per row of ``saved.points`` (row-aligned) into the map's folder, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    row_ids = saved.points["row_id"].to_numpy()
    if len(thumbnails) != len(row_ids):
        raise ValueError(f"{len(thumbnails)} thumbnails for a map of {len(row_ids)} rows")
    table = pa.table({"row_id": pa.array(row_ids, pa.int64()),
                      "thumbnail": pa.array(list(thumbnails), pa.binary())})
    final = saved.path / THUMBNAILS_FILE
    tmp = saved.path / f".{THUMBNAILS_FILE}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def has_thumbnails(saved) -> bool:
    """Whether the saved map has stored thumbnails (image maps do)."""
    return (saved.path / THUMBNAILS_FILE).is_file()


def load_thumbnails(saved, row_ids: Iterable[int] | None = None) -> dict[int, bytes]:
    """Thumbnail bytes by row_id: all of them, or only those of ``row_ids``."""
    import pyarrow.parquet as pq

    path = saved.path / THUMBNAILS_FILE
    if not path.is_file():
        raise InputError(f"The map '{saved.name}' has no thumbnails: it is not an image map, or it "
                         "was saved by an older version. Build it again from the images.")
    wanted = None if row_ids is None else [int(r) for r in row_ids]
    filters = None if wanted is None else [("row_id", "in", wanted)]
    table = pq.read_table(path, filters=filters)
    return dict(zip(table.column("row_id").to_pylist(), table.column("thumbnail").to_pylist(), strict=True))


def load_thumbnail(saved, row_id: int) -> bytes:
    """The thumbnail bytes of one row."""
    found = load_thumbnails(saved, [row_id])
    if int(row_id) not in found:
        raise InputError(f"Row {row_id} has no thumbnail in the map '{saved.name}'.")
    return found[int(row_id)]


def thumbnail_mime(data: bytes) -> str:
    """The MIME type of thumbnail bytes (WebP or PNG, else JPEG)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return "image/jpeg"


def thumbnail_data_uri(data: bytes) -> str:
    """A data: URI for thumbnail bytes, for HTML or st.column_config.ImageColumn."""
    return f"data:{thumbnail_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"
