"""The PyTorch backend against Meta's SamPredictor on seeded random vit_b weights.

Two vit_b encoder passes per session (the reference `set_image` and our `encode`,
both session fixtures); every other test only decodes. A tiny non-1024 SAM built from
Meta's modules checks the same equivalence end to end in under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
pytest.importorskip("segment_anything", reason="Meta's segment-anything is not installed")

from model_fixtures import build_tiny_sam, make_test_image  # noqa: E402
from segment_anything import SamPredictor  # noqa: E402
from segment_anything.utils.amg import calculate_stability_score  # noqa: E402
from segment_anything.utils.transforms import ResizeLongestSide  # noqa: E402

from samstudio.inference.errors import InferenceError, PromptError  # noqa: E402
from samstudio.inference.preprocess import prepare_input  # noqa: E402
from samstudio.inference.torch_backend import TorchSegmenter  # noqa: E402
from samstudio.inference.types import ImageEmbedding, Prompts, Segmenter  # noqa: E402

LOGIT_TOL = 1e-5
IOU_TOL = 1e-5
# Our masks are upscaled with OpenCV (samstudio.inference.preprocess.upscale_logits),
# Meta's with torch: the two bilinear resamplers differ by up to ~1e-4 in logit, so a
# pixel may flip only where Meta's own logit is that close to the threshold.
NEAR_THRESHOLD = 1e-3

# Prompts on the 600x400 test image (x, y in displayed pixels).
PROMPT_CASES: dict[str, dict[str, Any]] = {
    "one point": {"points": [[150.0, 110.0]], "labels": [1]},
    "fg and bg points": {
        "points": [[150.0, 110.0], [390.0, 240.0], [60.0, 360.0]],
        "labels": [1, 1, 0],
    },
    "box": {"box": [55.0, 55.0, 215.0, 225.0]},
    "point and box": {"points": [[130.0, 140.0]], "labels": [1], "box": [55.0, 55.0, 215.0, 225.0]},
    "background point only": {"points": [[500.0, 50.0]], "labels": [0]},
}


def _prompts(case: dict[str, Any], mask_input: np.ndarray | None = None) -> Prompts:
    return Prompts(
        points=np.asarray(case.get("points", np.zeros((0, 2))), np.float32),
        labels=np.asarray(case.get("labels", []), np.int32),
        box=None if "box" not in case else np.asarray(case["box"], np.float32),
        mask_input=mask_input,
    )


def _scaled(case: dict[str, Any], factor: float) -> dict[str, Any]:
    """A prompt case with its point and box coordinates multiplied by `factor`."""
    out = dict(case)
    for key in ("points", "box"):
        if key in case:
            out[key] = (np.asarray(case[key], np.float32) * factor).tolist()
    return out


def _reference(
    predictor: SamPredictor, prompts: Prompts, multimask: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Meta's (full-size logits, IoU, low-res logits), ordered as our backend promises:
    the 3 multimask outputs by IoU (best first) for one ambiguous prompt, else token 0."""
    use_multimask = multimask and prompts.is_ambiguous
    logits, iou, low_res = predictor.predict(
        point_coords=prompts.points if len(prompts.points) else None,
        point_labels=prompts.labels if len(prompts.points) else None,
        box=prompts.box,
        mask_input=None if prompts.mask_input is None else prompts.mask_input[None],
        multimask_output=use_multimask,
        return_logits=True,
    )
    order = np.argsort(-iou, kind="stable")
    return logits[order], iou[order], low_res[order]


