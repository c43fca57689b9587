"""Reading images for the model and the screen, in the frame the user sees.

Every loader returns an (H, W, 3) uint8 RGB array in the *displayed* frame: the EXIF
orientation (values 2-8) is applied; any other value (0, 1, missing, garbage) means
"as stored". Masks and exported annotations use this displayed frame too. The orientation
is applied exactly once: Pillow 13 turns TIFFs itself (and reports their ``.size`` in the
displayed frame) and OpenCV's TIFF decoder does too; both are detected on the decoded
data (tile extents, a removed tag, a one-off probe of OpenCV), not from version numbers.

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
  (the high byte of each sample) is used for it. Integer samples are mapped through a
  65536-entry lookup table, so the conversion needs about 1 byte per sample besides the
  decoded data (a 16-bit RGB decode peaks near 9-10 bytes/pixel including the result).

Sizes: an image is refused (``ImageLoadError``) when it has more than ``MAX_PIXELS``
(400 million, e.g. 20000x20000) pixels. A full-resolution decode is allowed up to
``MAX_FULL_DECODE_PIXELS`` (120 million, e.g. 12000x10000: 360 MB as RGB). Larger images
can still be opened as a downscaled view with ``load_image(path, max_side=N)``: JPEGs are
then decoded at 1/2, 1/4 or 1/8 scale by libjpeg (Pillow's draft mode), so a 20000x15000
JPEG never occupies more than about 15 MB of pixels. Other formats above
``MAX_FULL_DECODE_PIXELS`` cannot be decoded partially and raise ``ImageLoadError``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import struct
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


def file_stamp(path: PathLike) -> tuple[int, int] | None:
    """(size in bytes, modification time in ns) of a file, or None when it cannot be
    found. The cheap test for "this file may have changed": a different stamp calls for
    ``content_hash``; the same stamp is taken to mean the same bytes."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return int(st.st_size), int(st.st_mtime_ns)


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
        return _displayed_size(img)


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
        return _displayed_size(img)


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


