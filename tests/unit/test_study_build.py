"""Building a rating study (paper §E): sampling, prompts, conditions, blinding, files.

A small fake segmenter with fixed geometry stands in for a model, so every mask a
job should hold can be computed here independently of the builder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from ui.fakes import FakePrediction as ExactPrediction  # masks exact, no upscaling

from samstudio.core.masks import decode_rle, mask_to_box
from samstudio.core.point_eval import farthest_from_boundary
from samstudio.core.study.build import StudyProgress, build_study, rescale_mask
from samstudio.core.study.model import Study, StudyError, load_study
from samstudio.core.study.sources import StudySource, coco_sources, synthetic_sources
from samstudio.inference.types import ImageEmbedding, ModelInfo, Prediction, Prompts

HALVES = (4, 9, 16)  # half sizes of the 3 candidate squares, best ranked first
IOUS = (0.95, 0.8, 0.6)


def square(shape: tuple[int, int], x: float, y: float, half: int) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[max(0, int(y) - half) : int(y) + half + 1, max(0, int(x) - half) : int(x) + half + 1] = True
    return m


def fake_masks(
    shape: tuple[int, int], prompts: Prompts, multimask: bool
) -> tuple[np.ndarray, np.ndarray]:
    """What the fake returns: (N, H, W) masks and their predicted IoUs."""
    if prompts.box is not None:
        x0, y0, x1, y1 = prompts.box.astype(int)
        m = np.zeros(shape, bool)
        if multimask:  # what a box must not be decoded with: 3 wrong masks
            return np.stack([m, m, m]), np.array([0.9, 0.8, 0.7], np.float32)
        m[y0:y1, x0:x1] = True
        return m[None], np.array([0.9], np.float32)
    x, y = prompts.points[0]
    if multimask:
        return np.stack([square(shape, x, y, h) for h in HALVES]), np.array(IOUS, np.float32)
    m = np.zeros(shape, bool)  # the single output: a cross through the point
    m[int(y), :] = True
    m[:, int(x)] = True
    return m[None], np.array([0.7], np.float32)


class FakeModel:
    """A Segmenter with the geometry of `fake_masks`; records what it encodes."""

    def __init__(self, model_id: str = "fake") -> None:
        self._info = ModelInfo(model_id, "fake", "fake", "cpu", 1024, "p", f"/models/{model_id}")
        self.encoded: list[tuple[int, int]] = []
        self.decoded: list[tuple[Prompts, bool]] = []

    @property
    def info(self) -> ModelInfo:
        return self._info

    def encode(self, image: np.ndarray) -> ImageEmbedding:
        assert image.dtype == np.uint8 and image.ndim == 3
        self.encoded.append(image.shape[:2])
        h, w = image.shape[:2]
        return ImageEmbedding(np.zeros((1, 1, 1), np.float32), (h, w), (h, w), "fake", "p")

    def decode(
        self, embedding: ImageEmbedding, prompts: Prompts, multimask: bool = True
    ) -> Prediction:
        self.decoded.append((prompts, multimask))
        masks, ious = fake_masks(embedding.original_size, prompts, multimask)
        n = len(masks)
        return ExactPrediction(
            low_res_logits=np.zeros((n, 4, 4), np.float32),
            iou_predictions=ious,
            stability_scores=np.ones(n, np.float32),
            original_size=embedding.original_size,
            input_size=embedding.input_size,
            image_size=1024,
            exact=masks,
        )

    def decode_points_batch(self, embedding, points, multimask=True):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def rect(shape: tuple[int, int], x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def picture(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def scene_sources(n_images: int = 4) -> list[StudySource]:
    """Images of 120x160 with, each: 3 eligible masks (ids 10k+1..3), one small mask
    (23x23 = 529 px < 576, id 10k+4) and one large crowd region (id 10k+5)."""
    shape = (120, 160)
    out = []
    for k in range(n_images):
        masks = [
            rect(shape, 5, 5, 45, 45),
            rect(shape, 60, 10, 150, 40),
            rect(shape, 20, 60, 44, 84),  # 24x24 = 576: just eligible
            rect(shape, 100, 70, 123, 93),  # 23x23: too small
            rect(shape, 50, 50, 160, 120),  # crowd
        ]
        out.append(
            StudySource.from_arrays(
                picture(shape, k),
                masks,
                f"img{k}.png",
                annotations=[10 * k + j for j in range(1, 6)],
                crowd=[False, False, False, False, True],
            )
        )
    return out


def run(gen: object) -> Study:
    last = None
    for step in gen:  # type: ignore[attr-defined]
        assert isinstance(step, StudyProgress)
        last = step
    assert last is not None and last.stage == "done" and last.study is not None
    return last.study


def source_mask(sources: list[StudySource], name: str, annotation: object) -> np.ndarray:
    for s in sources:
        if s.name == name:
            k = [m.annotation for m in s.masks].index(annotation)
            return s.read_mask(k)
    raise AssertionError(name)


def test_sampling_excludes_small_masks_and_crowd(tmp_path: Path) -> None:
    sources = scene_sources(4)
    study = run(build_study(sources, [("fake", FakeModel())], tmp_path / "s", n_items=12))
    assert len(study.items) == 12
    picked = {(it.source_image, it.source_annotation) for it in study.items}
    eligible = {(f"img{k}.png", 10 * k + j) for k in range(4) for j in (1, 2, 3)}
    assert picked == eligible  # all 12 eligible, none of the small or crowd masks
    with pytest.raises(StudyError, match="only 12 mask"):
        run(build_study(sources, [("fake", FakeModel())], tmp_path / "t", n_items=13))
    assert not (tmp_path / "t" / "study.json").exists()


def test_sample_is_seeded_and_spread(tmp_path: Path) -> None:
    sources = scene_sources(10)  # 30 eligible masks
    a = run(build_study(sources, [], tmp_path / "a", n_items=8, seed=1))
    b = run(build_study(sources, [], tmp_path / "b", n_items=8, seed=1))
    c = run(build_study(sources, [], tmp_path / "c", n_items=8, seed=2))
    key = [(it.source_image, it.source_annotation) for it in a.items]
    assert key == [(it.source_image, it.source_annotation) for it in b.items]
    assert key != [(it.source_image, it.source_annotation) for it in c.items]
    assert len(set(key)) == 8 and len({name for name, _ in key}) > 1


def test_every_item_has_one_job_per_condition_with_the_right_mask(tmp_path: Path) -> None:
    sources = scene_sources(3)
    model = FakeModel()
    study = run(
        build_study(
            sources, [("fake", model)], tmp_path / "s", n_items=7, single_output=True, seed=3
        )
    )
    assert [(c.id, c.name, c.kind) for c in study.conditions] == [
        ("c1", "fake", "model"),
        ("c2", "fake single-output", "single-output"),
        ("c3", "ground truth", "ground-truth"),
    ]
    assert study.conditions[0].source == "/models/fake"
    assert len(study.jobs) == 21
    for item in study.items:
        jobs = {j.condition: j for j in study.jobs if j.item == item.id}
        assert sorted(jobs) == ["c1", "c2", "c3"]
        gt = source_mask(sources, item.source_image, item.source_annotation)
        assert item.point is not None and item.box is None
        x, y = item.point
        assert gt[int(y), int(x)]  # the prompt lies on the mask ...
        assert (x, y) == farthest_from_boundary(gt)  # ... at its centre
        prompts = Prompts(np.array([item.point], np.float32), np.array([1]))
        top = fake_masks(gt.shape, prompts, True)[0][0]
        single = fake_masks(gt.shape, prompts, False)[0][0]
        assert np.array_equal(jobs["c3"].decode(), gt)
        assert np.array_equal(jobs["c1"].decode(), top)
        assert np.array_equal(jobs["c2"].decode(), single)
    # each image encoded once for all its items
    assert len(model.encoded) == len({it.source_image for it in study.items})


def test_box_prompt_uses_the_mask_box_and_the_single_output(tmp_path: Path) -> None:
    sources = scene_sources(2)
    model = FakeModel()
    study = run(build_study(sources, [("m", model)], tmp_path / "s", n_items=5, prompt="box"))
    assert [c.kind for c in study.conditions] == ["model", "ground-truth"]
    assert all(not multimask for _, multimask in model.decoded)
    for item in study.items:
        gt = source_mask(sources, item.source_image, item.source_annotation)
        assert item.point is None
        assert item.box == tuple(float(v) for v in mask_to_box(gt, "xyxy"))
        job = next(j for j in study.jobs if j.item == item.id and j.condition == "c1")
        assert np.array_equal(job.decode(), gt)  # the fake fills the box: a rectangle's mask


def test_large_images_are_rescaled_with_masks_and_prompts(tmp_path: Path) -> None:
    shape = (300, 600)  # rescaled to 250 x 500 with max_side 500 (a factor of 5/6)
    big = rect(shape, 100, 60, 400, 240)
    ring = rect(shape, 420, 20, 580, 280) & ~rect(shape, 440, 40, 560, 260)
    small = rect(shape, 20, 200, 46, 226)  # 26^2 = 676 px here, 21^2 = 441 after rescaling
    source = StudySource.from_arrays(picture(shape), [big, ring, small], "big.png")
    model = FakeModel()
    study = run(
        build_study([source], [("m", model)], tmp_path / "s", n_items=2, max_side=500, seed=0)
    )
    assert sorted(it.source_annotation for it in study.items) == [0, 1]  # not the small one
    assert model.encoded == [(250, 500)]
    for item in study.items:
        assert item.size == (250, 500)
        with Image.open(study.image_path(item)) as im:
            assert im.size == (500, 250)
        gt = rescale_mask([big, ring][int(item.source_annotation)], (250, 500))  # type: ignore[arg-type]
        job = next(j for j in study.jobs if j.item == item.id and j.condition == "c2")
        assert np.array_equal(job.decode(), gt)
        assert item.point is not None
        x, y = item.point
        assert gt[int(y), int(x)] and (x, y) == farthest_from_boundary(gt)
    # the rescaled rectangle keeps its place and proportions (edges within a pixel)
    assert (
        np.abs(np.array(mask_to_box(rescale_mask(big, (250, 500)))) - [83, 50, 333, 200]).max() <= 1
    )


def test_jobs_are_shuffled_not_grouped_and_deterministic(tmp_path: Path) -> None:
    sources = scene_sources(10)
    models = [("a", FakeModel("a")), ("b", FakeModel("b"))]
    s1 = run(build_study(sources, models, tmp_path / "1", n_items=24, seed=5))
    run(build_study(sources, models, tmp_path / "2", n_items=24, seed=5))
    s3 = run(build_study(sources, models, tmp_path / "3", n_items=24, seed=6))
    assert [j.id for j in s1.jobs] == [f"j{n:04d}" for n in range(1, 73)]
    conds = [j.condition for j in sorted(s1.jobs, key=lambda j: j.id)]
    items = [j.item for j in sorted(s1.jobs, key=lambda j: j.id)]
    assert conds != sorted(conds)  # not grouped by condition
    assert items != sorted(items)  # nor by item
    changes = sum(a != b for a, b in zip(conds, conds[1:]))
    assert changes > 30  # 72 jobs of 3 conditions: a random order changes ~48 times
    assert sorted(conds[:24]) != ["c1"] * 24

    def doc(folder: Path) -> dict[str, object]:
        d = json.loads((folder / "study.json").read_text())
        d.pop("created")
        return d

    assert doc(tmp_path / "1") == doc(tmp_path / "2")
    assert [(j.item, j.condition) for j in s1.jobs] != [(j.item, j.condition) for j in s3.jobs]


def test_refuses_a_folder_with_a_study(tmp_path: Path) -> None:
    sources = scene_sources(1)
    run(build_study(sources, [], tmp_path, n_items=2))
    before = (tmp_path / "study.json").read_bytes()
    with pytest.raises(StudyError, match="already holds a study"):
        build_study(sources, [], tmp_path, n_items=2)  # refused at once, before iterating
    assert (tmp_path / "study.json").read_bytes() == before


def test_a_stopped_build_leaves_no_study_and_can_be_redone(tmp_path: Path) -> None:
    sources = scene_sources(4)
    steps = build_study(sources, [("m", FakeModel())], tmp_path, n_items=8)
    for step in steps:
        if step.stage == "predicting":
            break  # the user cancels after the first image
    assert any((tmp_path / "images").iterdir())
    assert not (tmp_path / "study.json").exists()
    with pytest.raises(StudyError):
        load_study(tmp_path)
    study = run(build_study(sources, [("m", FakeModel())], tmp_path, n_items=8))
    assert len(load_study(tmp_path).jobs) == len(study.jobs) == 16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_items": 0}, "at least 1 item"),
        ({"prompt": "lasso"}, "prompt must be"),
        ({"min_area": -1}, "min_area"),
        ({"max_side": 32}, "max_side"),
        ({"prompt": "box", "single_output": True}, "point prompts only"),
        ({"ground_truth": False, "models": []}, "at least one condition"),
        ({"models": [("x", None), ("x", None)]}, "unique"),
    ],
)
def test_bad_parameters_are_refused(tmp_path: Path, kwargs: dict, message: str) -> None:
    models = kwargs.pop("models", [("m", FakeModel())])
    with pytest.raises(ValueError, match=message):
        build_study(scene_sources(1), models, tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()


def _write_coco(folder: Path) -> Path:
    """A COCO file with 2 images: a polygon, a crowd RLE, a tiny polygon and a box-only."""
    shape = (80, 100)
    for name, seed in (("a.png", 1), ("b.png", 2)):
        Image.fromarray(picture(shape, seed)).save(folder / name)
    crowd = {"size": [80, 100], "counts": [0, 8000]}
    doc = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 100, "height": 80},
            {"id": 2, "file_name": "sub/b.png", "width": 100, "height": 80},
        ],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {"id": 7, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": [[10, 10, 60, 10, 60, 50, 10, 50]]},
            {"id": 8, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": crowd},
            {"id": 9, "image_id": 2, "category_id": 1, "iscrowd": 0,
             "segmentation": [[5, 5, 15, 5, 15, 15, 5, 15]]},
            {"id": 10, "image_id": 2, "category_id": 1, "iscrowd": 0, "segmentation": [],
             "bbox": [0, 0, 90, 70]},
            {"id": 11, "image_id": 2, "category_id": 1, "iscrowd": 0,
             "segmentation": [[30, 20, 90, 20, 90, 70, 30, 70]]},
        ],
    }  # fmt: skip
    path = folder / "instances.json"
    path.write_text(json.dumps(doc))
    return path


def test_coco_sources_sample_only_eligible_annotations(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    ann = _write_coco(tmp_path)
    sources = coco_sources(ann, tmp_path)
    assert [s.name for s in sources] == ["a.png", "sub/b.png"]
    study = run(build_study(sources, [("m", FakeModel())], tmp_path / "s", n_items=2))
    assert sorted(it.source_annotation for it in study.items) == [7, 11]
    coco = COCO(str(ann))
    for item in study.items:
        gt = coco.annToMask(coco.loadAnns([item.source_annotation])[0]).astype(bool)
        job = next(j for j in study.jobs if j.item == item.id and j.condition == "c2")
        assert np.array_equal(decode_rle(job.mask), gt)
    with pytest.raises(StudyError, match="only 2 mask"):
        run(build_study(sources, [], tmp_path / "t", n_items=3))


def test_bad_coco_files_are_named(tmp_path: Path) -> None:
    ann = _write_coco(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text(ann.read_text()[:100])
    with pytest.raises(ValueError, match=r"broken\.json.*not valid JSON"):
        coco_sources(broken, tmp_path)
    with pytest.raises(ValueError, match=r"absent\.json"):
        coco_sources(tmp_path / "absent.json", tmp_path)
    (tmp_path / "a.png").unlink()
    with pytest.raises(ValueError, match=r"instances\.json.*'a\.png'"):
        coco_sources(ann, tmp_path)


def test_synthetic_sources() -> None:
    sources = synthetic_sources(3, seed_base=5)
    assert len(sources) == 3
    names = [s.name for s in sources]
    assert names == ["synthetic-5", "synthetic-6", "synthetic-7"]
    s = sources[1]
    image = s.read_image(2000)
    assert image.shape[:2] == s.size and image.dtype == np.uint8
    for k, m in enumerate(s.masks):
        assert m.annotation == k and m.area == int(s.read_mask(k).sum()) and not m.crowd
    assert np.array_equal(sources[1].read_image(2000), image)  # made again, the same
