"""Uncompressed COCO RLE written by hand, as COCO's own files hold it (test helper)."""

from __future__ import annotations

import numpy as np


def uncompressed_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of `mask` in column-major order, starting with a run of 0s (COCO's
    uncompressed RLE `counts`), computed without pycocotools or our encoder."""
    counts, current, run = [], False, 0
    for value in np.asarray(mask, bool).flatten(order="F"):
        if value != current:
            counts.append(run)
            current, run = bool(value), 0
        run += 1
    counts.append(run)
    return counts
