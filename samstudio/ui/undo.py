"""Undo and redo through QUndoStacks whose commands call the store's own undo.

The store keeps a persistent, per-image history of reversible operations (diffs).
A command here is thin (orange-canvas-core style): its first `redo` is the operation
itself, done *before* the push so that a failing store never leaves a phantom step;
later `redo`/`undo` calls are `project.redo(image_id)` / `project.undo(image_id)`.

One QUndoStack per image. History from earlier sessions (in the store, not in the
stack) is reached when the stack has nothing left to undo: those steps are older
than anything in the stack, so they are redone first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack


class StoreCommand(QUndoCommand):
    """One user action; undo and redo delegate to the store's history of the image."""

    def __init__(self, project: Any, image_id: int, text: str, refresh: Callable[[], None]) -> None:
        super().__init__(text)
        self.project = project
        self.image_id = image_id
        self.refresh = refresh
        self._skip_first_redo = True

    def redo(self) -> None:
        if self._skip_first_redo:  # the action already ran (see UndoHistory.do)
            self._skip_first_redo = False
            return
        self.project.redo(self.image_id)
        self.refresh()

    def undo(self) -> None:
        self.project.undo(self.image_id)
        self.refresh()


class UndoHistory(QObject):
    """Per-image undo stacks plus the store's persisted history."""

    changed = Signal()

    def __init__(self, refresh: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.refresh = refresh
        self.project: Any = None
        self.image_id: int | None = None
        self._stacks: dict[int, QUndoStack] = {}
        self._persisted_redo: dict[int, int] = {}

    def set_project(self, project: Any) -> None:
        for stack in self._stacks.values():
            stack.deleteLater()
        self._stacks.clear()
        self._persisted_redo.clear()
        self.project = project
        self.image_id = None
        self.changed.emit()

    def set_image(self, image_id: int | None) -> None:
        self.image_id = image_id
        self.changed.emit()

    def stack(self, image_id: int) -> QUndoStack:
        if image_id not in self._stacks:
            stack = QUndoStack(self)
            stack.setUndoLimit(0)  # the store bounds the history
            self._stacks[image_id] = stack
        return self._stacks[image_id]

    def do(self, text: str, action: Callable[[], Any]) -> Any:
        """Run `action` (one store operation) and record it as one undo step."""
        assert self.project is not None and self.image_id is not None
        image_id = self.image_id
        result = action()  # raises before anything is recorded if the store refuses
        self.record(image_id, StoreCommand(self.project, image_id, text, self.refresh))
        return result

    def record(self, image_id: int, command: QUndoCommand) -> None:
        """Push `command`, whose action already ran on `image_id` (any image of the
        project), as that image's newest undo step.

        A new action makes the store's redo history from earlier sessions stale, so
        redo no longer reaches it.
        """
        self._persisted_redo[image_id] = 0
        self.stack(image_id).push(command)
        self.changed.emit()

    def undo(self) -> bool:
        if self.image_id is None or self.project is None:
            return False
        stack = self.stack(self.image_id)
        if stack.canUndo():
            stack.undo()
        elif self.project.can_undo(self.image_id):
            self.project.undo(self.image_id)
            self._persisted_redo[self.image_id] = self._persisted_redo.get(self.image_id, 0) + 1
            self.refresh()
        else:
            return False
        self.changed.emit()
        return True

    def redo(self) -> bool:
        if self.image_id is None or self.project is None:
            return False
        stack = self.stack(self.image_id)
        if self._persisted_redo.get(self.image_id, 0) > 0 and self.project.can_redo(self.image_id):
            self.project.redo(self.image_id)
            self._persisted_redo[self.image_id] -= 1
            self.refresh()
        elif stack.canRedo():
            stack.redo()
        else:
            return False
        self.changed.emit()
        return True

    def can_undo(self) -> bool:
        if self.image_id is None or self.project is None:
            return False
        return self.stack(self.image_id).canUndo() or bool(self.project.can_undo(self.image_id))

    def can_redo(self) -> bool:
        if self.image_id is None or self.project is None:
            return False
        return self.stack(self.image_id).canRedo() or (
            self._persisted_redo.get(self.image_id, 0) > 0
            and bool(self.project.can_redo(self.image_id))
        )

    def undo_text(self) -> str:
        if self.image_id is None:
            return ""
        stack = self.stack(self.image_id)
        if stack.canUndo():
            return stack.undoText()
        label = self.project.undo_label(self.image_id) if self.project is not None else None
        return str(label or "")

    def redo_text(self) -> str:
        if self.image_id is None:
            return ""
        stack = self.stack(self.image_id)
        return (
            stack.redoText()
            if stack.canRedo() and not self._persisted_redo.get(self.image_id)
            else ""
        )
