"""Which grid points adaptive mode decodes (SAM Studio, not in the paper).

Adaptive mode prompts a crop with a subset of its full grid first (the coarse grid: the
full grid's points nearest to the cells of a coarser grid, so no decoding is wasted and
the full grid's masks stay reachable), then refines in passes. An undecoded point of the
full grid is decoded when a decoded point near it (for a coarse point: closer than its
coarse neighbours, i.e. one fine cell less than a coarse cell and at least one; for a
refinement point: one fine cell) *asks for refinement*: one of its masks
passed the filters, or nearly did (see `NEAR_MISS_MARGIN`). Points no one asks about
(the model is confident of nothing around them) are never decoded.

A point that is asked about is still skipped when it is *settled*: the finest (smallest)
kept masks of its decoded neighbours that contain it are at least two and all agree
(IoU >= `AGREEMENT_IOU`). SAM returns nested masks (whole / part / subpart) for one
point, so lying inside some neighbour's *whole* says nothing about the point's own part
and subpart: a neighbour whose finest mask is the whole and another whose finest mask is
a part, both holding the point, disagree, and the point is decoded. Neighbours whose
finest mask does not hold the point (another object across an edge) do not count.

Passes late in the refinement ask about a few points each, and each would cost a
decoder call of its own: a refinement batch that would go out partly empty is filled
with the undecoded points nearest to its points (`RefinementPlan.fill`), which the next
passes would most likely ask about (measured with the stage-5 demo model: 10% fewer
calls, 8% more points; BENCHMARKS.md, adaptive mode).

Memory: for each decoded point only the indices of the grid points inside its finest
mask are kept (the masks themselves are the candidates the generator keeps anyway).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = [
    "AGREEMENT_IOU",
    "FILL_REACH",
    "NEAR_MISS_MARGIN",
    "FinestMask",
    "RefinementPlan",
    "coarse_subset",
]

NEAR_MISS_MARGIN = 0.1
"""A decoded point asks for refinement when a mask of it has predicted IoU above
pred_iou_thresh - margin and low-resolution stability at least stability_score_thresh -
margin, although none passed the filters (a weak model's masks flicker around them)."""

FILL_REACH = 2
"""A batch that would go out partly empty is filled with undecoded points at most this
many fine cells from its points (`RefinementPlan.fill`)."""

AGREEMENT_IOU = 0.95
"""Finest masks of neighbouring points agree when their IoU is at least this."""


class FinestMask(Protocol):
    """A kept mask as adaptive mode reads it: a window of the original frame.

    box: inclusive XYXY in the original frame; y0, x0: the window's top-left.
    """

    box: tuple[int, int, int, int]
    y0: int
    x0: int

    def window_mask(self) -> np.ndarray: ...


def coarse_subset(full_n: int, coarse_n: int) -> np.ndarray:
    """(coarse_n**2,) indices into the row-major full_n x full_n grid of `point_grid`:
    in each direction the full grid's point nearest to each coarse cell's centre."""
    if not 1 <= coarse_n <= full_n:
        raise ValueError(f"the coarse grid ({coarse_n}) must be 1..{full_n} points per side")
    axis = np.minimum(full_n - 1, ((np.arange(coarse_n) + 0.5) * full_n / coarse_n).astype(int))
    axis = np.unique(axis)
    return (axis[:, None] * full_n + axis[None, :]).ravel()


class RefinementPlan:
    """The adaptive plan of one crop's full grid.

    points: (N, 2) float XY of the full grid in the crop frame (`crop_points`), row-major
    full_n x full_n. origin: (x0, y0) of the crop in the original frame.
    """

    def __init__(
        self,
        points: np.ndarray,
        full_n: int,
        coarse_n: int,
        crop_size: tuple[int, int],
        origin: tuple[int, int],
    ) -> None:
        height, width = crop_size
        self.points = np.asarray(points, dtype=np.float64)
        self.pixels = np.floor(self.points).astype(np.int64) + np.array(origin, dtype=np.int64)
        self.full_n = full_n
        self.coarse = coarse_subset(full_n, coarse_n)
        self.fine_cell = np.array([width / full_n, height / full_n])
        self.coarse_cell = np.array([width / coarse_n, height / coarse_n])
        n = len(self.points)
        self.decoded = np.zeros(n, dtype=bool)
        self.asks = np.zeros(n, dtype=bool)
        self.ahead = np.zeros(n, dtype=bool)  # decoded by `fill`, not asked about yet
        self.promoted = 0  # points decoded ahead that the last `next` asked about
        self.reach = np.zeros((n, 2))
        self.finest: dict[int, FinestMask] = {}
        self.inside: dict[int, np.ndarray] = {}  # point -> grid points in its finest mask
        self._agree: dict[tuple[int, int], bool] = {}

    def first(self) -> np.ndarray:
        """Indices of the coarse grid, to decode first."""
        self.decoded[self.coarse] = True
        # the points between a coarse point and its coarse neighbours, not up to them: a
        # point next to the neighbour is that neighbour's to ask about (measured: the
        # same recall, 6.6-7.7% fewer decoded points; BENCHMARKS.md, adaptive mode)
        self.reach[self.coarse] = np.maximum(self.coarse_cell - self.fine_cell, self.fine_cell)
        return self.coarse

    def record(self, index: int, asks: bool, finest: FinestMask | None) -> None:
        """What decoding point `index` gave: whether it asks for refinement, and its
        finest kept mask (None when no mask of it passed the filters)."""
        self.asks[index] = asks or finest is not None
        if finest is None:
            return
        self.finest[index] = finest
        x0, y0, x1, y1 = finest.box
        cols, rows = self.pixels[:, 0], self.pixels[:, 1]
        near = np.flatnonzero((cols >= x0) & (cols <= x1) & (rows >= y0) & (rows <= y1))
        win = finest.window_mask()
        self.inside[index] = near[win[rows[near] - finest.y0, cols[near] - finest.x0]]

    def next(self) -> np.ndarray:
        """Indices of the next pass (empty when the plan is complete); marks them decoded.

        A point decoded ahead by `fill` is not decoded again when a pass asks about it:
        it is *promoted* (counted in `promoted`) and asks about its own neighbours from
        the next pass on, as if this pass had decoded it. Until then it asks about no one,
        so filling never changes which points the refinement asks about."""
        decoded = np.flatnonzero(self.decoded & ~self.ahead)
        askers = decoded[self.asks[decoded]]
        todo: list[int] = []
        promoted: list[int] = []
        if len(askers):
            for point in np.flatnonzero(~self.decoded | self.ahead):
                gap = np.abs(self.points[askers] - self.points[point])
                near = askers[(gap <= self.reach[askers] + 1e-6).all(axis=1)]
                if len(near) and not self._settled(int(point), near):
                    (promoted if self.ahead[point] else todo).append(int(point))
        self.ahead[promoted] = False
        self.reach[promoted] = self.fine_cell
        self.promoted = len(promoted)
        out = np.array(todo, dtype=np.int64)
        self.decoded[out] = True
        self.reach[out] = self.fine_cell
        return out

    def fill(self, queue: np.ndarray, room: int) -> np.ndarray:
        """Up to `room` undecoded points to decode beside `queue` (a batch that would
        otherwise go out partly empty): the points nearest to the queued ones, at most
        FILL_REACH fine cells away (in grid steps, diagonals counting one), the nearest
        first. They are what the next passes would most likely ask about; decoding
        them now saves those passes' calls. Marks them decoded *ahead*: they ask about
        no one until a pass asks about them (`next`)."""
        if room <= 0 or not len(queue):
            return np.zeros(0, dtype=np.int64)
        n = self.full_n
        rows, cols = np.divmod(np.asarray(queue, dtype=np.int64), n)
        steps = np.full(n * n, FILL_REACH + 1, dtype=np.int64)
        for dr in range(-FILL_REACH, FILL_REACH + 1):
            for dc in range(-FILL_REACH, FILL_REACH + 1):
                r, c = rows + dr, cols + dc
                inside = (r >= 0) & (r < n) & (c >= 0) & (c < n)
                near = r[inside] * n + c[inside]
                np.minimum.at(steps, near, max(abs(dr), abs(dc)))
        steps[self.decoded] = FILL_REACH + 1
        candidates = np.flatnonzero(steps <= FILL_REACH)
        out = candidates[np.argsort(steps[candidates], kind="stable")][:room]
        self.decoded[out] = True
        self.ahead[out] = True
        return out

    def _settled(self, point: int, near: np.ndarray) -> bool:
        holders = [int(j) for j in near if int(j) in self.finest and point in self.inside[int(j)]]
        if len(holders) < 2:
            return False
        return all(self._agrees(holders[0], j) for j in holders[1:])

    def _agrees(self, a: int, b: int) -> bool:
        key = (min(a, b), max(a, b))
        if key not in self._agree:
            self._agree[key] = _window_iou(self.finest[a], self.finest[b]) >= AGREEMENT_IOU
        return self._agree[key]


def _window_iou(a: FinestMask, b: FinestMask) -> float:
    """IoU of two windowed masks, compared inside the union of their windows."""
    wa, wb = a.window_mask(), b.window_mask()
    y0, x0 = min(a.y0, b.y0), min(a.x0, b.x0)
    y1 = max(a.y0 + wa.shape[0], b.y0 + wb.shape[0])
    x1 = max(a.x0 + wa.shape[1], b.x0 + wb.shape[1])
    ma = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    mb = np.zeros_like(ma)
    ma[a.y0 - y0 : a.y0 - y0 + wa.shape[0], a.x0 - x0 : a.x0 - x0 + wa.shape[1]] = wa
    mb[b.y0 - y0 : b.y0 - y0 + wb.shape[0], b.x0 - x0 : b.x0 - x0 + wb.shape[1]] = wb
    union = np.count_nonzero(ma | mb)
    return float(np.count_nonzero(ma & mb) / union) if union else 1.0
