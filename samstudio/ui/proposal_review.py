"""Reviewing auto-segment proposals from the keyboard: look, key, look, key.

A review cursor runs over the current image's proposals. The proposal under the cursor
is the selected instance (so Ctrl+click or a click in the Instances panel moves the
cursor too): it is drawn selected, framed in a solid box, and brought into view when
the canvas is zoomed in on another part of the image.

- `J` / `K`: next / previous proposal (wrapping round). On an image without proposals
  they open the next (previous) image that has some.
- `Ctrl+Return` / `Ctrl+Backspace` (or `Delete`): accept / reject the proposal under
  the cursor and move on to the next one; after the last one the status bar says the image is
  reviewed and names the next image with proposals.
- Auto-segment ▸ Accept proposals above…: every proposal of the image whose predicted
  IoU and stability reach two thresholds, in one undo step.

Order: predicted IoU, highest first (then stability, then reading order: top to
bottom, left to right). The confident masks, quick to confirm, come first; the
doubtful ones, which need a closer look and are rejected more often, come last, together;
and after "Accept proposals above…" the cursor starts at the best one left, just below
the threshold.

Each accept or reject is one undo step of the image, as `AutoSegmenter` records them;
Undo puts the proposal it brings back under the cursor, Redo moves on as the key did.
The keys do nothing while a text field has the keyboard focus.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
)

from samstudio.core.store import ProjectError
from samstudio.ui.autosegment import ACCEPTED, AutoSegmenter, record_steps
from samstudio.ui.proposal_accept_dialog import AcceptAboveDialog, passes, score

NEXT_KEY, PREVIOUS_KEY = "J", "K"
MESSAGE_MS = 15000


def review_order(records: Sequence[Any]) -> list[Any]:
    """Proposals in review order: predicted IoU, then stability, highest first; ties
    in reading order (box top, then left; XYWH image pixels), then by id."""

    def key(rec: Any) -> tuple[float, float, int, int, int]:
        x, y = rec.bbox[0], rec.bbox[1]
        return (-score(rec.predicted_iou), -score(rec.stability_score), y, x, rec.id)

    return sorted(records, key=key)


def describe(rec: Any, index: int, count: int) -> str:
    """The status-bar line of the proposal at `index` (0-based) of `count`."""
    return (
        f"proposal {index + 1} of {count} (predicted IoU {_text(rec.predicted_iou)}, "
        f"stability {_text(rec.stability_score)})"
    )


def _text(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _count(n: int) -> str:
    return f"{n} proposal{'s' if n != 1 else ''}"


def typing_in_text_field() -> bool:
    """True while the keyboard focus is in a widget that takes typed text."""
    widget = QApplication.focusWidget()
    if isinstance(widget, QComboBox):
        return widget.isEditable()
    return isinstance(widget, (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit))


class ProposalReview(QObject):
    """The review cursor of the main window (see module docstring).

    `window` is the MainWindow (its annotator, canvas, status bar, `open_image`).
    """

    def __init__(self, window: Any, auto: AutoSegmenter) -> None:
        super().__init__(window)
        self.window = window
        self.auto = auto
        self.annotator = window.annotator
        self.min_iou, self.min_stability = 0.90, 0.95  # the dialog's last values
        self.indicator = QLabel()
        self.indicator.setVisible(False)
        window.statusBar().addPermanentWidget(self.indicator)
        # many signals in one turn of the event loop, one update after them
        self._update_timer = QTimer(self)
        self._update_timer.setSingleShot(True)
        self._update_timer.setInterval(0)
        self._update_timer.timeout.connect(self.update_indicator)
        self.annotator.instances_changed.connect(self._update_timer.start)
        self.annotator.undo_changed.connect(self._update_timer.start)

    def step_actions(self, menu: Any) -> tuple[QAction, QAction]:
        """Add Next / Previous proposal to `menu`, with their keys."""
        act = self.window._action
        return (
            act("Next proposal", lambda: self.step(1), NEXT_KEY, menu),
            act("Previous proposal", lambda: self.step(-1), PREVIOUS_KEY, menu),
        )

    # --------------------------------------------------------------------------- cursor
    def order(self, image_id: int | None = None) -> list[Any]:
        """The proposals of `image_id` (default: the current image) in review order."""
        return review_order(self.auto.proposals(image_id))

    def current(self) -> Any | None:
        """The proposal under the cursor (the selected instance, if it is a proposal)."""
        selected = self.annotator.selected
        return next((r for r in self.auto.proposals() if r.id == selected), None)

    def step(self, delta: int) -> None:
        """J (delta 1) / K (-1): the next / previous proposal, wrapping round; on an
        image without proposals, the next / previous image that has some."""
        if typing_in_text_field():
            return
        a = self.annotator
        if a.project is None or a.image_id is None:
            self._say("Open an image first.")
            return
        order = self.order()
        ids = [r.id for r in order]
        if not ids:
            self._other_image(delta)
            return
        if a.selected in ids:
            index = (ids.index(a.selected) + delta) % len(ids)
        else:
            index = 0 if delta > 0 else len(ids) - 1
        self.go_to(ids[index], order)

    def go_to(self, annotation_id: int, order: list[Any] | None = None) -> None:
        """Put the cursor on proposal `annotation_id` of the current image: select it,
        frame it and bring it into view. `order`: `self.order()` if the caller has it."""
        order = self.order() if order is None else order
        self.annotator.select_instance(annotation_id)
        rec = next((r for r in order if r.id == annotation_id), None)
        if rec is not None:
            self.window.canvas.bring_into_view(tuple(rec.bbox))
        self.update_indicator(order)

    def update_indicator(self, order: list[Any] | None = None) -> None:
        """'proposal 3 of 42 (predicted IoU 0.91, stability 0.97)' and the focus box.
        `order`: `self.order()` if the caller has it."""
        self._update_timer.stop()
        canvas = self.window.canvas
        if order is None:
            try:  # the window's project is None once closed (the annotator's is not)
                order = self.order() if self.window.project is not None else []
            except ProjectError:  # an unreadable store: no line rather than an error here
                order = []
        ids = [r.id for r in order]
        selected = self.annotator.selected
        if selected in ids:
            index = ids.index(selected)
            rec = order[index]
            text = describe(rec, index, len(ids))
            canvas.set_focus_box(tuple(rec.bbox))
        else:
            text = f"{_count(len(ids))} to review ({NEXT_KEY}: next)" if ids else ""
            canvas.set_focus_box(None)
        self.indicator.setText(text)
        self.indicator.setVisible(bool(text))

    # ---------------------------------------------------------------------------- review
    def accept_current(self) -> bool:
        """Ctrl+Return: accept the proposal under the cursor, go on to the next."""
        return self._decide(self.auto.accept_selected)

    def reject_current(self) -> bool:
        """Ctrl+Backspace: reject the proposal under the cursor, go on to the next."""
        return self._decide(self.auto.reject_selected)

    def accept_all(self) -> int:
        """Accept all of the image's proposals; the image is then reviewed."""
        return self._finish(self.auto.accept_all())

    def reject_all(self) -> int:
        """Reject all of the image's proposals; the image is then reviewed."""
        return self._finish(self.auto.reject_all())

    def _decide(self, action: Callable[[], bool]) -> bool:
        if typing_in_text_field():
            return False
        ids = [r.id for r in self.order()]
        selected = self.annotator.selected
        if selected not in ids:
            self._say(
                f"No proposal selected: {NEXT_KEY} goes to the next one, or Ctrl+click one."
                if ids
                else "This image has no proposals to review."
            )
            return False
        if not action():
            return False
        self._go_on(ids, ids.index(selected))
        return True

    def follow(self, move: Callable[[], Any]) -> None:
        """Run `move` (Undo or Redo) and keep the cursor with the proposals it touched.

        A proposal that comes back (an accept or reject undone; after undoing "Accept
        all", the best of them) is put under the cursor, to be decided again; when the
        proposal under the cursor goes (an accept or reject redone), the cursor goes on
        to the next one, as after the key itself. Any other step leaves it alone."""
        a = self.annotator
        if a.project is None or a.image_id is None:
            move()
            return
        image_id = a.image_id
        before = [r.id for r in self.order()]
        selected = a.selected
        move()
        if a.image_id != image_id:
            return
        after = self.order()
        back = [r for r in after if r.id not in set(before)]
        if back:
            self.go_to(back[0].id, after)
        elif selected in before and selected not in {r.id for r in after}:
            self._go_on(before, before.index(selected))

    def delete_current(self) -> bool:
        """Delete with a proposal under the cursor: reject it and go on to the next."""
        return self.current() is not None and self.reject_current()

    def _go_on(self, ids: Sequence[int], index: int) -> None:
        """After proposal `ids[index]` was decided: the next one still open in the old
        order `ids` (after it, then from the top), or the "reviewed" message."""
        order = self.order()
        left = {r.id for r in order}
        following = [i for i in list(ids[index + 1 :]) + list(ids[:index]) if i in left]
        if following:
            self.go_to(following[0], order)
        elif not left:
            self._finish(1)
        else:  # e.g. added since the cursor last moved: the best of them
            self.go_to(order[0].id, order)

    def _finish(self, decided: int) -> int:
        """After the last proposal of the image: say so and where more are waiting."""
        if decided and not self.auto.proposals():
            if self.annotator.selected is not None:
                self.annotator.select_instance(None)
            self._say(self.reviewed_message())
        self.update_indicator()
        return decided

    def reviewed_message(self) -> str:
        """'All proposals on x.png reviewed.' and the next image that has some."""
        a = self.annotator
        name = a.project.image_path(a.image_id).name
        nxt = self._image_with_proposals(1)
        if nxt is None:
            return f"All proposals on {name} reviewed; no other image has proposals."
        image_id, count = nxt
        other = a.project.image_path(image_id).name
        return (
            f"All proposals on {name} reviewed. {NEXT_KEY}: next image with proposals "
            f"({other}, {count}) · N: next image"
        )

    def _other_image(self, delta: int) -> None:
        found = self._image_with_proposals(delta)
        if found is None:
            self._say("No proposals to review, on this image or any other.")
            return
        image_id, count = found
        self.window.open_image(image_id)
        order = self.order(image_id)
        self.go_to(order[0 if delta > 0 else -1].id, order)
        name = self.annotator.project.image_path(image_id).name
        self._say(f"{name}: {_count(count)} to review")

    def _image_with_proposals(self, delta: int) -> tuple[int, int] | None:
        """(image id, number of proposals) of the first image after (delta 1) or before
        (-1) the current one, in the project's order and wrapping round, that has
        proposals; None when no other image has any."""
        a = self.annotator
        project = a.project
        if project is None:
            return None
        if not project.counts()["sources"].get("proposal"):
            return None  # one query instead of one per image
        ids = [r.id for r in project.images() if not getattr(r, "error", None)]
        if a.image_id in ids:
            start = ids.index(a.image_id)
            ids = ids[start + 1 :] + ids[:start]
        for image_id in ids if delta > 0 else reversed(ids):
            count = len(self.auto.proposals(image_id))
            if count:
                return image_id, count
        return None

    # ------------------------------------------------------------------------ threshold
    def ask_accept_above(self) -> int:
        """Auto-segment ▸ Accept proposals above…: the dialog, then `accept_above`."""
        records = self.auto.proposals()
        if not records:
            self._say("This image has no proposals to review.")
            return 0
        dialog = AcceptAboveDialog(records, self.min_iou, self.min_stability, self.window)
        try:
            if not dialog.exec():
                return 0
            self.min_iou, self.min_stability = dialog.thresholds()
        finally:
            dialog.deleteLater()
        return self.accept_above(self.min_iou, self.min_stability)

    def accept_above(self, min_iou: float, min_stability: float) -> int:
        """Accept every proposal of the current image whose predicted IoU and stability
        reach both thresholds: ONE undo step. The cursor goes to the best one left."""
        a = self.annotator
        project = a.project
        recs = [r for r in self.auto.proposals() if passes(r, min_iou, min_stability)]
        if project is None or a.image_id is None or not recs:
            self._say(
                f"No proposal reaches predicted IoU {min_iou:.2f} and stability "
                f"{min_stability:.2f}."
            )
            return 0
        text = (
            f"Accept {len(recs)} proposals (IoU ≥ {min_iou:.2f}, stability ≥ {min_stability:.2f})"
        )
        try:
            record_steps(
                a.history,
                a.image_id,
                text,
                [partial(project.set_source, r.id, ACCEPTED) for r in recs],
            )
        except Exception as exc:  # nothing was saved: the store rolled it back
            a.error.emit("Could not save the change", f"{text}: {exc}")
            a.refresh_instances()
            return 0
        a.refresh_instances()
        left = self.order()
        if left:
            self.go_to(left[0].id, left)
            self._say(f"{text}; {len(left)} left to review")
        else:
            self._finish(len(recs))
        return len(recs)

    def _say(self, message: str) -> None:
        self.window.statusBar().showMessage(message, MESSAGE_MS)
