"""`samstudio project init|info`, `samstudio export`, `samstudio import`, driven as a user would."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from samstudio.cli.main import main
from samstudio.core.document import Project
from samstudio.core.masks import decode_rle, encode_rle


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "shots"
    (root / "day1").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(root / "day1" / "a.png")
    Image.fromarray(rng.integers(0, 255, (50, 40, 3), dtype=np.uint8)).save(root / "b.jpg")
    return root


def _masks(folder: Path) -> dict[int, np.ndarray]:
    """Annotate the project with a few masks through the API; returns id -> mask."""
    out = {}
    with Project.open(folder) as project:
        cat = project.add_category("rock", "#aa5500", "nature")
        for img in project.images():
            m = np.zeros((img.height, img.width), bool)
            m[5:25, 10:30] = True
            m[30:35, 2:6] = True  # a second part
            a = project.add_annotation(
                img.id, m, cat.id, "auto", predicted_iou=0.8, prompts={"points": [[12, 9, 1]]}
            )
            out[a.id] = m
    return out


def test_init_info_and_a_second_init(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, _ = _cli(capsys, "project", "init", str(folder))
    assert code == 0 and "2 image(s)" in out and (folder / "project.samstudio").is_file()
    code, _, err = _cli(capsys, "project", "init", str(folder))
    assert code == 2 and "already exists" in err and "project.samstudio" in err
    _masks(folder)
    code, out, _ = _cli(capsys, "project", "info", str(folder), "--json")
    info = json.loads(out)
    assert code == 0
    assert info["images"] == {"new": 0, "in_progress": 2, "done": 0, "unreadable": 0}
    assert info["categories"] == {"rock": 2} and info["sources"] == {"auto": 2}
    code, out, _ = _cli(capsys, "project", "info", str(folder / "project.samstudio"))
    assert code == 0 and "in_progress  2" in out and "rock" in out


def test_export_coco_rle_reads_back_exactly_with_pycocotools(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    _cli(capsys, "project", "init", str(folder))
    masks = _masks(folder)
    out_file = tmp_path / "export" / "coco.json"
    out_file.parent.mkdir()
    code, _, err = _cli(
        capsys, "export", str(folder), "--format", "coco-rle", "--out", str(out_file)
    )
    assert code == 0, err
    coco = COCO(str(out_file))
    names = {img["id"]: img["file_name"] for img in coco.dataset["images"]}
    assert sorted(names.values()) == ["b.jpg", "day1/a.png"]
    for ann in coco.dataset["annotations"]:
        assert np.array_equal(coco.annToMask(ann).astype(bool), masks[ann["id"]])
        assert ann["predicted_iou"] == pytest.approx(0.8) and ann["samstudio_source"] == "auto"
        assert ann["point_coords"] == [[12.0, 9.0]]
    assert coco.dataset["categories"][0]["name"] == "rock"

    poly = tmp_path / "export" / "poly.json"
    code, _, err = _cli(
        capsys, "export", str(folder), "--format", "coco-polygon", "--out", str(poly)
    )
    assert code == 0, err
    coco = COCO(str(poly))
    for ann in coco.dataset["annotations"]:
        assert isinstance(ann["segmentation"], list) and len(ann["segmentation"]) == 2  # two parts
        got, want = coco.annToMask(ann).astype(bool), masks[ann["id"]]
        assert (got & want).sum() / (got | want).sum() >= 0.98

    sa1b = tmp_path / "export" / "sa1b"
    code, out, err = _cli(capsys, "export", str(folder), "--format", "sa1b", "--out", str(sa1b))
    assert code == 0, err
    docs = [json.loads(p.read_text()) for p in sorted(sa1b.glob("*.json"))]
    assert len(docs) == 2
    for doc in docs:
        (ann,) = doc["annotations"]
        assert np.array_equal(decode_rle(ann["segmentation"]), masks[ann["id"]])


def test_import_merges_categories_by_name_and_reports_conflicts(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    _cli(capsys, "project", "init", str(folder))
    with Project.open(folder) as project:
        project.add_category("rock", supercategory="nature")
    a_mask = np.zeros((60, 80), bool)
    a_mask[10:20, 10:20] = True
    doc = {
        "images": [
            {"id": 1, "file_name": "day1/a.png", "width": 80, "height": 60},
            {"id": 2, "file_name": "b.jpg", "width": 40, "height": 50},
            {"id": 3, "file_name": "elsewhere.png", "width": 10, "height": 10},
        ],
        "categories": [
            {"id": 7, "name": "rock", "supercategory": "geology"},
            {"id": 8, "name": "tree", "supercategory": "nature"},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 7,
                "segmentation": encode_rle(a_mask),
                "iscrowd": 0,
            },
            {
                "id": 2,
                "image_id": 2,
                "category_id": 8,
                "iscrowd": 0,
                "segmentation": [[2, 2, 30, 2, 30, 40, 2, 40]],
            },
            {
                "id": 3,
                "image_id": 3,
                "category_id": 8,
                "segmentation": [[1, 1, 5, 1, 5, 5]],
                "iscrowd": 0,
            },
            {
                "id": 4,
                "image_id": 1,
                "category_id": 8,
                "bbox": [1, 1, 3, 3],
                "segmentation": [],
                "iscrowd": 0,
            },
        ],
    }
    src = tmp_path / "incoming.json"
    src.write_text(json.dumps(doc))
    code, out, err = _cli(capsys, "import", str(folder), str(src))
    assert code == 1  # something was left out, and said so
    assert "imported 2 annotation(s) (coco) into 2 image(s)" in out
    assert "categories added: 1, merged by name: 1" in out
    assert "image 3 (elsewhere.png) is not in the project" in err
    assert "annotation 4: has only a box" in err
    assert "supercategory 'geology'" in err
    with Project.open(folder) as project:
        cats = {c.name: c.id for c in project.categories()}
        assert set(cats) == {"rock", "tree"}
        a = next(i for i in project.images() if i.path == "day1/a.png")
        (ann,) = project.annotations(a.id)
        assert ann.source == "imported" and ann.category_id == cats["rock"]
        assert np.array_equal(project.mask(ann.id), a_mask)
        assert project.undo_label(a.id) == "Import 1 annotation"
        assert project.undo(a.id) and project.annotations(a.id) == []


def test_import_of_a_real_coco_file(
    capsys: pytest.CaptureFixture[str], shared_data: Path, tmp_path: Path
) -> None:
    src = shared_data / "coco_instance_seg" / "labelme2coco_output"
    work = tmp_path / "voc"
    shutil.copytree(src / "JPEGImages", work / "JPEGImages")
    assert _cli(capsys, "project", "init", str(work))[0] == 0
    code, out, err = _cli(capsys, "import", str(work), str(src / "annotations.json"))
    assert code == 0, err
    assert "imported 12 annotation(s) (coco) into 3 image(s)" in out
    code, out, _ = _cli(capsys, "project", "info", str(work), "--json")
    info = json.loads(out)
    assert sum(info["categories"].values()) == 12 and info["categories"]["person"] == 6
    # the same file again: categories merge by name, nothing is created twice, and the
    # annotations already there are skipped, not added a second time
    code, out, err = _cli(capsys, "import", str(work), str(src / "annotations.json"))
    assert code == 0 and "categories added: 0" in out
    assert "imported 0 annotation(s)" in out and "12 already in the project (skipped)" in out
    exported = tmp_path / "again.json"
    assert _cli(capsys, "export", str(work), "--format", "coco-rle", "--out", str(exported))[0] == 0
    assert len(COCO(str(exported)).dataset["annotations"]) == 12


def test_clear_errors_for_locked_damaged_and_missing_projects(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    code, _, err = _cli(capsys, "project", "info", str(tmp_path / "nothing"))
    assert code == 2 and "no such project file" in err
    _cli(capsys, "project", "init", str(folder))
    masks = _masks(folder)
    src = tmp_path / "x.json"
    src.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    with Project.open(folder):
        code, _, err = _cli(capsys, "import", str(folder), str(src))
        assert code == 2 and "already open in another" in err
    code, _, err = _cli(capsys, "import", str(folder), str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json" in err
    # damage the file (trash the index over annotations): export still writes what can be
    # read, through the table itself, and says the file is damaged
    path = folder / "project.samstudio"
    conn = sqlite3.connect(path)
    (root,) = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'annotations_image'"
    ).fetchone()
    conn.close()
    data = bytearray(path.read_bytes())
    data[(root - 1) * 4096 : root * 4096] = os.urandom(4096)
    path.write_bytes(bytes(data))
    code, _, err = _cli(capsys, "import", str(folder), str(src))
    assert code == 2 and "integrity check failed" in err and "read-only" in err
    out_file = tmp_path / "rescued.json"
    code, _, err = _cli(
        capsys, "export", str(folder), "--format", "coco-rle", "--out", str(out_file)
    )
    assert code == 0 and "is damaged; exporting what can still be read" in err
    rescued = COCO(str(out_file)).dataset["annotations"]
    assert len(rescued) == len(masks)
    for ann in rescued:
        assert np.array_equal(decode_rle(ann["segmentation"]), masks[ann["id"]])


def test_uncategorised_masks_export_under_a_default_category(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    _cli(capsys, "project", "init", str(folder))
    with Project.open(folder) as project:
        img = project.images()[0]
        m = np.zeros((img.height, img.width), bool)
        m[1:4, 1:4] = True
        project.add_annotations(img.id, [m, ~m], None, "proposal")
    out_file = tmp_path / "plain.json"
    code, out, err = _cli(
        capsys, "export", str(folder), "--format", "coco-rle", "--out", str(out_file)
    )
    assert code == 0, err  # unreviewed proposals stay out by default, and it says so
    assert "0 masks on" in out and "note: 2 auto-segment proposal(s)" in out
    assert COCO(str(out_file)).dataset["annotations"] == []
    code, out, err = _cli(
        capsys,
        "export",
        str(folder),
        "--format",
        "coco-rle",
        "--out",
        str(out_file),
        "--with-proposals",
        "--images",
        "annotated",
    )
    assert code == 0, err
    assert f"wrote {out_file}: 2 masks on 1 images" in out
    coco = COCO(str(out_file))
    assert len(coco.dataset["images"]) == 1
    (cat,) = coco.dataset["categories"]
    assert [a["category_id"] for a in coco.dataset["annotations"]] == [cat["id"], cat["id"]]
    assert sorted(a["area"] for a in coco.dataset["annotations"]) == [9, m.size - 9]


def test_labelme_then_coco_of_the_same_images_merge_by_name(
    capsys: pytest.CaptureFixture[str], shared_data: Path, tmp_path: Path
) -> None:
    labelme = shared_data / "labelme" / "instance_segmentation" / "data_annotated"
    work = tmp_path / "voc"
    work.mkdir()
    for jpg in labelme.glob("*.jpg"):
        shutil.copy(jpg, work / jpg.name)
    assert _cli(capsys, "project", "init", str(work))[0] == 0
    code, out, err = _cli(capsys, "import", str(work), str(labelme))
    assert code == 0, err
    assert "imported 12 annotation(s) (labelme) into 3 image(s); categories added: 6" in out
    assert "__ignore__" in err  # the formats layer's warnings reach the user
    # labelme2coco's output of the same files: "JPEGImages/..." names, ids 0..20
    coco_file = shared_data / "coco_instance_seg" / "labelme2coco_output" / "annotations.json"
    code, out, err = _cli(capsys, "import", str(work), str(coco_file))
    assert code == 0, err
    # the 6 used categories are merged; the file's 14 unused VOC labels come along (not
    # labelme's reserved "_background_")
    assert "categories added: 14, merged by name: 6" in out
    with Project.open(work, read_only=True) as project:
        assert len(project.categories()) == 20
        assert "_background_" not in {c.name for c in project.categories()}
        for img in project.images():
            anns = project.annotations(img.id)
            assert len(anns) % 2 == 0
            half = len(anns) // 2
            for a, b in zip(anns[:half], anns[half:]):  # same shape from both files
                ma, mb = project.mask(a.id), project.mask(b.id)
                assert a.category_id == b.category_id
                assert (ma & mb).sum() / (ma | mb).sum() > 0.9
