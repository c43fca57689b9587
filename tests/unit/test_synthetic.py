"""The synthetic scene generator: determinism, exact masks, nesting."""

from __future__ import annotations

import numpy as np
import pytest

from samstudio.training.synthetic import Scene, make_scene


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return [make_scene(seed) for seed in range(40)]


def test_same_seed_gives_identical_scene_and_other_seeds_differ() -> None:
    a, b = make_scene(123), make_scene(123)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.masks, b.masks)
    assert a.kinds == b.kinds and a.parents == b.parents
    c = make_scene(124)
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)


def test_scene_shapes_and_types() -> None:
    for seed in range(10):
        s = make_scene(seed, size=256)
        h, w = s.image.shape[:2]
        assert s.image.dtype == np.uint8 and s.image.shape[2] == 3
        assert max(h, w) == 256 and min(h, w) >= int(0.6 * 256)
        assert s.masks.dtype == bool and s.masks.shape[1:] == (h, w)
        assert len(s.kinds) == len(s.parents) == len(s.masks)
        assert all(m.sum() >= 20 for m in s.masks)


def test_parts_lie_inside_their_parents_and_separate_objects_do_not_overlap(
    scenes: list[Scene],
) -> None:
    """Occlusion is exact: visible masks of different objects never share a pixel,
    and each part is a subset of the object it belongs to."""
    for seed, s in enumerate(scenes):
        for i, p in enumerate(s.parents):
            if p >= 0:
                assert not (s.masks[i] & ~s.masks[p]).any(), (seed, i, p)
        top = [i for i in range(len(s.masks)) if s.parents[i] < 0]
        for a in top:
            for b in top:
                if a < b:
                    assert not (s.masks[a] & s.masks[b]).any(), (seed, a, b)


def test_masks_follow_painted_pixels(scenes: list[Scene]) -> None:
    """Masks are exact: most objects stand out from the 2-pixel band just outside
    their mask (colours may match their surroundings by chance, so not all)."""
    stands_out = total = 0
    for sc in scenes[:20]:
        for m, kind in zip(sc.masks, sc.kinds, strict=True):
            if kind not in ("object", "whole"):
                continue
            ys, xs = np.nonzero(m)
            grown = np.zeros_like(m)
            grown[np.clip(ys + 2, 0, m.shape[0] - 1), xs] = True
            ring = grown & ~m
            if ring.sum() < 10:
                continue
            total += 1
            inside = sc.image[m].astype(float).mean(axis=0)
            outside = sc.image[ring].astype(float).mean(axis=0)
            stands_out += int(np.abs(inside - outside).max() > 8)
    assert total > 50
    assert stands_out / total > 0.7


def test_nesting_whole_part_subpart_is_present(scenes: list[Scene]) -> None:
    chains = 0
    for s in scenes:
        for i, kind in enumerate(s.kinds):
            if kind == "subpart":
                part = s.parents[i]
                whole = s.parents[part]
                assert s.kinds[part] == "part" and s.kinds[whole] == "whole"
                # one click in the subpart lies in three annotated masks
                ys, xs = np.nonzero(s.masks[i])
                y, x = ys[len(ys) // 2], xs[len(xs) // 2]
                assert s.masks[part][y, x] and s.masks[whole][y, x]
                chains += 1
    assert chains >= 10


def test_shape_variety_includes_holes_and_thin_objects(scenes: list[Scene]) -> None:
    import cv2

    holes = thin = 0
    for s in scenes:
        for m in s.masks:
            contours, hierarchy = cv2.findContours(
                m.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE
            )
            if hierarchy is not None and (hierarchy[0][:, 3] >= 0).any():
                holes += 1
            dist = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 3)
            if dist.max() <= 4.5 and m.sum() > 60:
                thin += 1
    assert holes >= 5
    assert thin >= 5
