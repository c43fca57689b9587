"""Automatic mask generation on generated scenes with a geometric fake model (no torch)."""

from __future__ import annotations

import numpy as np
import pytest
from amg_scenes import ShapeSegmenter, make_scene
from pycocotools import mask as mask_utils

from samstudio.core.amg import (
    AmgCancelled,
    AmgParams,
    AmgParamsError,
    generate_masks,
    iter_masks,
)
from samstudio.core.amg_grid import crop_boxes, point_grid
from samstudio.core.amg_nms import box_nms, near_crop_edge
from samstudio.core.amg_upscale import LogitUpscaler
from samstudio.core.masks import mask_iou
from samstudio.inference.preprocess import resized_shape, upscale_logits


def small_segmenter() -> ShapeSegmenter:
    """Model input 256, logits 64x64 (the demo model's sizes): fast and not SAM's 256."""
    return ShapeSegmenter(image_size=256, low_res=64)


@pytest.fixture(scope="module")
def scene():
    return make_scene(height=150, width=200, n_objects=5, seed=3)


def best_ious(objects: np.ndarray, masks: list[np.ndarray]) -> list[float]:
    return [max((mask_iou(o, m) for m in masks), default=0.0) for o in objects]


# ---------------------------------------------------------------- grid and crops


def test_point_grid_is_cell_centres_row_by_row():
    g = point_grid(4)
    assert g.shape == (16, 2)
    assert np.allclose(g[:4, 0], [0.125, 0.375, 0.625, 0.875])
    assert np.allclose(g[:4, 1], 0.125)
    assert np.allclose(g[4:8, 1], 0.375)
    with pytest.raises(ValueError, match="at least 1 point"):
        point_grid(0)


def test_crop_layers_tile_the_image_with_overlap():
    boxes = crop_boxes((300, 450), 2, 512 / 1500)
    assert [b.layer for b in boxes] == [0] + [1] * 4 + [2] * 16
    assert boxes[0].xyxy == (0, 0, 450, 300)
    for layer in (1, 2):
        crops = [b for b in boxes if b.layer == layer]
        covered = np.zeros((300, 450), int)
        for b in crops:
            assert 0 <= b.x0 < b.x1 <= 450 and 0 <= b.y0 < b.y1 <= 300
            covered[b.y0 : b.y1, b.x0 : b.x1] += 1
        assert covered.min() >= 1  # every pixel is in some crop
        assert covered.max() >= 2  # neighbouring crops overlap
    # smaller crops in deeper layers
    assert max(b.area for b in boxes if b.layer == 2) < min(b.area for b in boxes if b.layer == 1)


# ---------------------------------------------------------------- exact windows


@pytest.mark.parametrize("size", [(150, 200), (97, 61), (256, 256), (300, 40)])
def test_logit_windows_equal_the_full_upscale(size):
    rng = np.random.default_rng(sum(size))
    h_in, w_in = resized_shape(size[0], size[1], 256)
    up = LogitUpscaler((h_in, w_in), size, 256, low_res=64)
    import cv2

    for trial in range(6):
        noise = rng.normal(size=(64, 64)).astype(np.float32)
        low = cv2.GaussianBlur(noise, (0, 0), rng.uniform(1, 6)) * rng.uniform(10, 60)
        low -= rng.uniform(0, 8)
        full = upscale_logits(low[None], (h_in, w_in), size, 256)[0]
        for t in (-1.0, 0.0, 1.0):
            win = up.window(low, t)
            got = np.zeros(size, bool)
            if win is not None:
                h, w = win.logits.shape
                got[win.y0 : win.y0 + h, win.x0 : win.x0 + w] = win.logits > t
            assert np.array_equal(got, full > t), (trial, t)


def test_window_is_none_when_nothing_is_above_threshold():
    up = LogitUpscaler((192, 256), (150, 200), 256, low_res=64)
    assert up.window(np.full((64, 64), -5, np.float32), -1.0) is None
    # logits above threshold only in the padding rows feed no pixel of the image
    low = np.full((64, 64), -5, np.float32)
    low[60:, :] = 10
    assert up.window(low, 0.0) is None


# ---------------------------------------------------------------- NMS


