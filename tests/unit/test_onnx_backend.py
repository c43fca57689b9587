"""The ONNX Runtime backend against Meta's SamPredictor and our PyTorch backend.

Seeded random vit_b weights are exported once per session (the export traces the
encoder once, ~40-80 s on the CI machines) and encoded once with ONNX Runtime. The
decoder is checked on identical features (the reference predictor's), so its
tolerance is not blurred by the encoder's; the whole chain is checked by mask IoU.

Measured here (random vit_b of `model_fixtures`, 400x600 test image, ONNX Runtime
1.32 on the CPU):
- encoder features, ONNX vs torch: max abs difference 1.05e-5 (features reach 4.5);
- decoder on identical features, all prompt cases: low-res logits within 4.3e-6 abs
  (logits reach 2-3), IoU predictions within 1.4e-7;
- end to end (ONNX features + ONNX decoder vs SamPredictor): mask IoU >= 0.99999.
The asserted tolerances leave a margin of 10-20x over those figures.
Tests on vit_b are marked slow: they share the session's export and encoding (about
1.5 min together on an idle 2-core machine).

A tiny non-1024 SAM (256 px input, 16x16 embedding grid, 32-channel decoder, 64x64
mask input, `model_fixtures.build_tiny_sam`) exercises the exporter's generality end
to end in a few seconds, and copies of its export are damaged to test load errors.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samstudio.inference.errors import InferenceError, ModelLoadError, PromptError
from samstudio.inference.preprocess import Preprocessing
from samstudio.inference.types import ImageEmbedding, Prompts, Segmenter

torch = pytest.importorskip("torch", reason="exporting needs PyTorch")
pytest.importorskip("segment_anything", reason="exporting needs Meta's segment-anything")

from model_fixtures import build_tiny_sam  # noqa: E402
from segment_anything import SamPredictor  # noqa: E402

from samstudio.inference.onnx_backend import OnnxSegmenter  # noqa: E402
from samstudio.inference.onnx_export import export_onnx  # noqa: E402

pytestmark = pytest.mark.torch

# Tolerances (10-20x the measured differences, see the module docstring).
FEATURES_ATOL = 2e-4
LOGITS_ATOL = 5e-5
IOU_ATOL = 2e-6
MASK_IOU_MIN = 0.99

EXPORTED_FILES = [
    "decoder.onnx",
    "decoder_prepared.onnx",
    "encoder.onnx",
    "manifest.json",
    "prepare.onnx",
]

# Prompts in the test image's original frame (600 wide, 400 high).
PROMPT_CASES: dict[str, dict[str, Any]] = {
    "point": {"points": [[150.0, 140.0]], "labels": [1]},
    "points": {"points": [[150.0, 140.0], [390.0, 240.0], [500.0, 60.0]], "labels": [1, 1, 0]},
    "box": {"box": [60.0, 50.0, 330.0, 260.0]},
    "point+box": {"points": [[200.0, 150.0]], "labels": [1], "box": [60.0, 50.0, 330.0, 260.0]},
    "background point": {"points": [[30.0, 380.0]], "labels": [0]},
}


def reference_outputs(
    predictor: Any, case: dict[str, Any], multimask: bool, mask_input: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SamPredictor's (masks, iou, low-res logits) in our order: with multimask and one
    point the 3 candidates by IoU descending, otherwise the single-mask output."""
    ambiguous = len(case.get("points", [])) == 1 and case.get("box") is None
    use_multi = multimask and ambiguous
    masks, iou, low_res = predictor.predict(
        point_coords=np.asarray(case["points"], np.float32) if "points" in case else None,
        point_labels=np.asarray(case["labels"]) if "labels" in case else None,
        box=np.asarray(case["box"], np.float32) if "box" in case else None,
        mask_input=None if mask_input is None else mask_input[None],
        multimask_output=use_multi,
    )
    order = np.argsort(-iou, kind="stable")
    return masks[order], iou[order], low_res[order]


def to_prompts(case: dict[str, Any], mask_input: np.ndarray | None = None) -> Prompts:
    return Prompts(
        points=np.asarray(case.get("points", np.zeros((0, 2))), np.float32),
        labels=np.asarray(case.get("labels", np.zeros(0)), np.int32),
        box=None if "box" not in case else np.asarray(case["box"], np.float32),
        mask_input=mask_input,
    )


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


# ----------------------------------------------------------------- session fixtures


