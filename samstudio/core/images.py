"""Reading images for the model and the screen, in the frame the user sees.

Every loader returns an (H, W, 3) uint8 RGB array in the *displayed* frame: the EXIF
orientation (values 2-8) is applied; any other value (0, 1, missing, garbage) means
"as stored". Masks and exported annotations use this displayed frame too.

Conversions, by Pillow mode of the stored image:

- ``1``, ``L``: grey replicated into R, G and B.
- ``LA``, ``RGBA``, ``PA``, ``RGBa``: the alpha channel is dropped, the colour channels are
  kept exactly as stored (they are *not* composited onto a background; what a fully
  transparent pixel shows is whatever colour the file stores there, like OpenCV's
  ``imread``).
- ``P`` (palette, GIF and PNG): looked up in the palette; palette transparency is dropped
  the same way. Only the first frame of an animated GIF/PNG/WebP is read.
- ``CMYK`` (JPEG, TIFF): converted by Pillow (inverted Adobe CMYK is handled by its decoder).
- 16-bit and 32-bit samples (``I;16*``, ``I``, ``F``, and 16-bit RGB/RGBA PNG and TIFF,
  which Pillow would truncate to their high byte): scaled linearly by the image's *real*
  value range, ``out = round(255 * (v - min) / (max - min))`` with min and max taken over
  all colour samples of the image (one range for all channels, so colour balance is kept).
  A constant image maps to 0 when its value is 0 and to 255 otherwise. 16-bit RGB(A) files
  are decoded by OpenCV (``IMREAD_UNCHANGED``), which keeps all 16 bits; the exception is
  an animated 16-bit PNG, whose first frame OpenCV does not return: Pillow's 8-bit view
  (the high byte of each sample) is used for it.

Sizes: an image is refused (``ImageLoadError``) when it has more than ``MAX_PIXELS``
(400 million, e.g. 20000x20000) pixels. A full-resolution decode is allowed up to
``MAX_FULL_DECODE_PIXELS`` (120 million, e.g. 12000x10000: 360 MB as RGB). Larger images
can still be opened as a downscaled view with ``load_image(path, max_side=N)``: JPEGs are
then decoded at 1/2, 1/4 or 1/8 scale by libjpeg (Pillow's draft mode), so a 20000x15000
JPEG never occupies more than about 15 MB of pixels. Other formats above
``MAX_FULL_DECODE_PIXELS`` cannot be decoded partially and raise ``ImageLoadError``.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

PathLike = str | os.PathLike[str]

MAX_PIXELS = 400_000_000
"""Largest image (width * height) that is opened at all."""

MAX_FULL_DECODE_PIXELS = 120_000_000
"""Largest image decoded at full resolution; beyond it only JPEG downscaled views work."""

# Our own limits (checked before any pixel is decoded) replace Pillow's decompression-bomb
# guard, which would otherwise refuse anything above ~179 million pixels.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

SUPPORTED_SUFFIXES = (
    ".jpg",
    ".jpeg",
    ".jpe",
    ".png",
    ".tif",
    ".tiff",
    ".bmp",
    ".webp",
    ".gif",
)
"""File suffixes offered in file dialogs and folder scans (decoding does not rely on them)."""


class ImageLoadError(Exception):
    """An image file could not be read; the message names the file and the reason."""

    def __init__(self, path: PathLike | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot load image {self.path}: {reason}")


def content_hash(path: PathLike) -> str:
    """SHA-256 (hex) of the file's bytes, streamed in 1 MiB chunks.

    Independent of the file's name and folder, so a renamed or copied image keeps its
    cache entries. Raises ``ImageLoadError`` when the file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ImageLoadError(path, exc.strerror or str(exc)) from exc
    return digest.hexdigest()


def bytes_hash(data: bytes) -> str:
    """SHA-256 (hex) of in-memory image bytes; equals ``content_hash`` of the same file."""
    return hashlib.sha256(data).hexdigest()


