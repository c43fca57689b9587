"""File ▸ Import of a file already imported, and File ▸ Export onto a full disk, through
the menus as a user reaches them."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog

from ui.conftest import open_folder
from ui.helpers import export_dialog_browses


def menu_item(win, text: str):  # noqa: ANN001,ANN201
    for act in win.file_menu.actions():
        if act.text() == text:
            return act
    raise AssertionError(f"no File menu item {text!r}")


def coco_file(path: Path, masks: list[tuple[np.ndarray, int]]) -> Path:
    from samstudio.core.masks import encode_rle

    path.write_text(
        json.dumps(
            {
                "images": [{"id": 7, "file_name": "scene_0.png", "width": 320, "height": 240}],
                "categories": [{"id": 3, "name": "tree"}, {"id": 4, "name": "rock"}],
                "annotations": [
                    {
                        "id": i + 1,
                        "image_id": 7,
                        "category_id": cat,
                        "segmentation": encode_rle(m),
                        "area": int(m.sum()),
                        "bbox": [0, 0, 1, 1],
                        "iscrowd": 0,
                    }
                    for i, (m, cat) in enumerate(masks)
                ],
            }
        )
    )
    return path


def box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((240, 320), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_importing_the_same_file_again_adds_nothing_twice(
    qtbot, window, image_folder, tmp_path, dialogs, monkeypatch
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    image_id = window.annotator.image_id
    a, b, c = box(20, 60, 30, 90), box(100, 150, 100, 200), box(10, 30, 200, 260)
    chosen: list[Path] = []
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda *args, **k: (str(chosen[-1]), ""))
    )
    importing = menu_item(window, "Import annotations (COCO, SA-1B, labelme)…")

    chosen.append(coco_file(tmp_path / "first.json", [(a, 3), (b, 3)]))
    importing.trigger()
    assert len(window.project.annotations(image_id)) == 2
    assert window.instances_panel.row_ids() == [x.id for x in window.project.annotations(image_id)]

    importing.trigger()  # the same file again
    assert len(window.project.annotations(image_id)) == 2
    message = window.statusBar().currentMessage()
    assert "0 added, 2 already in the project" in message, message

    # a newer version of the file: one mask new, one the same, one the same mask in
    # another category (a different annotation: added)
    chosen.append(coco_file(tmp_path / "second.json", [(a, 3), (c, 3), (b, 4)]))
    importing.trigger()
    assert "2 added, 1 already in the project" in window.statusBar().currentMessage()
    anns = window.project.annotations(image_id)
    assert len(anns) == 4
    cats = {cat.name: cat.id for cat in window.project.categories()}
    pairs = sorted((int(window.project.mask(x.id).sum()), x.category_id) for x in anns)
    assert pairs == sorted(
        [
            (int(a.sum()), cats["tree"]),
            (int(b.sum()), cats["tree"]),
            (int(c.sum()), cats["tree"]),
            (int(b.sum()), cats["rock"]),
        ]
    )
    assert len(window.instances_panel.row_ids()) == 4
    assert not any(title == "Import failed" for title, _ in dialogs)


def test_an_export_onto_a_full_disk_names_the_file_once(
    qtbot, window, image_folder, tmp_path, dialogs, monkeypatch
) -> None:  # noqa: ANN001
    import samstudio.core.atomic as atomic

    open_folder(qtbot, window, image_folder)
    out = tmp_path / "export" / "coco.json"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda *args, **k: (str(out), ""))
    )
    export_dialog_browses(monkeypatch)

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    menu_item(window, "Export COCO (RLE masks)…").trigger()
    title, text = dialogs[-1]
    assert title == "Export failed"
    assert text.count(str(out)) == 1, text
    assert "No space left on device" in text and "disk is full" in text
    assert not out.exists()
