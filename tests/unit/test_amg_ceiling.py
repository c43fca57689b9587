"""`benchmarks/amg_ceiling.py`: every grid candidate scored against the objects, in the
original frame (not the model's padded input square)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from amg_scenes import ShapeSegmenter, make_scene

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import amg_ceiling  # noqa: E402


def test_a_model_that_segments_the_shapes_reaches_every_object() -> None:
    # not square, so a candidate read in the padded frame would miss its object
    scene = make_scene(height=200, width=300, n_objects=5, seed=3)
    seg = ShapeSegmenter(image_size=256, low_res=64)
    best, which, pred, stab = amg_ceiling.candidate_scores(seg, scene.image, scene.objects, 8)
    assert best.shape == which.shape == pred.shape == stab.shape == (8 * 8 * 3,)
    good = best >= amg_ceiling.FOUND_IOU
    assert set(which[good].tolist()) == set(range(len(scene.objects)))
    assert (best <= 1.0).all() and (stab <= 1.0).all()


def test_a_model_with_nothing_to_say_reaches_no_object() -> None:
    scene = make_scene(height=200, width=300, n_objects=5, seed=3)
    blank = scene.image.copy()
    blank[:] = 90  # the background colour only: the fake model finds no shape
    seg = ShapeSegmenter(image_size=256, low_res=64)
    best, _which, _pred, _stab = amg_ceiling.candidate_scores(seg, blank, scene.objects, 8)
    assert not (best >= amg_ceiling.FOUND_IOU).any()
    assert np.isfinite(best).all()
