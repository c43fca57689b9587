"""`samstudio study create` end to end with the shipped demo model's ONNX export (no torch):
held-out synthetic scenes, and a real COCO file from ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samstudio.cli.main import main
from samstudio.core.study.model import load_study

REPO = Path(__file__).resolve().parents[2]
ONNX_MODEL = REPO / "resources" / "models" / "samstudio-demo" / "onnx"

pytestmark = pytest.mark.skipif(
    not (ONNX_MODEL / "manifest.json").is_file(),
    reason="the shipped demo model's ONNX export is not in this checkout",
)


def test_create_a_synthetic_study_with_the_single_output_ablation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "study"
    argv = ["study", "create", "--synthetic", "3", "--items", "6", "--model", str(ONNX_MODEL)]
    assert main([*argv, "--single-output", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"samstudio-gui --study {out}" in printed
    assert f"samstudio study stats {out}" in printed
    assert "jobs: 18" in printed

    study = load_study(out)
    assert len(study.items) == 6
    assert [c.kind for c in study.conditions] == ["model", "single-output", "ground-truth"]
    assert study.conditions[1].name == study.conditions[0].name + " single-output"
    assert len(study.jobs) == 18
    for item in study.items:
        assert item.source_image.startswith("synthetic-")
        with Image.open(study.image_path(item)) as im:
            assert im.size == (item.size[1], item.size[0])
        jobs = [j for j in study.jobs if j.item == item.id]
        assert sorted(j.condition for j in jobs) == ["c1", "c2", "c3"]
        gt = next(j for j in jobs if j.condition == "c3").decode()
        assert gt.shape == item.size and gt.sum() >= 576
        assert item.point is not None
        assert gt[int(item.point[1]), int(item.point[0])]
        for job in jobs:
            assert job.decode().shape == item.size

    # the same folder again: refused, the study left as it was
    before = (out / "study.json").read_bytes()
    assert main([*argv, "--out", str(out)]) == 1
    assert "already holds a study" in capsys.readouterr().err
    assert (out / "study.json").read_bytes() == before


def test_models_can_be_named_for_the_analysis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "named"
    argv = ["study", "create", "--synthetic", "2", "--items", "2", "--out", str(out)]
    assert main([*argv, "--model", f"Demo (ONNX)={ONNX_MODEL}"]) == 0
    assert "conditions: 2 (Demo (ONNX), ground truth)" in capsys.readouterr().out
    study = load_study(out)
    assert [c.name for c in study.conditions] == ["Demo (ONNX)", "ground truth"]
    assert study.conditions[0].source.endswith("onnx")


def test_a_queue_study_stores_its_ratings_per_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "queue"
    argv = ["study", "create", "--synthetic", "1", "--items", "1", "--model", str(ONNX_MODEL)]
    assert main([*argv, "--ratings-per-job", "1", "--out", str(out)]) == 0
    assert json.loads((out / "study.json").read_text())["ratings_per_job"] == 1
    assert load_study(out).ratings_per_job == 1
    plain = tmp_path / "plain"
    assert main([*argv, "--out", str(plain)]) == 0  # the default: everyone rates every job
    assert load_study(plain).ratings_per_job == 0


def test_bad_usage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "s")
    assert main(["study", "create", "--synthetic", "2", "--prompt", "box", "--single-output",
                 "--out", out]) == 2  # fmt: skip
    assert "error: --single-output" in capsys.readouterr().err
    assert main(["study", "create", "--coco", "x.json", "--out", out]) == 2
    assert "--images" in capsys.readouterr().err
    assert main(["study", "create", "--synthetic", "2", "--ratings-per-job", "-1",
                 "--out", out]) == 2  # fmt: skip
    assert "--ratings-per-job must be >= 0" in capsys.readouterr().err
    assert not Path(out).exists()


def test_create_a_box_study_from_a_real_coco_file(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pycocotools.coco import COCO

    folder = shared_data / "coco_instance_seg" / "labelme2coco_output"
    ann = folder / "annotations.json"  # 3 VOC photos, 12 polygons, JPEGImages/ prefixes
    out = tmp_path / "coco-study"
    argv = ["study", "create", "--coco", str(ann), "--images", str(folder), "--items", "5"]
    argv += ["--model", str(ONNX_MODEL), "--prompt", "box", "--seed", "1", "--out", str(out)]
    assert main(argv) == 0
    study = load_study(out)
    assert len(study.items) == 5 and len(study.jobs) == 10
    coco = COCO(str(ann))
    names = {img["file_name"] for img in coco.dataset["images"]}
    for item in study.items:
        assert item.source_image in names
        record = coco.loadAnns([item.source_annotation])[0]
        gt = coco.annToMask(record).astype(bool)
        assert gt.sum() >= 576
        assert item.size == gt.shape  # VOC photos are below 2000 px: not rescaled
        with Image.open(study.image_path(item)) as im:
            assert im.size == (gt.shape[1], gt.shape[0])
        jobs = {j.condition: j.decode() for j in study.jobs if j.item == item.id}
        assert np.array_equal(jobs["c2"], gt)
        ys, xs = np.nonzero(gt)
        assert item.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert jobs["c1"].shape == gt.shape
    # the images are written once per source photo
    assert len(list((out / "images").iterdir())) == len({it.source_image for it in study.items})


def test_a_study_of_two_datasets_is_analysed_per_dataset(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from samstudio.cli.study_stats import DATASETS_PNG
    from samstudio.core.study.sheets import RatingSheet

    folder = shared_data / "coco_instance_seg" / "labelme2coco_output"
    ann = folder / "annotations.json"  # the same real file as two datasets of its own
    out = tmp_path / "two"
    argv = ["study", "create", "--coco", f"VOC a={ann}", "--images", str(folder)]
    argv += ["--coco", f"VOC b={ann}", "--images", str(folder), "--items", "2", "--seed", "2"]
    assert main([*argv, "--model", str(ONNX_MODEL), "--prompt", "box", "--out", str(out)]) == 0
    assert "datasets: 2 (VOC a: 2 items, VOC b: 2 items)" in capsys.readouterr().out
    study = load_study(out)
    assert [it.dataset for it in study.items].count("VOC a") == 2 and len(study.items) == 4

    sheet = RatingSheet(study, "P01")  # model c1 rated 9 on "VOC a", 3 on "VOC b"
    for job in study.jobs:
        dataset = study.item(job.item).dataset
        sheet.rate(job.id, 5 if job.condition == "c2" else (9 if dataset == "VOC a" else 3))
    plots, report = tmp_path / "plots", tmp_path / "report.json"
    stats = ["study", "stats", str(out), "--plots", str(plots), "--json", str(report)]
    assert main([*stats, "--resamples", "200"]) == 0
    printed = capsys.readouterr().out
    assert "=== dataset: VOC a ===" in printed and f"plot: {plots / DATASETS_PNG}" in printed
    doc = json.loads(report.read_text())
    assert [doc["datasets"][d]["conditions"][0]["mean"] for d in ("VOC a", "VOC b")] == [9, 3]
    assert doc["conditions"][0]["mean"] == 6
    with Image.open(plots / DATASETS_PNG) as im:
        assert im.format == "PNG" and im.size[0] >= 700
