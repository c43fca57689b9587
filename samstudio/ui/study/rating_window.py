"""The participant's window of a rating study (paper §E, §G).

One job at a time: its five views on the right (`ViewsPanel`), the buttons 1-10 on the
left (`RatingPanel`). A rating is saved at once (`RatingSheet.rate`) and the next
unrated job follows, in the participant's own order; Back revisits the previous job
to change its rating. In a queue study (`Study.ratings_per_job` >= 1) the order is
refreshed after every rating, so jobs that other participants have rated enough leave
it; Back then goes through the participant's own rated jobs only. While a queue study's
thank-you page shows ("no masks left to rate right now"), the window polls the ratings
folder every few seconds (`RatingSheet.poll`: a listing and a stat per file; files are
read only when one changed) and shows a job that became available again, e.g. when the
person running the study discards someone's ratings. Polling stops while a job is shown
(a rating in progress is never interrupted) and when the window closes; it never raises
or activates the window (it only asks the desktop to flag it). Nothing shown names the
condition that made a mask (blinding): not its name, kind or id, and not the study title
when that names one.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from samstudio.core.study.model import MAX_RATING, MIN_RATING, Study, StudyError
from samstudio.core.study.sheets import RatingSheet
from samstudio.ui.study.job_pictures import JobPictures
from samstudio.ui.study.rating_panel import RatingPanel, rating_key
from samstudio.ui.study.views_panel import ViewsPanel

NEUTRAL_TITLE = "Mask quality study"
POLL_MS = 3000  # how often an idle queue window looks for jobs that became available


def shown_title(study: Study) -> str:
    """The study's title as participants see it: a neutral one when the title names a
    condition (a title like 'SAM vs. RITM' would tell which masks are which)."""
    title = study.title.strip()
    lowered = title.lower()
    for condition in study.conditions:
        if any(len(s) >= 2 and s.lower() in lowered for s in (condition.name, condition.id)):
            return NEUTRAL_TITLE
    return title or NEUTRAL_TITLE


class RatingWindow(QMainWindow):
    """Rate every job of `study` as `participant` (resuming their sheet if it exists).

    `poll_ms`: how often the thank-you page of a queue study looks for jobs that became
    available. Raises StudyError when the participant's ratings file is unreadable."""

    job_shown = Signal(str)  # job id
    finished = Signal()  # every job rated (in a queue study: none left to rate)

    def __init__(
        self,
        study: Study,
        participant: str,
        parent: QWidget | None = None,
        poll_ms: int = POLL_MS,
    ) -> None:
        super().__init__(parent)
        self.study = study
        self.sheet = RatingSheet(study, participant)
        self.pictures = JobPictures(study)
        self.position: int | None = None  # index in sheet.order; None on the thank-you page
        self._shown_at = time.monotonic()
        self.setWindowTitle(f"Rate masks: {shown_title(study)} ({self.sheet.participant})")
        self.poll_timer = QTimer(self)  # runs only while the thank-you page of a queue shows
        self.poll_timer.setInterval(poll_ms)
        self.poll_timer.timeout.connect(self.poll_queue)

        self.panel = RatingPanel(shown_title(study), study.guidelines, self)
        self.panel.setFixedWidth(300)
        self.panel.rated.connect(self.rate)
        self.panel.back_requested.connect(self.go_back)
        self.panel.skip_requested.connect(self.skip)
        self.views = ViewsPanel(self)
        self.views.full_size_changed.connect(lambda full: self.panel.setVisible(not full))

        rating_page = QWidget(self)
        row = QHBoxLayout(rating_page)
        row.addWidget(self.panel)
        row.addWidget(self.views, 1)
        self.thanks_page = self._build_thanks_page()
        self.pages = QStackedWidget(self)
        self.pages.addWidget(rating_page)
        self.pages.addWidget(self.thanks_page)
        self.setCentralWidget(self.pages)
        self._build_shortcuts()
        self.resize(1280, 820)
        self.show_position(self._first_unrated())

    # ------------------------------------------------------------------------- building
    def _build_thanks_page(self) -> QWidget:
        page = QWidget(self)
        self.thanks_label = QLabel(page)
        self.thanks_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thanks_label.setWordWrap(True)
        self.thanks_label.setStyleSheet("font-size: 18pt")
        back = QPushButton("Back (change the last rating)", page)
        back.clicked.connect(self.go_back)
        close = QPushButton("Close", page)
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(back)
        buttons.addWidget(close)
        buttons.addStretch(1)
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        layout.addWidget(self.thanks_label)
        layout.addLayout(buttons)
        layout.addStretch(1)
        return page

    def _build_shortcuts(self) -> None:
        def add(text: str, keys: list[str], slot: object) -> QAction:
            action = QAction(text, self)
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
            return action

        for value in range(MIN_RATING, MAX_RATING + 1):
            add(f"Rate {value}", [rating_key(value)], lambda _c=False, v=value: self.rate(v))
        add("Back", ["Backspace"], self.go_back)
        add("Next view", ["Right"], lambda: self.views.cycle(1))
        add("Previous view", ["Left"], lambda: self.views.cycle(-1))
        add("Leave full size", ["Esc"], lambda: self.views.set_full_size(False))

    # -------------------------------------------------------------------------- showing
    def _first_unrated(self) -> int | None:
        return self._next_unrated(None)

    def _next_unrated(self, after: str | None) -> int | None:
        """The position of the first unrated job after job `after` in the participant's
        order, wrapping around (so a job that cannot be shown does not hold up the ones
        after it); None when none is left. Looked up by id: in a queue study the
        positions shift when the order is refreshed."""
        job_id = self.sheet.next_unrated(after)
        return None if job_id is None else self.sheet.order.index(job_id)

    def _previous_position(self) -> int | None:
        """Where Back goes: the job before the one shown (from the thank-you page, the
        last one); in a queue study only jobs this participant has rated."""
        p = self.sheet.total if self.position is None else self.position
        if self.sheet.queue:
            p = min(p, self.sheet.done)  # the rated jobs come first
        return p - 1 if p > 0 else None

    def current_job(self) -> str | None:
        """The id of the job shown, or None on the thank-you page."""
        return None if self.position is None else self.sheet.order[self.position]

    def show_position(self, position: int | None) -> None:
        """Show job `position` of the participant's order, or the thank-you page."""
        self.position = position
        if position is None:
            self._show_thanks()
            return
        self.poll_timer.stop()  # a rating is in progress: nothing may replace this job
        job = self.study.job(self.sheet.order[position])
        item = self.study.item(job.item)
        self.pages.setCurrentIndex(0)
        self.panel.show_job(
            position, self.sheet.total, self.sheet.done, "box" if item.box is not None else "point"
        )
        self.panel.show_rating(self.sheet.rating_of(job.id))
        self.panel.back_button.setEnabled(self._previous_position() is not None)
        try:
            self.views.set_views(self.pictures.pixmaps(job))
        except StudyError as exc:
            self.views.show_message(
                f"This mask cannot be shown:\n{exc}\n\nPlease tell the person running the study."
            )
            self.panel.set_rating_enabled(False)
            self.panel.skip_button.setVisible(True)
        else:
            self.panel.set_rating_enabled(True)
            self.panel.skip_button.setVisible(False)
        self._show_warnings()
        self._shown_at = time.monotonic()
        self.job_shown.emit(job.id)

    def _show_warnings(self) -> None:
        """Other participants' ratings files left out of the queue, in the status bar."""
        if self.sheet.warnings:
            self.statusBar().showMessage(
                "Some ratings of others could not be read (please tell the person running "
                "the study): " + "; ".join(self.sheet.warnings)
            )
        elif self.findChild(QStatusBar) is not None:
            self.statusBar().clearMessage()

    def _show_thanks(self) -> None:
        self.views.set_full_size(False)
        total = self.sheet.total
        more = ""
        if self.sheet.queue:
            n = self.sheet.done
            masks = f"{n} mask{'' if n == 1 else 's'}"
            done = f"no masks left to rate right now.\n\nYou rated {masks}."
            more = "\n\nShould masks need rating again, they appear here by themselves."
            self.poll_timer.start()
        else:
            done = f"all {total} masks rated."
        self.thanks_label.setText(
            f"Thank you — {done}\n\nYour ratings are saved; you may close this window.{more}"
        )
        self._show_warnings()
        self.pages.setCurrentIndex(1)
        self.finished.emit()

    def poll_queue(self) -> None:
        """On the thank-you page of a queue study: re-read the ratings folder if it
        changed and show the first job that became available. Never while a job is shown;
        never raises or activates the window (only flags it when it is not active)."""
        if self.position is not None or not self.sheet.queue:
            self.poll_timer.stop()
            return
        if not self.sheet.poll():
            return  # nothing changed: nothing read
        position = self._first_unrated()
        if position is None:
            self._show_warnings()  # another's file may have become (un)readable
            return
        self.show_position(position)
        if not self.isActiveWindow():
            QApplication.alert(self)  # e.g. a blinking taskbar entry; focus stays put

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.poll_timer.stop()
        super().closeEvent(event)

    # -------------------------------------------------------------------------- rating
    def rate(self, rating: int) -> bool:
        """Rate the job shown, save at once and show the next unrated job. Returns False
        (the job stays as it was) when there is none or the save failed."""
        job_id = self.current_job()
        if job_id is None or not self.panel.buttons[rating].isEnabled():
            return False
        record = self.sheet.ratings.get(job_id)
        earlier = float(record.get("seconds", 0.0)) if record else 0.0
        seconds = earlier + (time.monotonic() - self._shown_at)  # all visits together
        try:
            self.sheet.rate(job_id, rating, seconds)
        except OSError as exc:
            self.panel.show_rating(self.sheet.rating_of(job_id))
            QMessageBox.critical(
                self,
                "Rating not saved",
                f"Your rating could not be saved to\n{self.sheet.path}\n\n{exc}\n\n"
                "This mask stays unrated. Check that the study folder is writable "
                "(and the disk not full), then rate it again.",
            )
            return False
        self.show_position(self._next_unrated(job_id))  # the order may have changed
        return True

    def skip(self) -> None:
        """Leave a job that cannot be shown (its image is missing, its mask damaged) for
        the next unrated one; it stays unrated and comes round again at the end."""
        job_id = self.current_job()
        if job_id is None or self.panel.buttons[MIN_RATING].isEnabled():
            return  # only a job that cannot be rated may be skipped
        following = self.sheet.next_unrated(job_id)
        if following is not None and following != job_id:
            self.show_position(self.sheet.order.index(following))

    def go_back(self) -> None:
        """Show the job before the one shown (from the thank-you page: the last one)."""
        previous = self._previous_position()
        if previous is not None:
            self.show_position(previous)
