"""Reversible pixel diffs between two binary masks, stored as a bounding-box slice.

An edit of a mask (brush stroke, eraser stroke, replacement) is recorded as the
smallest box that contains every changed pixel, which pixels inside that box changed,
and their old values. Redo sets the changed pixels to the negation of their old
values; undo sets them back to the old values. Both are exact at pixel level and cost
time and space proportional to the box, not to the image.

Frames: masks are (H, W) bool arrays in the displayed image frame; the box is
(y0, x0, y1, x1) in pixels, end-exclusive (a numpy slice `mask[y0:y1, x0:x1]`).

Serialised form (`to_bytes`): an 8-byte magic and version, six little-endian uint32
(H, W, y0, x0, y1, x1), then zlib of `packbits(changed)` followed by
`packbits(old values of the changed pixels in row-major order)`.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

_MAGIC = b"SSMDIFF1"
_HEADER = struct.Struct("<8s6I")


class MaskDiffError(ValueError):
    """A diff does not fit the mask it is applied to, or its bytes are damaged."""


@dataclass(frozen=True, eq=False)
class MaskDiff:
    """The change from one (H, W) bool mask to another.

    Attributes:
        shape: (H, W) of the full masks.
        box: (y0, x0, y1, x1), end-exclusive, the bounding box of the changed pixels
            (all zeros for an empty diff).
        changed: (y1 - y0, x1 - x0) bool, True where the pixel changed.
        old: (n_changed,) bool, the old values of the changed pixels, row-major order.
    """

    shape: tuple[int, int]
    box: tuple[int, int, int, int]
    changed: np.ndarray
    old: np.ndarray

    @classmethod
    def between(cls, old_mask: np.ndarray, new_mask: np.ndarray) -> MaskDiff:
        """The diff that turns `old_mask` into `new_mask` (both (H, W) bool, same shape)."""
        old_mask = _as_mask(old_mask, "old mask")
        new_mask = _as_mask(new_mask, "new mask")
        if old_mask.shape != new_mask.shape:
            raise MaskDiffError(
                f"masks differ in shape: {old_mask.shape} vs {new_mask.shape} (both are (H, W))"
            )
        shape = (int(old_mask.shape[0]), int(old_mask.shape[1]))
        delta = old_mask != new_mask
        rows = np.flatnonzero(delta.any(axis=1))
        if rows.size == 0:
            return cls(shape, (0, 0, 0, 0), np.zeros((0, 0), bool), np.zeros(0, bool))
        cols = np.flatnonzero(delta[rows[0] : rows[-1] + 1].any(axis=0))
        y0, y1 = int(rows[0]), int(rows[-1]) + 1
        x0, x1 = int(cols[0]), int(cols[-1]) + 1
        changed = np.ascontiguousarray(delta[y0:y1, x0:x1])
        old = old_mask[y0:y1, x0:x1][changed]
        return cls(shape, (y0, x0, y1, x1), changed, old)

    @classmethod
    def from_stroke(cls, mask: np.ndarray, stroke: np.ndarray, value: bool) -> MaskDiff:
        """The diff of painting `stroke` ((H, W) bool) onto `mask` with `value`.

        Only the stroke's bounding box is examined, so a small stroke on a large image is
        cheap. Pixels that already hold `value` are not part of the diff.
        """
        mask = _as_mask(mask, "mask")
        stroke = _as_mask(stroke, "stroke")
        if mask.shape != stroke.shape:
            raise MaskDiffError(
                f"stroke shape {stroke.shape} does not match the mask shape {mask.shape}"
            )
        shape = (int(mask.shape[0]), int(mask.shape[1]))
        rows = np.flatnonzero(stroke.any(axis=1))
        if rows.size == 0:
            return cls(shape, (0, 0, 0, 0), np.zeros((0, 0), bool), np.zeros(0, bool))
        cols = np.flatnonzero(stroke[rows[0] : rows[-1] + 1].any(axis=0))
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        window = mask[y0:y1, x0:x1]
        target = np.where(stroke[y0:y1, x0:x1], bool(value), window)
        sub = cls.between(window, target)
        if sub.is_empty:
            return cls(shape, (0, 0, 0, 0), sub.changed, sub.old)
        sy0, sx0, sy1, sx1 = sub.box
        return cls(shape, (y0 + sy0, x0 + sx0, y0 + sy1, x0 + sx1), sub.changed, sub.old)

    @property
    def is_empty(self) -> bool:
        """True when no pixel changes."""
        return int(self.old.size) == 0

    @property
    def n_changed(self) -> int:
        """Number of changed pixels."""
        return int(self.old.size)

    def apply(self, mask: np.ndarray, in_place: bool = False) -> np.ndarray:
        """Redo: `mask` ((H, W) bool, the old state) with the change applied.

        Returns a copy (same memory layout) unless `in_place`, which writes into `mask`
        (a bool array) and touches only the box.
        """
        return self._write(mask, forward=True, in_place=in_place)

    def revert(self, mask: np.ndarray, in_place: bool = False) -> np.ndarray:
        """Undo: `mask` ((H, W) bool, the new state) with the change taken back."""
        return self._write(mask, forward=False, in_place=in_place)

    def _write(self, mask: np.ndarray, forward: bool, in_place: bool) -> np.ndarray:
        if in_place and (not isinstance(mask, np.ndarray) or mask.dtype != bool):
            raise MaskDiffError("an in-place diff needs a bool numpy array")
        mask = _as_mask(mask, "mask")
        if tuple(mask.shape) != self.shape:
            raise MaskDiffError(
                f"diff is for a mask of shape {self.shape}, got {tuple(mask.shape)}"
            )
        out = mask if in_place else mask.copy(order="K")
        if self.is_empty:
            return out
        y0, x0, y1, x1 = self.box
        window = out[y0:y1, x0:x1]
        expected = self.old if forward else ~self.old
        if not np.array_equal(window[self.changed], expected):
            which = "old" if forward else "new"
            raise MaskDiffError(f"the mask does not hold the diff's {which} values")
        window[self.changed] = ~self.old if forward else self.old
        return out

    def to_bytes(self) -> bytes:
        """Compact serialisation (see the module docstring)."""
        h, w = self.shape
        y0, x0, y1, x1 = self.box
        body = np.packbits(self.changed, axis=None).tobytes() + np.packbits(self.old).tobytes()
        return _HEADER.pack(_MAGIC, h, w, y0, x0, y1, x1) + zlib.compress(body, 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> MaskDiff:
        """Inverse of `to_bytes`; raises MaskDiffError on damaged bytes."""
        if len(data) < _HEADER.size:
            raise MaskDiffError(f"mask diff is truncated ({len(data)} bytes)")
        magic, h, w, y0, x0, y1, x1 = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise MaskDiffError("not a mask diff (bad magic bytes)")
        if not (0 <= y0 <= y1 <= h and 0 <= x0 <= x1 <= w):
            raise MaskDiffError(f"mask diff box {(y0, x0, y1, x1)} lies outside {(h, w)}")
        try:
            body = zlib.decompress(data[_HEADER.size :])
        except zlib.error as exc:
            raise MaskDiffError(f"mask diff body is damaged: {exc}") from exc
        bh, bw = y1 - y0, x1 - x0
        n_box = bh * bw
        n_box_bytes = (n_box + 7) // 8
        if len(body) < n_box_bytes:
            raise MaskDiffError("mask diff body is truncated")
        bits = np.unpackbits(np.frombuffer(body[:n_box_bytes], np.uint8), count=n_box)
        changed = bits.astype(bool).reshape(bh, bw)
        n_changed = int(changed.sum())
        old_bytes = body[n_box_bytes:]
        if len(old_bytes) != (n_changed + 7) // 8:
            raise MaskDiffError("mask diff body has the wrong length")
        old = np.unpackbits(np.frombuffer(old_bytes, np.uint8), count=n_changed).astype(bool)
        return cls((h, w), (y0, x0, y1, x1), changed, old)


def _as_mask(mask: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise MaskDiffError(f"{what} must be 2-D (H, W), got shape {arr.shape}")
    return arr if arr.dtype == bool else arr.astype(bool)