def _assert_matches(prediction: Any, reference: tuple[np.ndarray, ...]) -> None:
    ref_logits, ref_iou, ref_low_res = reference
    assert prediction.low_res_logits.shape == ref_low_res.shape
    np.testing.assert_allclose(prediction.low_res_logits, ref_low_res, rtol=0, atol=LOGIT_TOL)
    np.testing.assert_allclose(prediction.iou_predictions, ref_iou, rtol=0, atol=IOU_TOL)
    assert np.all(np.diff(prediction.iou_predictions) <= 0), "candidates must be best first"
    masks = prediction.masks
    ref_masks = ref_logits > 0
    assert masks.shape == ref_masks.shape and masks.dtype == bool
    differ = masks != ref_masks
    assert np.all(np.abs(ref_logits[differ]) < NEAR_THRESHOLD), (
        f"{differ.sum()} mask pixels differ away from the threshold"
    )
    assert differ.mean() < 1e-4
    # Both classes are present: the comparison is not between two empty masks.
    assert 0 < ref_masks.mean() < 1


def test_segmenter_protocol_and_info(torch_segmenter: TorchSegmenter) -> None:
    assert isinstance(torch_segmenter, Segmenter)
    info = torch_segmenter.info
    assert info.backend == "torch" and info.device == "cpu"
    assert info.architecture == "vit_b" and info.image_size == 1024
    assert info.model_id.startswith("sam_vit_b-") and len(info.model_id) == len("sam_vit_b-") + 12
    assert info.preprocessing_id == torch_segmenter.preprocessing.id
    assert info.source.endswith(".pth")


@pytest.mark.parametrize("shape", [(400, 600), (517, 333), (1024, 1024), (64, 2000)])
def test_preprocessing_is_samPredictors_input(
    torch_segmenter: TorchSegmenter, shape: tuple[int, int]
) -> None:
    """Our numpy input tensor is bit-identical to what SamPredictor feeds the encoder."""
    image = make_test_image(*shape)
    sam = torch_segmenter.sam
    transform = ResizeLongestSide(sam.image_encoder.img_size)
    resized = transform.apply_image(image)
    tensor = torch.as_tensor(resized).permute(2, 0, 1).contiguous()[None]
    expected = sam.preprocess(tensor).numpy()
    ours, input_size = prepare_input(image, torch_segmenter.preprocessing)
    assert input_size == tuple(tensor.shape[-2:])
    assert np.array_equal(ours, expected)


@pytest.mark.slow
def test_embedding_value(torch_embedding: ImageEmbedding, torch_segmenter: TorchSegmenter) -> None:
    emb = torch_embedding
    assert emb.features.shape == (256, 64, 64) and emb.features.dtype == np.float32
    assert emb.original_size == (400, 600)
    assert emb.input_size == (683, 1024)
    assert emb.model_id == torch_segmenter.info.model_id
    assert emb.preprocessing_id == torch_segmenter.info.preprocessing_id


@pytest.mark.slow
def test_features_identical_to_sampredictor(
    torch_embedding: ImageEmbedding, reference_predictor: SamPredictor
) -> None:
    reference = reference_predictor.features[0].numpy()
    assert float(np.abs(reference).max()) > 0.1
    assert np.array_equal(torch_embedding.features, reference)
    assert reference_predictor.input_size == torch_embedding.input_size
    assert reference_predictor.original_size == torch_embedding.original_size


@pytest.mark.slow
@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("case", list(PROMPT_CASES))
def test_decode_matches_sampredictor(
    torch_segmenter: TorchSegmenter,
    torch_embedding: ImageEmbedding,
    reference_predictor: SamPredictor,
    case: str,
    multimask: bool,
) -> None:
    prompts = _prompts(PROMPT_CASES[case])
    prediction = torch_segmenter.decode(torch_embedding, prompts, multimask=multimask)
    expected_count = 3 if multimask and prompts.is_ambiguous else 1
    assert len(prediction) == expected_count
    _assert_matches(prediction, _reference(reference_predictor, prompts, multimask))


