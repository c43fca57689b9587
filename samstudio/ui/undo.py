"""Undo and redo through QUndoStacks whose commands call the store's own undo.

The store keeps a persistent, per-image history of reversible operations (diffs).
A command here is thin (orange-canvas-core style): its first `redo` is the operation
itself, done *before* the push so that a failing store never leaves a phantom step;
later steps are `project.redo(image_id)` / `project.undo(image_id)`.

The store moves first, the Qt stack after: `UndoHistory.undo`/`redo` call the
command's `store_step` (which raises `ProjectError` when the store refuses: full
disk, I/O error, busy file) and only on success move the stack, telling the command
that its store work is already done. So a failing undo leaves stack and store in
agreement, and the error reaches the caller instead of escaping from a Qt virtual.

One QUndoStack per image. History from earlier sessions (in the store, not in the
stack) is reached when the stack has nothing left to undo: those steps are older
than anything in the stack, so they are redone first. While an image's stack holds
no command, every redo step the store has is such an older step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from samstudio.core.store import ProjectError


class StoreCommand(QUndoCommand):
    """One user action; undo and redo delegate to the store's history of the image."""

    def __init__(self, project: Any, image_id: int, text: str, refresh: Callable[[], None]) -> None:
        super().__init__(text)
        self.project = project
        self.image_id = image_id
        self.refresh = refresh
        self._pushed = False  # the push's redo is skipped: the action already ran
        self._store_done = False  # set by store_step: the next move skips the store

    def store_step(self, undo: bool) -> None:
        """Undo (or redo) this action in the store; raises ProjectError when refused.

        The next `undo`/`redo` call (the Qt stack moving) then skips the store.
        """
        if undo:
            self.project.undo(self.image_id)
        else:
            self.project.redo(self.image_id)
        self._store_done = True

    def redo(self) -> None:
        if self._pushed:
            self._move(undo=False)
        else:  # the push itself (see UndoHistory.do); the caller shows the result
            self._pushed = True

    def undo(self) -> None:
        self._move(undo=True)

    def _move(self, undo: bool) -> None:
        if not self._store_done:  # Qt moved the stack without UndoHistory (not expected)
            try:
                self.store_step(undo)
            except ProjectError:
                return  # must not escape a Qt virtual; UndoHistory reports errors
        self._store_done = False
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
        """Undo the current image's newest step; False when there is none.

        Raises ProjectError when the store refuses; then nothing moved.
        """
        if self.image_id is None or self.project is None:
            return False
        image_id = self.image_id
        stack = self.stack(image_id)
        if stack.canUndo():
            self._move_stack(stack, undo=True)
        elif self.project.can_undo(image_id):
            self.project.undo(image_id)
            self._persisted_redo[image_id] = self._persisted_redo.get(image_id, 0) + 1
            self.refresh()
        else:
            return False
        self.changed.emit()
        return True

    def redo(self) -> bool:
        """Redo the current image's oldest undone step; False when there is none.

        Raises ProjectError when the store refuses; then nothing moved.
        """
        if self.image_id is None or self.project is None:
            return False
        image_id = self.image_id
        stack = self.stack(image_id)
        if self._redo_in_store(image_id):
            self.project.redo(image_id)
            if self._persisted_redo.get(image_id, 0) > 0:
                self._persisted_redo[image_id] -= 1
            self.refresh()
        elif stack.canRedo():
            self._move_stack(stack, undo=False)
        else:
            return False
        self.changed.emit()
        return True

    def _move_stack(self, stack: QUndoStack, undo: bool) -> None:
        """Step the store first, then the stack (whose command then skips the store)."""
        index = stack.index() - 1 if undo else stack.index()
        command = stack.command(index)
        store_step = getattr(command, "store_step", None)
        if store_step is not None:
            store_step(undo)  # raises ProjectError before the stack moves
        if undo:
            stack.undo()
        else:
            stack.redo()

    def _redo_in_store(self, image_id: int) -> bool:
        """Whether the next redo is a step from an earlier session (in the store only).

        Such steps are older than the stack's. While the stack holds no command (the
        image was not edited in this session), all of the store's redo steps are; a
        push drops the store's redo steps, after which only the ones this session
        undid past the stack's bottom (`_persisted_redo`) are.
        """
        if self.project is None:
            return False
        stack = self.stack(image_id)
        if stack.count() > 0 and self._persisted_redo.get(image_id, 0) <= 0:
            return False
        return bool(self.project.can_redo(image_id))

    def can_undo(self) -> bool:
        if self.image_id is None or self.project is None:
            return False
        return self.stack(self.image_id).canUndo() or bool(self.project.can_undo(self.image_id))

    def can_redo(self) -> bool:
        if self.image_id is None or self.project is None:
            return False
        return self._redo_in_store(self.image_id) or self.stack(self.image_id).canRedo()

    def undo_text(self) -> str:
        if self.image_id is None:
            return ""
        stack = self.stack(self.image_id)
        if stack.canUndo():
            return stack.undoText()
        label = self.project.undo_label(self.image_id) if self.project is not None else None
        return str(label or "")

    def redo_text(self) -> str:
        if self.image_id is None or self.project is None:
            return ""
        if self._redo_in_store(self.image_id):
            return str(self.project.redo_label(self.image_id) or "")
        stack = self.stack(self.image_id)
        return stack.redoText() if stack.canRedo() else ""
