"""Auto-segment in the annotator: run automatic mask generation, review the proposals.

- `AutoSegmentRun` (in `autosegment_run`) runs `samstudio.core.amg.iter_masks` for
  one or more images on the inference worker's thread (the one thread that owns the
  model), one step (an encoder pass or a decoder batch) per worker task, so the
  annotator's clicks, boxes and the current image's encode go before its next step.
  Progress, results and the end come back as Qt signals (queued to the main thread).
- `AutoSegmenter` (main thread) starts runs and turns their masks into *proposals*:
  annotations with source "proposal", one store operation and one undo step per image.
  It also accepts and rejects proposals (all of the current image, or the selected one);
  every such action is one undo step of the image's undo stack.

Adding the proposals of an image never stalls the UI thread: the worker thread turns
the masks into the store's form (`ProposalBatch`: validated RLE, box, area, prompts);
the UI thread then writes them in one transaction without decoding any mask, and
redraws the instances and the image list in later turns of the event loop (each slice
a few tens of ms for hundreds of masks; the overlays are drawn by the loader thread).
A run counts as running until its proposals are shown.

Accepting all proposals deletes them and adds them again with source "auto" (two store
operations, whatever their number), so one undo step stays within the store's history
limit even for hundreds of masks; accepting one calls the store's `set_source`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from samstudio.core.amg import AmgParams, MaskRecord, iter_masks
from samstudio.ui.annotator import Annotator
from samstudio.ui.autosegment_run import AutoSegmentRun, ProposalBatch, proposal_prompts
from samstudio.ui.undo import StoreCommand, UndoHistory

__all__ = [  # names other modules import from here (some are defined in autosegment_run)
    "ACCEPTED",
    "PROPOSAL",
    "AutoSegmentRun",
    "AutoSegmenter",
    "ProposalBatch",
    "proposal_prompts",
    "record_steps",
]

PROPOSAL = "proposal"
ACCEPTED = "auto"


def record_steps(
    history: UndoHistory, image_id: int, text: str, actions: Sequence[Callable[[], Any]]
) -> list[Any]:
    """Run `actions` (store edits of `image_id`) as ONE store operation and ONE undo step.

    They run inside `Project.operation`: one transaction and one history row labelled
    `text`, so a crash saves all or none of them, and one undo takes all of them back,
    in this session or after the project is reopened. Works for any image of the
    project, not only the one on screen. If an action raises, nothing is saved or
    recorded and the error propagates. Actions that change nothing record no step.
    """
    project = history.project
    with project.operation(image_id, text) as op:
        results = [action() for action in actions]
    if op.atoms:
        history.record(image_id, StoreCommand(project, image_id, text, history.refresh))
    return results


class AutoSegmenter(QObject):
    """Starts auto-segment runs and reviews their proposals (see module docstring).

    running_changed: a run started or ended. progress: overall fraction and a line of
    text for the status bar. proposals_added: (image id, number of proposals).
    """

    running_changed = Signal(bool)
    progress = Signal(float, str)
    proposals_added = Signal(int, int)
    failed = Signal(str)

    def __init__(self, annotator: Annotator, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.annotator = annotator
        self.run: AutoSegmentRun | None = None
        self._run_project: Any = None  # the project the run's proposals belong to
        self.last_cancelled = False
        self.last_params: AmgParams | None = None  # of the latest run started
        # UI work left for later turns of the event loop, one slice per turn
        self._slices: deque[Callable[[], None]] = deque()
        self._slice_timer = QTimer(self)
        self._slice_timer.setSingleShot(True)
        self._slice_timer.setInterval(0)
        self._slice_timer.timeout.connect(self._next_slice)

    # ------------------------------------------------------------------------------ runs
    @property
    def running(self) -> bool:
        return self.run is not None

    def start(self, image_ids: Sequence[int], params: AmgParams) -> AutoSegmentRun | None:
        """Auto-segment `image_ids` with `params`; None (and a message) when impossible."""
        a = self.annotator
        if self.run is not None:
            self.failed.emit("Auto-segment is already running: cancel it first.")
            return None
        if a.project is None or not image_ids:
            self.failed.emit("Open a project first.")
            return None
        if getattr(a.project, "read_only", False):
            self.failed.emit("The project is open read-only.")
            return None
        if a.worker.model_info is None:
            self.failed.emit("No model loaded: choose one in the Model menu.")
            return None
        images = [(i, str(a.project.image_path(i))) for i in image_ids]
        # `iter_masks` as this module has it (a test puts a stand-in here)
        run = AutoSegmentRun(a.worker, images, params, self, generate=iter_masks)
        self.last_params = params
        run.progress.connect(partial(self._progress, run))
        run.image_done.connect(partial(self._image_done, run))
        run.image_failed.connect(partial(self._image_failed, run))
        run.finished.connect(partial(self._finished, run))
        self.run = run
        self._run_project = a.project  # its proposals go to this project only
        self.last_cancelled = False
        self.running_changed.emit(True)
        self.progress.emit(0.0, self._text(0, len(images)))
        run.start()
        return run

    def cancel(self) -> None:
        if self.run is not None:
            self.run.cancel()
            self.progress.emit(-1.0, "Auto-segment: cancelling…")

    def _text(self, index: int, count: int) -> str:
        return "Auto-segment" if count == 1 else f"Auto-segment image {index + 1}/{count}"

    def _progress(self, run: AutoSegmentRun, image_id: int, index: int, fraction: float) -> None:
        if run is self.run and not run.cancelled():
            self.progress.emit(fraction, self._text(index, len(run.images)))

    def project_closing(self) -> None:
        """The window is about to close its project or open another: a run stops, and
        nothing it still delivers reaches the next project (image ids restart there)."""
        if self.run is not None and not self.run.cancelled():
            self.cancel()

    def _image_done(self, run: AutoSegmentRun, image_id: int, batch: ProposalBatch) -> None:
        if run is not self.run or run.cancelled():
            return  # cancelled after the last batch: nothing is added
        if self.annotator.project is not self._run_project:
            return  # another project is open now: image_id means another image there
        self.add_proposals(image_id, batch)

    def _image_failed(self, run: AutoSegmentRun, image_id: int, message: str) -> None:
        if run is self.run:
            self.failed.emit(f"Auto-segment failed on one image: {message}")

    def _finished(self, run: AutoSegmentRun, cancelled: bool) -> None:
        if run is not self.run:
            return
        if self._slices:  # its last proposals are still being shown: end after them
            self._later(partial(self._finished, run, cancelled))
            return
        self.run = None
        self.last_cancelled = cancelled
        run.deleteLater()
        self.running_changed.emit(False)

    # ------------------------------------------------------------------------- proposals
    def add_proposals(self, image_id: int, masks: ProposalBatch | Sequence[MaskRecord]) -> int:
        """Add `masks` to `image_id` as proposals: one store operation, one undo step.

        Give a `ProposalBatch` built off the UI thread: MaskRecords are converted here.
        The store write is done when this returns; the instances panel, the canvas and
        `proposals_added` follow in later turns of the event loop.
        """
        a = self.annotator
        project = a.project
        if project is None:
            return 0
        batch = masks if isinstance(masks, ProposalBatch) else ProposalBatch.from_records(masks)
        if batch.masks:
            category_id = a.category_id
            text = f"Auto-segment ({len(batch)} proposals)"
            try:
                record_steps(
                    a.history,
                    image_id,
                    text,
                    [
                        lambda: project.add_annotations(
                            image_id,
                            batch.masks,
                            category_id,
                            PROPOSAL,
                            predicted_ious=batch.predicted_ious,
                            stability_scores=batch.stability_scores,
                            prompts=batch.prompts,
                            label=text,
                        )
                    ],
                )
            except Exception as exc:
                a.error.emit("Could not save the proposals", str(exc))
                return 0
            self._later(partial(self._show_added, image_id, len(batch)))
        else:
            self.proposals_added.emit(image_id, 0)
        return len(batch)

    def _show_added(self, image_id: int, count: int) -> None:
        """A later slice: redraw the instances (if on screen), then tell the window."""
        if image_id == self.annotator.image_id:
            self.annotator.refresh_instances()
        self._later(partial(self.proposals_added.emit, image_id, count))

    def _later(self, step: Callable[[], None]) -> None:
        """Run `step` in a later turn of the event loop, after the steps already queued."""
        self._slices.append(step)
        self._slice_timer.start()

    def _next_slice(self) -> None:
        if self._slices:
            self._slices.popleft()()
        if self._slices:
            self._slice_timer.start()

    def proposals(self, image_id: int | None = None) -> list[Any]:
        """The proposal annotations of `image_id` (default: the current image)."""
        a = self.annotator
        image_id = a.image_id if image_id is None else image_id
        if a.project is None or image_id is None:
            return []
        return [r for r in a.project.annotations(image_id) if r.source == PROPOSAL]

    def accept_all(self) -> int:
        """Every proposal of the current image becomes an annotation (source "auto")."""
        recs = self.proposals()
        if not recs:
            return 0
        project = self.annotator.project
        image_id = self.annotator.image_id
        by_category: dict[int | None, list[Any]] = {}
        for rec in recs:
            by_category.setdefault(rec.category_id, []).append(rec)
        masks = {rec.id: project.mask(rec.id) for rec in recs}
        actions: list[Callable[[], Any]] = [
            lambda: project.delete_annotations([r.id for r in recs])
        ]
        for category_id, group in by_category.items():
            actions.append(
                partial(
                    project.add_annotations,
                    image_id,
                    [masks[r.id] for r in group],
                    category_id,
                    ACCEPTED,
                    predicted_ious=[r.predicted_iou for r in group],
                    stability_scores=[r.stability_score for r in group],
                    prompts=[r.prompts for r in group],
                    label=f"Accept {len(group)} proposals",
                )
            )
        return len(recs) if self._do(f"Accept {len(recs)} proposals", actions) else 0

    def reject_all(self) -> int:
        """Delete every proposal of the current image."""
        recs = self.proposals()
        if not recs:
            return 0
        project = self.annotator.project
        ids = [r.id for r in recs]
        ok = self._do(f"Reject {len(ids)} proposals", [lambda: project.delete_annotations(ids)])
        return len(ids) if ok else 0

    def _selected_proposal(self) -> int | None:
        sel = self.annotator.selected
        if sel is None or sel not in {r.id for r in self.proposals()}:
            self.failed.emit("Select a proposal first (in the Instances panel or on the image).")
            return None
        return int(sel)

    def accept_selected(self) -> bool:
        """The selected proposal becomes an annotation (source "auto")."""
        ann_id = self._selected_proposal()
        if ann_id is None:
            return False
        project = self.annotator.project
        return self._do("Accept proposal", [lambda: project.set_source(ann_id, ACCEPTED)])

    def reject_selected(self) -> bool:
        """Delete the selected proposal."""
        ann_id = self._selected_proposal()
        if ann_id is None:
            return False
        project = self.annotator.project
        return self._do("Reject proposal", [lambda: project.delete_annotation(ann_id)])

    def _do(self, text: str, actions: Sequence[Callable[[], Any]]) -> bool:
        a = self.annotator
        assert a.image_id is not None
        try:
            record_steps(a.history, a.image_id, text, actions)
        except Exception as exc:
            a.error.emit("Could not save the change", f"{text}: {exc}")
            a.refresh_instances()
            return False
        a.refresh_instances()
        return True
