"""Thumbnails: about 96 px WebP per image, made once when read and kept in the saved map's folder (see store)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

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


def write_thumbnail_table(
    path: Path, row_ids: Sequence[int], thumbnails: Sequence[bytes] | Mapping[int, bytes]
) -> None:
    """Write the thumbnails of ``row_ids`` (row-aligned bytes, or bytes by row_id) as one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(thumbnails, Mapping):
        missing = [int(r) for r in row_ids if int(r) not in thumbnails]
        if missing:
            raise ValueError(f"no thumbnail for {len(missing)} of {len(row_ids)} rows (row_id {missing[0]}, ...)")
        thumbnails = [thumbnails[int(r)] for r in row_ids]
    if len(thumbnails) != len(row_ids):
        raise ValueError(f"{len(thumbnails)} thumbnails for a map of {len(row_ids)} rows")
    table = pa.table({"row_id": pa.array(np.asarray(row_ids, dtype=np.int64), pa.int64()),
                      "thumbnail": pa.array(list(thumbnails), pa.binary())})
    pq.write_table(table, path)


def read_thumbnail_table(path: Path, row_ids: Iterable[int] | None = None) -> dict[int, bytes]:
    """Thumbnail bytes by row_id from a thumbnails file: all of them, or only those of ``row_ids``."""
    import pyarrow.parquet as pq

    filters = None if row_ids is None else [("row_id", "in", [int(r) for r in row_ids])]
    table = pq.read_table(path, filters=filters)
    return dict(zip(table.column("row_id").to_pylist(), table.column("thumbnail").to_pylist(), strict=True))


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
