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
        "Compare with an annotation folder…",
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


def compare_with_file(qtbot, window, path):  # noqa: ANN001,ANN201
    """Inspect ▸ Compare with an annotation file…, the file dialog answered with `path`;
    the dialog once the comparison is shown."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))
        dialog = window.inspect_menu.open_dialog()
        settle(qtbot, dialog, window.inspect_menu.compare_action.trigger)
    return dialog


def test_compare_with_the_projects_own_coco_export(
    qtbot, window, image_folder, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    from samstudio.ui.exchange_menu import run_export

    open_folder(qtbot, window, image_folder)
    add_known_masks(window)
    exported = run_export(window, "coco-rle", tmp_path / "export" / "coco.json")
    assert exported is not None and exported.exists()
    dialog = compare_with_file(qtbot, window, exported)
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


def test_compare_with_a_coco_results_list_pairs_by_image_id(
    qtbot, window, image_folder, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    """A model's COCO results list names no files: its image ids are the project's, as
    File ▸ Export writes them (found by review: 0 images compared)."""
    from samstudio.ui.exchange_menu import run_export

    open_folder(qtbot, window, image_folder)
    add_known_masks(window)
    exported = run_export(window, "coco-rle", tmp_path / "export" / "coco.json")
    doc = json.loads(exported.read_text())
    results = [
        {"image_id": a["image_id"], "category_id": a["category_id"],
         "segmentation": a["segmentation"], "score": 0.9}
        for a in doc["annotations"]
    ]  # fmt: skip
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(results))
    text = compare_with_file(qtbot, window, results_file).table_text()
    assert "matched pairs     3 (unmatched: a 0, b 0)" in text
    assert "image id" in text


def write_auto_segment_folder(folder, masks_by_image: dict[str, list[np.ndarray]]) -> None:  # noqa: ANN001
    """Per-image SA-1B files as `samstudio auto-segment --out folder` writes them: named
    after the image (`x.png.json`), the image named relative to the folder."""
    from samstudio.core.masks import encode_rle

    folder.mkdir(parents=True)
    for n, (name, masks) in enumerate(masks_by_image.items()):
        anns = []
        for k, mask in enumerate(masks):
            ys, xs = np.nonzero(mask)
            box = [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
            anns.append({"id": k, "segmentation": encode_rle(mask), "area": int(mask.sum()),
                         "bbox": box, "predicted_iou": 0.9, "stability_score": 0.95})  # fmt: skip
        doc = {"image": {"image_id": n + 1, "file_name": f"../images/{name}", "width": W,
                         "height": H}, "annotations": anns}  # fmt: skip
        (folder / f"{name}.json").write_text(json.dumps(doc))


def test_compare_with_an_auto_segment_folder(
    qtbot, window, image_folder, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_known_masks(window)
    out = tmp_path / "auto"
    write_auto_segment_folder(out, {
        "scene_0.png": [rectangle(10, 20, 60, 40), rectangle(200, 100, 20, 10)],  # IoU 1, 0.5
        "scene_1.png": [rectangle(0, 0, 160, 120), rectangle(300, 200, 10, 10)],  # + 1 extra
        "scene_2.png": [],
    })  # fmt: skip
    asked: list[str] = []

    def choose(parent, caption, *args, **kwargs):  # noqa: ANN001,ANN202
        asked.append(caption)
        return str(out)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(choose))
    dialog = window.inspect_menu.open_dialog()
    settle(qtbot, dialog, window.inspect_menu.compare_folder_action.trigger)
    assert asked and "folder" in asked[0]
    text = dialog.table_text()
    assert "matched pairs     3 (unmatched: a 0, b 1)" in text
    assert dialog.current is not None
    assert sorted(p["iou"] for p in dialog.current.report["pairs"]) == [0.5, 1.0, 1.0]
    assert "the folder auto" in dialog.heading.text()
    assert len(dialog.figures()) == 1 and dialog.save_button.isEnabled()


def test_a_bad_annotation_folder_is_named_with_its_problem(
    qtbot, window, image_folder, tmp_path, dialogs
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_known_masks(window)
    dialog = window.inspect_menu.open_dialog()

    def fails(source) -> str:  # noqa: ANN001
        settle(qtbot, dialog, lambda: window.inspect_menu.compare_with(source), ok=False)
        assert dialog.figures() == [] and not dialog.save_button.isEnabled()
        assert dialog.message.styleSheet()  # shown as an error
        return dialog.message_text()

    empty = tmp_path / "empty"
    empty.mkdir()
    message = fails(empty)
    assert str(empty) in message and "empty" in message
    images_only = tmp_path / "pictures"
    images_only.mkdir()
    (images_only / "scene_0.png").write_bytes(b"")
    message = fails(images_only)
    assert str(images_only) in message and "no annotation files" in message
    assert "scene_0.png" in message
    out = tmp_path / "auto"
    write_auto_segment_folder(out, {"scene_0.png": [rectangle(10, 20, 60, 40)],
                                    "scene_1.png": [rectangle(0, 0, 160, 120)]})  # fmt: skip
    (out / "scene_1.png.json").write_text('{"image": {"image_id": 2, "file_na')
    message = fails(out)
    assert str(out / "scene_1.png.json") in message and "JSON" in message
    (out / "scene_1.png.json").write_text('{"images": [], "annotations": []}')  # a COCO file
    message = fails(out)
    assert str(out) in message and "scene_1.png.json" in message and "coco" in message
    assert dialogs == []  # all shown in the dialog, no message box
    (out / "scene_1.png.json").unlink()  # the folder fixed: the same action works again
    settle(qtbot, dialog, lambda: window.inspect_menu.compare_with(out))
    assert "matched pairs     1" in dialog.table_text()


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
