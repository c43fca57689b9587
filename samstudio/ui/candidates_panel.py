"""The three candidate masks of the current prompt, side by side with their scores.

Each card shows a preview (the object cut out of the image, tinted), the model's
predicted IoU and the stability score (paper §B) as bars with numbers, the area, and
the key that picks it (1, 2, 3; Tab cycles). The top-ranked candidate is preselected.
With several prompts SAM gives one refined mask (paper §A): one card is shown.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QEnterEvent, QFont, QMouseEvent, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from samstudio.ui.canvas import rgb_qimage
from samstudio.ui.inference_worker import MaskCandidate

ACCENT = QColor(30, 144, 255)
PREVIEW_SIZE = QSize(168, 120)


def score_color(value: float) -> QColor:
    """Green for good scores, amber for doubtful, red for poor."""
    if value >= 0.85:
        return QColor(52, 199, 89)
    if value >= 0.7:
        return QColor(255, 179, 64)
    return QColor(255, 82, 82)


class ScoreBar(QWidget):
    """A labelled horizontal bar for a score in [0, 1]."""

    def __init__(self, label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = label
        self.value: float | None = None
        self.setMinimumHeight(18)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_value(self, value: float | None) -> None:
        self.value = value
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect()).adjusted(0, 2, 0, -2)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(255, 255, 255, 28))
        p.drawRoundedRect(r, 4, 4)
        if self.value is not None:
            fill = QRectF(r)
            fill.setWidth(r.width() * max(0.0, min(1.0, self.value)))
            p.setBrush(score_color(self.value))
            p.drawRoundedRect(fill, 4, 4)
        p.setPen(QColor(255, 255, 255))
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1))
        p.setFont(font)
        text = self.label if self.value is None else f"{self.label}  {self.value:.3f}"
        p.drawText(
            r.adjusted(6, 0, -6, 0),
            Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
            text,
        )
        p.end()


class CandidateCard(QFrame):
    """One candidate: key badge, preview, scores. Click to choose; hover to look."""

    clicked = Signal(int)
    hovered = Signal(int)  # slot, or -1 when the mouse leaves

    def __init__(self, slot: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slot = slot
        self.setObjectName("candidateCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.setSpacing(10)
        left = QVBoxLayout()
        self.badge = QLabel(str(slot + 1))
        self.badge.setObjectName("keyBadge")
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.badge.setFixedSize(26, 26)
        left.addWidget(self.badge)
        left.addStretch(1)
        outer.addLayout(left)
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setObjectName("candidatePreview")
        outer.addWidget(self.preview)
        right = QVBoxLayout()
        right.setSpacing(4)
        self.title = QLabel()
        self.title.setObjectName("candidateTitle")
        right.addWidget(self.title)
        self.iou_bar = ScoreBar("Predicted IoU")
        self.stability_bar = ScoreBar("Stability")
        right.addWidget(self.iou_bar)
        right.addWidget(self.stability_bar)
        self.area = QLabel()
        self.area.setObjectName("candidateArea")
        right.addWidget(self.area)
        right.addStretch(1)
        outer.addLayout(right, 1)
        self.candidate: MaskCandidate | None = None
        self.set_selected(False)

    def show_candidate(
        self, candidate: MaskCandidate | None, best: bool, scale_word: str = ""
    ) -> None:
        self.candidate = candidate
        self.setVisible(candidate is not None)
        if candidate is None:
            return
        if candidate.preview is None:
            self.preview.clear()  # drawn a moment later, when the worker completes it
        else:
            self.preview.setPixmap(QPixmap.fromImage(rgb_qimage(candidate.preview)))
        words = [w for w in ("best" if best else "", scale_word) if w]
        self.title.setText(" · ".join(words).capitalize() or f"Candidate {self.slot + 1}")
        self.iou_bar.set_value(candidate.predicted_iou)
        self.stability_bar.set_value(candidate.stability_score)
        box = candidate.box
        extent = f" · {box[2] - box[0]}×{box[3] - box[1]} px" if box else " · empty"
        approx = "" if candidate.complete else "≈ "
        self.area.setText(
            f"Area {approx}{candidate.area:,} px{extent if candidate.complete else ''}"
        )

    def set_selected(self, selected: bool) -> None:
        self.setProperty("selected", selected)
        self.style().unpolish(self)
        self.style().polish(self)
        self.badge.style().unpolish(self.badge)
        self.badge.style().polish(self.badge)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.slot)
        super().mousePressEvent(event)

    def enterEvent(self, event: QEnterEvent) -> None:  # noqa: N802
        self.hovered.emit(self.slot)
        super().enterEvent(event)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802
        self.hovered.emit(-1)
        super().leaveEvent(event)


def scale_words(candidates: list[MaskCandidate]) -> list[str]:
    """Paper's ambiguity levels by area: 'whole', 'part', 'subpart' (largest first)."""
    if len(candidates) != 3:
        return ["refined"] * len(candidates)
    order = sorted(range(3), key=lambda i: -candidates[i].area)
    words = [""] * 3
    for word, i in zip(("whole", "part", "subpart"), order):
        words[i] = word
    return words


