"""Image files that change on disk under an open project, or between sessions: a picture
replaced by another (same size or not), a file deleted. The model must segment the
picture on screen, Accept must work, saved masks are never lost or silently misplaced,
and the image list says which files need attention."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from ui.conftest import make_scene, open_folder, replace_picture
from ui.fakes import FakeSegmenter
from ui.helpers import click_image, export_dialog_browses, key

CTRL = Qt.KeyboardModifier.ControlModifier


def status_messages(win) -> list[str]:  # noqa: ANN001
    seen: list[str] = []
    win.statusBar().messageChanged.connect(seen.append)
    return seen


def go(qtbot, win, k: Qt.Key) -> None:  # noqa: ANN001
    """Press N or P and wait until the image is shown and its embedding is ready."""
    with qtbot.waitSignals(
        [win.annotator.image_opened, win.annotator.embedding_ready], timeout=20000
    ):
        key(qtbot, win, k)


def accept_click(qtbot, win, x: float, y: float, n: int = 3) -> None:  # noqa: ANN001
    click_image(qtbot, win, x, y)
    qtbot.waitUntil(lambda: len(win.candidates_panel.candidates) == n, timeout=15000)
    key(qtbot, win, Qt.Key.Key_Return)


def list_item(win, image_id: int):  # noqa: ANN001,ANN201
    tree = win.images_panel.tree
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        if int(item.data(0, Qt.ItemDataRole.UserRole)) == image_id:
            return item
    return None


def mask_window(qtbot, settings, segmenter, cache_root: Path):  # noqa: ANN001,ANN201
    """A window with an on-disk embedding cache in `cache_root` (shared between sessions)."""
    from samstudio.ui.inference_worker import DiskEmbeddingStore
    from samstudio.ui.main_window import MainWindow

    win = MainWindow(settings=settings, disk_cache=DiskEmbeddingStore(root=cache_root))
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
        win.load_model(lambda: segmenter, "fake")
    return win


def test_a_picture_replaced_while_open_is_encoded_again_and_keeps_its_masks(
    qtbot, window, image_folder, dialogs
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    first = window.annotator.image_id
    accept_click(qtbot, window, 150, 120)
    saved = window.project.mask(window.project.annotations(first)[0].id)
    old = window.worker.embedding_for(first)
    go(qtbot, window, Qt.Key.Key_N)

    # retouched in an editor while the project is open: same size, other pixels
    new_rgb = make_scene(40)
    replace_picture(image_folder / "scene_0.png", new_rgb)
    messages = status_messages(window)
    go(qtbot, window, Qt.Key.Key_P)
    assert any(
        "scene_0.png changed on disk (same size): its embedding is computed again; "
        "its 1 mask is kept" in m
        for m in messages
    ), messages
    assert dialogs == []  # nothing to decide: the masks still fit
    # the model now sees the new picture (the fake's features are the image's mean)
    emb = window.worker.embedding_for(first)
    assert emb is not None and emb is not old
    assert float(emb.features.flat[0]) == np.float32(new_rgb.mean())
    rec = window.project.image(first)
    digest = hashlib.sha256((image_folder / "scene_0.png").read_bytes()).hexdigest()
    assert rec.content_hash == digest and (rec.height, rec.width) == (240, 320)
    # the saved mask is kept and shown
    (ann,) = window.project.annotations(first)
    np.testing.assert_array_equal(window.project.mask(ann.id), saved)
    assert window.canvas.instance_ids() == [ann.id]
    assert not list_item(window, first).text(0).startswith("⚠")


def test_a_picture_of_another_size_is_segmented_and_accepted_at_its_new_size(
    qtbot, window, image_folder, dialogs, fake
) -> None:  # noqa: ANN001
    """The bug: the worker kept the old picture's embedding by image id, so the model
    segmented the old picture (at its old size) under the new one."""
    open_folder(qtbot, window, image_folder)
    ids = [r.id for r in window.project.images()]
    go(qtbot, window, Qt.Key.Key_N)
    replace_picture(image_folder / "scene_0.png", make_scene(41, size=(300, 400)))
    messages = status_messages(window)
    go(qtbot, window, Qt.Key.Key_P)
    assert any("scene_0.png changed on disk (now 400 x 300, was 320 x 240)" in m for m in messages)
    assert dialogs == []  # no saved masks: nothing to warn about
    assert window.canvas.image_size == (400, 300)
    assert window.worker.embedding_for(ids[0]).original_size == (300, 400)
    accept_click(qtbot, window, 350, 250)
    (ann,) = window.project.annotations(ids[0])
    assert window.project.mask(ann.id).shape == (300, 400)
    assert window.project.mask(ann.id)[250, 350]


def test_after_a_restart_a_resized_picture_keeps_its_old_masks_aside(
    qtbot, settings, dialogs, image_folder, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    cache = tmp_path / "embeddings"
    win = mask_window(qtbot, settings, FakeSegmenter(), cache)
    try:
        open_folder(qtbot, win, image_folder)
        first = win.annotator.image_id
        accept_click(qtbot, win, 150, 120)
        (old_ann,) = win.project.annotations(first)
    finally:
        win.shutdown()

    # between sessions the file is replaced by a bigger picture
    replace_picture(image_folder / "scene_0.png", make_scene(42, size=(300, 400)))
    fake = FakeSegmenter()
    win = mask_window(qtbot, settings, fake, cache)
    try:
        open_folder(qtbot, win, image_folder)
        assert win.annotator.image_id == first
        # encoded again: the disk cache (keyed by pixels) did not serve the old picture
        assert (300, 400) in fake.encoded
        assert win.worker.embedding_for(first).original_size == (300, 400)
        # the user is told, by name, that the saved mask was made on the old picture
        title, text = dialogs[-1]
        assert title == "Image changed on disk"
        assert "scene_0.png" in text and "400 x 300" in text and "320 x 240" in text
        assert "Its 1 saved mask was made on the old picture" in text
        assert "kept" in text and "Delete masks made on an earlier picture" in text
        rec = win.project.image(first)
        assert (rec.height, rec.width) == (300, 400)
        # kept, not drawn, marked in both lists
        assert [a.id for a in win.project.annotations(first)] == [old_ann.id]
        assert win.canvas.instance_ids() == []
        assert "earlier picture" in win.instances_panel.list.item(0).text()
        item = list_item(win, first)
        assert item.text(0) == "⚠ scene_0.png" and item.text(1) == "check masks"
        win.images_panel.filter.setCurrentText("Errors")
        assert win.images_panel.visible_ids() == [first]
        win.images_panel.filter.setCurrentText("All images")

        # Accept works on the new picture (it failed: "mask shape does not match")
        accept_click(qtbot, win, 350, 250)
        new_ann = win.project.annotations(first)[-1]
        assert win.project.mask(new_ann.id).shape == (300, 400)
        assert win.canvas.instance_ids() == [new_ann.id]

        # an export leaves the old mask out and says why
        out = tmp_path / "export.json"
        monkeypatch.setattr(
            QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), ""))
        )
        export_dialog_browses(monkeypatch)
        menu_action(win, "Export COCO (RLE masks)…").trigger()
        exported = json.loads(out.read_text())
        assert [a["id"] for a in exported["annotations"] if a["image_id"] == first] == [new_ann.id]
        title, text = dialogs[-1]
        assert title == "Exported with notes"
        assert f"annotation {old_ann.id} of scene_0.png" in text and "earlier" in text

        # Inspect's statistics and Evaluate's ground truth leave it out too, and say so
        from samstudio.ui.evaluate_reading import list_ground_truth
        from samstudio.ui.inspect_jobs import project_masks

        masks = project_masks(win.project)
        first_masks = next(im for im in masks.images if im.file_name.endswith("scene_0.png"))
        assert first_masks.ids == (new_ann.id,) and masks.earlier == 1
        assert any("1 mask(s) made on an earlier picture" in n for n in masks.notes())
        truth = list_ground_truth(win.project, 100)
        assert truth is not None and truth.earlier == 1
        assert all(
            r["size"] == [300, 400] for im in truth.images if im.image_id == first for r in im.rles
        )
        assert sum(len(im.rles) for im in truth.images if im.image_id == first) == 1
        assert any("earlier picture" in n for n in truth.notes())

        # Edit ▸ Delete masks made on an earlier picture: one undo step
        menu_action(win, "Delete masks made on an earlier picture").trigger()
        assert [a.id for a in win.project.annotations(first)] == [new_ann.id]
        assert list_item(win, first).text(0) == "scene_0.png"
        key(qtbot, win, Qt.Key.Key_Z, CTRL)
        assert [a.id for a in win.project.annotations(first)] == [old_ann.id, new_ann.id]
        assert list_item(win, first).text(0) == "⚠ scene_0.png"
    finally:
        win.shutdown()


def menu_action(win, text: str):  # noqa: ANN001,ANN201
    for menu in (win.file_menu, *[a.menu() for a in win.menuBar().actions() if a.menu()]):
        for act in menu.actions():
            if act.text() == text:
                return act
    raise AssertionError(f"no menu item {text!r}")


def test_missing_files_are_marked_on_opening_and_on_f5(
    qtbot, window, image_folder, settings, fake
) -> None:  # noqa: ANN001
    from ui.conftest import new_window

    open_folder(qtbot, window, image_folder)
    ids = {Path(r.path).name: r.id for r in window.project.images()}
    assert all(not list_item(window, i).text(0).startswith("⚠") for i in ids.values())
    # deleted while the project is open: F5 marks it, without opening it
    gone = image_folder / "scene_2.png"
    kept = gone.read_bytes()
    gone.unlink()
    key(qtbot, window, Qt.Key.Key_F5)
    item = list_item(window, ids["scene_2.png"])
    assert item.text(0) == "⚠ scene_2.png" and item.text(1) == "missing"
    assert "file not found" in item.toolTip(0)
    assert "1 image file(s) missing" in window.statusBar().currentMessage()
    window.images_panel.filter.setCurrentText("Errors")
    assert window.images_panel.visible_ids() == [ids["scene_2.png"]]
    window.images_panel.filter.setCurrentText("All images")
    # put back: F5 takes the mark away
    gone.write_bytes(kept)
    key(qtbot, window, Qt.Key.Key_F5)
    item = list_item(window, ids["scene_2.png"])
    assert item.text(0) == "scene_2.png" and item.text(1) == "new"
    window.shutdown()

    # deleted between sessions: marked as soon as the project is open
    (image_folder / "scene_3.png").unlink()
    again = new_window(qtbot, settings, fake)
    try:
        open_folder(qtbot, again, image_folder)
        assert list_item(again, ids["scene_3.png"]).text(1) == "missing"
        assert list_item(again, ids["scene_2.png"]).text(1) == "new"
        assert again.annotator.image_id != ids["scene_3.png"]
    finally:
        again.shutdown()


def test_moved_images_are_marked_until_located(
    qtbot, window, image_folder, dialogs, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    from samstudio.core.document import Project

    project_file = tmp_path / "elsewhere.samstudio"
    Project.create(image_folder, project_file).close()
    moved = tmp_path / "moved"
    image_folder.rename(moved)
    with qtbot.waitSignal(window.annotator.image_failed, timeout=15000):
        assert window.open_path(project_file)
    ids = [r.id for r in window.project.images()]
    assert [list_item(window, i).text(1) for i in ids] == ["missing"] * 4
    assert "Locate moved images" in window.statusBar().currentMessage()
    # File ▸ Locate moved images…: found by content, the marks go
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(moved))
    )
    with qtbot.waitSignals(
        [window.annotator.image_opened, window.annotator.embedding_ready], timeout=15000
    ):
        menu_action(window, "Locate moved images…").trigger()
    assert [list_item(window, i).text(1) for i in ids] == ["new"] * 4
