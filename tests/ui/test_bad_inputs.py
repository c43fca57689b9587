"""Bad input gives clear messages and no crash: unreadable images, broken models,
an export into a read-only folder, images that moved."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from ui.conftest import open_folder
from ui.fakes import BrokenSegmenterFactory
from ui.helpers import click_image, key


@pytest.fixture
def folder_with_broken_image(image_folder: Path) -> Path:
    (image_folder / "scene_1b_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return image_folder


def test_unreadable_image_is_marked_and_others_work(
    qtbot, window, folder_with_broken_image
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, folder_with_broken_image)
    rows = {r.name: r for r in window.images_panel.rows}
    broken = rows["scene_1b_broken.png"]
    assert broken.error and "scene_1b_broken.png" in broken.error
    item = next(
        window.images_panel.tree.topLevelItem(i)
        for i in range(window.images_panel.tree.topLevelItemCount())
        if window.images_panel.tree.topLevelItem(i).text(0).endswith("scene_1b_broken.png")
    )
    assert item.text(0).startswith("⚠") and item.text(1) == "unreadable"
    assert "scene_1b_broken.png" in item.toolTip(0)
    # Opening it shows a message naming the file; nothing crashes.
    with qtbot.waitSignal(window.annotator.image_failed, timeout=15000) as blocker:
        window.open_image(broken.image_id)
    assert "scene_1b_broken.png" in blocker.args[1]
    # The next image works as usual.
    with qtbot.waitSignals(
        [window.annotator.image_opened, window.annotator.embedding_ready], timeout=15000
    ):
        key(qtbot, window, Qt.Key.Key_N)
    click_image(qtbot, window, 100, 100)
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)
    window.images_panel.filter.setCurrentText("Errors")
    assert window.images_panel.visible_ids() == [broken.image_id]


def test_model_that_fails_to_load_gives_a_dialog(
    qtbot, window, image_folder, dialogs, tmp_path
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    with qtbot.waitSignal(window.worker.model_failed, timeout=15000):
        window.load_model(BrokenSegmenterFactory(), "model.pth")
    assert dialogs and dialogs[-1][0] == "The model could not be loaded"
    assert "not a SAM checkpoint" in dialogs[-1][1]
    # Through the real loader: a file that is no model.
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"\0" * 100)
    with qtbot.waitSignal(window.worker.model_failed, timeout=15000):
        window.model_menu.load(str(bad))
    assert str(bad) in dialogs[-1][1]
    assert window.settings.last_model != str(bad)  # the next start will not try it again
    # The previous model still works.
    assert window.worker.model_info.model_id == "fake"
    click_image(qtbot, window, 100, 100)
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can write into (root too: chattr +i where chmod does not stop root)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if (
        shutil.which("chattr") is None
        or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0
    ):
        pytest.skip("running as root on a file system where a folder cannot be made read-only")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)])


def test_export_into_read_only_folder_says_so(
    qtbot, window, image_folder, dialogs, read_only_folder
) -> None:  # noqa: ANN001
    from samstudio.ui.exchange_menu import run_export

    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 100, 100)
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)
    key(qtbot, window, Qt.Key.Key_Return)
    out = read_only_folder / "coco.json"
    assert run_export(window, "coco-rle", out) is None
    title, text = dialogs[-1]
    assert title == "Export failed" and str(read_only_folder) in text
    assert "read-only" in text or "ermission" in text or "not permitted" in text
    assert not out.exists()
    # Nothing lost: the annotation is still there and a writable place works.
    assert len(window.project.annotations(window.annotator.image_id)) == 1
    good = run_export(window, "coco-rle", image_folder.parent / "export" / "coco.json")
    assert good is not None and json.loads(good.read_text())["annotations"]


def test_project_whose_images_moved(qtbot, window, image_folder, dialogs, tmp_path) -> None:  # noqa: ANN001
    """Images moved away: the project still opens, each image says its file is missing."""
    from samstudio.core.document import Project

    project_file = tmp_path / "elsewhere.samstudio"
    Project.create(image_folder, project_file).close()
    moved = tmp_path / "moved"
    image_folder.rename(moved)
    assert window.open_path(project_file)
    with qtbot.waitSignal(window.annotator.image_failed, timeout=15000) as blocker:
        window.open_image(window.project.images()[0].id)
    assert "scene_0.png" in blocker.args[1]
    assert "Locate moved images" in window.statusBar().currentMessage()
    # File > Locate moved images: matched by content, the image opens again.
    from samstudio.ui.exchange_menu import relocate

    with qtbot.waitSignals(
        [window.annotator.image_opened, window.annotator.embedding_ready], timeout=15000
    ):
        assert relocate(window, moved) == 4


def test_project_open_in_another_instance_opens_read_only(
    qtbot, window, image_folder, dialogs
) -> None:  # noqa: ANN001
    """A second window on a project that is open for writing: asked, then read-only;
    an edit attempt says why it cannot be saved, and nothing is lost."""
    from samstudio.core.document import Project

    with Project.create(image_folder) as made:
        made.add_category("object")
    first = Project.open(image_folder)  # another SAM Studio holds it
    try:
        assert window.open_path(image_folder)
        assert dialogs[-1][0] == "Open read-only?"
        assert window.project.read_only and "read-only" in window.windowTitle()
        qtbot.waitUntil(
            lambda: window.annotator.embedding_is_ready and window.annotator.image_rgb is not None,
            timeout=15000,
        )
        click_image(qtbot, window, 100, 100)
        qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)
        key(qtbot, window, Qt.Key.Key_Return)
        assert dialogs[-1][0] == "Could not save the change"
        assert first.annotations(first.images()[0].id) == []
    finally:
        first.close()


def test_a_damaged_project_opened_read_only_lists_what_could_not_be_read(
    qtbot, window, image_folder, dialogs
) -> None:  # noqa: ANN001
    """After "Open read-only?" the user learns which annotations are left out (the
    store's `problems`), instead of silently seeing fewer masks."""
    import sqlite3

    import numpy as np

    from samstudio.core.document import Project

    with Project.create(image_folder) as made:
        image = made.images()[0]
        mask = np.zeros((image.height, image.width), bool)
        mask[10:30, 10:30] = True
        made.add_annotation(image.id, mask, None)
        bad = made.add_annotation(image.id, mask, None)
    path = image_folder / "project.samstudio"
    conn = sqlite3.connect(path)
    conn.execute("UPDATE annotations SET counts = ? WHERE id = ?", (b"\xc9\x01abc", bad.id))
    conn.commit()
    conn.close()
    assert window.open_path(image_folder)
    titles = [t for t, _ in dialogs]
    assert titles == ["Open read-only?", "Opened read-only: some of it cannot be read"]
    text = dialogs[-1][1]
    assert str(path) in text and f"annotation {bad.id} is damaged" in text
    assert window.project.read_only


def test_a_model_loaded_with_a_note_says_so(qtbot, window) -> None:  # noqa: ANN001
    """A model that loads with a note (an ONNX export whose prepared decoder is damaged
    runs without it) says so in the status bar and the model label's tooltip."""
    import dataclasses

    from ui.fakes import FakeSegmenter

    model = FakeSegmenter(model_id="noted")
    note = "/models/x: using decoder.onnx alone, without the prepared decoder"
    model._info = dataclasses.replace(model._info, notes=(note,))
    with qtbot.waitSignal(window.worker.model_loaded, timeout=15000):
        window.load_model(lambda: model, "noted")
    qtbot.waitUntil(lambda: note in window.statusBar().currentMessage(), timeout=5000)
    assert note in window.model_label.toolTip()
