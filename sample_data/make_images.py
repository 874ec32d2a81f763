"""Write sample_data/images/: scikit-learn's bundled handwritten digits as small PNGs, one folder per digit.

The digits (sklearn.datasets.load_digits, a copy of the UCI "Optical Recognition of Handwritten
Digits" test set) ship with scikit-learn under its BSD-3-Clause licence, so they may be redistributed.
Run: .venv/bin/python sample_data/make_images.py
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent / "images"
PER_DIGIT = 30
SIDE = 32


def render_digit(pixels: np.ndarray, *, side: int = SIDE) -> Image.Image:
    """An 8 x 8 digit of 0..16 ink levels as dark ink on white, upscaled (nearest) to side x side."""
    grey = np.rint(255 - pixels.reshape(8, 8) * (255 / 16)).astype(np.uint8)
    return Image.fromarray(grey, mode="L").resize((side, side), Image.Resampling.NEAREST)


def write_images(out: Path = OUT, *, per_digit: int = PER_DIGIT) -> int:
    """Write the first ``per_digit`` images of each digit to out/<digit>/<digit>_<index>.png."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    if out.exists():
        shutil.rmtree(out)
    written = 0
    for digit in range(10):
        folder = out / str(digit)
        folder.mkdir(parents=True)
        for index in np.flatnonzero(digits.target == digit)[:per_digit]:
            # optimize=True and no metadata keep each file small and the output byte-for-byte stable.
            render_digit(digits.data[index]).save(folder / f"{digit}_{index:04d}.png", optimize=True)
            written += 1
    return written


def main() -> None:
    """Regenerate the folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-digit", type=int, default=PER_DIGIT)
    args = parser.parse_args()
    print(f"wrote {write_images(per_digit=args.per_digit)} images to {OUT}")


if __name__ == "__main__":
    main()