def _stored_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the pixel data as stored in the file, before any orientation.

    Pillow 13's TIFF plugin reports ``.size`` in the displayed frame already (it swaps it
    for orientations 5-8 and turns the pixels itself when they are loaded); the stored
    frame is still what its tile list covers. Other formats (and older Pillows) report
    the stored size. Header only: call it before the pixels are loaded.
    """
    w, h = img.size
    if img.format == "TIFF":
        tiles = getattr(img, "tile", None) or []
        if tiles:
            tw = max(int(t[1][2]) for t in tiles)
            th = max(int(t[1][3]) for t in tiles)
            if (tw, th) == (h, w):
                return tw, th
    return w, h


def _displayed_size(img: Image.Image) -> tuple[int, int]:
    """(height, width) in the displayed frame, from the header only."""
    w, h = _stored_size(img)
    if exif_orientation(img) >= 5:
        w, h = h, w
    return h, w


def _pillow_oriented(img: Image.Image, orientation: int, stored: tuple[int, int]) -> bool:
    """After ``img.load()``: whether Pillow has already turned the pixels by ``orientation``.

    Pillow 13 does so for TIFF (``ImageOps.exif_transpose`` in its ``load_end``), which
    also removes the tag from the image's EXIF; older Pillows leave both alone. Detected
    from the loaded image itself, not from Pillow's version: a size that is no longer
    the stored one, or an orientation tag that is gone.
    """
    if img.format != "TIFF" or orientation == 1:
        return False
    return img.size != stored or exif_orientation(img) != orientation


@functools.cache
def _opencv_orients_tiff() -> frozenset[int]:
    """The orientations (2-8) that OpenCV's TIFF decoder applies itself with
    ``IMREAD_UNCHANGED`` (OpenCV 5 applies all of them; some builds may apply none).

    Probed once on tiny 16-bit RGB TIFFs with distinct pixels, so the answer is what the
    installed OpenCV does, whatever its version.
    """
    import cv2

    stored = np.arange(2 * 3 * 3, dtype=np.uint16).reshape(2, 3, 3) * 1000
    applied = set()
    for orientation in range(2, 9):
        data = _baseline_tiff(stored, orientation)
        got = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if got is not None and got.ndim == 3:
            rgb = got[:, :, 2::-1]
            displayed = orient_array(stored, orientation)
            if rgb.shape == displayed.shape and np.array_equal(rgb, displayed):
                applied.add(orientation)
    return frozenset(applied)


def _baseline_tiff(arr: np.ndarray, orientation: int = 1) -> bytes:
    """A minimal uncompressed little-endian TIFF of an (H, W) or (H, W, 3) uint8/uint16
    array with an Orientation tag (used to probe decoders; also handy in tests)."""
    a = np.ascontiguousarray(arr)
    h, w = a.shape[:2]
    spp = 1 if a.ndim == 2 else a.shape[2]
    bits = a.dtype.itemsize * 8
    pixels = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
    entries = [  # (tag, type: 3 SHORT / 4 LONG, count, value or offset)
        (256, 4, 1, w),
        (257, 4, 1, h),
        (258, 3, spp, bits),
        (259, 3, 1, 1),
        (262, 3, 1, 2 if spp == 3 else 1),
        (273, 4, 1, 0),
        (274, 3, 1, orientation),
        (277, 3, 1, spp),
        (278, 4, 1, h),
        (279, 4, 1, len(pixels)),
        (284, 3, 1, 1),
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    bits_offset = 8 + ifd_size
    bits_block = struct.pack(f"<{spp}H", *([bits] * spp)) if spp > 2 else b""
    data_offset = bits_offset + len(bits_block)
    out = [b"II*\x00", struct.pack("<I", 8), struct.pack("<H", len(entries))]
    for tag, typ, count, value in entries:
        if tag == 258 and bits_block:
            value = bits_offset
        elif tag == 273:
            value = data_offset
        if typ == 3 and not (tag == 258 and bits_block):
            out.append(struct.pack("<HHIHH", tag, typ, count, value, 0))
        else:
            out.append(struct.pack("<HHII", tag, typ, count, value))
    out += [struct.pack("<I", 0), bits_block, pixels]
    return b"".join(out)


def _decode(
    img: Image.Image, label: PathLike | str, max_side: int | None, raw: _RawSource
) -> np.ndarray:
    sixteen_bit = _is_16bit_color(img)  # while the tile list still describes the file
    orientation = exif_orientation(img)
    stored = _stored_size(img)
    try:
        img.seek(0)
    except Exception:
        pass
    w, h = img.size
    if max_side is not None and img.format == "JPEG" and max(w, h) > max_side:
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale, never smaller than requested.
        scale = max_side / max(w, h)
        img.draft(
            "RGB" if img.mode != "L" else "L", (max(1, int(w * scale)), max(1, int(h * scale)))
        )
        w, h = img.size
        stored = img.size
    if w * h > MAX_FULL_DECODE_PIXELS:
        raise ImageLoadError(
            label,
            f"{w}x{h} is too large to decode at full resolution (limit "
            f"{MAX_FULL_DECODE_PIXELS / 1e6:.0f} megapixels); only JPEG files this large "
            "can be opened, and only as a downscaled view (max_side)",
        )
    # `pixels` is a Pillow image or a uint8 array ((H, W) grey or (H, W, 3) RGB): the
    # 16-bit paths stay in numpy, which keeps their memory near the size of the result.
    pixels: Image.Image | np.ndarray
    try:
        if sixteen_bit:
            pixels = _decode_16bit_color(raw, label)
            already = (
                img.format == "TIFF"
                and (
                    orientation in _opencv_orients_tiff()
                    # (H, W) equal to the stored (W, H): a non-square image turned already
                    or (orientation >= 5 and pixels.shape[:2] == stored and stored[0] != stored[1])
                )
            )
        else:
            img.load()
            already = _pillow_oriented(img, orientation, stored)
            pixels = _to_rgb(img)
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageLoadError(label, f"not enough memory to decode {w}x{h} pixels") from None
    except Exception as exc:
        raise ImageLoadError(label, f"corrupt or truncated image data ({exc})") from exc
    if not already:
        if isinstance(pixels, np.ndarray):
            pixels = orient_array(pixels, orientation)
        else:
            transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
            if transpose is not None:
                pixels = pixels.transpose(transpose)
    size = (pixels.shape[1], pixels.shape[0]) if isinstance(pixels, np.ndarray) else pixels.size
    displayed = stored[::-1] if orientation >= 5 else stored
    if img.format == "TIFF" and size != displayed:  # orientation applied twice or not at all
        raise ImageLoadError(
            label, f"decoded to {size[0]}x{size[1]} pixels, expected {displayed[0]}x{displayed[1]}"
        )
    if max_side is not None and max(size) > max_side:
        if isinstance(pixels, np.ndarray):
            pixels = Image.fromarray(pixels)
        scale = max_side / max(size)
        new = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        pixels = pixels.resize(new, Image.Resampling.LANCZOS, reducing_gap=2.0)
    arr = np.asarray(pixels, dtype=np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageLoadError(label, f"decoded to an unexpected shape {arr.shape}")
    return np.ascontiguousarray(arr)


_SCALE_CHUNK = 1 << 20
"""Samples per block in the floating-point path of ``_scale_to_uint8``."""


def _scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Linear map of the real value range [min, max] to [0, 255] (see module docstring).

    ``out = round(255 * (v - min) / (max - min))`` computed in float64 (NumPy's ``rint``:
    halves go to the even neighbour), clipped to 0..255; non-finite samples are ignored
    for the range and map to 0 (NaN, -inf) or 255 (+inf). Integer samples in 0..65535
    go through a lookup table of that rule (about 1 byte per sample: the result); other
    data is converted in blocks of ``_SCALE_CHUNK`` samples, never all at once.
    """
    a = np.asarray(values)
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.uint8)
    if a.dtype.kind in "uib":
        lo_i, hi_i = int(a.min()), int(a.max())
        if hi_i == lo_i:
            return np.full(a.shape, 0 if hi_i == 0 else 255, dtype=np.uint8)
        if lo_i >= 0 and hi_i <= 0xFFFF:
            levels = np.arange(hi_i + 1, dtype=np.float64)
            lut = _scale_block(levels, float(lo_i), float(hi_i))
            return lut[a]
    return _scale_float(a)


