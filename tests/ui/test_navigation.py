"""Moving through images: keys, the status filter, prefetch, cancelling stale work."""

from __future__ import annotations

from PySide6.QtCore import Qt

from ui.conftest import open_folder
from ui.fakes import FakeSegmenter
from ui.helpers import click_image, key


def test_next_previous_keys_and_status_filter(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    ids = [r.id for r in window.project.images()]
    assert window.annotator.image_id == ids[0]
    for k, expected in [
        (Qt.Key.Key_N, ids[1]),
        (Qt.Key.Key_Right, ids[2]),
        (Qt.Key.Key_P, ids[1]),
        (Qt.Key.Key_Left, ids[0]),
    ]:
        with qtbot.waitSignal(window.annotator.image_opened, timeout=15000):
            key(qtbot, window, k)
        assert window.annotator.image_id == expected
        assert window.images_panel.current == expected
    key(qtbot, window, Qt.Key.Key_P)  # at the first image: stays
    assert window.annotator.image_id == ids[0]
    # Mark the first image done; the "Done" filter lists only it, "New" the others.
    key(qtbot, window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert window.project.image(ids[0]).status == "done"
    window.images_panel.filter.setCurrentText("Done")
    assert window.images_panel.visible_ids() == [ids[0]]
    window.images_panel.filter.setCurrentText("New")
    assert window.images_panel.visible_ids() == ids[1:]


def test_mask_count_and_status_follow_accepts(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    image_id = window.annotator.image_id
    click_image(qtbot, window, 150, 120)
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)
    key(qtbot, window, Qt.Key.Key_Return)
    row = next(r for r in window.images_panel.rows if r.image_id == image_id)
    assert row.mask_count == 1 and row.status == "in_progress"
    item = window.images_panel.tree.topLevelItem(0)
    assert item.text(1) == "in progress" and item.text(2) == "1"


def test_prefetch_makes_the_next_image_ready_from_cache(qtbot, window, image_folder, fake) -> None:  # noqa: ANN001
    window.annotator.prefetch_depth = 2
    open_folder(qtbot, window, image_folder)
    qtbot.waitUntil(lambda: len(fake.encoded) == 3, timeout=15000)  # current + 2 next
    with qtbot.waitSignal(window.worker.embedding_ready, timeout=15000) as blocker:
        key(qtbot, window, Qt.Key.Key_N)
    _image_id, _seconds, cached = blocker.args
    assert cached is True
    assert "cached" in window.embedding_label.text()


def test_opening_an_image_drops_stale_work(qtbot, settings, dialogs, image_folder) -> None:  # noqa: ANN001
    """Skipping quickly through images encodes only the one the user lands on."""
    from samstudio.ui.main_window import MainWindow

    slow = FakeSegmenter(encode_seconds=0.4)
    win = MainWindow(settings=settings, disk_cache=None)
    qtbot.addWidget(win)
    win.show()
    win.annotator.prefetch_depth = 0
    try:
        with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
            win.load_model(lambda: slow, "slow")
        win.open_path(image_folder)
        qtbot.waitUntil(lambda: win.worker.busy_with == "encoding", timeout=15000)
        first = win.annotator.image_id
        for _ in range(3):
            key(qtbot, win, Qt.Key.Key_N)
        last = win.annotator.image_id
        assert last == first + 3
        with qtbot.waitSignal(win.annotator.embedding_ready, timeout=20000) as blocker:
            pass
        assert blocker.args == [last]
        assert len(slow.encoded) == 2  # the first image (already running) and the last
    finally:
        win.shutdown()


def test_fast_clicks_coalesce(qtbot, settings, dialogs, image_folder) -> None:  # noqa: ANN001
    """Five quick clicks while the decoder is busy: stale requests are dropped, and the
    answer shown is for all five points."""
    from samstudio.ui.main_window import MainWindow

    slow = FakeSegmenter(decode_seconds=0.3)
    win = MainWindow(settings=settings, disk_cache=None)
    qtbot.addWidget(win)
    win.show()
    try:
        with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
            win.load_model(lambda: slow, "slow")
        open_folder(qtbot, win, image_folder)
        for i in range(5):
            click_image(qtbot, win, 40 + 30 * i, 100)
        qtbot.waitUntil(
            lambda: (
                win.annotator.candidate_set is not None
                and len(win.annotator.candidate_set.prompts.points) == 5
            ),
            timeout=20000,
        )
        assert len(slow.decoded) <= 3  # the first click, maybe one in between, the last
        qtbot.waitUntil(lambda: len(win.candidates_panel.candidates) == 1, timeout=15000)
    finally:
        win.shutdown()
