"""`samstudio evaluate` driven as a researcher would, in-process.

Bad COCO files give the importer's messages and exit 2 (no traceback, no model
loaded); a real EXIF-rotated photo annotated in its stored frame is evaluated with the
shipped demo model on masks turned into the displayed frame, exactly as `samstudio
convert` turns them; left-out annotations are counted; the per-mask rows pair two runs.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from samstudio.cli import evaluate_cmd
from samstudio.cli.main import main
from samstudio.core import point_eval
from samstudio.core.images import load_image
from samstudio.core.masks import decode_rle
from samstudio.inference.loader import open_model

DEMO_PT = (
    Path(__file__).resolve().parents[2] / "resources" / "models" / "samstudio-demo" / "model.pt"
)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMSTUDIO_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["evaluate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


IMAGE = {"id": 1, "file_name": "a.png", "width": 10, "height": 5}
SQUARE = {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 4, 1, 4, 4, 1, 4]]}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"images": [IMAGE], "annotations": 5}, "'annotations' is a int, not a list"),
        (
            [{"image_id": 1, "category_id": 1, "segmentation": [[1, 1, 4, 1, 4, 4]], "score": 1}],
            "COCO results (a list of predictions) file, not COCO instances",
        ),
        (
            {"images": [{"id": 1, "file_name": "a.png", "width": 10}], "annotations": [SQUARE]},
            "height None are not whole numbers",
        ),
        (
            {"images": [IMAGE], "annotations": [{**SQUARE, "segmentation": "abc"}]},
            "annotation 1: segmentation is a str, not polygons or an RLE",
        ),
    ],
    ids=["annotations-not-a-list", "results-list", "image-without-height", "segmentation-text"],
)
def test_unusable_coco_files_exit_2_naming_the_file_and_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: Any, message: str
) -> None:
    ann = _write(tmp_path / "bad.json", doc)
    code, out, err = _run(["--coco", str(ann), "--images", str(tmp_path)], capsys)
    assert code == 2
    assert str(ann) in err and message in err
    assert "Traceback" not in err and out == ""


def test_no_mask_to_evaluate_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ann = _write(tmp_path / "gt.json", {"images": [IMAGE], "annotations": [SQUARE]})
    code, _, err = _run(["--coco", str(ann), "--images", str(tmp_path)], capsys)
    assert code == 2
    assert "image file 'a.png' not found" in err
    assert "no mask to evaluate; left out: 1 image file missing or unreadable" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--synthetic", "0"], "--synthetic: must be at least 1, got 0"),
        (["--synthetic", "-1"], "--synthetic: must be at least 1, got -1"),
        (["--synthetic", "1", "--device", "gpu"], "invalid choice: 'gpu'"),
    ],
)
def test_bad_options_are_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", *argv])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--per-mask", "rows.txt"], "must end in .csv or .jsonl"),
        (["--out", "no/such/folder/r.json"], "does not exist"),
        (["--points", "0,1"], "--points must be numbers >= 1"),
    ],
)
def test_bad_outputs_are_refused_before_the_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    option: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["--synthetic", "1", *option], capsys)
    assert code == 2 and message in err and out == ""


def test_help_describes_the_command_and_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    evaluate_cmd.register(sub)
    command = sub.choices["evaluate"]
    assert command.description and "NoC@85" in command.description
    missing = [a.dest for a in command._actions if not a.help]
    assert missing == []
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for option in ("--per-mask", "--device", "--min-area", "--synthetic"):
        assert option in text


def _exif_coco(folder: Path, photo: Path) -> Path:
    """The EXIF-rotated photo (stored 400x300, shown 300x400) annotated in its stored
    frame: two rectangles, a tiny one, a crowd region, a box, and one of an unknown image."""
    images = folder / "images"
    images.mkdir()
    shutil.copy(photo, images / photo.name)

    def rect(ann_id: int, x0: int, y0: int, x1: int, y1: int, **kw: Any) -> dict[str, Any]:
        ring = [x0, y0, x1, y0, x1, y1, x0, y1]
        return {"id": ann_id, "image_id": 1, "category_id": 1, "segmentation": [ring], **kw}

    anns = [
        rect(1, 40, 40, 200, 160),
        rect(2, 240, 80, 360, 260),
        rect(3, 10, 250, 14, 254),  # 16 px: below --min-area
        rect(4, 0, 0, 400, 300, iscrowd=1),
        {"id": 5, "image_id": 1, "category_id": 1, "segmentation": [], "bbox": [5, 5, 20, 20]},
        {**rect(6, 40, 40, 200, 160), "image_id": 77},
    ]
    doc = {
        "images": [{"id": 1, "file_name": photo.name, "width": 400, "height": 300}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": anns,
    }
    return _write(folder / "gt.json", doc)


def test_exif_photo_evaluated_in_the_displayed_frame_with_counts(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = shared_data / "image_edge_cases" / "mmcv_color_exif.jpg"
    ann = _exif_coco(tmp_path, photo)
    report, rows = tmp_path / "report.json", tmp_path / "masks.csv"
    argv = ["--coco", str(ann), "--images", str(tmp_path / "images"), "--points", "1,2"]
    argv += ["--min-area", "20", "--device", "auto", "--out", str(report)]
    code, out, err = _run([*argv, "--per-mask", str(rows)], capsys)
    assert code == 0, err
    assert "EXIF orientation 6 shows it as 300x400" in err
    assert "annotation 6: image_id 77 is not an image of this file" in err
    assert "NoC@85" in out and "capped at 2" in out
    assert (
        "left out: 4 annotation(s): 1 crowd (iscrowd 1), 1 box only (no mask), "
        "1 image_id not an image of the file, 1 smaller than --min-area"
    ) in out
    data = json.loads(report.read_text())
    assert data["counts"] == {"masks": 2, "images": 1}
    assert data["left_out"] == {
        "crowd": 1,
        "box_only": 1,
        "unknown_image": 1,
        "not_imported": 0,
        "image_missing": 0,
        "too_small": 1,
        "empty": 0,
    }
    assert data["backend"] == "onnxruntime" and data["device"]
    assert data["model"].startswith("samstudio_demo") and data["model_sha256"] is None
    assert set(data["noc"]) == {"85", "90"} and data["noc_max_clicks"] == 2

    # the same masks as `samstudio convert` makes of the file, in the displayed frame
    converted = tmp_path / "converted.json"
    images = str(tmp_path / "images")
    convert = ["convert", str(ann), "--to", "coco-rle", "--out", str(converted), "--images", images]
    assert main([*convert, "--quiet"]) == 1  # annotation 6 refused
    capsys.readouterr()
    converted_anns = json.loads(converted.read_text())["annotations"]
    truth = {a["id"]: decode_rle(a["segmentation"]) for a in converted_anns if a["segmentation"]}
    with open(rows, newline="") as fh:
        written = list(csv.DictReader(fh))
    assert [(r["image"], r["annotation_id"]) for r in written] == [
        (photo.name, "1"),
        (photo.name, "2"),
    ]
    image = load_image(photo)
    masks = np.stack([truth[int(row["annotation_id"])] for row in written])
    assert masks.shape[1:] == image.shape[:2] == (400, 300)
    assert [int(r["area"]) for r in written] == [int(m.sum()) for m in masks]
    # the figures are those of the model on these masks (not on masks in the stored frame)
    expected = point_eval.evaluate(open_model(None), [(image, masks)], points=(1, 2))
    assert [[float(r["iou_1"]), float(r["iou_2"])] for r in written] == [
        r.ious for r in expected.results
    ]
    mean_1 = np.mean([float(r["iou_1"]) for r in written])
    assert round(float(mean_1), 4) == data["miou"]["1"]


def test_per_mask_rows_pair_two_runs_for_a_paired_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = {}
    for name, extra in (("with", []), ("without", ["--no-mask-input"])):
        rows = tmp_path / f"{name}.jsonl"
        argv = ["--synthetic", "2", "--synthetic-size", "128", "--points", "1,3"]
        code, out, err = _run([*argv, *extra, "--per-mask", str(rows)], capsys)
        assert code == 0, err
        runs[name] = [json.loads(line) for line in rows.read_text().splitlines()]
    a, b = runs["with"], runs["without"]
    keys = [(r["image"], r["annotation_id"]) for r in a]
    assert keys == [(r["image"], r["annotation_id"]) for r in b] and len(keys) >= 4
    assert keys[0][0] == "synthetic-10000000"
    # one click is the same prompt either way; the third differs only by the mask input
    assert [r["iou_1"] for r in a] == [r["iou_1"] for r in b]
    result = stats.wilcoxon([r["iou_3"] for r in a], [r["iou_3"] for r in b], zero_method="zsplit")
    assert 0.0 <= result.pvalue <= 1.0


def test_report_records_the_model_files_sha256(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch", reason="PyTorch is not installed")
    if not DEMO_PT.is_file():
        pytest.skip("the demo model's model.pt is not in this checkout")
    report = tmp_path / "r.json"
    argv = ["--model", str(DEMO_PT), "--device", "cpu", "--synthetic", "1"]
    argv += ["--synthetic-size", "96", "--points", "1", "--out", str(report)]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["model_sha256"] == hashlib.sha256(DEMO_PT.read_bytes()).hexdigest()
    assert data["backend"] == "torch" and data["device"] == "cpu"
    assert data["model_source"] == str(DEMO_PT)
    assert "(torch, cpu)" in out
