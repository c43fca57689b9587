"""What the window finds on opening a project and keeps between sessions: images added
to the folder later, the image the user was at, the window's size and docks."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QToolBar

from ui.conftest import make_scene, new_window, open_folder
from ui.helpers import key


def test_images_added_to_the_folder_later_join_the_project(
    qtbot, window, image_folder, settings, fake
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    assert len(window.project.images()) == 4
    # more images arrive while the project is open: File ▸ Add new images from the folder
    Image.fromarray(make_scene(10)).save(image_folder / "scene_4.png")
    key(qtbot, window, Qt.Key.Key_F5)
    names = [Path(r.path).name for r in window.project.images()]
    assert "scene_4.png" in names
    assert len(window.images_panel.visible_ids()) == 5
    assert "1 new image" in window.statusBar().currentMessage()
    window.shutdown()

    # and some while it is closed: they are there when it is opened again
    sub = image_folder / "batch2"
    sub.mkdir()
    for i in (11, 12):
        Image.fromarray(make_scene(i)).save(sub / f"late_{i}.png")
    again = new_window(qtbot, settings, fake)
    try:
        open_folder(qtbot, again, image_folder)
        names = [r.path for r in again.project.images()]
        assert "batch2/late_11.png" in names and "batch2/late_12.png" in names
        assert len(again.images_panel.visible_ids()) == 7
        assert "2 new images" in again.statusBar().currentMessage()
        new = next(r for r in again.project.images() if r.path == "batch2/late_12.png")
        assert new.status == "new" and (new.height, new.width) == (240, 320)
    finally:
        again.shutdown()


def test_reopening_a_project_goes_back_to_the_image_the_user_was_at(
    qtbot, window, image_folder, settings, fake, tmp_path
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    first = window.annotator.image_id
    key(qtbot, window, Qt.Key.Key_N)
    key(qtbot, window, Qt.Key.Key_N)
    third = window.annotator.image_id
    assert third != first
    # another project in between does not disturb this one's place
    other = tmp_path / "other"
    other.mkdir()
    for p in sorted(image_folder.glob("*.png"))[:2]:
        shutil.copy(p, other / p.name)
    open_folder(qtbot, window, other)
    window.shutdown()

    again = new_window(qtbot, settings, fake)
    try:
        open_folder(qtbot, again, image_folder)
        assert again.annotator.image_id == third
        assert again.images_panel.current == third
        path = again.project.image_path(third)
    finally:
        again.shutdown()

    path.unlink()  # the image the user was at is gone: start at the first one
    last = new_window(qtbot, settings, fake)
    try:
        open_folder(qtbot, last, image_folder)
        assert last.annotator.image_id == first
    finally:
        last.shutdown()


def test_window_layout_is_remembered(qtbot, window, settings, fake) -> None:  # noqa: ANN001
    images = window.findChild(QDockWidget, "dock-images")
    cats = window.findChild(QDockWidget, "dock-categories")
    window.tabifyDockWidget(images, cats)  # the user moved Categories under Images ...
    tools = window.findChild(QToolBar, "tools")
    window.addToolBar(Qt.ToolBarArea.LeftToolBarArea, tools)  # ... and the tools to the left
    qtbot.waitUntil(lambda: window.tabifiedDockWidgets(images) == [cats], timeout=5000)
    geometry = window.saveGeometry()
    window.close()
    assert settings.window_geometry == geometry  # (the offscreen screen is too small to
    # show a restored size: Qt fits a restored window to the screen)

    again = new_window(qtbot, settings, fake)
    try:
        images2 = again.findChild(QDockWidget, "dock-images")
        cats2 = again.findChild(QDockWidget, "dock-categories")
        assert again.tabifiedDockWidgets(images2) == [cats2]
        tools2 = again.findChild(QToolBar, "tools")
        assert again.toolBarArea(tools2) == Qt.ToolBarArea.LeftToolBarArea
    finally:
        again.shutdown()
