"""The store behind the window (reopen restores undo, import), the Model menu's download
dialog, preferences, and the status bar."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from ui.conftest import new_window, open_folder
from ui.helpers import click_image, key


def test_reopening_restores_masks_and_undo_history(
    qtbot, window, image_folder, settings, fake
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)
    key(qtbot, window, Qt.Key.Key_Return)
    image_id = window.annotator.image_id
    (ann,) = window.project.annotations(image_id)
    mask = window.project.mask(ann.id)
    window.shutdown()  # closes the store; nothing to save

    again = new_window(qtbot, settings, fake)
    try:
        open_folder(qtbot, again, image_folder)
        assert again.annotator.image_id == image_id
        (back,) = again.project.annotations(image_id)
        np.testing.assert_array_equal(again.project.mask(back.id), mask)
        assert again.instances_panel.row_ids() == [back.id]
        assert again.undo_action.isEnabled()
        key(qtbot, again, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert again.project.annotations(image_id) == []
        key(
            qtbot,
            again,
            Qt.Key.Key_Z,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )
        assert [a.id for a in again.project.annotations(image_id)] == [back.id]
    finally:
        again.shutdown()


def test_import_coco_adds_instances(qtbot, window, image_folder, tmp_path, dialogs) -> None:  # noqa: ANN001
    from samstudio.core.masks import encode_rle
    from samstudio.ui.exchange_menu import run_import

    open_folder(qtbot, window, image_folder)
    m = np.zeros((240, 320), bool)
    m[20:60, 30:90] = True
    coco = {
        "images": [{"id": 7, "file_name": "scene_0.png", "width": 320, "height": 240}],
        "categories": [{"id": 3, "name": "tree"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 3,
                "segmentation": encode_rle(m),
                "area": int(m.sum()),
                "bbox": [30, 20, 60, 40],
                "iscrowd": 0,
            },
            {  # a COCO crowd region: the panel says so
                "id": 2,
                "image_id": 7,
                "category_id": 3,
                "segmentation": encode_rle(~m),
                "area": int((~m).sum()),
                "bbox": [0, 0, 320, 240],
                "iscrowd": 1,
            },
        ],
    }
    path = tmp_path / "in.json"
    path.write_text(json.dumps(coco))
    summary = run_import(window, path)
    assert summary is not None and summary.annotations_added == 2
    image_id = window.annotator.image_id
    ann, crowd = window.project.annotations(image_id)
    np.testing.assert_array_equal(window.project.mask(ann.id), m)
    assert ann.source == "imported"
    assert (ann.iscrowd, crowd.iscrowd) == (False, True)
    assert window.instances_panel.row_ids() == [ann.id, crowd.id]
    texts = [window.instances_panel.list.item(i).text() for i in range(2)]
    assert "crowd" not in texts[0] and "· crowd" in texts[1]
    assert "tree" in [r.name for r in window.categories_panel.rows]
    # A file that is not an annotation file: a dialog naming it, nothing changes.
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    assert run_import(window, bad) is None
    assert dialogs[-1][0] == "Import failed" and "bad.json" in dialogs[-1][1]
    # The import is undoable.
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.project.annotations(image_id) == []


def test_download_dialog_progress_and_cancel(qtbot, window, monkeypatch, dialogs) -> None:  # noqa: ANN001
    """The Model menu's download runs off the UI thread, shows progress and cancels."""
    import samstudio.inference.download as download_mod
    from samstudio.inference.download import DownloadCancelled

    started = threading.Event()
    seen_cancel: list[bool] = []

    def fake_download(entry, dest, progress=None, cancel=None, **kw):  # noqa: ANN001,ANN003,ANN202
        total = 100 << 20
        for done in range(0, total, 1 << 20):
            progress(done, total)
            started.set()
            if cancel.wait(0.05):
                seen_cancel.append(True)
                raise DownloadCancelled(f"{dest}: cancelled")
        return Path(dest)

    monkeypatch.setattr(download_mod, "download", fake_download)
    menu = window.model_menu
    menu.download("sam_vit_b")
    qtbot.waitUntil(started.is_set, timeout=15000)
    dialog = menu._download[2]
    qtbot.waitUntil(lambda: dialog.value() > 0, timeout=15000)
    assert "sam_vit_b" in dialog.labelText()
    from PySide6.QtWidgets import QPushButton

    (cancel_button,) = dialog.findChildren(QPushButton)
    qtbot.mouseClick(cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: menu._download is None, timeout=15000)
    assert seen_cancel == [True]
    assert not dialogs  # a cancel is not an error
    assert window.worker.model_info.model_id == "fake"  # nothing else was loaded


def test_status_bar_and_preferences(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    assert "fake" in window.model_label.text() and "cpu" in window.model_label.text()
    assert window.embedding_label.text().startswith("Embedding: ready")
    from samstudio.ui.preferences import PreferencesDialog

    dialog = PreferencesDialog(window.settings, window)
    dialog.prefetch.setValue(4)
    dialog.brush.setValue(21)
    dialog.save()
    window.apply_settings()
    assert window.annotator.prefetch_depth == 4 and window.annotator.brush_radius == 21
    assert window.settings.prefetch_depth == 4
    assert str(image_folder.resolve()) in window.settings.recent_projects


def test_an_image_with_many_masks_fills_in_without_blocking(qtbot, window, image_folder) -> None:  # noqa: ANN001
    """Opening an image with many stored masks: they are drawn off the UI thread."""
    from samstudio.ui.project_access import open_project

    project = open_project(image_folder)
    image = project.images()[0]
    masks = []
    for i in range(40):
        m = np.zeros((image.height, image.width), bool)
        m[(i * 5) % 200 : (i * 5) % 200 + 20, (i * 7) % 280 : (i * 7) % 280 + 30] = True
        masks.append(m)
    ids = [
        a.id for a in project.add_annotations(image.id, masks, project.categories()[0].id, "auto")
    ]
    project.close()
    open_folder(qtbot, window, image_folder)
    qtbot.waitUntil(lambda: sorted(window.canvas.instance_ids()) == sorted(ids), timeout=15000)
    assert len(window.instances_panel.row_ids()) == 40
    # Each overlay sits where its mask is.
    item = window.canvas._instances[ids[3]]
    assert (item.pos().x(), item.pos().y()) == (21 - 1, 15 - 1)
