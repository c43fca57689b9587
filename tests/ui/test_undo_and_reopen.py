"""Undo and redo when the store refuses them, redo after reopening, and opening the
project that is already open: each driven by keys and menu actions, as a user does."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu

from ui.conftest import new_window, open_folder
from ui.helpers import click_image, key

CTRL = Qt.KeyboardModifier.ControlModifier


def accept_mask_at(qtbot, win, x: float, y: float) -> None:  # noqa: ANN001
    """Click the image and press Return: one new annotation, one undo step."""
    image_id = win.annotator.image_id
    before = len(win.project.annotations(image_id))
    win.clear_prompts()
    click_image(qtbot, win, x, y)
    qtbot.waitUntil(lambda: len(win.candidates_panel.candidates) == 3, timeout=15000)
    key(qtbot, win, Qt.Key.Key_Return)
    assert len(win.project.annotations(image_id)) == before + 1


def undo_key(qtbot, win) -> None:  # noqa: ANN001
    key(qtbot, win, Qt.Key.Key_Z, CTRL)


def redo_key(qtbot, win) -> None:  # noqa: ANN001
    key(qtbot, win, Qt.Key.Key_Y, CTRL)


@contextmanager
def full_disk(project_file: Path) -> Iterator[None]:
    """No file of this process may grow past the project's write-ahead log: the disk is full."""
    wal = project_file.with_name(project_file.name + "-wal")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (wal.stat().st_size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_undo_and_redo_on_a_full_disk_show_an_error_and_move_nothing(
    qtbot, window, image_folder, dialogs
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    image_id = window.annotator.image_id
    accept_mask_at(qtbot, window, 150, 120)
    accept_mask_at(qtbot, window, 60, 60)
    stack = window.annotator.history.stack(image_id)
    project_file = Path(window.project.path)
    undo_text = window.undo_action.text()
    assert stack.index() == 2

    with qtbot.captureExceptions() as exceptions, full_disk(project_file):
        undo_key(qtbot, window)
    assert not exceptions
    assert len(dialogs) == 1 and str(project_file) in dialogs[0][1]
    assert len(window.project.annotations(image_id)) == 2  # the store did not move ...
    assert stack.index() == 2  # ... nor did the window's history
    assert window.undo_action.text() == undo_text

    undo_key(qtbot, window)  # the disk has room again: the same step is undone
    assert len(window.project.annotations(image_id)) == 1 and stack.index() == 1

    with qtbot.captureExceptions() as exceptions, full_disk(project_file):
        redo_key(qtbot, window)
    assert not exceptions
    assert len(dialogs) == 2 and str(project_file) in dialogs[1][1]
    assert len(window.project.annotations(image_id)) == 1 and stack.index() == 1
    assert window.redo_action.isEnabled()

    redo_key(qtbot, window)
    assert len(window.project.annotations(image_id)) == 2 and stack.index() == 2
    undo_key(qtbot, window)
    undo_key(qtbot, window)
    assert window.project.annotations(image_id) == [] and stack.index() == 0
    assert not window.undo_action.isEnabled()


def test_redo_survives_closing_and_reopening_the_project(
    qtbot, window, image_folder, settings, fake
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    image_id = window.annotator.image_id
    accept_mask_at(qtbot, window, 150, 120)
    accept_mask_at(qtbot, window, 60, 60)
    undo_key(qtbot, window)
    assert len(window.project.annotations(image_id)) == 1
    window.shutdown()

    again = new_window(qtbot, settings, fake)
    try:
        open_folder(qtbot, again, image_folder)
        assert again.annotator.image_id == image_id
        assert again.redo_action.isEnabled()
        assert again.redo_action.text() == "Redo Add annotation"
        undo_key(qtbot, again)  # the older step, from the first session too
        assert again.project.annotations(image_id) == []
        redo_key(qtbot, again)
        assert len(again.project.annotations(image_id)) == 1
        redo_key(qtbot, again)  # the step undone before closing
        assert len(again.project.annotations(image_id)) == 2
        assert not again.redo_action.isEnabled()
        undo_key(qtbot, again)
        accept_mask_at(qtbot, again, 150, 120)  # a new action drops the redo steps
        assert not again.redo_action.isEnabled()
        undo_key(qtbot, again)
        assert again.redo_action.isEnabled()
        redo_key(qtbot, again)
        assert len(again.project.annotations(image_id)) == 2
        assert not again.redo_action.isEnabled()
    finally:
        again.shutdown()


def recent_action(win, path: Path):  # noqa: ANN001,ANN201
    """File ▸ Recent projects ▸ `path`, as the menu shows it."""
    recent = next(
        a.menu() for a in win.file_menu.actions() if a.text().replace("&", "") == "Recent projects"
    )
    assert isinstance(recent, QMenu)
    recent.aboutToShow.emit()
    return next(a for a in recent.actions() if a.text() == str(path.resolve()))


def test_reopening_the_open_project_from_recent_keeps_it_open_and_writable(
    qtbot, window, image_folder, dialogs
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    accept_mask_at(qtbot, window, 150, 120)
    project = window.project
    recent_action(window, image_folder).trigger()
    assert dialogs == []
    assert window.project is project and not window.project.read_only
    accept_mask_at(qtbot, window, 60, 60)  # still editable
    undo_key(qtbot, window)
    assert len(window.project.annotations(window.annotator.image_id)) == 1


def test_opening_another_project_closes_this_one_and_a_failed_open_reopens_it(
    qtbot, window, image_folder, tmp_path, dialogs
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    second = window.images_panel.neighbour(1)
    with qtbot.waitSignals(
        [window.annotator.image_opened, window.annotator.embedding_ready], timeout=20000
    ):
        window.open_image(second)
    accept_mask_at(qtbot, window, 150, 120)
    first_file = Path(window.project.path)

    broken = tmp_path / "broken.samstudio"
    broken.write_bytes(b"this is not a SAM Studio project" * 10)
    assert not window.open_path(broken)
    assert dialogs and str(broken) in dialogs[-1][1]
    # the first project is open again, writable, at the image that was on screen
    assert Path(window.project.path) == first_file and not window.project.read_only
    assert window.annotator.image_id == second
    undo_key(qtbot, window)
    assert window.project.annotations(second) == []

    other = tmp_path / "other"
    other.mkdir()
    for p in sorted(image_folder.glob("*.png"))[:2]:
        (other / p.name).write_bytes(p.read_bytes())
    with qtbot.waitSignal(window.annotator.image_opened, timeout=10000):
        assert window.open_path(other)
    assert Path(window.project.path).parent == other.resolve()
    n_dialogs = len(dialogs)
    # the first project was closed (its lock released): opening it again is not "locked"
    with qtbot.waitSignal(window.annotator.image_opened, timeout=10000):
        recent_action(window, image_folder).trigger()
    assert len(dialogs) == n_dialogs
    assert Path(window.project.path) == first_file and not window.project.read_only