def test_box_nms_keeps_the_best_and_breaks_ties_by_order():
    boxes = np.array(
        [[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30], [0, 0, 10, 10], [5, 5, 5, 9]],
        np.float32,
    )
    scores = np.array([0.5, 0.9, 0.5, 0.5, 0.1], np.float32)
    keep = box_nms(boxes, scores, 0.7)
    # 1 (best) suppresses 0 and 3 (IoU 0.9); 2 is alone; the zero-area box 4 is kept
    assert keep.tolist() == [1, 2, 4]
    # ties: the earlier box wins
    assert box_nms(boxes[[0, 3]], np.array([0.5, 0.5]), 0.7).tolist() == [0]
    # IoU exactly at the threshold is not suppressed (strictly greater only)
    half = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], np.float32)
    assert box_nms(half, np.array([1.0, 0.5]), 0.5).tolist() == [0, 1]
    assert box_nms(half, np.array([1.0, 0.5]), 0.49).tolist() == [0]


def test_near_crop_edge_ignores_image_edges():
    crop = (0, 0, 100, 80)  # top-left crop of a 200x160 image
    assert not near_crop_edge((0, 0, 50, 40), crop, (160, 200))  # touches image edges only
    assert near_crop_edge((10, 10, 95, 40), crop, (160, 200))  # near the inner right side
    assert near_crop_edge((10, 10, 50, 79), crop, (160, 200))  # near the inner bottom side


# ---------------------------------------------------------------- the pipeline


def test_finds_every_object_with_sa1b_fields(scene):
    seg = small_segmenter()
    records = generate_masks(seg, scene.image, AmgParams(points_per_side=12))
    masks = [r.mask() for r in records]
    assert min(best_ious(scene.objects, masks)) >= 0.95
    # each object once (NMS), plus the background region
    assert len(records) == len(scene.objects) + 1
    height, width = scene.image.shape[:2]
    for r in records:
        m = r.mask()
        assert m.shape == (height, width)
        assert r.area == int(m.sum())
        assert list(r.bbox) == mask_utils.toBbox(r.segmentation).tolist()
        x, y = r.point_coords[0]
        assert m[int(y), int(x)]  # the prompt lies on its mask
        assert r.crop_box == (0, 0, width, height)
        assert r.predicted_iou > 0.88 and r.stability_score >= 0.95
        ann = r.to_sa1b(7)
        assert ann["id"] == 7 and ann["segmentation"]["counts"] == r.segmentation["counts"]
        assert set(ann) >= {
            "bbox",
            "area",
            "predicted_iou",
            "stability_score",
            "point_coords",
            "crop_box",
        }


def test_filters_drop_unconfident_and_whole_image_masks(scene):
    seg = small_segmenter()
    seg.IOUS = (0.80, 0.60, 0.92)  # the object masks are now below 0.88
    records = generate_masks(seg, scene.image, AmgParams(points_per_side=8))
    assert records == []  # only whole-image masks pass the IoU filter, and those are dropped
    kept = generate_masks(
        seg, scene.image, AmgParams(points_per_side=8, max_mask_area_fraction=None)
    )
    assert len(kept) == 1 and kept[0].area == scene.image.shape[0] * scene.image.shape[1]
    relaxed = generate_masks(seg, scene.image, AmgParams(points_per_side=8, pred_iou_thresh=0.0))
    assert len(relaxed) >= len(scene.objects)


def test_crops_are_encoded_and_masks_cut_by_inner_crop_edges_are_dropped(scene):
    seg = small_segmenter()
    params = AmgParams(points_per_side=8, crop_n_layers=1)
    records = generate_masks(seg, scene.image, params)
    crops = crop_boxes(scene.image.shape[:2], 1, params.crop_overlap_ratio)
    assert seg.encoded == [(c.height, c.width) for c in crops]
    assert min(best_ious(scene.objects, [r.mask() for r in records])) >= 0.95
    full = crops[0].xywh
    for r in records:
        if r.crop_box != full:
            x, y, w, h = r.crop_box
            crop = next(c for c in crops if c.xywh == r.crop_box)
            bx, by, bw, bh = r.bbox
            box = (int(bx), int(by), int(bx + bw - 1), int(by + bh - 1))
            assert not near_crop_edge(box, crop.xyxy, scene.image.shape[:2])
    # a crop's copy of an object wins over the whole image's (more zoomed-in first)
    assert any(r.crop_box != full for r in records)