@pytest.mark.slow
@pytest.mark.parametrize("with_point", [True, False], ids=["point+mask", "mask only"])
def test_mask_input_refinement_matches_sampredictor(
    torch_segmenter: TorchSegmenter,
    torch_embedding: ImageEmbedding,
    reference_predictor: SamPredictor,
    with_point: bool,
) -> None:
    """The interactive loop: the best low-res logits of one click fed back with a second
    click (or alone), as the paper's §A training simulation does."""
    first = torch_segmenter.decode(torch_embedding, _prompts(PROMPT_CASES["one point"]))
    case = {"points": [[150.0, 110.0], [180.0, 200.0]], "labels": [1, 0]} if with_point else {}
    prompts = _prompts(case, mask_input=first.low_res_logits[0])
    for multimask in (True, False):
        prediction = torch_segmenter.decode(torch_embedding, prompts, multimask=multimask)
        assert len(prediction) == 1
        _assert_matches(prediction, _reference(reference_predictor, prompts, multimask))


@pytest.mark.slow
def test_single_mask_is_the_fourth_token(
    torch_segmenter: TorchSegmenter,
    torch_embedding: ImageEmbedding,
    reference_predictor: SamPredictor,
) -> None:
    """Several prompts with multimask on still give the single output of token 0, which
    is what SamPredictor returns with multimask_output=False."""
    prompts = _prompts(PROMPT_CASES["fg and bg points"])
    ours = torch_segmenter.decode(torch_embedding, prompts, multimask=True)
    _, iou, low_res = reference_predictor.predict(
        point_coords=prompts.points, point_labels=prompts.labels, multimask_output=False
    )
    np.testing.assert_allclose(ours.low_res_logits, low_res, rtol=0, atol=LOGIT_TOL)
    np.testing.assert_allclose(ours.iou_predictions, iou, rtol=0, atol=IOU_TOL)


@pytest.mark.slow
def test_single_candidate_mask_and_stability(
    torch_segmenter: TorchSegmenter, torch_embedding: ImageEmbedding
) -> None:
    prediction = torch_segmenter.decode(torch_embedding, _prompts(PROMPT_CASES["one point"]))
    for i in range(len(prediction)):
        assert np.array_equal(prediction.mask(i), prediction.masks[i])
    # Stability (paper §B) as Meta computes it, on the low-res cells that cover the image.
    cells = prediction.low_res_logits[:, :171, :256]  # 683x1024 input -> 171x256 of 256x256
    expected = calculate_stability_score(torch.from_numpy(cells), 0.0, 1.0).numpy()
    np.testing.assert_allclose(prediction.stability_scores, expected, atol=1e-6)
    assert np.all((prediction.stability_scores > 0) & (prediction.stability_scores <= 1))


@pytest.mark.slow
@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
def test_batch_decode_equals_single_decodes(
    torch_segmenter: TorchSegmenter,
    torch_embedding: ImageEmbedding,
    reference_predictor: SamPredictor,
    multimask: bool,
) -> None:
    points = np.array([[150, 110], [599, 399], [300.5, 200.25]], np.float32)
    batch = torch_segmenter.decode_points_batch(
        torch_embedding, points, multimask=multimask, batch_size=2
    )
    m = 3 if multimask else 1
    assert batch.low_res_logits.shape == (3, m, 256, 256)
    assert batch.iou_predictions.shape == (3, m)
    assert batch.original_size == (400, 600) and batch.input_size == (683, 1024)
    assert np.array_equal(batch.points, points)
    for i, point in enumerate(points):
        _, iou, low_res = reference_predictor.predict(
            point_coords=point[None], point_labels=np.ones(1), multimask_output=multimask
        )
        np.testing.assert_allclose(batch.low_res_logits[i], low_res, rtol=0, atol=LOGIT_TOL)
        np.testing.assert_allclose(batch.iou_predictions[i], iou, rtol=0, atol=IOU_TOL)
        single = torch_segmenter.decode(
            torch_embedding, Prompts(points=point[None], labels=[1]), multimask=multimask
        )
        order = np.argsort(-batch.iou_predictions[i], kind="stable")
        np.testing.assert_allclose(
            single.low_res_logits, batch.low_res_logits[i][order], rtol=0, atol=LOGIT_TOL
        )
    empty = torch_segmenter.decode_points_batch(torch_embedding, np.zeros((0, 2), np.float32))
    assert empty.low_res_logits.shape == (0, 3, 256, 256)