def exif_orientation(img: Image.Image) -> int:
    """The EXIF orientation (1-8) of an opened image; 1 for missing or invalid values.

    Reads headers only. A PNG's eXIf chunk is honoured when it precedes the pixel data
    (as the PNG specification asks); Pillow would decode the whole image to look for one
    after it, which a header read must not do.
    """
    if img.format == "PNG" and "exif" not in img.info:
        return 1
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # a corrupt EXIF block must not stop the image from loading
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def image_size(path: PathLike) -> tuple[int, int]:
    """(height, width) in the displayed frame, read from the header (no pixels decoded)."""
    with _open(path) as img:
        w, h = img.size
        if exif_orientation(img) >= 5:
            w, h = h, w
        return h, w


def load_image(path: PathLike, max_side: int | None = None) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB in the displayed frame.

    With ``max_side``, the result is downscaled (never upscaled) so that its longer side is
    at most ``max_side`` pixels, keeping the aspect ratio (Pillow's reducing resize, then
    Lanczos); the scale factor is ``image_size(path)`` versus the returned shape. JPEGs
    are decoded directly at a reduced scale when possible, so very large files need only
    little memory. Raises ``ImageLoadError`` for unreadable, unsupported or too-large files.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
    with _open(path) as img:
        return _decode(img, path, max_side, _RawSource(path=path))


def load_image_bytes(data: bytes, source: str, max_side: int | None = None) -> np.ndarray:
    """Like ``load_image`` for in-memory bytes (e.g. labelme's embedded ``imageData``).

    ``source`` names where the bytes came from, for error messages.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
    with _open(io.BytesIO(data), name=source) as img:
        return _decode(img, source, max_side, _RawSource(data=data))


def image_size_bytes(data: bytes, source: str) -> tuple[int, int]:
    """(height, width) in the displayed frame of in-memory image bytes."""
    with _open(io.BytesIO(data), name=source) as img:
        w, h = img.size
        if exif_orientation(img) >= 5:
            w, h = h, w
        return h, w


# --------------------------------------------------------------------------- internals


class _RawSource:
    """Where the undecoded bytes are, for the OpenCV 16-bit path."""

    def __init__(self, path: PathLike | None = None, data: bytes | None = None) -> None:
        self.path = path
        self.data = data

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        with open(self.path, "rb") as fh:
            return fh.read()


def _open(source: PathLike | IO[bytes], name: str | None = None) -> Image.Image:
    label = name if name is not None else str(source)
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if not p.exists():
            raise ImageLoadError(label, "no such file")
        if p.is_dir():
            raise ImageLoadError(label, "is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(source)
    except UnidentifiedImageError:
        raise ImageLoadError(label, "not an image file in a format Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(label, f"too large ({exc})") from None
    except OSError as exc:
        raise ImageLoadError(label, exc.strerror or str(exc) or type(exc).__name__) from exc
    except Exception as exc:  # Pillow plugins raise assorted errors on corrupt headers
        raise ImageLoadError(label, f"corrupt header ({type(exc).__name__}: {exc})") from exc
    w, h = img.size
    if w < 1 or h < 1:
        img.close()
        raise ImageLoadError(label, f"has no pixels (size {w}x{h})")
    if w * h > MAX_PIXELS:
        img.close()
        raise ImageLoadError(
            label,
            f"{w}x{h} is {w * h / 1e6:.0f} megapixels; the largest supported image is "
            f"{MAX_PIXELS / 1e6:.0f} megapixels",
        )
    return img


def _is_16bit_color(img: Image.Image) -> bool:
    """True for RGB/RGBA files with 16-bit samples, which Pillow truncates to 8 bits."""
    if img.format not in ("PNG", "TIFF") or img.mode not in ("RGB", "RGBA"):
        return False
    if img.format == "PNG" and getattr(img, "n_frames", 1) > 1:
        return False  # OpenCV does not return an APNG's first frame: keep Pillow's 8 bits
    return any(";16" in str(tile.args) for tile in (getattr(img, "tile", None) or []))


def _decode(
    img: Image.Image, label: PathLike | str, max_side: int | None, raw: _RawSource
) -> np.ndarray:
    sixteen_bit = _is_16bit_color(img)  # while the tile list still describes the file
    orientation = exif_orientation(img)
    w, h = img.size
    try:
        img.seek(0)
    except Exception:
        pass
    if max_side is not None and img.format == "JPEG" and max(w, h) > max_side:
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale, never smaller than requested.
        scale = max_side / max(w, h)
        img.draft(
            "RGB" if img.mode != "L" else "L", (max(1, int(w * scale)), max(1, int(h * scale)))
        )
        w, h = img.size
    if w * h > MAX_FULL_DECODE_PIXELS:
        raise ImageLoadError(
            label,
            f"{w}x{h} is too large to decode at full resolution (limit "
            f"{MAX_FULL_DECODE_PIXELS / 1e6:.0f} megapixels); only JPEG files this large "
            "can be opened, and only as a downscaled view (max_side)",
        )
    try:
        if sixteen_bit:
            rgb = _decode_16bit_color(raw.read(), label)
            out = Image.fromarray(rgb)
        else:
            img.load()
            out = _to_rgb(img)
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageLoadError(label, f"not enough memory to decode {w}x{h} pixels") from None
    except Exception as exc:
        raise ImageLoadError(label, f"corrupt or truncated image data ({exc})") from exc
    transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    if transpose is not None:
        out = out.transpose(transpose)
    if max_side is not None and max(out.size) > max_side:
        scale = max_side / max(out.size)
        size = (max(1, round(out.size[0] * scale)), max(1, round(out.size[1] * scale)))
        out = out.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    arr = np.asarray(out, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageLoadError(label, f"decoded to an unexpected shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Linear map of the real value range [min, max] to [0, 255] (see module docstring)."""
    v = values.astype(np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return np.zeros(values.shape, dtype=np.uint8)
    lo, hi = float(finite.min()), float(finite.max())
    if hi == lo:
        return np.full(values.shape, 0 if hi == 0 else 255, dtype=np.uint8)
    scaled = np.nan_to_num((v - lo) * (255.0 / (hi - lo)), nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        grey = _scale_to_uint8(np.asarray(img))
        return Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2))
    if mode in ("LA", "La"):
        return img.getchannel("L").convert("RGB")
    if mode in ("RGBA", "RGBa", "RGBX"):
        return Image.fromarray(np.asarray(img)[:, :, :3])
    if mode in ("P", "PA"):
        return img.convert("RGBA").convert("RGB") if mode == "PA" else img.convert("RGB")
    return img.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV


