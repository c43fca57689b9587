"""Panels as a user drives them: categories, visibility, Space to accept, the
embedding state in the status bar, importing a model file that is not a model."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QColorDialog, QInputDialog

from ui.conftest import open_folder
from ui.fakes import FakeSegmenter
from ui.helpers import click_image, key


def test_category_add_rename_recolour(qtbot, window, image_folder, monkeypatch) -> None:  # noqa: ANN001
    from PySide6.QtGui import QColor

    open_folder(qtbot, window, image_folder)
    answers = iter([("leaf", True), ("big leaf", True)])
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: next(answers)))
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor("#112233")))
    qtbot.mouseClick(window.categories_panel.add_button, Qt.MouseButton.LeftButton)
    leaf = next(c for c in window.project.categories() if c.name == "leaf")
    assert window.annotator.category_id == leaf.id
    assert window.categories_panel.current_id() == leaf.id
    qtbot.mouseClick(window.categories_panel.rename_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(window.categories_panel.color_button, Qt.MouseButton.LeftButton)
    cat = next(c for c in window.project.categories() if c.id == leaf.id)
    assert (cat.name, cat.color) == ("big leaf", "#112233")
    assert "big leaf" in window.categories_panel.list.currentItem().text()
    # New masks take the current category.
    click_image(qtbot, window, 150, 120)
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)
    key(qtbot, window, Qt.Key.Key_Space)  # Space accepts too
    (ann,) = window.project.annotations(window.annotator.image_id)
    assert ann.category_id == leaf.id


def test_hiding_an_instance(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)
    key(qtbot, window, Qt.Key.Key_Return)
    (ann,) = window.project.annotations(window.annotator.image_id)
    item = window.instances_panel.list.item(0)
    item.setCheckState(Qt.CheckState.Unchecked)
    assert ann.id in window.annotator.hidden
    assert not window.canvas._instances[ann.id].isVisible()
    item.setCheckState(Qt.CheckState.Checked)
    assert window.canvas._instances[ann.id].isVisible()


def test_embedding_state_counts_while_computing(qtbot, settings, dialogs, image_folder) -> None:  # noqa: ANN001
    from samstudio.ui.main_window import MainWindow

    slow = FakeSegmenter(encode_seconds=0.6)
    win = MainWindow(settings=settings, disk_cache=None)
    qtbot.addWidget(win)
    win.show()
    try:
        with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
            win.load_model(lambda: slow, "slow")
        win.open_path(image_folder)
        qtbot.waitUntil(lambda: "computing…" in win.embedding_label.text(), timeout=15000)
        assert win.embedding_label.text().endswith(" s")
        qtbot.waitUntil(lambda: "ready" in win.embedding_label.text(), timeout=15000)
    finally:
        win.shutdown()


def test_importing_a_file_that_is_not_a_model(qtbot, window, tmp_path, dialogs) -> None:  # noqa: ANN001
    from samstudio.ui.model_menu import import_and_open_factory

    bad = tmp_path / "notes.pth"
    bad.write_text("these are not weights")
    with qtbot.waitSignal(window.worker.model_failed, timeout=60000):
        window.load_model(import_and_open_factory(str(bad)), bad.name)
    title, text = dialogs[-1]
    assert title == "The model could not be loaded" and "notes.pth" in text
    assert window.worker.model_info.model_id == "fake"


def test_ctrl_click_selects_the_instance_under_the_cursor(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)
    key(qtbot, window, Qt.Key.Key_Return)
    (ann,) = window.project.annotations(window.annotator.image_id)
    click_image(qtbot, window, 152, 118, modifiers=Qt.KeyboardModifier.ControlModifier)
    assert window.annotator.selected == ann.id
    assert window.instances_panel.list.currentItem() is not None
    assert window.annotator.points == []  # selecting is not a prompt
    click_image(qtbot, window, 10, 10, modifiers=Qt.KeyboardModifier.ControlModifier)
    assert window.annotator.selected is None