@pytest.fixture(scope="session")
def vit_b_onnx_dir(random_vit_b_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded random vit_b checkpoint exported to ONNX (once per session)."""
    return export_onnx(random_vit_b_checkpoint, tmp_path_factory.mktemp("onnx") / "vit_b")


@pytest.fixture(scope="session")
def onnx_vit_b(vit_b_onnx_dir: Path) -> OnnxSegmenter:
    return OnnxSegmenter.from_directory(vit_b_onnx_dir)


@pytest.fixture(scope="session")
def onnx_embedding(onnx_vit_b: OnnxSegmenter, test_image: np.ndarray) -> ImageEmbedding:
    return onnx_vit_b.encode(test_image)


@pytest.fixture(scope="session")
def reference_embedding(reference_predictor: Any, onnx_vit_b: OnnxSegmenter) -> ImageEmbedding:
    """SamPredictor's features as an embedding value, to test the decoder alone."""
    return ImageEmbedding(
        features=reference_predictor.features[0].numpy().astype(np.float32),
        original_size=tuple(reference_predictor.original_size),
        input_size=tuple(reference_predictor.input_size),
        model_id=onnx_vit_b.info.model_id,
        preprocessing_id=onnx_vit_b.info.preprocessing_id,
    )


@pytest.fixture(scope="session")
def tiny_sam() -> Any:
    return build_tiny_sam()


@pytest.fixture(scope="session")
def tiny_onnx_dir(tiny_sam: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(tiny_sam, tmp_path_factory.mktemp("onnx") / "tiny", model_id="tiny-test")


@pytest.fixture
def tiny_copy(tiny_onnx_dir: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny export that a test may damage."""
    return Path(shutil.copytree(tiny_onnx_dir, tmp_path / "tiny"))


# ----------------------------------------------------------------- vit_b export


@pytest.mark.slow
def test_export_writes_a_complete_manifest(
    vit_b_onnx_dir: Path, random_vit_b_checkpoint: Path
) -> None:
    from samstudio.inference.checkpoints import file_sha256

    manifest = json.loads((vit_b_onnx_dir / "manifest.json").read_text())
    assert manifest["format"] == "samstudio-onnx" and manifest["format_version"] == 1
    assert manifest["architecture"] == "vit_b"
    assert manifest["model_id"] == f"sam_vit_b-{file_sha256(random_vit_b_checkpoint)[:12]}"
    assert manifest["image_size"] == 1024
    assert manifest["preprocessing_id"] == Preprocessing().id  # ImageNet mean/std, 1024
    assert manifest["pixel_mean"] == [123.675, 116.28, 103.53]
    assert manifest["embedding_shape"] == [256, 64, 64]
    assert manifest["mask_input_size"] == [256, 256]
    assert manifest["opset"] == 17
    for key in ("encoder", "decoder", "prepare", "decoder_prepared"):
        entry = manifest["files"][key]
        path = vit_b_onnx_dir / entry["path"]
        assert path.stat().st_size == entry["bytes"]
        assert file_sha256(path) == entry["sha256"]
    leftovers = [p.name for p in vit_b_onnx_dir.iterdir()]
    assert sorted(leftovers) == EXPORTED_FILES


@pytest.mark.slow
def test_segmenter_reports_model_and_provider(
    onnx_vit_b: OnnxSegmenter, vit_b_onnx_dir: Path
) -> None:
    import onnxruntime as ort

    assert isinstance(onnx_vit_b, Segmenter)
    info = onnx_vit_b.info
    assert info.backend == "onnxruntime"
    assert info.architecture == "vit_b" and info.image_size == 1024
    expected = (
        "CUDAExecutionProvider"
        if "CUDAExecutionProvider" in ort.get_available_providers()
        else "CPUExecutionProvider"
    )
    assert info.device == expected
    assert info.source == str(vit_b_onnx_dir)


@pytest.mark.slow
def test_encoder_matches_reference_features(
    onnx_embedding: ImageEmbedding, reference_predictor: Any, test_image: np.ndarray
) -> None:
    ref = reference_predictor.features[0].numpy()
    assert onnx_embedding.features.shape == (256, 64, 64)
    assert onnx_embedding.features.dtype == np.float32
    assert onnx_embedding.original_size == test_image.shape[:2]
    assert onnx_embedding.input_size == tuple(reference_predictor.input_size)
    diff = np.abs(onnx_embedding.features - ref).max()
    assert diff <= FEATURES_ATOL, f"encoder features differ by {diff:.3g} (max abs)"


@pytest.mark.slow
@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("case_name", list(PROMPT_CASES))
def test_decoder_matches_reference_on_same_features(
    onnx_vit_b: OnnxSegmenter,
    reference_embedding: ImageEmbedding,
    reference_predictor: Any,
    case_name: str,
    multimask: bool,
) -> None:
    case = PROMPT_CASES[case_name]
    ref_masks, ref_iou, ref_logits = reference_outputs(reference_predictor, case, multimask)
    pred = onnx_vit_b.decode(reference_embedding, to_prompts(case), multimask=multimask)
    assert (
        len(pred)
        == len(ref_iou)
        == (3 if multimask and case_name in ("point", "background point") else 1)
    )
    np.testing.assert_allclose(pred.iou_predictions, ref_iou, atol=IOU_ATOL, rtol=0)
    np.testing.assert_allclose(pred.low_res_logits, ref_logits, atol=LOGITS_ATOL, rtol=0)
    assert np.all(np.diff(pred.iou_predictions) <= 0), "candidates must be best first"
    for i in range(len(pred)):
        assert mask_iou(pred.mask(i), ref_masks[i]) >= 0.999


@pytest.mark.slow
@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
def test_mask_input_refinement_matches_reference(
    onnx_vit_b: OnnxSegmenter,
    reference_embedding: ImageEmbedding,
    reference_predictor: Any,
    multimask: bool,
) -> None:
    """The interactive loop of the paper's §A: the previous best logits go back in."""
    first = PROMPT_CASES["point"]
    _, _, prev_logits = reference_outputs(reference_predictor, first, True)
    previous = prev_logits[0]
    for case in (PROMPT_CASES["points"], first, {}):
        ref_masks, ref_iou, ref_logits = reference_outputs(
            reference_predictor, case, multimask, mask_input=previous
        )
        pred = onnx_vit_b.decode(reference_embedding, to_prompts(case, previous), multimask)
        np.testing.assert_allclose(pred.iou_predictions, ref_iou, atol=IOU_ATOL, rtol=0)
        np.testing.assert_allclose(pred.low_res_logits, ref_logits, atol=LOGITS_ATOL, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
def test_end_to_end_masks_match_reference(
    onnx_vit_b: OnnxSegmenter,
    onnx_embedding: ImageEmbedding,
    reference_predictor: Any,
    multimask: bool,
) -> None:
    """ONNX encoder + decoder vs SamPredictor: the masks a user sees agree."""
    for name, case in PROMPT_CASES.items():
        ref_masks, ref_iou, _ = reference_outputs(reference_predictor, case, multimask)
        pred = onnx_vit_b.decode(onnx_embedding, to_prompts(case), multimask=multimask)
        assert pred.masks.shape == ref_masks.shape
        for i in range(len(pred)):
            iou = mask_iou(pred.masks[i], ref_masks[i])
            assert iou >= MASK_IOU_MIN, f"{name} candidate {i}: mask IoU {iou:.4f}"
        np.testing.assert_allclose(pred.iou_predictions, ref_iou, atol=1e-3, rtol=0)


@pytest.mark.slow
def test_same_results_as_the_torch_backend(
    onnx_vit_b: OnnxSegmenter, torch_segmenter: Any, reference_embedding: ImageEmbedding
) -> None:
    """Same embedding value into both backends: same candidates, order and scores."""
    for multimask in (True, False):
        for case in PROMPT_CASES.values():
            ours = onnx_vit_b.decode(reference_embedding, to_prompts(case), multimask)
            theirs = torch_segmenter.decode(reference_embedding, to_prompts(case), multimask)
            np.testing.assert_allclose(ours.iou_predictions, theirs.iou_predictions, atol=IOU_ATOL)
            np.testing.assert_allclose(ours.low_res_logits, theirs.low_res_logits, atol=LOGITS_ATOL)
            np.testing.assert_allclose(ours.stability_scores, theirs.stability_scores, atol=1e-3)


@pytest.mark.slow
def test_stability_scores_follow_meta_definition(
    onnx_vit_b: OnnxSegmenter, reference_embedding: ImageEmbedding
) -> None:
    """Paper §B (offset 1.0) on the low-res logits over the un-padded image area."""
    from segment_anything.utils.amg import calculate_stability_score

    pred = onnx_vit_b.decode(reference_embedding, to_prompts(PROMPT_CASES["point"]), True)
    h_in, w_in = reference_embedding.input_size  # (683, 1024)-like: rows of padding below
    rows, cols = -(-h_in * 256 // 1024), -(-w_in * 256 // 1024)
    expected = calculate_stability_score(
        torch.from_numpy(pred.low_res_logits[:, :rows, :cols]), 0.0, 1.0
    ).numpy()
    np.testing.assert_allclose(pred.stability_scores, expected, atol=1e-6)
    assert ((pred.stability_scores >= 0) & (pred.stability_scores <= 1)).all()


@pytest.mark.slow
@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
def test_batched_points_match_single_clicks(
    onnx_vit_b: OnnxSegmenter,
    reference_embedding: ImageEmbedding,
    reference_predictor: Any,
    multimask: bool,
) -> None:
    points = np.array([[10.0, 10.0], [150.0, 140.0], [390.0, 240.0], [599.0, 399.0]], np.float32)
    batch = onnx_vit_b.decode_points_batch(reference_embedding, points, multimask=multimask)
    m = 3 if multimask else 1
    assert batch.low_res_logits.shape == (4, m, 256, 256)
    assert batch.iou_predictions.shape == (4, m)
    for i, point in enumerate(points):
        _, iou, low_res = reference_predictor.predict(
            point_coords=point[None], point_labels=np.array([1]), multimask_output=multimask
        )
        np.testing.assert_allclose(batch.iou_predictions[i], iou, atol=IOU_ATOL, rtol=0)
        np.testing.assert_allclose(batch.low_res_logits[i], low_res, atol=LOGITS_ATOL, rtol=0)
    empty = onnx_vit_b.decode_points_batch(reference_embedding, np.zeros((0, 2)), multimask)
    assert empty.low_res_logits.shape == (0, m, 256, 256)


@pytest.mark.slow
def test_decode_rejects_foreign_embeddings_and_bad_masks(
    onnx_vit_b: OnnxSegmenter, reference_embedding: ImageEmbedding
) -> None:
    foreign = ImageEmbedding(
        features=np.zeros((32, 16, 16), np.float32),
        original_size=(400, 600),
        input_size=(171, 256),
        model_id="tiny-test",
        preprocessing_id=reference_embedding.preprocessing_id,
    )
    with pytest.raises(InferenceError, match="shape"):
        onnx_vit_b.decode(foreign, to_prompts(PROMPT_CASES["point"]))
    with pytest.raises(PromptError, match="256x256"):
        onnx_vit_b.decode(
            reference_embedding,
            Prompts(points=[[1, 1]], labels=[1], mask_input=np.zeros((64, 64), np.float32)),
        )
    with pytest.raises(InferenceError, match="uint8"):
        onnx_vit_b.encode(np.zeros((10, 10, 3), np.float32))


def without_prepared_graphs(export: Path, out: Path) -> Path:
    """A manifest as exports before the prepared decoder were written (links to the
    same .onnx files, no "prepare" / "decoder_prepared" entries)."""
    out.mkdir()
    manifest = json.loads((export / "manifest.json").read_text())
    for key in ("prepare", "decoder_prepared"):
        del manifest["files"][key]
    for key in ("encoder", "decoder"):
        name = manifest["files"][key]["path"]
        (out / name).symlink_to(export / name)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def assert_same_predictions(seg: OnnxSegmenter, plain: OnnxSegmenter, emb: ImageEmbedding) -> None:
    """Every prompt case, multimask on and off, and a batch of points: the prepared
    decoder (no mask input) gives the plain decoder's outputs."""
    assert seg.has_prepared_decoder and not plain.has_prepared_decoder
    for multimask in (True, False):
        for case in PROMPT_CASES.values():
            ours = seg.decode(emb, to_prompts(case), multimask)
            theirs = plain.decode(emb, to_prompts(case), multimask)
            np.testing.assert_allclose(ours.low_res_logits, theirs.low_res_logits, atol=LOGITS_ATOL)
            np.testing.assert_allclose(ours.iou_predictions, theirs.iou_predictions, atol=IOU_ATOL)
            for i in range(len(ours)):
                assert mask_iou(ours.mask(i), theirs.mask(i)) >= 0.999
        points = np.array([[10.0, 10.0], [150.0, 140.0], [599.0, 399.0]], np.float32)
        ours_b = seg.decode_points_batch(emb, points, multimask)
        theirs_b = plain.decode_points_batch(emb, points, multimask)
        np.testing.assert_allclose(ours_b.low_res_logits, theirs_b.low_res_logits, atol=LOGITS_ATOL)
        np.testing.assert_allclose(ours_b.iou_predictions, theirs_b.iou_predictions, atol=IOU_ATOL)


@pytest.mark.slow
def test_prepared_decoder_matches_the_plain_one(
    onnx_vit_b: OnnxSegmenter,
    vit_b_onnx_dir: Path,
    reference_embedding: ImageEmbedding,
    tmp_path: Path,
) -> None:
    """vit_b: first clicks through prepare.onnx + decoder_prepared.onnx against
    decoder.onnx alone, on an embedding made outside `encode` (prepared lazily)."""
    plain = OnnxSegmenter.from_directory(without_prepared_graphs(vit_b_onnx_dir, tmp_path / "old"))
    assert_same_predictions(onnx_vit_b, plain, reference_embedding)


# ----------------------------------------------------------------- tiny non-1024 SAM


def test_tiny_model_end_to_end(tiny_sam: Any, tiny_onnx_dir: Path, test_image: np.ndarray) -> None:
    """A 256 px model with a 16x16 grid, 32 channels and 64x64 mask input, against
    SamPredictor."""
    seg = OnnxSegmenter.from_directory(tiny_onnx_dir)
    manifest = json.loads((tiny_onnx_dir / "manifest.json").read_text())
    assert manifest["architecture"] == "custom" and manifest["model_id"] == "tiny-test"
    assert manifest["embedding_shape"] == [32, 16, 16] and manifest["mask_input_size"] == [64, 64]
    assert seg.info.image_size == 256
    predictor = SamPredictor(tiny_sam)
    predictor.set_image(test_image)
    emb = seg.encode(test_image)
    assert emb.input_size == tuple(predictor.input_size) == (171, 256)
    np.testing.assert_allclose(
        emb.features, predictor.features[0].numpy(), atol=FEATURES_ATOL, rtol=0
    )
    for multimask in (True, False):
        for case in PROMPT_CASES.values():
            masks, iou, low_res = reference_outputs(predictor, case, multimask)
            pred = seg.decode(emb, to_prompts(case), multimask)
            assert pred.low_res_logits.shape[1:] == (64, 64)
            np.testing.assert_allclose(pred.low_res_logits, low_res, atol=LOGITS_ATOL, rtol=0)
            np.testing.assert_allclose(pred.iou_predictions, iou, atol=IOU_ATOL, rtol=0)
            assert pred.masks.shape == masks.shape == (len(iou), 400, 600)
            assert all(mask_iou(pred.masks[i], masks[i]) >= MASK_IOU_MIN for i in range(len(iou)))
    previous = low_res[0]
    _, iou, low_res = reference_outputs(predictor, PROMPT_CASES["points"], False, previous)
    pred = seg.decode(emb, to_prompts(PROMPT_CASES["points"], previous), False)
    np.testing.assert_allclose(pred.low_res_logits, low_res, atol=LOGITS_ATOL, rtol=0)
    with pytest.raises(PromptError, match="64x64"):
        seg.decode(emb, Prompts(points=[[1, 1]], labels=[1], mask_input=np.zeros((256, 256))))


def test_old_manifest_without_prepared_graphs_loads_and_agrees(
    tiny_onnx_dir: Path, test_image: np.ndarray, tmp_path: Path
) -> None:
    """Exports made before prepare.onnx existed still load (plain decoder only) and
    give the prepared decoder's results."""
    seg = OnnxSegmenter.from_directory(tiny_onnx_dir)
    plain = OnnxSegmenter.from_directory(without_prepared_graphs(tiny_onnx_dir, tmp_path / "old"))
    assert_same_predictions(seg, plain, seg.encode(test_image))


def test_prepared_inputs_live_as_long_as_the_embedding(tiny_onnx_dir: Path) -> None:
    import gc

    seg = OnnxSegmenter.from_directory(tiny_onnx_dir)
    emb = seg.encode(np.full((64, 96, 3), 90, np.uint8))
    first = seg.decode(emb, Prompts(points=[[40.0, 30.0]], labels=[1]))
    copy = ImageEmbedding(
        features=emb.features.copy(),
        original_size=emb.original_size,
        input_size=emb.input_size,
        model_id=emb.model_id,
        preprocessing_id=emb.preprocessing_id,
    )
    again = seg.decode(copy, Prompts(points=[[40.0, 30.0]], labels=[1]))
    np.testing.assert_array_equal(first.low_res_logits, again.low_res_logits)
    assert len(seg._prepared) == 2
    del emb, copy
    gc.collect()
    assert len(seg._prepared) == 0


def test_export_replaces_an_old_export_atomically(tiny_sam: Any, tiny_copy: Path) -> None:
    before = json.loads((tiny_copy / "manifest.json").read_text())
    export_onnx(tiny_sam, tiny_copy, model_id="tiny-again")
    after = json.loads((tiny_copy / "manifest.json").read_text())
    assert after["model_id"] == "tiny-again"
    assert after["files"]["decoder"]["sha256"] == before["files"]["decoder"]["sha256"]
    assert sorted(p.name for p in tiny_copy.iterdir()) == EXPORTED_FILES
    assert OnnxSegmenter.from_directory(tiny_copy).info.model_id == "tiny-again"


# ----------------------------------------------------------------- load errors


def test_missing_directory_or_manifest(tmp_path: Path, tiny_copy: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        OnnxSegmenter.from_directory(tmp_path / "nowhere")
    (tiny_copy / "manifest.json").unlink()
    with pytest.raises(ModelLoadError, match=r"manifest\.json is missing") as err:
        OnnxSegmenter.from_directory(tiny_copy)
    assert str(tiny_copy) in str(err.value)


def test_missing_onnx_file(tiny_copy: Path) -> None:
    (tiny_copy / "encoder.onnx").unlink()
    with pytest.raises(ModelLoadError, match="encoder file .*encoder.onnx is missing"):
        OnnxSegmenter.from_directory(tiny_copy)


def test_truncated_onnx_file(tiny_copy: Path) -> None:
    path = tiny_copy / "decoder.onnx"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="decoder file .*decoder.onnx has .* bytes.*truncated"):
        OnnxSegmenter.from_directory(tiny_copy)


def test_checksum_mismatch(tiny_copy: Path) -> None:
    path = tiny_copy / "decoder.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped inside the weights
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="decoder.onnx does not match the SHA-256"):
        OnnxSegmenter.from_directory(tiny_copy)


def test_corrupt_onnx_file_with_matching_manifest(tiny_copy: Path) -> None:
    """A file that is not ONNX at all, with the manifest updated to match it."""
    path = tiny_copy / "encoder.onnx"
    path.write_bytes(b"this is not an ONNX graph" * 10)
    manifest_path = tiny_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["encoder"]["bytes"] = path.stat().st_size
    manifest["files"]["encoder"]["sha256"] = None
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="encoder file .*encoder.onnx could not be loaded"):
        OnnxSegmenter.from_directory(tiny_copy)


def test_unknown_manifest_version(tiny_copy: Path) -> None:
    manifest_path = tiny_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="format_version 99"):
        OnnxSegmenter.from_directory(tiny_copy)
    manifest_path.write_text("{not json")
    with pytest.raises(ModelLoadError, match="not a readable JSON manifest"):
        OnnxSegmenter.from_directory(tiny_copy)


def test_graphs_over_two_gib_keep_weights_in_a_side_file(
    tiny_sam: Any, tiny_onnx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vit_h's encoder (2.5 GB) exceeds protobuf's 2 GiB: its weights go to encoder.onnx.data.
    Simulated on the tiny model by lowering the limit."""
    from samstudio.inference import onnx_export

    monkeypatch.setattr(onnx_export, "_PROTOBUF_LIMIT", 1024)
    out = export_onnx(tiny_sam, tmp_path / "split", model_id="tiny-test")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        EXPORTED_FILES + [f"{n}.data" for n in EXPORTED_FILES if n.endswith(".onnx")]
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]["encoder"]["data"]["path"] == "encoder.onnx.data"
    image = np.full((64, 96, 3), 128, np.uint8)
    split = OnnxSegmenter.from_directory(out)
    whole = OnnxSegmenter.from_directory(tiny_onnx_dir)
    np.testing.assert_array_equal(split.encode(image).features, whole.encode(image).features)
    data = out / "encoder.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[100] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(ModelLoadError, match="encoder weights file .*encoder.onnx.data does not"):
        OnnxSegmenter.from_directory(out)