def test_small_holes_are_filled_when_asked():
    scene = make_scene(height=120, width=160, n_objects=1, seed=5)
    image = scene.image.copy()
    ys, xs = np.nonzero(scene.objects[0])
    cy, cx = int(ys.mean()), int(xs.mean())
    hole = (slice(cy - 4, cy + 4), slice(cx - 4, cx + 4))
    image[hole] = (1, 2, 3)  # a 64-pixel hole of another colour
    seg = small_segmenter()

    def object_mask(records):
        return max((r.mask() for r in records), key=lambda m: mask_iou(m, scene.objects[0]))

    plain = object_mask(generate_masks(seg, image, AmgParams(points_per_side=10)))
    cleaned_records = generate_masks(
        seg, image, AmgParams(points_per_side=10, min_mask_region_area=100)
    )
    cleaned = object_mask(cleaned_records)
    assert plain[hole].sum() < 32  # the object's mask has the hole...
    assert cleaned[hole].all()  # ...which cleaning fills
    assert mask_iou(cleaned, scene.objects[0]) > 0.97
    assert cleaned_records[0].area == int(cleaned_records[0].mask().sum())


def test_adaptive_mode_decodes_fewer_points_and_finds_the_same_objects(scene):
    full_seg, adaptive_seg = small_segmenter(), small_segmenter()
    full = generate_masks(full_seg, scene.image, AmgParams(points_per_side=16))
    adaptive = generate_masks(
        adaptive_seg, scene.image, AmgParams(points_per_side=16, adaptive=True)
    )
    assert adaptive_seg.decoded_points <= full_seg.decoded_points / 2
    assert adaptive_seg.decode_calls <= full_seg.decode_calls / 2
    ious = best_ious(np.array([r.mask() for r in full]), [r.mask() for r in adaptive])
    assert min(ious) >= 0.95


def _grid_index(points: np.ndarray, x: float, y: float) -> int:
    return int(np.flatnonzero((np.floor(points) == [x, y]).all(axis=1))[0])


def test_adaptive_plan_fills_a_partly_empty_batch_with_the_nearest_undecoded_points():
    """A pass that would send a batch out partly empty takes the undecoded points
    nearest to its points (at most FILL_REACH fine cells away), so the next passes,
    which would ask about them, need no decoder call of their own."""
    from samstudio.core.amg_adaptive import FILL_REACH, RefinementPlan
    from samstudio.core.amg_grid import point_grid

    n = 8
    points = point_grid(n) * 80  # an 80 x 80 crop: fine cells of 10 px
    plan = RefinementPlan(points, n, 4, (80, 80), (0, 0))
    coarse = plan.first()
    assert len(coarse) == 16
    corner = _grid_index(points, 15, 15)
    assert plan.decoded[corner]  # a coarse point: row 1, column 1
    queue = np.array([corner])
    filled = plan.fill(queue, 5)
    assert len(filled) == 5 and plan.decoded[filled].all() and plan.ahead[filled].all()
    steps = np.abs(points[filled] - points[corner]).max(axis=1) / 10
    assert np.all(np.diff(steps) >= 0) and steps[0] == 1  # nearest first
    everything = plan.fill(queue, 100)  # no more than FILL_REACH cells away
    steps = np.abs(points[everything] - points[corner]).max(axis=1) / 10
    assert len(everything) and steps.max() <= FILL_REACH
    assert len(np.intersect1d(everything, filled)) == 0  # decoded points are not taken again
    assert len(np.intersect1d(everything, coarse)) == 0
    assert len(plan.fill(queue, 0)) == 0 and len(plan.fill(queue[:0], 10)) == 0


def test_points_decoded_ahead_ask_about_no_one_until_a_pass_asks_about_them():
    """Filling never changes which points the refinement asks about: a point decoded
    ahead is promoted (not decoded again) when a pass asks about it, and only then
    asks about its own neighbours."""
    from samstudio.core.amg_adaptive import RefinementPlan
    from samstudio.core.amg_grid import point_grid

    n = 8
    points = point_grid(n) * 80
    plan = RefinementPlan(points, n, 4, (80, 80), (0, 0))
    asker = _grid_index(points, 15, 15)
    for index in plan.first():
        plan.record(int(index), asks=int(index) == asker, finest=None)
    ahead = plan.fill(np.array([asker]), 3)  # (5, 5), (15, 5), (25, 5): row 0
    assert sorted(points[ahead][:, 0].tolist()) == [5, 15, 25]
    assert set(points[ahead][:, 1].tolist()) == {5}
    for index in ahead:
        plan.record(int(index), asks=True, finest=None)
    first_pass = plan.next()
    # the asker's 8 neighbours, less the 3 decoded ahead, which are promoted instead
    assert len(first_pass) == 5 and plan.promoted == 3
    assert len(np.intersect1d(first_pass, ahead)) == 0 and not plan.ahead[ahead].any()
    for index in first_pass:
        plan.record(int(index), asks=False, finest=None)
    second_pass = plan.next()
    # now the promoted points ask: their undecoded neighbours, (35, 5) beside (25, 5)
    assert points[second_pass].tolist() == [[35.0, 5.0]] and plan.promoted == 0


