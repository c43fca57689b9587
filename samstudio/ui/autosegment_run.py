"""An auto-segment run on the model thread, one step per worker task.

`AutoSegmentRun` runs `samstudio.core.amg.iter_masks` for one or more images on the
inference worker's thread (the one thread that owns the model). Each worker task does
ONE step and then queues the next one behind whatever the annotator asked for in the
meantime (the worker serves the current image's encode and decodes before tasks):

- opening an image: reading it and its whole-image embedding (from the annotator's
  caches, else one encoder pass, see `InferenceWorker.task_embedding`);
- one step of `iter_masks`: one crop's encoder pass or one decoder batch (or the last
  step: cross-crop NMS and the records);
- making the image's masks ready for the store (`ProposalBatch`) and reporting them.

So a click or a box made during the run waits for one decoder batch or one encoder
pass at most, not for a whole image's mask generation, and moving to another image
waits for one step plus that image's encode. The masks are the same, in the same
order, as those of an uninterrupted run: the steps of an image run in order on one
model, and its whole-image embedding is always taken as the disk cache stores it,
whether the annotator had it in memory, on disk or not at all. If another model is
loaded during an image, that image starts again with the new model (an image's masks
come from one model).

Progress, results and the end come back as Qt signals (queued to the main thread).
`cancel()` is polled before every step and by `iter_masks` before every encoder and
decoder call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from samstudio.core.amg import AmgParams, AmgProgress, MaskRecord, iter_masks
from samstudio.core.document import EncodedMask
from samstudio.inference.types import Segmenter
from samstudio.ui.image_io import load_rgb
from samstudio.ui.inference_worker import InferenceWorker

MaskGenerator = Callable[..., Iterator[AmgProgress]]


def proposal_prompts(record: MaskRecord) -> dict[str, Any]:
    """The prompts stored with a proposal: its grid point(s), foreground, and its crop."""
    return {
        "points": [[float(x), float(y)] for x, y in record.point_coords],
        "labels": [1] * len(record.point_coords),
        "box": None,
        "crop_box": [int(v) for v in record.crop_box],
    }


@dataclass(frozen=True)
class ProposalBatch:
    """The masks of one auto-segment result in the store's own form, with their scores
    and prompts, built in any thread (`AutoSegmentRun` builds it on the worker thread).

    The store adds `EncodedMask`s without decoding them, so the UI thread only writes
    database rows: no full-size mask is decoded or encoded there.
    """

    masks: tuple[EncodedMask, ...]
    predicted_ious: tuple[float, ...]
    stability_scores: tuple[float, ...]
    prompts: tuple[dict[str, Any], ...]

    @classmethod
    def from_records(cls, records: Sequence[MaskRecord]) -> ProposalBatch:
        return cls(
            tuple(EncodedMask.from_rle(r.segmentation) for r in records),
            tuple(float(r.predicted_iou) for r in records),
            tuple(float(r.stability_score) for r in records),
            tuple(proposal_prompts(r) for r in records),
        )

    def __len__(self) -> int:
        return len(self.masks)


class AutoSegmentRun(QObject):
    """Automatic mask generation over `images` ((image id, path) pairs), in order, one
    step per worker task (see the module docstring).

    Signals are emitted from the worker thread and delivered on the main thread.
    progress: (image id, index of the image in the run, overall fraction in [0, 1]).
    image_done: (image id, ProposalBatch of its masks, best first).
    image_failed: (image id, message naming the file); the run goes on with the next.
    finished: True when the run was cancelled (or the worker stopped) before the end.
    `generate`: the mask generator, `iter_masks` or a stand-in with its signature.
    """

    progress = Signal(int, int, float)
    image_done = Signal(int, object)
    image_failed = Signal(int, str)
    finished = Signal(bool)

    def __init__(
        self,
        worker: InferenceWorker,
        images: Sequence[tuple[int, str]],
        params: AmgParams,
        parent: QObject | None = None,
        generate: MaskGenerator = iter_masks,
    ) -> None:
        super().__init__(parent)
        self.worker = worker
        self.images = list(images)
        self.params = params
        self.generate = generate
        self._cancel = threading.Event()
        # worker thread only:
        self._index = 0  # the image being processed
        self._steps: Iterator[AmgProgress] | None = None  # its mask generation
        self._segmenter: Segmenter | None = None  # the model `_steps` runs on
        self._records: tuple[MaskRecord, ...] | None = None  # its masks, not yet reported
        self._ended = False

    def start(self) -> None:
        """Queue the first step; each step queues the next."""
        self.worker.submit_task(self._step)

    def cancel(self) -> None:
        """Stop at the next step, encoder or decoder call; nothing more is added."""
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set() or self.worker.stopping

    def _step(self, segmenter: Segmenter) -> None:
        """Worker thread: one step, then the next one is queued behind the annotator's
        requests (the worker runs the current image's encode and decodes first)."""
        if self.advance(segmenter):
            self.worker.submit_task(self._step)

    def advance(self, segmenter: Segmenter) -> bool:
        """Worker thread: do one step of the run; False once the run has ended."""
        if self._ended:
            return False
        if self.cancelled():
            return self._end(True)
        if self._index >= len(self.images):
            return self._end(False)
        image_id, path = self.images[self._index]
        try:
            if self._records is not None:  # the last step of an image: report its masks
                batch = ProposalBatch.from_records(self._records)
                self.image_done.emit(image_id, batch)
                return self._next_image()
            if self._steps is None or segmenter is not self._segmenter:
                self._steps = self._open(segmenter, path)  # (again, with a new model)
                self._segmenter = segmenter
                return True
            step = next(self._steps, None)
        except Exception as exc:  # a bad image is reported; the other images go on
            self.image_failed.emit(image_id, f"{path}: {type(exc).__name__}: {exc}")
            return self._next_image()
        if step is None or step.stage == "cancelled":
            return self._end(True)
        count = len(self.images)
        self.progress.emit(image_id, self._index, (self._index + step.fraction) / count)
        if step.stage == "done":
            self._records = step.masks
        return True

    def _open(self, segmenter: Segmenter, path: str) -> Iterator[AmgProgress]:
        """Worker thread: read the image and its whole-image embedding (at most one
        encoder pass); the generator of its masks, not started yet."""
        image = load_rgb(path)
        embedding, _ = self.worker.task_embedding(segmenter, image)
        return self.generate(
            segmenter, image, self.params, embedding=embedding, cancel=self.cancelled
        )

    def _next_image(self) -> bool:
        """Worker thread: go on with the next image; False when there is none."""
        self._steps = self._segmenter = self._records = None
        self._index += 1
        if self._index >= len(self.images):
            return self._end(False)
        return True

    def _end(self, cancelled: bool) -> bool:
        """Worker thread: the run's last signal, once. Returns False (nothing follows)."""
        self._ended = True
        self._steps = self._segmenter = self._records = None
        self.finished.emit(cancelled)
        return False
