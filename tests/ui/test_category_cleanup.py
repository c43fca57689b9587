"""Cleaning up categories through the Categories panel: Delete… (button, Delete key,
context menu) moving or deleting the instances, a rename onto an existing name
merging, the last category kept; and images listed and walked in natural order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QInputDialog, QMessageBox

from samstudio.core.document.exchange import export_project
from samstudio.ui.category_delete_dialog import DeleteCategoryDialog
from ui.conftest import make_scene, open_folder
from ui.helpers import click_image, key


def _rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((240, 320), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _with_typo(qtbot, win, folder: Path) -> tuple[list[int], dict[str, int]]:  # noqa: ANN001
    """The window on `folder` with categories object, dog, Dog: image 0 holds one dog and
    two Dog instances, image 1 one Dog."""
    open_folder(qtbot, win, folder)
    win.add_category("dog")
    win.add_category("Dog")
    cats = {c.name: c.id for c in win.project.categories()}
    ids = [r.id for r in win.project.images()]
    win.project.add_annotation(ids[0], _rect(10, 40, 10, 40), cats["dog"])
    win.project.add_annotation(ids[0], _rect(50, 80, 10, 40), cats["Dog"])
    win.project.add_annotation(ids[0], _rect(90, 120, 10, 40), cats["Dog"])
    win.project.add_annotation(ids[1], _rect(10, 40, 60, 90), cats["Dog"])
    win.annotator.refresh_instances()
    win._refresh_image_rows()
    return ids, cats


def _instances(win) -> list[str]:  # noqa: ANN001
    """The category of each row of the Instances panel, as shown."""
    lst = win.instances_panel.list
    return [lst.item(i).text().split(" ")[1] for i in range(lst.count())]


def _click_category(qtbot, win, name: str) -> None:  # noqa: ANN001
    panel = win.categories_panel
    row = next(i for i, r in enumerate(panel.rows) if r.name == name)
    rect = panel.list.visualItemRect(panel.list.item(row))
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.current_id() == panel.rows[row].category_id


def _answer_dialog(monkeypatch, delete: bool) -> list[DeleteCategoryDialog]:  # noqa: ANN001
    """Delete category's dialog answered as a user does: the first offered target (or
    "delete them"), then Delete category."""
    shown: list[DeleteCategoryDialog] = []

    def exec_(self: DeleteCategoryDialog) -> int:
        shown.append(self)
        (self.delete_button if delete else self.move_button).click()
        self.buttons.button(self.buttons.StandardButton.Ok).click()
        return int(QDialog.DialogCode.Accepted if self.result() else QDialog.DialogCode.Rejected)

    monkeypatch.setattr(DeleteCategoryDialog, "exec", exec_)
    return shown


def _export(win, path: Path) -> dict:  # noqa: ANN001
    export_project(win.project, "coco-rle", path)
    return json.loads(path.read_text())


def test_delete_key_moves_the_instances_into_the_category_chosen(
    qtbot, window, image_folder, monkeypatch, tmp_path
) -> None:  # noqa: ANN001
    ids, cats = _with_typo(qtbot, window, image_folder)
    shown = _answer_dialog(monkeypatch, delete=False)
    _click_category(qtbot, window, "Dog")
    window.instances_panel.list.setCurrentRow(1)  # an instance is selected, too
    assert window.annotator.selected is not None
    window.categories_panel.list.setFocus()
    qtbot.keyClick(window.categories_panel.list, Qt.Key.Key_Delete)
    (dialog,) = shown
    assert "“Dog” is used by 3 instances on 2 images" in dialog.question.text()
    assert dialog.target.currentText() == "dog"  # the same name but for case first
    # The key deleted the category, not the selected instance.
    assert [r.name for r in window.categories_panel.rows] == ["object", "dog"]
    assert _instances(window) == ["dog", "dog", "dog"]
    assert window.annotator.category_id == cats["dog"]
    assert "dog" in window.categories_panel.list.currentItem().text()
    assert "“Dog” into “dog”: 3 instances on 2 images moved" in window.statusBar().currentMessage()
    doc = _export(window, tmp_path / "out.json")
    assert [c["name"] for c in doc["categories"]] == ["object", "dog"]
    assert [a["category_id"] for a in doc["annotations"]] == [cats["dog"]] * 4
    # Walking to the other image shows its instance moved as well.
    with qtbot.waitSignal(window.annotator.image_opened, timeout=15000):
        key(qtbot, window, Qt.Key.Key_N)
    assert window.annotator.image_id == ids[1]
    assert _instances(window) == ["dog"]


def test_delete_button_deletes_the_instances_and_undo_brings_them_back(
    qtbot, window, image_folder, monkeypatch, tmp_path
) -> None:  # noqa: ANN001
    ids, cats = _with_typo(qtbot, window, image_folder)
    # one more Dog mask made in the window (an undo step of this session), left selected
    click_image(qtbot, window, 150, 120)
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)
    key(qtbot, window, Qt.Key.Key_Return)
    assert _instances(window) == ["dog", "Dog", "Dog", "Dog"]
    shown = _answer_dialog(monkeypatch, delete=True)
    _click_category(qtbot, window, "Dog")
    qtbot.mouseClick(window.categories_panel.delete_button, Qt.MouseButton.LeftButton)
    assert "“Dog” is used by 4 instances on 2 images" in shown[0].question.text()
    assert [r.name for r in window.categories_panel.rows] == ["object", "dog"]
    assert _instances(window) == ["dog"]
    assert window.annotator.selected is None
    assert window.annotator.category_id == cats["object"]
    assert window.project.annotations(ids[1]) == []
    counts = window.images_panel.tree.topLevelItem(0).text(2)
    assert counts == "1", counts
    doc = _export(window, tmp_path / "out.json")
    assert [c["name"] for c in doc["categories"]] == ["object", "dog"]
    assert [a["category_id"] for a in doc["annotations"]] == [cats["dog"]]
    # Ctrl+Z on this image takes its part back: the masks, without the deleted category;
    # the next Ctrl+Z takes back the mask made before.
    assert "deleted category 'Dog'" in window.undo_action.text()
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _instances(window) == ["dog", "?", "?", "?"]
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _instances(window) == ["dog", "?", "?"]
    assert window.project.annotations(ids[1]) == []


def test_renaming_onto_an_existing_name_offers_a_merge(
    qtbot, window, image_folder, monkeypatch, dialogs
) -> None:  # noqa: ANN001
    _ids, cats = _with_typo(qtbot, window, image_folder)
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("dog ", True)))
    _click_category(qtbot, window, "Dog")
    answers = iter([QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
    asked: list[str] = []

    def question(parent, title, text, *args):  # noqa: ANN001,ANN202
        asked.append(text)
        return next(answers)

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    qtbot.mouseClick(window.categories_panel.rename_button, Qt.MouseButton.LeftButton)
    assert "Merge “Dog” into “dog”? Its 3 instances on 2 images move" in asked[0]
    assert [r.name for r in window.categories_panel.rows] == ["object", "dog", "Dog"]  # No
    assert _instances(window) == ["dog", "Dog", "Dog"]
    qtbot.mouseClick(window.categories_panel.rename_button, Qt.MouseButton.LeftButton)
    assert [r.name for r in window.categories_panel.rows] == ["object", "dog"]
    assert _instances(window) == ["dog", "dog", "dog"]
    assert window.project.category_usage(cats["dog"]).annotations == 4
    assert dialogs == []  # no error shown


def test_unused_goes_at_once_and_the_last_one_stays(
    qtbot, window, image_folder, monkeypatch, dialogs
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    monkeypatch.setattr(DeleteCategoryDialog, "exec", lambda self: pytest.fail("asked"))
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("test", True)))
    qtbot.mouseClick(window.categories_panel.add_button, Qt.MouseButton.LeftButton)
    test_id = window.categories_panel.current_id()
    # the context menu of the row: Delete… there deletes the unused category at once
    menu = window.categories_panel.context_menu(test_id)
    next(a for a in menu.actions() if a.text() == "Delete…").trigger()
    assert [r.name for r in window.categories_panel.rows] == ["object"]
    assert window.annotator.category_id == window.categories_panel.rows[0].category_id
    assert "(it had no instances)" in window.statusBar().currentMessage()
    qtbot.mouseClick(window.categories_panel.delete_button, Qt.MouseButton.LeftButton)
    assert [r.name for r in window.categories_panel.rows] == ["object"]
    ((title, text),) = dialogs
    assert title == "Cannot delete the category"
    assert "“object” is the only category" in text and "Add another category" in text


def test_images_are_listed_and_walked_in_natural_order(qtbot, window, tmp_path) -> None:  # noqa: ANN001
    folder = tmp_path / "camera"
    folder.mkdir()
    names = ["img_1.png", "img_2.png", "IMG_3.png", "img_10.png"]
    for i, name in enumerate(reversed(names)):
        Image.fromarray(make_scene(i)).save(folder / name)
    open_folder(qtbot, window, folder)
    tree = window.images_panel.tree
    assert [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())] == names
    seen = [window.project.image(window.annotator.image_id).path]
    for _ in names[1:]:
        with qtbot.waitSignal(window.annotator.image_opened, timeout=15000):
            key(qtbot, window, Qt.Key.Key_N)
        seen.append(window.project.image(window.annotator.image_id).path)
    assert seen == names