def test_filling_never_pads_the_coarse_grid():
    """With a batch size that does not divide the coarse grid and nothing confident
    anywhere, adaptive mode still decodes the coarse grid alone."""
    seg = small_segmenter()
    seg.IOUS = (0.5, 0.5, 0.5)
    scene = make_scene(height=150, width=200, n_objects=5, seed=3)
    params = AmgParams(points_per_side=16, points_per_batch=40, adaptive=True)
    assert generate_masks(seg, scene.image, params) == []
    assert seg.decoded_points == 64 and seg.decode_calls == 2


class NestedSegmenter(ShapeSegmenter):
    """A fake that answers as SAM does inside nested objects: for a point, the finest
    region holding it first, then the regions around that one (subpart, part, whole),
    all confident. `levels` are (H, W) bool masks, outermost first, each inside the one
    before; outside all of them the answer is the background (all but the outermost)."""

    def __init__(self, levels: list[np.ndarray]) -> None:
        super().__init__(image_size=256, low_res=64)
        self.levels = levels

    def decode_points_batch(self, embedding, points, multimask=True):
        prediction = super().decode_points_batch(embedding, points, multimask)
        height, width = self.levels[0].shape
        for i, (x, y) in enumerate(np.asarray(points, np.float32).reshape(-1, 2)):
            row, col = min(int(y), height - 1), min(int(x), width - 1)
            holding = [m for m in self.levels if m[row, col]][::-1] or [~self.levels[0]]
            answers = (holding + [holding[-1]] * 3)[:3]
            for j, mask in enumerate(answers):
                prediction.low_res_logits[i, j] = self._logits(mask, embedding.input_size)
        prediction.iou_predictions[:] = 0.95
        return prediction


def test_adaptive_mode_decodes_subparts_inside_a_neighbours_whole():
    """The failure seen with a trained model: a point inside some coarse point's *whole*
    mask was skipped although its own subpart is a mask no coarse point returns."""
    yy, xx = np.mgrid[:160, :160]
    whole = (xx - 80) ** 2 + (yy - 80) ** 2 <= 60**2
    part = (xx - 75) ** 2 + (yy - 85) ** 2 <= 20**2
    subpart = (xx >= 58) & (xx <= 68) & (yy >= 76) & (yy <= 88)  # holds grid point (65, 85)
    image = np.full((160, 160, 3), 90, np.uint8)
    for mask, colour in ((whole, (200, 40, 40)), (part, (40, 200, 40)), (subpart, (40, 40, 200))):
        image[mask] = colour
    full_seg, adaptive_seg = (
        NestedSegmenter([whole, part, subpart]),
        NestedSegmenter([whole, part, subpart]),
    )
    full = generate_masks(full_seg, image, AmgParams(points_per_side=16))
    adaptive = generate_masks(adaptive_seg, image, AmgParams(points_per_side=16, adaptive=True))
    full_masks = np.array([r.mask() for r in full])
    assert max(best_ious(subpart[None], list(full_masks))) >= 0.95  # the full grid finds it
    ious = best_ious(full_masks, [r.mask() for r in adaptive])
    assert min(ious) >= 0.95, ious
    assert adaptive_seg.decoded_points < full_seg.decoded_points


