"""Reading images for the window, through the core's loader when it is present.

`load_rgb` gives (H, W, 3) uint8 RGB in the frame the user sees (EXIF orientation
applied), the same array the model encodes, so clicks and masks share one frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class ImageReadError(Exception):
    """An image file could not be read. The message names the file and the reason."""


def load_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB as displayed. Raises ImageReadError naming the file."""
    try:
        from samstudio.core import images as core_images  # the formats helper's loader
    except ImportError:
        core_images = None
    if core_images is not None and hasattr(core_images, "load_image"):
        try:
            loaded = core_images.load_image(path)
        except Exception as exc:  # the core raises ImageLoadError naming the file
            raise ImageReadError(str(exc)) from exc
        array = getattr(loaded, "rgb", loaded)
        return np.ascontiguousarray(np.asarray(array, dtype=np.uint8))
    return _load_with_pillow(Path(path))


def _load_with_pillow(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im) or im
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                lo, hi = float(arr.min()), float(arr.max())
                arr = (arr - lo) * (255.0 / max(hi - lo, 1.0))
                return np.ascontiguousarray(np.stack([arr.astype(np.uint8)] * 3, axis=-1))
            return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    except FileNotFoundError as exc:
        raise ImageReadError(f"{path}: file not found") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot read this image ({exc})") from exc
