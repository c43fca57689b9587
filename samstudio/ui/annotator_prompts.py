"""Undo and redo of the mask being made, before it is accepted (`Annotator` mixes this in).

While prompts are on screen, Ctrl+Z takes back the last click, box or brush stroke on
the chosen candidate, and Ctrl+Shift+Z puts it back; only with no prompts on screen do
they reach the saved masks (`UndoHistory`). So a misplaced click is taken back with the
key every annotation tool uses for it, instead of silently removing the previous saved
mask (whose redo step the next accept would then drop).

Each step restores exactly what was on screen before it: the prompts, the model's
candidates and the chosen one, and the logits that steer the next click. Nothing is
decoded again unless that answer had not arrived yet (then its prompts are asked again).

A mask still being made when the user goes to another image is kept for the session
(`keep_unfinished`), with its undo steps, and put back when they come back to that image
(`restore_unfinished`): the model's answer as it was when the embedding is the same
(same model; the image file unchanged), else its prompts are asked again.

While a saved mask is refined (`annotator_refine`), the refine's start is the first
step: Ctrl+Z past the refine's clicks cancels it, and Ctrl+Shift+Z with no click to put
back does nothing (a saved change redone then could delete or change the mask being
refined).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any

import numpy as np

from samstudio.ui.overlays import preview


@dataclass(frozen=True)
class PromptState:
    """What the annotator showed before one prompt change, and that change's name.

    points: image pixels (x, y) of the displayed frame; labels: 1 include, 0 exclude;
    box: XYXY float32 or None; candidates: the model's answer as shown (edited by the
    brush, perhaps), `chosen` its index; previous_logits: (256, 256) float32 or None.
    """

    label: str
    points: tuple[tuple[float, float], ...]
    labels: tuple[int, ...]
    box: np.ndarray | None
    candidate_set: Any
    candidates: tuple[Any, ...]
    chosen: int
    previous_logits: np.ndarray | None


@dataclass(frozen=True)
class UnfinishedMask:
    """A mask being made on an image the user left: what was on screen, and its undo
    and redo steps."""

    state: PromptState
    undo: tuple[PromptState, ...]
    redo: tuple[PromptState, ...]


class PromptUndo:
    """The prompt-undo methods of `Annotator`; they use its prompt and candidate state."""

    # set by Annotator
    points: list[tuple[float, float]]
    labels: list[int]
    box: Any
    candidate_set: Any
    candidates: list[Any]
    chosen: int
    previous_logits: Any
    image_id: Any
    image_rgb: Any
    project: Any
    canvas: Any
    worker: Any
    candidates_changed: Any
    undo_changed: Any
    message: Any
    _latest_request: int
    _prompt_undo: list[PromptState]
    _prompt_redo: list[PromptState]
    _prompts_changed: Any
    _unfinished: dict[int, UnfinishedMask]
    refining: int | None
    clear_prompts: Any

    def keep_unfinished(self) -> bool:
        """Leaving the image: keep the mask being made on it, if any, for the session,
        and say so in the status bar."""
        if self.image_id is None or (not self.points and self.box is None):
            return False
        try:
            name = PurePath(self.project.image(self.image_id).path).name
        except Exception:  # a busy project file: the note names no file
            name = "this image"
        self._unfinished[self.image_id] = UnfinishedMask(
            self._prompt_state("Unfinished mask"),
            tuple(self._prompt_undo),
            tuple(self._prompt_redo),
        )
        self.message.emit(f"Unfinished mask kept for {name}; come back to finish it, Esc to drop")
        return True

    def restore_unfinished(self) -> bool:
        """The image's pixels are on screen: put back the mask that was being made on it
        when the user left it, with its undo steps. False when there was none."""
        kept = self._unfinished.pop(self.image_id, None) if self.image_id is not None else None
        if kept is None:
            return False
        self._prompt_undo[:] = kept.undo
        self._prompt_redo[:] = kept.redo
        self._restore_prompts(kept.state)
        self.undo_changed.emit()
        self.message.emit("Unfinished mask restored: Enter to accept it, Esc to drop it")
        return True

    def drop_unfinished(self, image_id: int, keep_prompts: bool = False) -> None:
        """The image's file or the model changed: the mask kept for the image goes (with
        `keep_prompts`, only the model's answers go: its prompts are asked again when it
        is restored)."""
        kept = self._unfinished.pop(image_id, None)
        if kept is not None and keep_prompts:
            self._unfinished[image_id] = UnfinishedMask(
                _unanswered(kept.state),
                tuple(_unanswered(s) for s in kept.undo),
                tuple(_unanswered(s) for s in kept.redo),
            )

    def remember_prompts(self, label: str) -> None:
        """Call before a prompt change named `label` ("Add point", "Draw box", ...)."""
        self._prompt_undo.append(self._prompt_state(label))
        self._prompt_redo.clear()
        self.undo_changed.emit()

    def forget_prompt_steps(self) -> None:
        """The mask being made is gone (accepted, cleared, another image or model)."""
        if self._prompt_undo or self._prompt_redo:
            self._prompt_undo.clear()
            self._prompt_redo.clear()
            self.undo_changed.emit()

    def drop_answers_of_prompt_steps(self) -> None:
        """Another model is loaded: the steps keep their prompts, and undoing one asks
        the new model (the old model's candidates and logits mean nothing to it)."""
        for steps in (self._prompt_undo, self._prompt_redo):
            steps[:] = [_unanswered(s) for s in steps]
        for image_id in list(self._unfinished):  # masks left unfinished on other images
            self.drop_unfinished(image_id, keep_prompts=True)

    def can_undo_prompt(self) -> bool:
        return bool(self._prompt_undo) or self.refining is not None

    def can_redo_prompt(self) -> bool:
        return bool(self._prompt_redo)

    def undo_prompt(self) -> bool:
        """Take back the last prompt change; False when there is none. With none left
        while refining a saved mask, the refine is cancelled."""
        if not self._prompt_undo:
            if self.refining is None:
                return False
            self.clear_prompts()  # the mask shown again, unchanged
            return True
        state = self._prompt_undo.pop()
        self._prompt_redo.append(self._prompt_state(state.label))
        self._restore_prompts(state)
        self.undo_changed.emit()
        return True

    def redo_prompt(self) -> bool:
        """Put back the last prompt change taken back; False when there is none (True,
        doing nothing, while refining: see module docstring)."""
        if not self._prompt_redo:
            if self.refining is None:
                return False
            self.message.emit("Refining a mask: Enter saves it, Esc cancels; then redo.")
            return True
        state = self._prompt_redo.pop()
        self._prompt_undo.append(self._prompt_state(state.label))
        self._restore_prompts(state)
        self.undo_changed.emit()
        return True

    def prompt_undo_text(self) -> str:
        if not self._prompt_undo and self.refining is not None:
            return f"Refine mask #{self.refining}"
        return self._prompt_undo[-1].label if self._prompt_undo else ""

    def prompt_redo_text(self) -> str:
        return self._prompt_redo[-1].label if self._prompt_redo else ""

    def _prompt_state(self, label: str) -> PromptState:
        # An answer to earlier prompts while the latest one's is on its way is not the
        # answer to these prompts: without it, restoring the state asks for them again.
        cs = self.candidate_set
        answered = cs is not None and cs.request == self._latest_request
        return PromptState(
            label=label,
            points=tuple(self.points),
            labels=tuple(self.labels),
            box=None if self.box is None else np.array(self.box, np.float32),
            candidate_set=cs if answered else None,
            candidates=tuple(self.candidates) if answered else (),
            chosen=self.chosen if answered else -1,
            previous_logits=self.previous_logits,
        )

    def _restore_prompts(self, state: PromptState) -> None:
        self.points = list(state.points)
        self.labels = list(state.labels)
        self.box = None if state.box is None else np.array(state.box, np.float32)
        self.canvas.set_prompts(
            np.asarray(self.points).reshape(-1, 2), np.asarray(self.labels), self.box
        )
        self.previous_logits = state.previous_logits
        cs = state.candidate_set
        if (
            cs is not None
            and cs.image_id == self.image_id
            and cs.model_generation == self.worker.model_generation
            and state.candidates
        ):
            # the answer that was on screen, as it was (completed now where the worker
            # had not finished it, so that every card has its mask and preview)
            self.candidate_set = cs
            self.candidates = [self._restored(c) for c in state.candidates]
            self.chosen = state.chosen
            self._latest_request = cs.request
            chosen = (
                self.candidates[self.chosen] if 0 <= self.chosen < len(self.candidates) else None
            )
            self.canvas.set_candidate(None if chosen is None else chosen.picture)
            self.candidates_changed.emit()
            return
        self.forget_candidates()
        if self.points or self.box is not None:
            self._prompts_changed()  # its answer had not arrived: ask for it again

    def _restored(self, cand: Any) -> Any:
        if not cand.complete and self.candidate_set.prediction is not None:
            from samstudio.ui.mask_candidates import complete_candidate

            cand = complete_candidate(cand, self.candidate_set.prediction, self.candidate_set.color)
        if cand.preview is None and self.image_rgb is not None and cand.mask is not None:
            cand = replace(
                cand,
                preview=preview(
                    self.image_rgb, cand.mask, box=cand.box, color=self.candidate_set.color
                ),
            )
        return cand


def _unanswered(state: PromptState) -> PromptState:
    """`state` with its prompts only: restoring it asks the model again (the model or the
    image it answered for has changed)."""
    return replace(state, candidate_set=None, candidates=(), chosen=-1, previous_logits=None)