def test_adaptive_coarse_grid_is_part_of_the_full_grid_and_costs_no_more(scene):
    from samstudio.core.amg_adaptive import coarse_subset

    index = coarse_subset(32, 16)
    assert len(index) == 256 == len(set(index.tolist()))
    assert set((index // 32).tolist()) == set(range(1, 32, 2))  # every other row and column
    assert len(coarse_subset(10, 10)) == 100 and len(coarse_subset(7, 3)) == 9
    # nothing confident anywhere (random or weak weights): only the coarse grid is decoded
    full_seg, adaptive_seg = small_segmenter(), small_segmenter()
    full_seg.IOUS = adaptive_seg.IOUS = (0.5, 0.5, 0.5)
    assert generate_masks(full_seg, scene.image, AmgParams(points_per_side=16)) == []
    params = AmgParams(points_per_side=16, adaptive=True)
    assert generate_masks(adaptive_seg, scene.image, params) == []
    assert (full_seg.decoded_points, adaptive_seg.decoded_points) == (256, 64)


# ---------------------------------------------------------------- progress and cancel


def test_progress_after_each_batch_then_done(scene):
    seg = small_segmenter()
    events = list(iter_masks(seg, scene.image, AmgParams(points_per_side=10, points_per_batch=32)))
    stages = [e.stage for e in events]
    assert stages[0] == "encode" and stages[-1] == "done"
    assert stages.count("decode") == 4 == seg.decode_calls  # ceil(100 / 32)
    done = [e.points_done for e in events]
    assert done == sorted(done) and done[-1] == 100 == events[-1].points_total
    assert [e.fraction for e in events if e.stage == "decode"] == [0.32, 0.64, 0.96, 1.0]
    assert events[-1].finished and len(events[-1].masks) == len(scene.objects) + 1
    assert all(not e.masks for e in events[:-1])


def test_cancel_stops_between_batches(scene):
    seg = small_segmenter()
    seen = []

    def cancel() -> bool:
        return len(seen) >= 3  # encode + 2 batches

    events = []
    for event in iter_masks(
        seg, scene.image, AmgParams(points_per_side=10, points_per_batch=20), cancel=cancel
    ):
        seen.append(event)
        events.append(event.stage)
    assert events == ["encode", "decode", "decode", "cancelled"]
    assert seg.decode_calls == 2 and seg.decoded_points == 40
    with pytest.raises(AmgCancelled):
        generate_masks(seg, scene.image, AmgParams(points_per_side=10), cancel=lambda: True)


def test_closing_the_generator_stops_decoding(scene):
    seg = small_segmenter()
    gen = iter_masks(seg, scene.image, AmgParams(points_per_side=10, points_per_batch=10))
    next(gen), next(gen)
    gen.close()
    assert seg.decode_calls == 1


def test_reuses_a_given_embedding_and_checks_it(scene):
    seg = small_segmenter()
    embedding = seg.encode(scene.image)
    seg.encoded.clear()
    generate_masks(seg, scene.image, AmgParams(points_per_side=4), embedding=embedding)
    assert seg.encoded == []
    with pytest.raises(
        ValueError, match="embedding is of a 200x150 image but the image is 100x150"
    ):
        generate_masks(
            seg, scene.image[:, :100].copy(), AmgParams(points_per_side=4), embedding=embedding
        )


def test_decoder_batches_are_bounded(scene):
    seg = small_segmenter()
    generate_masks(seg, scene.image, AmgParams(points_per_side=9, points_per_batch=16))
    assert seg.decode_calls == 6 and seg.decoded_points == 81  # 5 x 16 + 1


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"points_per_side": 0}, "points_per_side must be between 1 and 1024, got 0"),
        ({"points_per_side": 2.5}, "points_per_side must be a whole number"),
        ({"pred_iou_thresh": 1.5}, r"pred_iou_thresh must be in \[0.0, 1.0\], got 1.5"),
        ({"stability_score_thresh": float("nan")}, "stability_score_thresh must be a finite"),
        ({"stability_score_offset": 0}, "stability_score_offset must be in"),
        ({"crop_n_layers": -1}, "crop_n_layers must be between 0 and 4"),
        ({"crop_overlap_ratio": 1.0}, "crop_overlap_ratio must be in"),
        ({"min_mask_region_area": -5}, "min_mask_region_area must be between"),
        ({"max_mask_area_fraction": 0.0}, "max_mask_area_fraction must be in"),
        ({"adaptive_points_per_side": 64}, "adaptive_points_per_side must be between 1 and 32"),
        (
            {"points_per_side": 4, "crop_n_layers": 2, "crop_n_points_downscale_factor": 4},
            "crop layer 2 would get no points",
        ),
    ],
)
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(AmgParamsError, match=message):
        AmgParams(**kwargs)


def test_presets_and_round_trip():
    paper = AmgParams.paper()
    assert (paper.points_per_side, paper.crop_n_layers, paper.min_mask_region_area) == (32, 2, 100)
    assert [paper.layer_points_per_side(i) for i in range(3)] == [32, 16, 8]
    assert AmgParams.fast().adaptive
    assert AmgParams.from_dict(paper.to_dict()) == paper
    with pytest.raises(AmgParamsError, match="unknown .* parameters: \\['grid'\\]"):
        AmgParams.from_dict({"grid": 3})


