"""The one recipe for content hashes used as cache keys and identities."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def text_hash(text: str) -> str:
    """A short stable hash of one text (the embedding-cache key within a model)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def bytes_hash(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return blocks_hash([data])


def blocks_hash(blocks: Iterable[bytes]) -> str:
    """Hex sha256 of byte strings read one after another: the same as of their concatenation."""
    digest = hashlib.sha256()
    for block in blocks:
        digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def combined_hash(parts: Iterable[str]) -> str:
    """One hash over an ordered sequence of strings."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()
