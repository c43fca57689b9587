"""A queue study's rating window looks for work by itself while it is idle: on its
thank-you page it polls the ratings folder (the interval shortened here), shows a job that
became available without a click, never replaces a job being rated, never takes the focus
and stops when closed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLineEdit

from samstudio.core.study.model import Study
from samstudio.core.study.sheets import RatingSheet
from ui.test_study_rating import activate, press, queue_study

POLL_MS = 40


@pytest.fixture
def open_window(qtbot, dialogs) -> Iterator[Callable]:  # noqa: ANN001
    """Opens RatingWindows polling every POLL_MS (shown, active); closed afterwards."""
    from samstudio.ui.study.rating_window import RatingWindow

    def open_(study: Study, participant: str) -> RatingWindow:
        win = RatingWindow(study, participant, poll_ms=POLL_MS)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        activate(qtbot, win)
        return win

    yield open_


def rate_everything(study: Study, participant: str) -> RatingSheet:
    """`participant` rates every job, in another window or on another machine."""
    sheet = RatingSheet(study, participant)
    for job in list(sheet.order):
        sheet.rate(job, 4)
    return sheet


def test_an_idle_window_shows_work_that_became_available(qtbot, tmp_path, open_window) -> None:  # noqa: ANN001
    study = queue_study(tmp_path / "q")
    bob = rate_everything(study, "bob")
    alice = open_window(study, "alice")
    assert alice.pages.currentWidget() is alice.thanks_page
    assert "no masks left to rate right now" in alice.thanks_label.text()
    assert "appear here by themselves" in alice.thanks_label.text()
    assert alice.poll_timer.isActive() and alice.poll_timer.interval() == POLL_MS

    # the participant works in another window meanwhile: nothing may take the focus away
    other = QLineEdit()
    qtbot.addWidget(other)
    other.show()
    qtbot.waitExposed(other)
    activate(qtbot, other)
    other.setFocus()
    qtbot.waitUntil(other.hasFocus, timeout=3000)

    bob.path.unlink()  # the person running the study discards Bob's ratings
    with qtbot.waitSignal(alice.job_shown, timeout=5000):
        pass
    assert alice.pages.currentWidget() is not alice.thanks_page
    assert alice.current_job() == alice.sheet.order[0]
    assert alice.panel.progress_label.text() == f"Job 1 of {len(study.jobs)}"
    assert alice.panel.buttons[5].isEnabled()
    assert not alice.poll_timer.isActive()  # a job is shown: no more polling
    assert QApplication.activeWindow() is other and other.hasFocus()

    press(qtbot, alice, Qt.Key.Key_7)  # she rates as usual
    assert alice.sheet.done == 1 and alice.current_job() == alice.sheet.order[1]


def test_a_job_being_rated_is_never_replaced(qtbot, tmp_path, open_window) -> None:  # noqa: ANN001
    study = queue_study(tmp_path / "q")
    alice = open_window(study, "alice")
    job = alice.current_job()
    assert job is not None and not alice.poll_timer.isActive()
    shown: list[str] = []
    alice.job_shown.connect(shown.append)
    rate_everything(study, "bob")  # Bob takes every job, hers included
    qtbot.wait(10 * POLL_MS)
    alice.poll_queue()  # even a stray poll leaves the job alone
    assert shown == [] and alice.current_job() == job
    assert alice.panel.progress_label.text() == f"Job 1 of {len(study.jobs)}"
    press(qtbot, alice, Qt.Key.Key_6)  # her rating counts; then nothing is left
    assert alice.sheet.rating_of(job) == 6
    assert alice.pages.currentWidget() is alice.thanks_page and alice.poll_timer.isActive()


def test_polling_reads_files_only_when_the_folder_changed(
    qtbot, tmp_path, open_window, monkeypatch
) -> None:  # noqa: ANN001
    from samstudio.core.study import sheets

    study = queue_study(tmp_path / "q")
    bob = rate_everything(study, "bob")
    alice = open_window(study, "alice")
    reads: list[str] = []
    real = sheets._read_sheet

    def counting(study_: Study, path):  # noqa: ANN001,ANN202
        reads.append(path.name)
        return real(study_, path)

    monkeypatch.setattr(sheets, "_read_sheet", counting)
    polls: list[bool] = []
    real_poll = alice.sheet.poll
    monkeypatch.setattr(alice.sheet, "poll", lambda: polls.append(real_poll()) or polls[-1])
    qtbot.waitUntil(lambda: len(polls) >= 5, timeout=5000)
    assert not any(polls) and reads == []  # polled, nothing changed, nothing read
    carl = RatingSheet(study, "carl")  # a newcomer finds nothing left either
    reads.clear()  # (his sheet read Bob's)
    carl._save()
    qtbot.waitUntil(lambda: any(polls), timeout=5000)
    assert reads == [carl.path.name]  # only the new file is read
    assert alice.pages.currentWidget() is alice.thanks_page  # still nothing for her
    assert bob.path.exists()


def test_back_from_the_thank_you_page_pauses_polling(qtbot, tmp_path, open_window) -> None:  # noqa: ANN001
    study = queue_study(tmp_path / "q")
    alice = open_window(study, "alice")
    first = alice.current_job()
    press(qtbot, alice, Qt.Key.Key_3)
    rate_everything(study, "bob")
    press(qtbot, alice, Qt.Key.Key_3)  # the refresh after it finds Bob took the rest
    assert alice.pages.currentWidget() is alice.thanks_page and alice.poll_timer.isActive()
    alice.go_back()  # changing her last rating: no polling meanwhile
    assert alice.current_job() is not None and not alice.poll_timer.isActive()
    press(qtbot, alice, Qt.Key.Key_9)
    assert alice.pages.currentWidget() is alice.thanks_page and alice.poll_timer.isActive()
    assert alice.sheet.rating_of(first) == 3


def test_closing_stops_polling(qtbot, tmp_path, open_window) -> None:  # noqa: ANN001
    study = queue_study(tmp_path / "q")
    bob = rate_everything(study, "bob")
    alice = open_window(study, "alice")
    assert alice.poll_timer.isActive()
    shown: list[str] = []
    alice.job_shown.connect(shown.append)
    alice.close()
    assert not alice.poll_timer.isActive()
    bob.path.unlink()
    qtbot.wait(10 * POLL_MS)
    assert shown == [] and alice.position is None


def test_a_study_without_a_queue_does_not_poll(qtbot, tmp_path, open_window) -> None:  # noqa: ANN001
    from ui.test_study_rating import make_study

    study = make_study(tmp_path / "s")
    alice = open_window(study, "alice")
    for _ in range(len(study.jobs)):
        press(qtbot, alice, Qt.Key.Key_5)
    assert alice.pages.currentWidget() is alice.thanks_page
    assert not alice.poll_timer.isActive()
    assert "by themselves" not in alice.thanks_label.text()