def test_bad_image_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8 RGB image, got shape \(10, 10\)"):
        generate_masks(small_segmenter(), np.zeros((10, 10), np.uint8))


# ---------------------------------------------------------------- the shipped demo model


@pytest.fixture(scope="module")
def demo_model():
    from samstudio.inference.errors import ModelLoadError
    from samstudio.inference.loader import open_model

    try:
        return open_model(None, device="cpu")
    except ModelLoadError as exc:
        pytest.skip(f"the demo model is not installed yet: {exc}")


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="the shipped demo model (1-point mIoU 0.58, oracle 0.73 on held-out scenes) "
    "predicts IoUs below the paper's 0.88 filter and soft logits (stability < 0.95) even "
    "for its good masks (benchmarks/demo_model_calibration.py): measured 0 of 30 objects "
    "found; with no filter at all only 20 of the 30 have any grid candidate at IoU >= 0.8 "
    "(benchmarks/amg_ceiling.py); remove this marker when a better model ships",
)
def test_demo_model_finds_the_objects_of_generated_scenes(demo_model):
    """Issue 7 §6: the default pipeline (32x32 grid, paper filters) on held-out generated
    scenes finds >= 90% of the annotated objects (wholes, parts, subparts) at IoU >= 0.8."""
    from samstudio.training.synthetic import make_scene

    found = total = 0
    for seed in range(10_000_500, 10_000_504):  # held-out seeds (training uses 0, 1, ...)
        scene = make_scene(seed)
        masks = [r.mask() for r in generate_masks(demo_model, scene.image, AmgParams())]
        ious = best_ious(scene.masks, masks)
        found += sum(iou >= 0.8 for iou in ious)
        total += len(ious)
    assert found / total >= 0.9, f"found {found} of {total} objects ({found / total:.1%})"


class _CallCounter:
    """A Segmenter wrapper that counts batched decoder calls."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def decode_points_batch(self, embedding, points, multimask=True):
        self.calls += 1
        return self.inner.decode_points_batch(embedding, points, multimask=multimask)


@pytest.mark.slow
def test_filling_refinement_batches_never_costs_calls_or_masks(demo_model, monkeypatch):
    """Adaptive mode with the shipped model: filling partly empty refinement batches
    never costs more decoder calls (points decoded ahead ask about no one, so the
    refinement is the same), loses none of the masks found without it, and the
    progress counts stay exact. How many calls it saves depends on the model: with
    stages 5-9 fewer here; with stage 10, on these four scenes, the same (40 and 40)."""
    import samstudio.core.amg_adaptive as adaptive
    from samstudio.training.synthetic import make_scene

    params = AmgParams(adaptive=True, pred_iou_thresh=0.5, stability_score_thresh=0.8)
    default = adaptive.FILL_REACH
    calls: dict[int, int] = {}
    masks: dict[int, list] = {}
    for reach in (0, default):  # 0: no point is near enough to fill with
        monkeypatch.setattr(adaptive, "FILL_REACH", reach)
        counter = _CallCounter(demo_model)
        calls[reach], masks[reach] = 0, []
        for seed in range(10_000_508, 10_000_512):  # held-out seeds
            image = make_scene(seed).image
            events = list(iter_masks(counter, image, params))
            assert events[-1].points_done == events[-1].points_total
            masks[reach].append([r.mask() for r in events[-1].masks])
        calls[reach] = counter.calls
    assert calls[default] <= calls[0], calls
    for without, filled in zip(masks[0], masks[default], strict=True):
        assert min(best_ious(np.array(without), filled), default=1.0) >= 0.95


def test_count_and_stability_bounds_hold():
    import cv2

    rng = np.random.default_rng(4)
    for size in ((150, 200), (301, 97)):
        h_in, w_in = resized_shape(size[0], size[1], 256)
        up = LogitUpscaler((h_in, w_in), size, 256, low_res=64)
        for _ in range(8):
            noise = rng.normal(size=(64, 64)).astype(np.float32)
            low = cv2.GaussianBlur(noise, (0, 0), rng.uniform(1, 6)) * rng.uniform(10, 60)
            full = upscale_logits(low[None], (h_in, w_in), size, 256)[0]
            for t in (-1.0, 0.0, 1.0):
                lower, upper = up.count_bounds(low, t)
                assert lower <= int((full > t).sum()) <= upper
            union = int((full > -1).sum())
            if union:
                exact = int((full > 1).sum()) / union
                assert up.stability_upper_bound(low, 0.0, 1.0) >= exact - 1e-9
