"""Binary masks and their COCO run-length encoding (through pycocotools).

Masks are (H, W) bool arrays in the displayed image frame. RLEs are COCO's compressed
form: {"size": [H, W], "counts": str}, column-major as pycocotools writes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

RLE = dict[str, Any]


def encode_rle(mask: np.ndarray) -> RLE:
    """(H, W) bool -> compressed RLE with `counts` as a str (JSON-ready)."""
    m = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    if m.ndim != 2:
        raise ValueError(f"a mask is 2-D (H, W), got shape {m.shape}")
    rle = mask_utils.encode(m)
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: RLE) -> np.ndarray:
    """Compressed RLE (counts str or bytes) -> (H, W) bool."""
    counts = rle["counts"]
    obj = {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(obj).astype(bool)
