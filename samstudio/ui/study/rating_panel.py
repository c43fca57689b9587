"""The left side of the rating window: progress, the buttons 1-10, Back, guidelines.

It only shows state and turns clicks into signals; the window does the rest."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from samstudio.core.study.model import MAX_RATING, MIN_RATING

_MEANINGS = (
    (1, 1, "the mask corresponds to no object at all"),
    (2, 4, "huge errors: large parts of other objects, or large nonsensical boundaries"),
    (5, 6, "mostly sensible, but significant semantic or boundary errors"),
    (7, 9, "only minor boundary errors"),
    (10, 10, "no visible errors"),
)


def scale_meaning(rating: int) -> str:
    """The short meaning of a rating on the paper's scale (§E), e.g. '7-9: only minor
    boundary errors'."""
    for lo, hi, text in _MEANINGS:
        if lo <= rating <= hi:
            span = str(lo) if lo == hi else f"{lo}-{hi}"
            return f"{span}: {text}"
    raise ValueError(f"a rating is from {MIN_RATING} to {MAX_RATING}, got {rating}")


def rating_key(rating: int) -> str:
    """The key that gives `rating`: '1'..'9', and '0' for 10."""
    return str(rating % 10)


class RatingPanel(QWidget):
    """Progress ("Job 12 of 400"), the rating buttons, Back and the guidelines."""

    rated = Signal(int)  # 1..10
    back_requested = Signal()
    skip_requested = Signal()  # only offered for a job that cannot be shown

    def __init__(self, title: str, guidelines: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title_label = QLabel(title, self)
        self.title_label.setWordWrap(True)
        self.title_label.setStyleSheet("font-weight: bold")
        self.progress_label = QLabel(self)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("%v of %m rated")
        self.prompt_hint = QLabel(self)
        self.prompt_hint.setWordWrap(True)
        self.question = QLabel("How good is this mask? (keys 1-9, 0 for 10)", self)
        self.question.setWordWrap(True)

        self.buttons: dict[int, QPushButton] = {}
        grid = QGridLayout()
        for value in range(MIN_RATING, MAX_RATING + 1):
            button = QPushButton(str(value), self)
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space must not rate by accident
            button.setToolTip(f"{scale_meaning(value)} (key {rating_key(value)})")
            button.setMinimumHeight(32)
            button.clicked.connect(lambda _checked=False, v=value: self.rated.emit(v))
            grid.addWidget(button, (value - 1) % 5, (value - 1) // 5)
            self.buttons[value] = button
        self.previous_label = QLabel(self)
        self.previous_label.setWordWrap(True)
        self.back_button = QPushButton("Back", self)
        self.back_button.setToolTip("Show the previous mask again to change its rating (Backspace)")
        self.back_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.back_button.clicked.connect(self.back_requested)
        self.skip_button = QPushButton("Skip this mask (it cannot be shown)", self)
        self.skip_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.skip_button.clicked.connect(self.skip_requested)
        self.skip_button.hide()

        self.guidelines_toggle = QToolButton(self)
        self.guidelines_toggle.setText("Guidelines")
        self.guidelines_toggle.setCheckable(True)
        self.guidelines_toggle.setChecked(True)
        self.guidelines_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.guidelines_toggle.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.guidelines_text = QPlainTextEdit(guidelines, self)
        self.guidelines_text.setReadOnly(True)
        self.guidelines_text.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.guidelines_toggle.toggled.connect(self.show_guidelines)
        self.show_guidelines(True)

        layout = QVBoxLayout(self)
        for widget in (self.title_label, self.progress_label, self.progress_bar):
            layout.addWidget(widget)
        layout.addSpacing(8)
        layout.addWidget(self.prompt_hint)
        layout.addWidget(self.question)
        layout.addLayout(grid)
        layout.addWidget(self.previous_label)
        layout.addWidget(self.back_button)
        layout.addWidget(self.skip_button)
        layout.addSpacing(8)
        layout.addWidget(self.guidelines_toggle)
        layout.addWidget(self.guidelines_text, 1)
        layout.addStretch(0)

    def show_guidelines(self, shown: bool) -> None:
        """Expand or collapse the guidelines."""
        self.guidelines_toggle.setChecked(shown)
        self.guidelines_toggle.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )
        self.guidelines_text.setVisible(shown)

    def show_job(self, position: int, total: int, done: int, prompt: str) -> None:
        """Job `position` (0-based) of `total`, `done` rated; prompt 'point' or 'box'."""
        self.progress_label.setText(f"Job {position + 1} of {total}")
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        if prompt == "box":
            hint = "The blue-and-white box is the input: as if you had drawn this box."
        else:
            hint = "The blue point is the input: as if you had clicked here."
        self.prompt_hint.setText(hint)

    def show_rating(self, rating: int | None) -> None:
        """Highlight the job's current rating (a revisited job), or none."""
        for value, button in self.buttons.items():
            button.setChecked(value == rating)
        self.previous_label.setText(
            "" if rating is None else f"You rated this mask {rating}; choose again to change it."
        )

    def set_rating_enabled(self, enabled: bool) -> None:
        for button in self.buttons.values():
            button.setEnabled(enabled)
