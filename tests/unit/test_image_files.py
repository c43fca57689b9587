"""Image files changed on disk after the project recorded them (document/image_files.py),
exports of masks made on an earlier picture, and imports of annotations already there."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from samstudio.core import schema
from samstudio.core.document import Project
from samstudio.core.document.exchange import export_project, import_file
from samstudio.core.document.image_files import check_image_file, missing_images, unfitting_masks
from samstudio.core.document.importing import _same_mask


def _picture(path: Path, seed: int, size: tuple[int, int] = (40, 60)) -> None:
    rng = np.random.default_rng(seed)
    before = path.stat().st_mtime_ns if path.exists() else None
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    if before is not None:
        os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def _rect(y0: int, y1: int, x0: int, x1: int, size: tuple[int, int] = (40, 60)) -> np.ndarray:
    m = np.zeros(size, bool)
    m[y0:y1, x0:x1] = True
    return m


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    _picture(folder / "a.png", 1)
    _picture(folder / "b.png", 2)
    return folder


def test_a_replaced_file_is_found_by_its_stamp_and_its_record_updated(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    with Project.create(folder) as project:
        ann = project.add_annotation(project.images()[0].id, _rect(5, 20, 10, 30), None)
        a = project.images()[0]
        assert check_image_file(project, a.id).state == "unchanged"
        # touched, same bytes: hashed once, nothing changes but the stamp
        os.utime(folder / "a.png", ns=(1, 1))
        found = check_image_file(project, a.id)
        assert found.state == "unchanged" and project.image(a.id) == a

        _picture(folder / "a.png", 3)  # same size, other pixels
        found = check_image_file(project, a.id)
        assert found.state == "changed" and not found.size_changed and found.unfitting == 0
        assert project.image(a.id).content_hash != a.content_hash

        _picture(folder / "a.png", 4, size=(50, 70))  # another size
        found = check_image_file(project, a.id)
        assert found.size_changed and (found.old_size, found.new_size) == ((40, 60), (50, 70))
        assert found.unfitting == 1
        rec = project.image(a.id)
        assert (rec.height, rec.width) == (50, 70)
        assert unfitting_masks(project) == {a.id: [ann.id]}
        assert [x.id for x in project.annotations(a.id)] == [ann.id]  # kept
        # a new mask of the new size can be added; the old one is left out of exports
        new = project.add_annotation(a.id, _rect(5, 45, 10, 60, (50, 70)), None)
        out = tmp_path / "out.json"
        _, problems = export_project(project, "coco-rle", out)
        assert [x["id"] for x in json.loads(out.read_text())["annotations"]] == [new.id]
        assert len(problems) == 1 and f"annotation {ann.id} of a.png" in problems[0]

        (folder / "b.png").unlink()
        b = project.images()[1]
        assert check_image_file(project, b.id).state == "missing"
        assert missing_images(project) == {b.id: "file not found"}


def test_a_version_4_project_records_stamps_on_first_check(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    path = folder / "project.samstudio"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    schema.create(conn, upto=4)
    conn.execute("INSERT INTO meta VALUES ('root', '.')")
    from samstudio.core.images import content_hash

    digest = content_hash(folder / "a.png")
    conn.execute(
        "INSERT INTO images (id, path, width, height, content_hash) VALUES (1, 'a.png', 60, 40, ?)",
        (digest,),
    )
    conn.execute("COMMIT")
    conn.close()
    with Project.open(path) as project:
        assert check_image_file(project, 1).state == "unchanged"
        with project.store.reading() as c:
            size, mtime = c.execute("SELECT file_size, file_mtime_ns FROM images").fetchone()
        st = (folder / "a.png").stat()
        assert (size, mtime) == (st.st_size, st.st_mtime_ns)


def test_reimporting_skips_identical_annotations(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    masks = [_rect(5, 20, 10, 30), _rect(25, 35, 40, 55)]
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 60, "height": 40}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [
            {
                "id": i + 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": {
                    "size": [40, 60],
                    "counts": mask_utils.encode(np.asfortranarray(m))["counts"].decode(),
                },
                "area": int(m.sum()),
                "bbox": [0, 0, 1, 1],
                "iscrowd": 0,
            }
            for i, m in enumerate(masks)
        ],
    }
    file = tmp_path / "gt.json"
    file.write_text(json.dumps(doc))
    with Project.create(folder) as project:
        first = import_file(project, file)
        again = import_file(project, file)
        assert (first.annotations_added, first.annotations_skipped) == (2, 0)
        assert (again.annotations_added, again.annotations_skipped) == (0, 2)
        assert len(project.annotations(project.images()[0].id)) == 2


def test_the_same_pixels_under_another_encoding_are_the_same_mask() -> None:
    m = _rect(5, 20, 10, 30)
    rle = mask_utils.encode(np.asfortranarray(m))
    other = mask_utils.encode(np.asfortranarray(_rect(5, 20, 11, 31)))["counts"]
    assert _same_mask({"size": [40, 60], "counts": rle["counts"]}, [other, rle["counts"]]) == 1
    assert _same_mask({"size": [40, 60], "counts": rle["counts"]}, [other]) is None
    # another tool may write the same pixels with other runs (a run split by an empty
    # one): another counts string, the same mask
    flat = m.flatten(order="F")
    edges = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    split = [runs[0] - 1, 0, 1, *runs[1:]]
    odd = mask_utils.frPyObjects({"size": [40, 60], "counts": split}, 40, 60)["counts"]
    assert odd != rle["counts"]
    assert _same_mask({"size": [40, 60], "counts": rle["counts"]}, [other, odd]) == 1


def test_a_file_made_unreadable_is_reported_without_opening_it(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import samstudio.core.document.image_files as image_files

    folder = _folder(tmp_path)
    with Project.create(folder) as project:
        b = project.images()[1]
        real = os.access  # chmod does not stop root: the permission check is stood in for
        monkeypatch.setattr(
            image_files.os, "access", lambda p, mode: Path(p).name != "b.png" and real(p, mode)
        )
        assert missing_images(project) == {b.id: "no permission to read it"}
