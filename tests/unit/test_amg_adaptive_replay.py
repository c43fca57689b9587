"""`benchmarks/amg_adaptive_replay.py`: the replay gives the masks and counts of a real run."""

from __future__ import annotations

import sys
from pathlib import Path

from amg_scenes import ShapeSegmenter, make_scene

from samstudio.core.amg import AmgParams, generate_masks

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import amg_adaptive_replay as replay  # noqa: E402
from amg_adaptive_recall import CountingSegmenter  # noqa: E402


def _rles(records: list) -> list[dict]:
    return [r.segmentation for r in records]


def test_replayed_adaptive_run_equals_a_real_one_and_constants_are_restored() -> None:
    import samstudio.core.amg as amg
    import samstudio.core.amg_adaptive as adaptive

    scene = make_scene(height=200, width=260, n_objects=7, seed=5)
    params = {"points_per_side": 16, "points_per_batch": 24}
    real = CountingSegmenter(ShapeSegmenter(image_size=256, low_res=64))
    emb = real.inner.encode(scene.image)
    direct = generate_masks(real, scene.image, AmgParams(adaptive=True, **params), embedding=emb)
    direct_points, direct_calls = real.points, real.calls

    wrapped = CountingSegmenter(ShapeSegmenter(image_size=256, low_res=64))
    seg = replay.ReplaySegmenter(wrapped)
    full = replay.run(seg, scene.image, emb, AmgParams(**params))
    assert full[2] == 256 and wrapped.points == 256
    masks, calls, points = replay.run(seg, scene.image, emb, AmgParams(adaptive=True, **params))
    assert wrapped.points == 256  # answered from the cache: nothing decoded again
    assert points == direct_points < 256
    assert masks == _rles(direct)
    assert calls == direct_calls

    before = (adaptive.NEAR_MISS_MARGIN, amg.NEAR_MISS_MARGIN, adaptive.AGREEMENT_IOU)
    with replay.with_constants({"NEAR_MISS_MARGIN": 0.3, "AGREEMENT_IOU": 0.5}):
        assert adaptive.NEAR_MISS_MARGIN == 0.3 == amg.NEAR_MISS_MARGIN
        assert adaptive.AGREEMENT_IOU == 0.5
    assert (adaptive.NEAR_MISS_MARGIN, amg.NEAR_MISS_MARGIN, adaptive.AGREEMENT_IOU) == before
    assert replay.parse_setting("near_miss_margin=0.05,FILL_REACH=1") == {
        "NEAR_MISS_MARGIN": 0.05,
        "FILL_REACH": 1.0,
    }
    assert replay.parse_setting("coarse=12,near_miss_margin=0.15") == {
        "COARSE": 12.0,
        "NEAR_MISS_MARGIN": 0.15,
    }
    with replay.with_constants({"COARSE": 12.0, "NEAR_MISS_MARGIN": 0.3}):
        assert adaptive.NEAR_MISS_MARGIN == 0.3  # COARSE is a parameter, not a constant
        assert not hasattr(adaptive, "COARSE") and not hasattr(amg, "COARSE")
    assert (adaptive.NEAR_MISS_MARGIN, amg.NEAR_MISS_MARGIN, adaptive.AGREEMENT_IOU) == before


def test_objects_are_counted_on_generated_scenes_only() -> None:
    from samstudio.training.synthetic import make_scene

    objects = replay.scene_objects("scene 10000500")
    assert len(objects) == len(make_scene(10_000_500).masks) > 1
    assert replay.objects_found(objects, objects).all()
    assert replay.objects_found(objects, objects[:1]).tolist() == [True] + [False] * (
        len(objects) - 1
    )
    assert replay.objects_found(objects[:1], objects[:1] * 3).tolist() == [True]
    assert not replay.objects_found(objects, []).any()
    assert replay.scene_objects("mobilesam_picture1.jpg") == []
