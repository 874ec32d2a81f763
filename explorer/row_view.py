"""Rows derived from an array row by row as they are read: a map's layout input over 1M vectors is never
held whole beside the vectors it comes from."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

# Rows per block when the whole view is read (materialised, hashed, scanned).
BLOCK_ROWS = 65_536


class RowView:
    """``transform`` applied to the rows of ``source`` when they are read. The transform must be row-wise (each
    output row depends on its own input row alone), so any selection of rows reads the same values as the
    same rows of the whole transformed array; ``np.asarray`` gives that whole array, a block at a time."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, source: np.ndarray, transform: Callable[[np.ndarray], np.ndarray]):
        self.source = source
        self.transform = transform
        self.width = int(self._read(slice(0, 0)).shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the transformed array."""
        return (len(self.source), self.width)

    def __len__(self) -> int:
        return len(self.source)

    def _read(self, key) -> np.ndarray:
        return np.asarray(self.transform(self.source[key]), dtype=np.float32)

    def __getitem__(self, key) -> np.ndarray:
        """Rows by position (one row as a vector), slice, index array or boolean mask."""
        if isinstance(key, (int, np.integer)):
            return self._read(np.array([key]))[0]
        if isinstance(key, tuple):
            raise TypeError("A RowView is read by rows; read the rows first, then index their columns.")
        return self._read(key)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = np.empty(self.shape, dtype=np.float32)
        for start, block in row_blocks(self):
            whole[start : start + len(block)] = block
        return whole if dtype is None else whole.astype(dtype, copy=False)


def row_blocks(x: np.ndarray | RowView, rows: int = BLOCK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, C-contiguous block, in the array's own dtype) over an array or a view, ``rows`` rows at a time."""
    for start in range(0, len(x), rows):
        yield start, np.ascontiguousarray(x[start : start + rows])