def _decode_16bit_color(data: bytes, label: PathLike | str) -> np.ndarray:
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageLoadError(label, "OpenCV could not decode its 16-bit colour samples")
    rgb = arr[:, :, 2::-1]  # BGR(A) -> RGB, alpha dropped
    return _scale_to_uint8(rgb)


def orient_array(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an (H, W, ...) array from the stored frame into the displayed frame.

    The same transforms ``load_image`` applies for EXIF ``orientation`` 2-8 (others: copy).
    """
    a = np.asarray(arr)
    ops = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: x.swapaxes(0, 1),
        6: lambda x: np.rot90(x, -1),
        7: lambda x: np.rot90(x, 2).swapaxes(0, 1),
        8: lambda x: np.rot90(x, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(a) if op is not None else a)


def orient_points(points: np.ndarray, orientation: int, stored_size: tuple[int, int]) -> np.ndarray:
    """Map (N, 2) x, y pixel-edge coordinates from the stored frame to the displayed frame.

    ``stored_size`` is (height, width) of the stored image. Matches ``orient_array``.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    h, w = stored_size
    x, y = p[:, 0], p[:, 1]
    table = {
        2: (w - x, y),
        3: (w - x, h - y),
        4: (x, h - y),
        5: (y, x),
        6: (h - y, x),
        7: (h - y, w - x),
        8: (y, w - x),
    }
    nx, ny = table.get(orientation, (x, y))
    return np.stack([nx, ny], axis=1)


def stored_size_and_orientation(path: PathLike) -> tuple[tuple[int, int], int]:
    """((height, width) as stored in the file, EXIF orientation 1-8), from the header only."""
    with _open(path) as img:
        return (img.size[1], img.size[0]), exif_orientation(img)
