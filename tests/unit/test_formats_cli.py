"""`samstudio convert`, driven the way a user runs it."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from samstudio.cli.main import main
from samstudio.core.formats.detect import import_annotations
from samstudio.core.masks import mask_iou


def test_convert_labelme_folder_to_coco_polygons_and_rle(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = shared_data / "labelme" / "instance_segmentation"
    src = root / "data_annotated"
    rc = main(
        [
            "convert",
            str(src),
            "--to",
            "coco-polygon",
            "--out",
            str(tmp_path / "poly.json"),
            "--labels",
            str(root / "labels.txt"),
        ]
    )
    out = capsys.readouterr()
    assert rc == 0
    assert "3 image(s), 12 annotation(s)" in out.out and "0 error(s), 3 warning(s)" in out.out
    assert "__ignore__" in out.err  # each warning printed with its file and shape
    rc = main(["convert", str(src), "--to", "coco-rle", "--out", str(tmp_path / "rle.json")])
    assert rc == 0
    with contextlib.redirect_stdout(io.StringIO()):
        poly, rle = COCO(str(tmp_path / "poly.json")), COCO(str(tmp_path / "rle.json"))
    assert len(poly.anns) == len(rle.anns) == 12
    assert {c["name"] for c in poly.cats.values()} >= {"person", "bottle", "bus", "car"}
    for aid in rle.anns:
        a, b = (
            rle.annToMask(rle.anns[aid]).astype(bool),
            poly.annToMask(poly.anns[aid]).astype(bool),
        )
        assert mask_iou(a, b) >= 0.98


def test_convert_to_sa1b_and_back(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = shared_data / "coco_instance_seg" / "sahi_terrain" / "terrain2_coco.json"
    rc = main(
        [
            "convert",
            str(src),
            "--to",
            "sa1b",
            "--out",
            str(tmp_path / "sa"),
            "--images",
            str(src.parent),
        ]
    )
    assert rc == 0
    assert "0 error(s), 5 warning(s)" in capsys.readouterr().out  # the 5 stored areas
    (f,) = sorted((tmp_path / "sa").glob("*.json"))
    doc = json.loads(f.read_text())
    assert doc["image"]["file_name"] == "terrain2.png" and len(doc["annotations"]) == 5
    assert all(a["area"] < 698368 for a in doc["annotations"])  # recomputed, not copied
    orig, _, _ = import_annotations(src)
    back, report, kind = import_annotations(tmp_path / "sa")
    assert kind == "sa1b" and report.issues == []
    for a, b in zip(orig.annotations, back.annotations):
        np.testing.assert_array_equal(a.mask, b.mask)


def test_exit_codes_and_messages(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    b_json = shared_data / "sa1b_format" / "datumaro_fixture" / "b.json"
    assert (
        main(["convert", str(b_json), "--to", "coco-rle", "--out", str(tmp_path / "b.json")]) == 1
    )
    err = capsys.readouterr().err
    assert "b.json" in err and "annotation 1" in err and "swapped" in err
    assert json.loads((tmp_path / "b.json").read_text())["annotations"] == []  # still written
    assert (
        main(["convert", str(tmp_path / "nope.json"), "--to", "sa1b", "--out", str(tmp_path / "x")])
        == 2
    )
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2")
    assert main(["convert", str(junk), "--to", "coco-rle", "--out", str(tmp_path / "o.json")]) == 2
    assert "junk.json" in capsys.readouterr().err
    a_json = shared_data / "sa1b_format" / "datumaro_fixture" / "a.json"
    assert (
        main(
            [
                "convert",
                str(a_json),
                "--to",
                "coco-rle",
                "--out",
                str(tmp_path / "a.json"),
                "--strict",
            ]
        )
        == 0
    )
    with pytest.raises(SystemExit):
        main(["convert", str(a_json), "--to", "pascal", "--out", str(tmp_path / "a.json")])


@pytest.mark.slow
def test_convert_runs_as_a_program(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "sa1b_format" / "datumaro_fixture" / "a.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "samstudio",
            "convert",
            str(src),
            "--to",
            "coco-polygon",
            "--out",
            str(tmp_path / "c.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "c.json").read_text())["annotations"][0]["area"] == 4