STYLE = """
QFrame#candidateCard { background: #2b2d31; border: 2px solid #3a3d43; border-radius: 8px; }
QFrame#candidateCard[selected="true"] { background: #1f3550; border: 2px solid #1e90ff; }
QLabel#keyBadge { background: #3a3d43; color: #e8e8e8; border-radius: 13px; font-weight: bold; }
QFrame#candidateCard[selected="true"] QLabel#keyBadge { background: #1e90ff; color: white; }
QLabel#candidatePreview { background: #18191c; border-radius: 4px; }
QLabel#candidateTitle { color: #f0f0f0; font-weight: bold; }
QLabel#candidateArea, QLabel#candidatesHint, QLabel#candidatesTiming { color: #a8abb2; }
QLabel#candidatesEmpty { color: #a8abb2; padding: 16px; }
"""


class CandidatesPanel(QWidget):
    """Shows up to three candidates; `chosen` is the index the user picked (or the best).

    A new prediction may reach the panel a moment after the canvas (`follow_soon`), so
    that the canvas paints first. Until then the cards are the previous set: every
    gesture on the panel (a key, a click, hovering a card) and an accept (`catch_up`)
    first brings the panel up to date, so that it acts on the set shown, and what it
    marks as chosen is what is chosen.
    """

    chosen_changed = Signal(int)
    hovered = Signal(int)  # candidate under the mouse, -1 for none (the canvas previews it)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet(STYLE)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        self.hint = QLabel("1 2 3 or Tab: pick · Enter/Space: accept · Esc: clear")
        self.hint.setObjectName("candidatesHint")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        self.empty = QLabel(
            "Click an object to see the model's three guesses.\n"
            "Left click: include · Right click: exclude · B: box."
        )
        self.empty.setObjectName("candidatesEmpty")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.empty)
        self.cards = [CandidateCard(i) for i in range(3)]
        for card in self.cards:
            card.clicked.connect(self.choose)
            card.hovered.connect(self._hover)
            card.setVisible(False)
            layout.addWidget(card)
        self.timing = QLabel("")
        self.timing.setObjectName("candidatesTiming")
        layout.addWidget(self.timing)
        layout.addStretch(1)
        self.candidates: list[MaskCandidate] = []
        self.chosen = -1
        self._follow: Callable[[], None] | None = None
        self._follow_timer = QTimer(self)
        self._follow_timer.setSingleShot(True)
        self._follow_timer.timeout.connect(self.catch_up)

    def follow_soon(self, update: Callable[[], None], delay_ms: int) -> None:
        """Run `update` (it calls `show_candidates`) in `delay_ms`, or sooner if the user
        acts on the panel before that (`catch_up`)."""
        self._follow = update
        self._follow_timer.start(delay_ms)

    def catch_up(self) -> None:
        """Show now the set that `follow_soon` was to show (nothing when none waits)."""
        update, self._follow = self._follow, None
        self._follow_timer.stop()
        if update is not None:
            update()

    def show_candidates(
        self,
        candidates: list[MaskCandidate],
        decode_ms: float | None = None,
        chosen: int = 0,
    ) -> None:
        """Show a set with candidate `chosen` marked (the best, 0, for a new prediction)."""
        self._follow = None  # this is the newest set: an update still waiting is older
        self._follow_timer.stop()
        self.candidates = list(candidates)
        self.empty.setVisible(not self.candidates)
        words = scale_words(self.candidates)
        for i, card in enumerate(self.cards):
            has = i < len(self.candidates)
            card.show_candidate(
                self.candidates[i] if has else None, best=i == 0, scale_word=words[i] if has else ""
            )
        if decode_ms is None or not self.candidates:
            self.timing.setText("")
        else:
            single = " · several prompts: one refined mask" if len(self.candidates) == 1 else ""
            self.timing.setText(f"Decoded in {decode_ms:.0f} ms{single}")
        self.chosen = chosen if 0 <= chosen < len(self.candidates) else -1
        for i, card in enumerate(self.cards):
            card.set_selected(i == self.chosen)

    def clear(self) -> None:
        self.show_candidates([])

    def choose(self, index: int) -> None:
        """Pick candidate `index` (0-based) of the set on screen; ignored when it does not
        exist."""
        self.catch_up()
        if index >= len(self.candidates):
            return
        changed = index != self.chosen
        self.chosen = index
        for i, card in enumerate(self.cards):
            card.set_selected(i == index)
        if changed and index >= 0:
            self.chosen_changed.emit(index)

    def cycle(self) -> None:
        """Tab: the next candidate, wrapping around."""
        self.catch_up()
        if self.candidates:
            self.choose((self.chosen + 1) % len(self.candidates))

    def _hover(self, slot: int) -> None:
        self.catch_up()
        self.hovered.emit(slot)

    @property
    def chosen_candidate(self) -> MaskCandidate | None:
        if 0 <= self.chosen < len(self.candidates):
            return self.candidates[self.chosen]
        return None
