"""Inspect ▸ Mask statistics / Compare with an annotation file: the "Dataset statistics"
dialog on the open project, computed off the UI thread."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from ui.conftest import open_folder

H, W = 240, 320  # conftest.make_scene's images
TIMEOUT = 60000  # matplotlib on a busy machine


@pytest.fixture(autouse=True)
def _no_inspect_thread_left(window):  # noqa: ANN001,ANN202
    yield
    window.inspect_menu.shutdown()
    assert not [t for t in threading.enumerate() if t.name.startswith("samstudio-inspect")]


def rectangle(x: int, y: int, w: int, h: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y : y + h, x : x + w] = True
    return mask


def add_known_masks(window, proposal: bool = False) -> list[int]:  # noqa: ANN001
    """Two masks on the first image, one on the second, none on the others (and with
    `proposal`, one not accepted yet on the third). Returns the image ids in order."""
    project = window.project
    ids = [r.id for r in project.images()]
    cat = window.annotator.category_id
    project.add_annotation(ids[0], rectangle(10, 20, 60, 40), cat)
    project.add_annotation(ids[0], rectangle(200, 100, 20, 20), cat, "auto")
    project.add_annotation(ids[1], rectangle(0, 0, 160, 120), cat)  # relative size 0.5
    if proposal:
        project.add_annotations(ids[2], [rectangle(50, 50, 30, 30)], cat, "proposal")
    return ids


def settle(qtbot, dialog, start, ok: bool = True) -> None:  # noqa: ANN001
    """Run `start()` and wait until the dialog has shown its result (or message)."""
    with qtbot.waitSignal(dialog.settled, timeout=TIMEOUT) as blocker:
        start()
    assert blocker.args == [ok]
    assert not dialog.busy


def test_inspect_menu_has_both_views(window) -> None:  # noqa: ANN001
    menus = {a.text(): a.menu() for a in window.menuBar().actions() if a.menu()}
    assert "&Study" in menus  # the menu added before this one stays
    texts = [a.text() for a in menus["&Inspect"].actions()]
    assert texts == [
        "Mask statistics of this project…",
        "Compare with an annotation file…",
        "Evaluate the model on this project's masks…",
    ]


def test_mask_statistics_of_the_project(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_known_masks(window, proposal=True)
    menu = window.inspect_menu
    dialog = menu.open_dialog()
    assert not dialog.isModal()
    assert dialog.windowTitle() == "Dataset statistics"

    def start() -> None:
        menu.stats_action.trigger()
        assert dialog.busy  # the result comes later, through the event loop

    settle(qtbot, dialog, start)
    lines = {ln.strip().split("  ", 1)[0]: ln for ln in dialog.table_text().splitlines()}
    assert lines["images"].split()[-1] == "4"
    assert lines["masks"].split()[-1] == "3"  # the proposal is left out
    assert "mean 0.75, median 0.5, none: 2" in lines["masks per image"]  # 2 images with masks
    assert "1: 1, 2-10: 1" in lines["images by count"]
    assert "1 proposal(s) not accepted yet are left out" in dialog.message_text()
    figures = dialog.figures()
    assert len(figures) == 2
    assert all(not p.isNull() and p.width() > 100 for p in figures)
    assert dialog.current is not None
    stats = dialog.current.report["datasets"][0]
    assert stats["relative_size"]["histogram"][10] == 1  # the 160 x 120 mask: 0.5
    assert dialog.save_button.isEnabled()
    assert window.isVisible()


def test_compare_with_the_projects_own_coco_export(
    qtbot, window, image_folder, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    from samstudio.ui.exchange_menu import run_export

    open_folder(qtbot, window, image_folder)
    add_known_masks(window)
    exported = run_export(window, "coco-rle", tmp_path / "export" / "coco.json")
    assert exported is not None and exported.exists()
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(exported), ""))
    )
    dialog = window.inspect_menu.open_dialog()
    settle(qtbot, dialog, window.inspect_menu.compare_action.trigger)
    text = dialog.table_text()
    assert "matched pairs     3 (unmatched: a 0, b 0)" in text
    assert "pair IoU          mean 1.000, median 1.000" in text
    at_09 = next(ln for ln in text.splitlines() if ln.strip().startswith("IoU >= 0.9 "))
    assert "100.0% of pairs; precision 1.000, recall 1.000" in at_09
    assert dialog.current is not None
    assert [p["iou"] for p in dialog.current.report["pairs"]] == [1.0, 1.0, 1.0]
    assert "coco.json" in dialog.heading.text()
    (histogram,) = dialog.figures()
    assert not histogram.isNull()


def test_truncated_file_names_it_and_the_window_goes_on(
    qtbot, window, image_folder, tmp_path, dialogs
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_known_masks(window)
    bad = tmp_path / "truncated_coco.json"
    bad.write_text('{"images": [{"id": 1, "file_name": "scene_0.png", "hei')
    dialog = window.inspect_menu.open_dialog()
    settle(qtbot, dialog, lambda: window.inspect_menu.compare_with(bad), ok=False)
    assert str(bad) in dialog.message_text()
    assert "JSON" in dialog.message_text()
    assert dialog.figures() == [] and not dialog.save_button.isEnabled()
    assert dialogs == []  # shown in the dialog, no message box
    # the window and the dialog still work
    window.step_image(1)
    assert window.annotator.image_id == [r.id for r in window.project.images()][1]
    settle(qtbot, dialog, window.inspect_menu.show_mask_stats)
    assert str(bad) not in dialog.message_text()
    assert len(dialog.figures()) == 2


def test_empty_project_says_no_accepted_masks(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    dialog = window.inspect_menu.open_dialog()
    settle(qtbot, dialog, window.inspect_menu.show_mask_stats, ok=False)
    assert "No accepted masks yet" in dialog.message_text()
    assert dialog.figures() == [] and not dialog.save_button.isEnabled()


def test_no_project_open(qtbot, window) -> None:  # noqa: ANN001
    dialog = window.inspect_menu.open_dialog()
    settle(qtbot, dialog, window.inspect_menu.show_mask_stats, ok=False)
    assert "Open a folder of images" in dialog.message_text()


def test_save_report_writes_json_and_figures(
    qtbot, window, image_folder, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_known_masks(window)
    dialog = window.inspect_menu.open_dialog()
    settle(qtbot, dialog, window.inspect_menu.show_mask_stats)
    folder = tmp_path / "report"
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder))
    )
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["centres.png", "mask_properties.png", "mask_stats.json"]
    doc = json.loads((folder / "mask_stats.json").read_text())
    assert doc["datasets"][0]["images"] == 4 and doc["datasets"][0]["masks"] == 3
    assert (folder / "centres.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(folder) in dialog.message_text()
    not_a_folder = tmp_path / "a_file.txt"
    not_a_folder.write_text("x")
    assert dialog.save_report(not_a_folder) == []
    assert f"could not be saved in {not_a_folder}" in dialog.message_text()


def test_a_newer_view_replaces_a_running_one_and_no_thread_is_left(
    qtbot, window, image_folder, tmp_path
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_known_masks(window)
    dialog = window.inspect_menu.open_dialog()
    shown: list[bool] = []
    dialog.settled.connect(shown.append)
    window.inspect_menu.compare_with(tmp_path / "missing.json")  # would fail...
    settle(qtbot, dialog, window.inspect_menu.show_mask_stats)  # ...but is replaced at once
    qtbot.wait(50)
    assert shown == [True]
    assert "missing.json" not in dialog.message_text()
    window.inspect_menu.shutdown()
    assert not [t for t in threading.enumerate() if t.name.startswith("samstudio-inspect")]


def test_image_masks_of_the_project_skip_proposals(qtbot, window, image_folder) -> None:  # noqa: ANN001
    from samstudio.ui.inspect_jobs import project_masks

    open_folder(qtbot, window, image_folder)
    ids = add_known_masks(window, proposal=True)
    masks = project_masks(window.project)
    assert [len(im.masks) for im in masks.images] == [2, 1, 0, 0]
    assert masks.proposals == 1 and masks.unreadable == 0
    first = masks.images[0]
    assert (first.height, first.width) == (H, W)
    assert first.file_name == window.project.image(ids[0]).path
