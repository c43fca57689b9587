"""Mouse and key helpers that act on the canvas the way a user does."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot


def view_point(win, x: float, y: float) -> QPoint:  # noqa: ANN001
    """Viewport pixel under image pixel (x, y)."""
    return win.canvas.mapFromScene(QPointF(x, y))


def click_image(
    qtbot: QtBot,
    win,
    x: float,
    y: float,
    button=Qt.MouseButton.LeftButton,
    modifiers=Qt.KeyboardModifier.NoModifier,
) -> None:  # noqa: ANN001
    qtbot.mouseClick(win.canvas.viewport(), button, modifiers, view_point(win, x, y))


def drag_image(
    qtbot: QtBot, win, points: list[tuple[float, float]], button=Qt.MouseButton.LeftButton
) -> None:  # noqa: ANN001
    """Press at the first point, move through the others, release at the last."""
    vp = win.canvas.viewport()
    pts = [QPointF(view_point(win, x, y)) for x, y in points]

    def send(
        kind: QMouseEvent.Type, pos: QPointF, btn: Qt.MouseButton, buttons: Qt.MouseButton
    ) -> None:
        ev = QMouseEvent(
            kind, pos, vp.mapToGlobal(pos), btn, buttons, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(vp, ev)

    send(QMouseEvent.Type.MouseButtonPress, pts[0], button, button)
    for p in pts[1:]:
        send(QMouseEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button)
    send(QMouseEvent.Type.MouseButtonRelease, pts[-1], button, Qt.MouseButton.NoButton)


def key(qtbot: QtBot, win, k: Qt.Key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:  # noqa: ANN001
    """Press a key with the canvas focused (window shortcuts fire as for a user)."""
    win.canvas.setFocus()
    qtbot.keyClick(win.canvas, k, modifiers)


def export_dialog_browses(monkeypatch, configure=None) -> list:  # noqa: ANN001
    """File ▸ Export's dialog, answered as a user does: Browse… (the system's file
    dialog, which the test patches), `configure(dialog)` if given, then Export. Returns
    the list the dialogs shown are appended to."""
    from PySide6.QtWidgets import QDialog

    from samstudio.ui.export_dialog import ExportDialog

    shown: list = []

    def exec_(self) -> int:  # noqa: ANN001
        shown.append(self)
        self.browse_button.click()
        if configure is not None:
            configure(self)
        self.buttons.button(self.buttons.StandardButton.Ok).click()
        return int(QDialog.DialogCode.Accepted if self.result() else QDialog.DialogCode.Rejected)

    monkeypatch.setattr(ExportDialog, "exec", exec_)
    return shown