@pytest.mark.slow
def test_decode_refuses_foreign_embeddings_and_bad_prompts(
    torch_segmenter: TorchSegmenter, torch_embedding: ImageEmbedding
) -> None:
    other = ImageEmbedding(
        torch_embedding.features,
        torch_embedding.original_size,
        torch_embedding.input_size,
        "sam_vit_h-000000000000",
        torch_embedding.preprocessing_id,
    )
    with pytest.raises(InferenceError, match="computed by model 'sam_vit_h-000000000000'"):
        torch_segmenter.decode(other, _prompts(PROMPT_CASES["one point"]))
    with pytest.raises(PromptError, match="256x256"):
        torch_segmenter.decode(
            torch_embedding, Prompts(mask_input=np.zeros((128, 128), np.float32))
        )


def test_encode_rejects_non_rgb_images(torch_segmenter: TorchSegmenter) -> None:
    with pytest.raises(InferenceError, match="uint8 RGB"):
        torch_segmenter.encode(np.zeros((10, 10), np.uint8))
    with pytest.raises(InferenceError, match="uint8 RGB"):
        torch_segmenter.encode(np.zeros((10, 10, 3), np.float32))


@pytest.mark.parametrize("img_size", [256, 320])
def test_small_non_1024_model_matches_sampredictor(tmp_path: Path, img_size: int) -> None:
    """Preprocessing, features, every prompt type and the batch path on a model whose
    input is not 1024 and whose low-res masks are not 256x256, through a checkpoint file."""
    sam = build_tiny_sam(seed=3, img_size=img_size)
    path = tmp_path / "tiny.pth"
    torch.save(sam.state_dict(), path)
    ours = TorchSegmenter(sam, "tiny-test", source=str(path), device="cpu")
    assert ours.info.image_size == img_size
    image = make_test_image(300, 450)
    predictor = SamPredictor(build_tiny_sam(seed=3, img_size=img_size))
    predictor.set_image(image)
    embedding = ours.encode(image)
    np.testing.assert_array_equal(embedding.features, predictor.features[0].numpy())
    low = 4 * (img_size // 16)
    first = None
    # PROMPT_CASES are on the 600x400 image; scaled to this 450x300 one they stay on it
    # (a prompt off the image is a PromptError, tests/unit/test_prompts_on_image.py).
    for case in (_scaled(c, 0.75) for c in PROMPT_CASES.values()):
        for multimask in (True, False):
            prompts = _prompts(case)
            prediction = ours.decode(embedding, prompts, multimask)
            assert prediction.low_res_logits.shape[1:] == (low, low)
            _, iou, low_res = _reference(predictor, prompts, multimask)
            np.testing.assert_allclose(prediction.low_res_logits, low_res, atol=LOGIT_TOL, rtol=0)
            np.testing.assert_allclose(prediction.iou_predictions, iou, atol=IOU_TOL, rtol=0)
            first = first if first is not None else prediction
    assert first is not None
    refine = _prompts({"points": [[100.0, 90.0]], "labels": [1]}, first.low_res_logits[0])
    prediction = ours.decode(embedding, refine)
    _, iou, low_res = _reference(predictor, refine, True)
    np.testing.assert_allclose(prediction.low_res_logits, low_res, atol=LOGIT_TOL, rtol=0)
    batch = ours.decode_points_batch(embedding, np.array([[100, 90], [10, 280]], np.float32))
    for i, point in enumerate(batch.points):
        _, iou, low_res = predictor.predict(point_coords=point[None], point_labels=np.ones(1))
        np.testing.assert_allclose(batch.low_res_logits[i], low_res, atol=LOGIT_TOL, rtol=0)
        np.testing.assert_allclose(batch.iou_predictions[i], iou, atol=IOU_TOL, rtol=0)
