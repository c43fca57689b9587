"""Masks to polygons and back, keeping holes and separate parts.

Coordinates are COCO's pixel-edge frame: pixel (row r, column c) is the unit square
[c, c+1) x [r, r+1), so the polygon ``[0,0, 10,0, 10,10, 0,10]`` is exactly the 10x10
pixels at the top-left corner (that is how pycocotools rasterises polygons).

How a mask becomes polygons (``mask_to_geometry``):

1. OpenCV traces the outer boundaries and the holes (``RETR_CCOMP`` hierarchy) through
   the centres of the boundary pixels.
2. Each outer boundary minus its holes becomes a shapely polygon (``make_valid`` repairs
   self-touching outlines), and every traced ring is widened by half a pixel on both sides
   (square caps, mitre joins). The union is then the mask's outline at the pixel edges: it
   contains every foreground pixel centre and no background pixel centre, also for
   one-pixel-wide lines and single pixels.
3. Simplification (Douglas-Peucker, topology preserving) uses the largest tolerance in
   ``tolerance, tolerance/2, tolerance/4, 0`` whose re-rasterised polygons still have an
   IoU of at least ``min_iou`` (default 0.98) with the mask.

COCO polygons cannot express holes (the rings of one annotation are unioned), so
``mask_to_polygons`` joins each hole to its outer ring with a zero-width cut: pycocotools
fills rings even-odd, so the cut encloses nothing and the hole stays empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import shapely
from pycocotools import mask as mask_utils
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

Ring = list[float]
"""A flat COCO ring ``[x0, y0, x1, y1, ...]`` in pixel-edge coordinates (>= 3 points)."""


def mask_to_geometry(mask: np.ndarray) -> MultiPolygon:
    """(H, W) bool mask -> valid shapely MultiPolygon of its pixel edges (exact).

    The area of the result equals the number of foreground pixels. Pixels that touch only
    at a corner become separate polygons (or a ring that touches itself at that corner).
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"a mask is 2-D (H, W), got shape {m.shape}")
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return MultiPolygon()
    cols = np.flatnonzero(m.any(axis=0))
    y0, x0 = int(rows[0]), int(cols[0])
    crop = m[y0 : int(rows[-1]) + 1, x0 : int(cols[-1]) + 1]
    # Each pixel becomes 2x2 quarters; every traced boundary quarter maps to the corner of
    # its pixel that it touches, which walks the mask's outline along the pixel edges.
    quarters = np.zeros((2 * crop.shape[0] + 2, 2 * crop.shape[1] + 2), dtype=np.uint8)
    quarters[1:-1, 1:-1] = crop.repeat(2, axis=0).repeat(2, axis=1)
    contours, hierarchy = cv2.findContours(quarters, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return MultiPolygon()
    offset = np.array([x0, y0], dtype=np.float64)
    rings = [_corner_ring(c.reshape(-1, 2), offset) for c in contours]
    parents = hierarchy[0][:, 3]
    parts: list[BaseGeometry] = []
    for i, ring in enumerate(rings):
        if parents[i] != -1:
            continue
        area: BaseGeometry = _filled(ring)
        holes = [_filled(rings[j]) for j in np.flatnonzero(parents == i)]
        if holes:
            area = area.difference(shapely.union_all(holes))
        parts.append(area)
    return _as_multipolygon(shapely.union_all(parts))


def _corner_ring(points: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Traced quarter centres (padded quarter grid) -> pixel corners, collinear points removed."""
    q = points.astype(np.int64) - 1  # quarter indices in the cropped, unpadded grid
    corners = (q + 1) // 2  # quarter 2c -> corner c (left/top), 2c+1 -> corner c+1
    keep = np.any(corners != np.roll(corners, 1, axis=0), axis=1)
    corners = corners[keep] if keep.any() else corners[:1]
    if len(corners) > 2:
        prev_d = corners - np.roll(corners, 1, axis=0)
        next_d = np.roll(corners, -1, axis=0) - corners
        turn = (prev_d[:, 0] * next_d[:, 1] - prev_d[:, 1] * next_d[:, 0]) != 0
        back = np.all(prev_d == -next_d, axis=1)
        keep = turn | back
        if keep.sum() >= 3:
            corners = corners[keep]
    return corners.astype(np.float64) + offset


def _filled(ring: np.ndarray) -> BaseGeometry:
    if len(ring) < 3:
        return Polygon()
    return shapely.make_valid(Polygon(ring))


def _as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    polys: list[Polygon] = []
    for g in getattr(geom, "geoms", [geom]):
        if isinstance(g, Polygon):
            if not g.is_empty and g.area > 0:
                polys.append(g)
        elif hasattr(g, "geoms"):
            polys.extend(_as_multipolygon(g).geoms)
    return MultiPolygon(polys)


def geometry_to_rings(geom: BaseGeometry, decimals: int = 2) -> list[Ring]:
    """Polygons (with holes) -> COCO rings, each hole joined to its outer ring by a cut."""
    rings: list[Ring] = []
    for poly in _as_multipolygon(geom).geoms:
        outer = np.asarray(poly.exterior.coords)[:-1]
        for interior in poly.interiors:
            hole = np.asarray(interior.coords)[:-1]
            outer = _join_hole(outer, hole)
        if len(outer) >= 3:
            flat = np.round(outer, decimals).reshape(-1)
            rings.append([float(v) for v in flat])
    return rings


def _join_hole(outer: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Insert `hole` into `outer` at their closest pair of vertices (a zero-width cut)."""
    if len(hole) < 3:
        return outer
    d = ((outer[:, None, :] - hole[None, :, :]) ** 2).sum(axis=2)
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    hole_loop = np.vstack([hole[j:], hole[: j + 1]])
    return np.vstack([outer[: i + 1], hole_loop, outer[i:]])


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """COCO polygons (flat rings, pixel-edge coordinates) -> (height, width) bool mask.

    Rings are rasterised by pycocotools (``frPyObjects``) and unioned, as COCO readers do.
    Rings with fewer than 3 points are ignored. Raises ``ValueError`` for non-numeric rings.
    """
    rings = [[float(v) for v in ring] for ring in polygons if len(ring) >= 6]
    if height <= 0 or width <= 0:
        raise ValueError(f"mask size must be positive, got {height}x{width}")
    if not rings:
        return np.zeros((height, width), dtype=bool)
    rle = mask_utils.merge(mask_utils.frPyObjects(rings, height, width))
    return mask_utils.decode(rle).astype(bool)


def _rings_rle(rings: list[Ring], height: int, width: int) -> dict:
    if not rings:
        return mask_utils.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
    return mask_utils.merge(mask_utils.frPyObjects(rings, height, width))


def mask_to_polygons(
    mask: np.ndarray,
    tolerance: float = 1.0,
    min_iou: float = 0.98,
    decimals: int = 2,
) -> list[Ring]:
    """(H, W) bool mask -> COCO polygon rings that re-rasterise to IoU >= min_iou.

    Parts become separate rings; holes are kept (joined by zero-width cuts, see module
    docstring). ``tolerance`` is the largest Douglas-Peucker tolerance tried, in pixels;
    it is halved (down to no simplification) until the IoU with the mask, measured through
    pycocotools, is at least ``min_iou``. An empty mask gives ``[]``. Masks of a few pixels
    may stay below ``min_iou`` even unsimplified; ``polygons_iou`` tells the caller.
    """
    m = np.asarray(mask, dtype=bool)
    geom = mask_to_geometry(m)
    if geom.is_empty:
        return []
    # Measure the IoU inside the mask's box (the rings never leave it), which is cheaper.
    x0, y0, x1, y1 = (int(v) for v in geom.bounds)
    h, w = y1 - y0, x1 - x0
    target = mask_utils.encode(np.asfortranarray(m[y0:y1, x0:x1].astype(np.uint8)))
    best: list[Ring] | None = None
    tol = float(tolerance)
    for t in (tol, tol / 2, tol / 4, 0.0):
        if t < 0:
            continue
        g = geom if t == 0 else shapely.make_valid(geom.simplify(t, preserve_topology=True))
        rings = geometry_to_rings(g, decimals)
        best = rings
        local = [[v - (x0 if k % 2 == 0 else y0) for k, v in enumerate(r)] for r in rings]
        iou = float(mask_utils.iou([_rings_rle(local, h, w)], [target], [0])[0][0])
        if iou >= min_iou:
            return rings
    assert best is not None
    return best


def polygons_iou(polygons: Sequence[Sequence[float]], mask: np.ndarray) -> float:
    """IoU between rasterised COCO rings and a (H, W) bool mask (1.0 when both are empty)."""
    m = np.asarray(mask, dtype=bool)
    back = polygons_to_mask(polygons, m.shape[0], m.shape[1])
    union = int(np.count_nonzero(back | m))
    return 1.0 if union == 0 else int(np.count_nonzero(back & m)) / union


def masks_to_polygons(
    masks: np.ndarray | Sequence[np.ndarray], tolerance: float = 1.0, min_iou: float = 0.98
) -> list[list[Ring]]:
    """``mask_to_polygons`` for each of (N, H, W) masks."""
    return [mask_to_polygons(m, tolerance, min_iou) for m in masks]
