"""File ▸ Export as an annotator does it: the dialog proposes a file in the project's
folder, leaves unreviewed proposals out unless ticked, can take only the images with
masks or those marked done, and the status bar says what went out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from PySide6.QtWidgets import QFileDialog

from samstudio.core.amg import MaskRecord
from samstudio.core.masks import encode_rle, rle_area_bbox
from ui.conftest import open_folder
from ui.helpers import export_dialog_browses


def menu_action(win, text: str):  # noqa: ANN001,ANN201
    return next(a for a in win.file_menu.actions() if a.text() == text)


def proposal(shape: tuple[int, int], x: int, y: int) -> MaskRecord:
    mask = np.zeros(shape, bool)
    mask[y : y + 20, x : x + 20] = True
    rle = encode_rle(mask)
    area, bbox = rle_area_bbox(rle)
    return MaskRecord(
        rle, tuple(bbox), area, 0.9, 0.95, ((x + 10, y + 10),), (0, 0, shape[1], shape[0])
    )


def test_export_scope_from_the_dialog(qtbot, window, image_folder, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    win = window
    open_folder(qtbot, win, image_folder)
    first = win.annotator.image_id
    cat = win.project.categories()[0].id
    mask = np.zeros((240, 320), bool)
    mask[10:60, 10:80] = True
    win.project.add_annotation(first, mask, cat)
    auto = win.autosegment_menu.auto
    with qtbot.waitSignal(auto.proposals_added, timeout=5000):
        auto.add_proposals(first, [proposal((240, 320), 100, 100), proposal((240, 320), 200, 50)])

    # the image list counts the proposals apart
    win._refresh_all()
    item = win.images_panel.tree.topLevelItem(0)
    assert item.text(2) == "1 +2" and "2 auto-segment proposal(s) to review" in item.toolTip(2)

    # the dialog shows the counts
    out = tmp_path / "chosen.json"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), ""))
    )
    shown = export_dialog_browses(monkeypatch)
    menu_action(win, "Export COCO (RLE masks)…").trigger()
    dialog = shown[-1]
    texts = [dialog.images.itemText(i) for i in range(dialog.images.count())]
    assert texts == ["All images (4)", "Images with masks (1)", "Images marked done (0)"]
    assert dialog.proposals.text() == "Also the 2 auto-segment proposals not reviewed yet"
    assert not dialog.proposals.isChecked()
    coco = COCO(str(out))
    assert len(coco.dataset["annotations"]) == 1 and len(coco.dataset["images"]) == 4
    message = win.statusBar().currentMessage()
    assert message.startswith(f"Exported 1 masks on 4 images to {out}")
    assert "2 auto-segment proposal(s) not reviewed yet were left out" in message

    # only the images with masks, proposals ticked
    def choose(d) -> None:  # noqa: ANN001
        d.images.setCurrentIndex(1)
        d.proposals.setChecked(True)

    export_dialog_browses(monkeypatch, choose)
    menu_action(win, "Export COCO (RLE masks)…").trigger()
    doc = json.loads(out.read_text())
    assert len(doc["annotations"]) == 3 and [im["id"] for im in doc["images"]] == [first]
    assert win.statusBar().currentMessage().startswith("Exported 3 masks on 1 images")


def test_the_default_file_is_in_the_project_folder(
    qtbot, window, image_folder, monkeypatch
) -> None:  # noqa: ANN001
    from samstudio.ui.export_dialog import ExportDialog

    open_folder(qtbot, window, image_folder)
    seen: list[ExportDialog] = []

    def exec_(self) -> int:  # noqa: ANN001
        seen.append(self)
        return 0  # Cancel: nothing is written

    monkeypatch.setattr(ExportDialog, "exec", exec_)
    menu_action(window, "Export COCO (polygons)…").trigger()
    (dialog,) = seen
    assert dialog.target() == Path(window.project.root) / "annotations_coco_polygons.json"
    assert not dialog.target().exists()
    from PySide6.QtWidgets import QLabel

    assert dialog.proposals.isHidden()  # no proposals in the project: no box
    assert any("holes are lost" in label.text() for label in dialog.findChildren(QLabel))
