"""Exact full-resolution views of SAM's low-resolution logits, computed only where needed.

SAM returns (256, 256) logits in the padded model-input frame. Meta's pipeline upscales
every candidate to the full image (bilinear to the square input, crop the padding,
bilinear to the original size) before it filters, which is most of its run time.

Both resizes are linear, separable and convex (each output value is a weighted mean of
input values with non-negative weights summing to 1), so the full-resolution logits are
`A_y @ L @ A_x.T` with two fixed (H x 256) and (W x 256) interpolation matrices. Where
all low-resolution logits that feed a pixel are <= t, the pixel is <= t as well. So for
any threshold t, the pixels above t lie inside the window fed by the low-resolution
pixels above t, and a candidate's stability score, mask and box can be computed exactly
from that window alone: small masks cost a small product, and only large masks pay for a
full upscale.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from samstudio.inference.preprocess import upscale_logits


def bilinear_matrix(out_len: int, in_len: int) -> np.ndarray:
    """(out_len, in_len) float64 weights of 1-D bilinear resizing with half-pixel centres.

    The sampling of torch's `interpolate(mode="bilinear", align_corners=False)` and of
    OpenCV's INTER_LINEAR without antialiasing: output i reads input position
    (i + 0.5) * in_len / out_len - 0.5, clamped to the ends.
    """
    src = (np.arange(out_len, dtype=np.float64) + 0.5) * (in_len / out_len) - 0.5
    src = np.clip(src, 0.0, in_len - 1)
    lo = np.minimum(np.floor(src).astype(np.int64), in_len - 1)
    hi = np.minimum(lo + 1, in_len - 1)
    frac = src - lo
    matrix = np.zeros((out_len, in_len), np.float64)
    rows = np.arange(out_len)
    np.add.at(matrix, (rows, lo), 1.0 - frac)
    np.add.at(matrix, (rows, hi), frac)
    return matrix


@dataclass(frozen=True)
class LogitWindow:
    """Full-resolution logits of one candidate inside a window of the frame.

    y0, x0: top-left of the window in the full-resolution (crop) frame.
    logits: (h, w) float32. Every pixel outside the window is <= the threshold the
    window was computed for.
    """

    y0: int
    x0: int
    logits: np.ndarray


class LogitUpscaler:
    """Exact windows of `upscale_logits` for one (input_size, original_size) pair.

    input_size: (h, w) of the resized image inside the model's square input;
    original_size: (H, W) of the frame the masks belong to; image_size: the model's
    square input side (1024 for SAM); low_res: side of the low-res logits (256).
    """

    # Above this fraction of the frame, OpenCV's full resize is cheaper than the product.
    FULL_RESIZE_FRACTION = 0.35

    def __init__(
        self,
        input_size: tuple[int, int],
        original_size: tuple[int, int],
        image_size: int,
        low_res: int = 256,
    ) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.original_size = (int(original_size[0]), int(original_size[1]))
        self.image_size = int(image_size)
        self.low_res = int(low_res)
        square = bilinear_matrix(image_size, low_res)
        h_in, w_in = self.input_size
        height, width = self.original_size
        self._ay = (bilinear_matrix(height, h_in) @ square[:h_in]).astype(np.float32)
        self._ax = (bilinear_matrix(width, w_in) @ square[:w_in]).astype(np.float32)
        self._row_span = _influence_spans(self._ay)
        self._col_span = _influence_spans(self._ax)
        # Low-res rows/columns read by each full-resolution row/column.
        self._row_taps = _influence_spans(self._ay.T)
        self._col_taps = _influence_spans(self._ax.T)
        self._row_groups = _tap_groups(self._row_taps)
        self._col_groups = _tap_groups(self._col_taps)
        # Low-res rows/columns that feed no full-resolution pixel (the padding).
        self._row_used = self._row_span[:, 1] >= self._row_span[:, 0]
        self._col_used = self._col_span[:, 1] >= self._col_span[:, 0]

    def window(self, low_res_logits: np.ndarray, threshold: float) -> LogitWindow | None:
        """Full-resolution logits around every pixel above `threshold`, or None if none is.

        low_res_logits: (low_res, low_res) float32 in the padded model-input frame.
        """
        above = low_res_logits > threshold
        rows = np.flatnonzero(above.any(axis=1) & self._row_used)
        if rows.size == 0:
            return None
        cols = np.flatnonzero(above.any(axis=0) & self._col_used)
        if cols.size == 0:
            return None
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        c0, c1 = int(cols[0]), int(cols[-1]) + 1
        y0, y1 = int(self._row_span[r0:r1, 0].min()), int(self._row_span[r0:r1, 1].max()) + 1
        x0, x1 = int(self._col_span[c0:c1, 0].min()), int(self._col_span[c0:c1, 1].max()) + 1
        height, width = self.original_size
        if (y1 - y0) * (x1 - x0) > self.FULL_RESIZE_FRACTION * height * width:
            full = upscale_logits(
                low_res_logits[None], self.input_size, self.original_size, self.image_size
            )[0]
            return LogitWindow(y0, x0, full[y0:y1, x0:x1])
        # Every low-res row/column that feeds the window, not only those above threshold.
        r0, r1 = int(self._row_taps[y0, 0]), int(self._row_taps[y1 - 1, 1]) + 1
        c0, c1 = int(self._col_taps[x0, 0]), int(self._col_taps[x1 - 1, 1]) + 1
        ay = self._ay[y0:y1, r0:r1]
        ax = self._ax[x0:x1, c0:c1]
        block = low_res_logits[r0:r1, c0:c1]
        # Pick the cheaper association of the triple product.
        nh, nr, nc, nw = y1 - y0, r1 - r0, c1 - c0, x1 - x0
        if nh * nr * nc + nh * nc * nw <= nr * nc * nw + nh * nr * nw:
            logits = (ay @ block) @ ax.T
        else:
            logits = ay @ (block @ ax.T)
        return LogitWindow(y0, x0, np.ascontiguousarray(logits, dtype=np.float32))

    def is_large(self, low_res_logits: np.ndarray, threshold: float) -> bool:
        """True when the pixels above `threshold` span a large part of the frame (where an
        exact window costs about a full upscale)."""
        above = low_res_logits > threshold
        rows = np.flatnonzero(above.any(axis=1) & self._row_used)
        cols = np.flatnonzero(above.any(axis=0) & self._col_used)
        if rows.size == 0 or cols.size == 0:
            return False
        span = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
        return bool(span > self.FULL_RESIZE_FRACTION * self._row_used.sum() * self._col_used.sum())

    def count_bounds(self, low_res_logits: np.ndarray, threshold: float) -> tuple[int, int]:
        """(lower, upper) bounds on the number of full-resolution pixels above `threshold`.

        A pixel is surely above when every low-res value it reads is above, and can only be
        above when at least one is. Full-resolution rows (columns) that read the same span
        of low-res rows (columns) are counted together, so this costs a few operations on
        the low-res grid, not on the full frame.
        """
        above = low_res_logits > threshold
        some = _rectangle_counts(above, self._row_groups, self._col_groups)
        not_all = _rectangle_counts(~above, self._row_groups, self._col_groups)
        height, width = self.original_size
        return height * width - not_all, some

    def stability_upper_bound(
        self, low_res_logits: np.ndarray, threshold: float, offset: float
    ) -> float:
        """An upper bound of the exact stability score (count above threshold+offset over
        count above threshold-offset at full resolution); 1.0 when it cannot bound it."""
        _, inter_high = self.count_bounds(low_res_logits, threshold + offset)
        union_low, _ = self.count_bounds(low_res_logits, threshold - offset)
        if union_low <= 0:
            return 1.0
        return min(1.0, inter_high / union_low)

    def full(self, low_res_logits: np.ndarray) -> np.ndarray:
        """(H, W) float32 logits of the whole frame (OpenCV, as `upscale_logits`)."""
        return upscale_logits(
            low_res_logits[None], self.input_size, self.original_size, self.image_size
        )[0]


def _influence_spans(matrix: np.ndarray) -> np.ndarray:
    """(n_in, 2) int64: first and last output index with a non-zero weight for each input
    column of an (n_out, n_in) interpolation matrix; (0, -1) for columns with none."""
    nonzero = matrix > 0
    used = nonzero.any(axis=0)
    first = np.where(used, nonzero.argmax(axis=0), 0)
    last = np.where(used, matrix.shape[0] - 1 - nonzero[::-1].argmax(axis=0), -1)
    return np.stack([first, last], axis=1).astype(np.int64)


def _tap_groups(taps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-resolution lines grouped by the span of low-res lines they read:
    (first low-res line, span length, number of full-resolution lines) per group."""
    spans, counts = np.unique(taps, axis=0, return_counts=True)
    return spans[:, 0], spans[:, 1] - spans[:, 0] + 1, counts.astype(np.int64)


def _rectangle_counts(
    flags: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    cols: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> int:
    """Number of full-resolution pixels whose low-res tap rectangle holds a True flag."""
    r_start, r_len, r_count = rows
    c_start, c_len, c_count = cols
    cum = np.zeros((flags.shape[0] + 1, flags.shape[1]), np.int32)
    np.cumsum(flags, axis=0, out=cum[1:])
    by_rows = (cum[r_start + r_len] - cum[r_start]) > 0  # (row groups, low-res columns)
    cum2 = np.zeros((by_rows.shape[0], by_rows.shape[1] + 1), np.int32)
    np.cumsum(by_rows, axis=1, out=cum2[:, 1:])
    hit = (cum2[:, c_start + c_len] - cum2[:, c_start]) > 0  # (row groups, column groups)
    return int(r_count @ hit.astype(np.int64) @ c_count)


def resize_nearest_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) bool -> (H, W) bool by nearest neighbour (coverage maps, not outputs)."""
    return (
        cv2.resize(mask.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST) > 0
    )