def _scale_block(block: np.ndarray, lo: float, hi: float) -> np.ndarray:
    v = block.astype(np.float64, copy=False)
    scaled = np.nan_to_num((v - lo) * (255.0 / (hi - lo)), nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _scale_float(a: np.ndarray) -> np.ndarray:
    flat = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(1, -1)
    step = max(1, _SCALE_CHUNK // max(1, flat.shape[1]))
    lo, hi = np.inf, -np.inf
    for s in range(0, flat.shape[0], step):
        block = flat[s : s + step].astype(np.float64)
        finite = block[np.isfinite(block)]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    if lo > hi:  # no finite sample
        return np.zeros(a.shape, dtype=np.uint8)
    if hi == lo:
        return np.full(a.shape, 0 if hi == 0 else 255, dtype=np.uint8)
    out = np.empty(flat.shape, dtype=np.uint8)
    for s in range(0, flat.shape[0], step):
        out[s : s + step] = _scale_block(flat[s : s + step], lo, hi)
    return out.reshape(a.shape)


def _to_rgb(img: Image.Image) -> Image.Image | np.ndarray:
    """RGB Pillow image, or for 16/32-bit grey a (H, W) uint8 array (expanded later)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _scale_to_uint8(np.asarray(img))
    if mode in ("LA", "La"):
        return img.getchannel("L").convert("RGB")
    if mode in ("RGBA", "RGBa", "RGBX"):
        return Image.fromarray(np.asarray(img)[:, :, :3])
    if mode in ("P", "PA"):
        return img.convert("RGBA").convert("RGB") if mode == "PA" else img.convert("RGB")
    return img.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV


def _decode_16bit_color(raw: _RawSource, label: PathLike | str) -> np.ndarray:
    """(H, W, 3) uint8 RGB, scaled from all 16 bits, in the frame OpenCV returns."""
    import cv2

    data = raw.read()
    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    del data  # the file's bytes are not needed next to the decoded and scaled copies
    if arr is None or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageLoadError(label, "OpenCV could not decode its 16-bit colour samples")
    return _scale_to_uint8(arr[:, :, 2::-1])  # BGR(A) -> RGB, alpha dropped


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
        w, h = _stored_size(img)
        return (h, w), exif_orientation(img)
