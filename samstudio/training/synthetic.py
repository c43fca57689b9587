"""Deterministic synthetic scenes with exact instance masks, for training and
evaluating the demo model (numpy + OpenCV, no torch).

A scene is a textured background with objects painted back to front. Objects are
convex or concave polygons, ellipses, thin strokes, and shapes with holes, filled
with flat colours, gradients or texture crops cut from scikit-image's bundled sample
photos. Some objects are nested *composites* (whole / part / subpart, each a
different colour or texture) so that one click inside the subpart is truly
ambiguous: subpart, part and whole are all annotated. Later objects occlude earlier
ones; every mask is the *visible* region, exact to the pixel, because the image is
painted from the same rasterised masks.

`make_scene(seed)` is a pure function of its arguments: the same seed gives the same
image and masks on every machine (only numpy's PCG64 and OpenCV rasterisation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

TEXTURE_SOURCES = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "rocket",
    "retina",
    "text",
    "page",
    "clock",
)

KINDS = ("whole", "part", "subpart", "object")


@dataclass
class Scene:
    """One synthetic picture and its annotations.

    image: (H, W, 3) uint8 RGB. masks: (N, H, W) bool, visible region of each
    annotation. kinds: N strings from KINDS ("object" = not part of a composite).
    parents: N ints, index of the enclosing annotation or -1. seed: the seed used.
    """

    image: np.ndarray
    masks: np.ndarray
    kinds: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    seed: int = 0


@lru_cache(maxsize=1)
def _textures() -> tuple[np.ndarray, ...]:
    """RGB uint8 sample photos from scikit-image (bundled with the package)."""
    import skimage.data

    out = []
    for name in TEXTURE_SOURCES:
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        out.append(np.ascontiguousarray(img[:, :, :3].astype(np.uint8)))
    return tuple(out)


def _texture_patch(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8: a random crop of a sample photo, rescaled, maybe tinted."""
    src = _textures()[int(rng.integers(len(_textures())))]
    scale = float(rng.uniform(0.3, 1.5))
    ch = min(src.shape[0], max(8, int(h / scale)))
    cw = min(src.shape[1], max(8, int(w / scale)))
    y = int(rng.integers(0, src.shape[0] - ch + 1))
    x = int(rng.integers(0, src.shape[1] - cw + 1))
    patch = cv2.resize(src[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        tint = rng.uniform(0.4, 1.3, size=3)
        patch = np.clip(patch.astype(np.float32) * tint, 0, 255).astype(np.uint8)
    return patch


def _fill(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) float32 in 0..255: flat colour, linear gradient, stripes or texture."""
    mode = rng.random()
    if mode < 0.35:
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
        out = np.broadcast_to(colour, (h, w, 3)).copy()
    elif mode < 0.6:
        c0 = rng.uniform(0, 255, size=3)
        c1 = np.clip(c0 + rng.normal(0, 60, size=3), 0, 255)
        ang = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = xx * np.cos(ang) + yy * np.sin(ang)
        t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
        out = (c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]).astype(
            np.float32
        )
    elif mode < 0.7:
        c0 = rng.uniform(0, 255, size=3)
        c1 = rng.uniform(0, 255, size=3)
        period = rng.uniform(4, 16)
        ang = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        s = (np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * 2 * np.pi / period) > 0)[..., None]
        out = np.where(s, c0, c1).astype(np.float32)
    else:
        out = _texture_patch(rng, h, w).astype(np.float32)
    return out


def _polygon(rng: np.random.Generator, cx: float, cy: float, r: float, concave: bool) -> np.ndarray:
    """(K, 2) int32 vertices of a random star-shaped polygon around (cx, cy)."""
    k = int(rng.integers(3, 9)) if not concave else int(rng.integers(5, 13))
    angles = np.sort(rng.uniform(0, 2 * np.pi, size=k))
    if concave:
        radii = r * rng.uniform(0.35, 1.0, size=k)
    else:
        radii = r * rng.uniform(0.85, 1.0, size=k)
    rot = rng.uniform(0.5, 1.5)
    pts = np.stack([cx + radii * np.cos(angles) * rot, cy + radii * np.sin(angles)], axis=1)
    if not concave:
        return np.round(cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)).astype(np.int32)
    return np.round(pts).astype(np.int32)


def _shape_mask(
    rng: np.random.Generator, h: int, w: int, cx: float, cy: float, r: float, kind: str
) -> np.ndarray:
    """(h, w) bool mask of one shape of `kind` centred near (cx, cy), size ~r."""
    m = np.zeros((h, w), np.uint8)
    if kind == "ellipse":
        axes = (max(2, int(r * rng.uniform(0.5, 1.0))), max(2, int(r * rng.uniform(0.3, 1.0))))
        cv2.ellipse(m, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif kind == "convex":
        cv2.fillPoly(m, [_polygon(rng, cx, cy, r, concave=False)], 1)
    elif kind == "concave":
        cv2.fillPoly(m, [_polygon(rng, cx, cy, r, concave=True)], 1)
    elif kind == "rect":
        box = cv2.boxPoints(
            (
                (float(cx), float(cy)),
                (float(r * rng.uniform(0.6, 2.0)), float(r * rng.uniform(0.4, 1.6))),
                float(rng.uniform(0, 180)),
            )
        )
        cv2.fillPoly(m, [np.round(box).astype(np.int32)], 1)
    elif kind == "thin":
        n = int(rng.integers(2, 5))
        pts = np.stack(
            [cx + rng.uniform(-r, r, size=n) * 1.5, cy + rng.uniform(-r, r, size=n) * 1.5], axis=1
        )
        thickness = int(rng.integers(3, 9))
        cv2.polylines(m, [np.round(pts).astype(np.int32)], False, 1, thickness)
    elif kind == "holed":
        outer = _shape_mask(rng, h, w, cx, cy, r, str(rng.choice(["ellipse", "convex", "rect"])))
        inner = _shape_mask(rng, h, w, cx, cy, r * rng.uniform(0.3, 0.6), "ellipse")
        return outer & ~inner
    else:
        raise ValueError(f"unknown shape kind {kind!r}")
    return m.astype(bool)


SHAPES = ("ellipse", "convex", "concave", "rect", "thin", "holed")


def _inner_shape(
    rng: np.random.Generator, host: np.ndarray, frac: tuple[float, float]
) -> np.ndarray:
    """A shape strictly inside `host` (bool (h, w)), its size a fraction of host's."""
    h, w = host.shape
    dist = cv2.distanceTransform(host.astype(np.uint8), cv2.DIST_L2, 3)
    ys, xs = np.nonzero(dist >= max(3.0, float(dist.max()) * 0.5))
    if len(ys) == 0:
        return np.zeros_like(host)
    i = int(rng.integers(len(ys)))
    r = float(dist[ys[i], xs[i]]) * rng.uniform(*frac) * 1.6
    kind = str(rng.choice(["ellipse", "convex", "concave", "rect"]))
    inner = _shape_mask(rng, h, w, xs[i], ys[i], max(3.0, r), kind)
    # keep a rim of the host around the part so the part is a proper part
    eroded = cv2.erode(host.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    return inner & eroded


def make_scene(
    seed: int,
    size: int = 256,
    min_objects: int = 3,
    max_objects: int = 9,
    composite_prob: float = 0.45,
    min_area: int = 40,
) -> Scene:
    """A scene for `seed`: long side `size`, the short side random in [0.6, 1] x size.

    Deterministic: the same arguments give identical pixels and masks.
    """
    rng = np.random.default_rng(seed)
    long_side, short_side = size, int(size * rng.uniform(0.6, 1.0))
    h, w = (short_side, long_side) if rng.random() < 0.6 else (long_side, short_side)
    canvas = _fill(rng, h, w)
    if rng.random() < 0.5:  # background clutter: small blobs that are not annotated
        for _ in range(int(rng.integers(3, 15))):
            blob = _shape_mask(
                rng, h, w, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, 10), "ellipse"
            )
            canvas[blob] = rng.uniform(0, 255, size=3)
    layers: list[tuple[np.ndarray, str, int]] = []  # (mask, kind, parent index)
    n_objects = int(rng.integers(min_objects, max_objects + 1))
    for _ in range(n_objects):
        r = float(rng.uniform(0.05, 0.28) * size)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        composite = rng.random() < composite_prob
        kind = str(
            rng.choice(SHAPES if not composite else ("ellipse", "convex", "rect", "concave"))
        )
        if composite:
            r = max(r, 0.15 * size)
        body = _shape_mask(rng, h, w, cx, cy, r, kind)
        if body.sum() < min_area:
            continue
        canvas[body] = _fill(rng, h, w)[body]
        base = len(layers)
        layers.append((body.copy(), "whole" if composite else "object", -1))
        if not composite:
            continue
        for _p in range(int(rng.integers(1, 3))):
            part = _inner_shape(rng, body, (0.35, 0.7))
            if part.sum() < min_area:
                continue
            canvas[part] = _fill(rng, h, w)[part]
            part_index = len(layers)
            layers.append((part, "part", base))
            if rng.random() < 0.7:
                sub = _inner_shape(rng, part, (0.3, 0.6))
                if sub.sum() >= min_area // 2:
                    canvas[sub] = _fill(rng, h, w)[sub]
                    layers.append((sub, "subpart", part_index))
    # visible masks: remove every later object (not own descendants) painted on top
    masks: list[np.ndarray] = [m for m, _, _ in layers]
    kinds = [k for _, k, _ in layers]
    parents = [p for _, _, p in layers]
    visible = []
    for i, m in enumerate(masks):
        v = m.copy()
        for j in range(i + 1, len(masks)):
            if not _is_descendant(parents, j, i):
                v &= ~masks[j]
        visible.append(v)
    # a whole includes its parts; a part includes its subparts
    for i in range(len(visible) - 1, -1, -1):
        if parents[i] >= 0:
            visible[parents[i]] |= visible[i]
    canvas = _post(rng, canvas)
    keep = [i for i, v in enumerate(visible) if v.sum() >= min_area // 2]
    remap = {old: new for new, old in enumerate(keep)}
    out_masks = np.stack([visible[i] for i in keep]) if keep else np.zeros((0, h, w), bool)
    return Scene(
        image=canvas,
        masks=out_masks,
        kinds=[kinds[i] for i in keep],
        parents=[remap.get(parents[i], -1) for i in keep],
        seed=seed,
    )


def _is_descendant(parents: list[int], j: int, i: int) -> bool:
    """True when annotation j lies inside annotation i (a part of it, at any depth)."""
    while parents[j] >= 0:
        j = parents[j]
        if j == i:
            return True
    return False


def _post(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    """Global shading, noise and blur, then uint8."""
    h, w = canvas.shape[:2]
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        gx, gy = rng.uniform(-0.4, 0.4, size=2)
        shade = 1.0 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5)
        canvas = canvas * shade[..., None]
    if rng.random() < 0.7:
        canvas = canvas + rng.normal(0, rng.uniform(1, 10), size=canvas.shape)
    out = np.clip(canvas, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (3, 3), 0)
    return out
