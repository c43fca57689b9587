"""Our automatic masks against Meta's `SamAutomaticMaskGenerator`: same weights, image, params.

The criterion of the issue: >= 99% of the masks of each side have a partner with
IoU >= 0.95 on the other side, and the counts agree within 1%. Random vit_b weights
predict IoUs near 0, so the paper's filters keep nothing on either side; the relaxed
case (no IoU filter, a stability threshold that splits the candidates, no NMS
suppression, small-region cleaning on) compares about a hundred masks decision by
decision. Both sides reuse the session's encoder pass (a vit_b encode costs ~25 s).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from samstudio.core.amg import AmgParams, generate_masks
from samstudio.core.amg_grid import crop_boxes, point_grid
from samstudio.core.amg_nms import box_nms
from samstudio.core.masks import rle_iou

pytestmark = pytest.mark.torch


def meta_masks(predictor: Any, image: np.ndarray, **params: Any) -> list[dict[str, Any]]:
    """Meta's generator on the session's `SamPredictor`, whose image is already set."""
    from segment_anything import SamAutomaticMaskGenerator

    generator = SamAutomaticMaskGenerator(predictor.model, output_mode="coco_rle", **params)
    # The predictor holds test_image's features: skip the re-encode and the reset.
    predictor_set = predictor.set_image
    original = predictor.original_size

    def set_image(im: np.ndarray) -> None:
        if im.shape[:2] != tuple(original):
            predictor_set(im)

    generator.predictor = _NoReset(predictor, set_image)
    return generator.generate(image)


class _NoReset:
    """The session predictor, with set_image reusing its features and reset a no-op."""

    def __init__(self, predictor: Any, set_image: Any) -> None:
        self._p = predictor
        self.set_image = set_image

    def reset_image(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._p, name)


def agreement(ours: list[Any], reference: list[dict[str, Any]]) -> tuple[float, float, float]:
    a = [r.segmentation for r in ours]
    b = [r["segmentation"] for r in reference]
    if not a and not b:
        return 1.0, 1.0, 0.0
    iou = rle_iou(a, b)
    ours_ok = float((iou.max(axis=1) >= 0.95).mean()) if len(b) else 0.0
    ref_ok = float((iou.max(axis=0) >= 0.95).mean()) if len(a) else 0.0
    return ours_ok, ref_ok, abs(len(a) - len(b)) / max(len(b), 1)


@pytest.mark.slow
def test_relaxed_filters_give_meta_s_masks(
    torch_segmenter, torch_embedding, reference_predictor, test_image
):
    params = dict(
        points_per_side=6,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.15,
        box_nms_thresh=1.0,
        min_mask_region_area=20,
    )
    ours = generate_masks(
        torch_segmenter,
        test_image,
        AmgParams(max_mask_area_fraction=None, **params),
        embedding=torch_embedding,
    )
    reference = meta_masks(reference_predictor, test_image, **params)
    assert 20 <= len(reference) < 108  # the stability filter drops some of 36 x 3 candidates
    ours_ok, ref_ok, count_diff = agreement(ours, reference)
    assert ours_ok >= 0.99 and ref_ok >= 0.99, (ours_ok, ref_ok, len(ours), len(reference))
    assert count_diff <= 0.01, (len(ours), len(reference))
    # the scores of matched masks agree too
    ours_stab = sorted(round(r.stability_score, 3) for r in ours)
    ref_stab = sorted(round(r["stability_score"], 3) for r in reference)
    assert np.allclose(ours_stab, ref_stab, atol=2e-3)


@pytest.mark.slow
def test_paper_filters_agree_with_meta(
    torch_segmenter, torch_embedding, reference_predictor, test_image
):
    params = dict(points_per_side=4)  # Meta's defaults: IoU 0.88, stability 0.95, NMS 0.7
    ours = generate_masks(
        torch_segmenter,
        test_image,
        AmgParams(max_mask_area_fraction=None, **params),
        embedding=torch_embedding,
    )
    reference = meta_masks(reference_predictor, test_image, **params)
    ours_ok, ref_ok, count_diff = agreement(ours, reference)
    assert (ours_ok, ref_ok, count_diff) == (1.0, 1.0, 0.0), (len(ours), len(reference))


def test_grids_and_crops_match_meta_s():
    from segment_anything.utils.amg import build_point_grid, generate_crop_boxes

    for n in (1, 4, 32):
        assert np.allclose(point_grid(n), build_point_grid(n))
    for size in ((1500, 2250), (300, 450), (777, 333)):
        for layers in (0, 1, 2, 3):
            boxes, layer_idx = generate_crop_boxes(size, layers, 512 / 1500)
            ours = crop_boxes(size, layers, 512 / 1500)
            assert [list(b.xyxy) for b in ours] == boxes
            assert [b.layer for b in ours] == layer_idx


def test_box_nms_matches_torchvision():
    import torch
    from torchvision.ops import batched_nms

    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 200))
        xy = rng.integers(0, 300, (n, 2))
        wh = rng.integers(0, 120, (n, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
        scores = rng.choice([0.2, 0.5, 0.9, 0.91], n).astype(np.float32)  # many ties
        for thresh in (0.3, 0.7):
            expected = batched_nms(
                torch.from_numpy(boxes), torch.from_numpy(scores), torch.zeros(n), thresh
            ).numpy()
            assert box_nms(boxes, scores, thresh).tolist() == expected.tolist()


# ---------------------------------------------------------------- a tiny SAM, with crops


@pytest.fixture(scope="module")
def tiny_sam() -> Any:
    from model_fixtures import build_tiny_sam

    return build_tiny_sam()


# The tiny random SAM's masks are large and soft: stability with a small offset splits
# them, and without NMS suppression every decision of every crop is compared.
TINY_RELAXED = {
    "pred_iou_thresh": 0.0,
    "stability_score_thresh": 0.3,
    "stability_score_offset": 0.1,
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"box_nms_thresh": 1.0, "crop_nms_thresh": 1.0}, id="no-suppression"),
        pytest.param({"min_mask_region_area": 30}, id="nms-and-cleaning"),
    ],
)
def test_tiny_sam_with_crops_gives_meta_s_masks(tiny_sam, params):
    """Whole image plus 2x2 crops (each encoded), 64x64 logits from a 256 px model input."""
    from model_fixtures import make_test_image
    from segment_anything import SamAutomaticMaskGenerator

    from samstudio.inference.torch_backend import TorchSegmenter

    image = make_test_image(300, 450)
    common = {"points_per_side": 8, "crop_n_layers": 1, **TINY_RELAXED, **params}
    segmenter = TorchSegmenter(tiny_sam, "tiny-test", device="cpu")
    ours = generate_masks(segmenter, image, AmgParams(max_mask_area_fraction=None, **common))
    reference = SamAutomaticMaskGenerator(tiny_sam, output_mode="coco_rle", **common).generate(
        image
    )
    assert len(reference) >= 1
    if params.get("box_nms_thresh") == 1.0:
        assert len(reference) >= 50  # many decisions compared one by one
    ours_ok, ref_ok, count_diff = agreement(ours, reference)
    assert ours_ok >= 0.99 and ref_ok >= 0.99, (ours_ok, ref_ok, len(ours), len(reference))
    assert count_diff <= 0.01, (len(ours), len(reference))
    assert sorted(r.crop_box for r in ours) == sorted(tuple(r["crop_box"]) for r in reference)


@pytest.mark.slow
def test_onnx_model_runs_without_torch(tiny_sam, tmp_path):
    """The ONNX pair of the tiny SAM, in a process where torch and torchvision cannot be
    imported, gives the masks the PyTorch backend gives."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from model_fixtures import make_test_image

    from samstudio.inference.onnx_export import export_onnx
    from samstudio.inference.torch_backend import TorchSegmenter

    onnx_dir = export_onnx(tiny_sam, tmp_path / "tiny", model_id="tiny-test")
    image = make_test_image(200, 300)
    np.save(tmp_path / "image.npy", image)
    params = {"points_per_side": 8, **TINY_RELAXED, "box_nms_thresh": 1.0}
    script = f"""
import json, sys
import numpy as np
for name in ("torch", "torchvision", "segment_anything"):
    sys.modules[name] = None  # any import of them now fails
from samstudio.core.amg import AmgParams, generate_masks
from samstudio.inference.onnx_backend import OnnxSegmenter
segmenter = OnnxSegmenter.from_directory({str(onnx_dir)!r})
image = np.load({str(tmp_path / "image.npy")!r})
records = generate_masks(segmenter, image, AmgParams(max_mask_area_fraction=None, **{params!r}))
print(json.dumps([r.segmentation for r in records]))
"""
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=repo, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    onnx_masks = json.loads(done.stdout.strip().splitlines()[-1])
    torch_records = generate_masks(
        TorchSegmenter(tiny_sam, "tiny-test", device="cpu"),
        image,
        AmgParams(max_mask_area_fraction=None, **params),
    )
    assert len(torch_records) >= 20
    iou = rle_iou(onnx_masks, [r.segmentation for r in torch_records])
    assert (iou.max(axis=1) >= 0.95).mean() >= 0.99 and (iou.max(axis=0) >= 0.95).mean() >= 0.99
    assert abs(len(onnx_masks) - len(torch_records)) <= 0.01 * len(torch_records)


# ---------------------------------------------------------------- the shipped demo model


@pytest.fixture(scope="module")
def demo_segmenter() -> Any:
    """The shipped demo model on the PyTorch backend (Meta's generator needs the Sam module)."""
    from samstudio.inference.catalog import shipped_model_dir
    from samstudio.inference.torch_backend import TorchSegmenter

    path = shipped_model_dir() / "model.pt"  # the PyTorch weights: Meta's generator needs torch
    if not path.is_file():
        pytest.skip(f"the demo model is not in this checkout ({path})")
    return TorchSegmenter.from_checkpoint(path, device="cpu")


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="the shipped demo model keeps no mask under the paper's filters (its predicted "
    "IoUs stay below 0.88), and Meta's generator then raises IndexError with crops on; "
    "remove this marker when a better model ships",
)
def test_demo_model_with_crops_gives_meta_s_masks(demo_segmenter):
    """The paper's filters with a trained model, on the whole image plus 2x2 crops: crop
    edges, cross-crop NMS and the demo model's 64x64 logits on a generated scene."""
    from segment_anything import SamAutomaticMaskGenerator

    from samstudio.training.synthetic import make_scene

    image = make_scene(21, size=320).image
    common = {"points_per_side": 16, "crop_n_layers": 1}
    ours = generate_masks(demo_segmenter, image, AmgParams(max_mask_area_fraction=None, **common))
    generator = SamAutomaticMaskGenerator(demo_segmenter.sam, output_mode="coco_rle", **common)
    reference = generator.generate(image)
    assert len(reference) >= 5
    ours_ok, ref_ok, count_diff = agreement(ours, reference)
    assert ours_ok >= 0.99 and ref_ok >= 0.99, (ours_ok, ref_ok, len(ours), len(reference))
    assert count_diff <= 0.01, (len(ours), len(reference))
