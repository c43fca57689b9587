"""The run behind Inspect ▸ Evaluate the model on this project's masks…: the SAM paper's
point-prompt evaluation (§D.1, `samstudio.core.point_eval`) of the loaded model on the
project's accepted masks, driven step by step on the inference worker's thread.

`EvaluationRun` runs `point_eval.iter_evaluate` on the worker's thread (the one thread
that owns the model: no second copy of it), one worker task per click (one decoder call
and its error region) or per image's encoder pass, so the annotator's own encodes and
decodes slip in between: a click of the annotator waits for one of the evaluation's
clicks at most, not for a whole mask's. Listing the masks, reading the images (as the
annotator reads them) and decoding the masks happen in a plain background thread
(`evaluate_reading.GroundTruthReader`), one image ahead, so that the model thread spends
its time on the model only. Embeddings come from the annotator's
caches when they hold the image (`InferenceWorker.task_embedding`, the same key as the
annotator's), and the ones computed here go to the disk cache for the annotator; they
are used as the disk cache stores them, so the figures are the same whichever way an
embedding came. Progress, the result and the end come back as Qt signals (queued to
the main thread); `cancel()` is polled before every encoder pass and every click.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from samstudio.core.point_eval import DEFAULT_POINTS, EvalProgress, EvalReport, iter_evaluate
from samstudio.inference.types import ImageEmbedding, Segmenter
from samstudio.ui.evaluate_reading import (
    SAMPLE_SEED,
    GroundTruth,
    GroundTruthReader,
    PreparedImage,
    ReadFailure,
)
from samstudio.ui.image_io import ImageReadError
from samstudio.ui.inference_worker import InferenceWorker

CLICK_SEED = 0  # of the random first clicks, as `samstudio evaluate --seed`
DEFAULT_MAX_MASKS = 200

NO_MASKS = (
    "This project has no accepted masks yet: they are the ground truth of the evaluation. "
    "Accept some masks (or auto-segment proposals) first."
)
MODEL_CHANGED = "Another model was chosen during the evaluation: start it again."


@dataclass(frozen=True)
class EvaluationSettings:
    """What the dialog asks: numbers of points, first click ("center" or "random")."""

    points: tuple[int, ...] = DEFAULT_POINTS
    first: str = "center"
    max_masks: int = DEFAULT_MAX_MASKS


@dataclass(frozen=True)
class EvaluationResult:
    """A finished evaluation: the core's report, the model and what was evaluated."""

    report: EvalReport
    model_id: str
    backend: str
    project: str
    truth: GroundTruth
    settings: EvaluationSettings
    cached_images: int = 0  # images whose embedding came from a cache, not the encoder

    def notes(self) -> list[str]:
        """What the figures are of, and where the embeddings came from."""
        return [
            *self.truth.notes(),
            f"Image embeddings: {self.cached_images} of {self.report.n_images} from the cache.",
        ]

    def table(self) -> str:
        head = f"model: {self.model_id} ({self.backend})\nproject: {self.project}\n\n"
        return head + self.report.table()

    def to_json(self) -> dict[str, Any]:
        data = self.report.to_json()
        data["model"] = self.model_id
        data["backend"] = self.backend
        data["seed"] = CLICK_SEED
        data["dataset"] = {
            "project": self.project,
            "ground_truth": "accepted masks (proposals left out)",
            "accepted_masks": self.truth.accepted,
            "max_masks": self.settings.max_masks,
            "sample_seed": SAMPLE_SEED,
            "proposals_left_out": self.truth.proposals,
            "unreadable_images_left_out": self.truth.unreadable,
            "masks_of_an_earlier_picture_left_out": self.truth.earlier,
        }
        return data


def _describe_error(exc: BaseException, path: Path | None) -> str:
    """A message naming the image (once) and, for unexpected errors, the exception type."""
    text = str(exc).strip()
    if not isinstance(exc, (ImageReadError, ValueError, OSError)) or not text:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if path is not None and str(path) not in text and path.name not in text:
        text = f"{path}: {text}"
    return text


class EvaluationRun(QObject):
    """The §D.1 evaluation of the worker's model on `project`'s accepted masks.

    Signals are emitted from the worker thread and delivered on the main thread.
    progress: (images done, images, masks done, masks). succeeded: EvaluationResult.
    failed: a message (naming the image when one is at fault). finished: always last,
    True when the run was cancelled (or the worker stopped) before the end.

    The reader thread queues the first step once the masks are listed; each step (one
    click, or one image's encoder pass) queues the next, except that a step needing an
    image that is not read yet leaves it to the reader to queue the next step when the
    image is ready.
    """

    progress = Signal(int, int, int, int)
    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal(bool)

    def __init__(
        self,
        worker: InferenceWorker,
        project: Any,
        settings: EvaluationSettings,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.worker = worker
        self.project = project
        self.settings = settings
        self.project_name = Path(project.root).name
        self._cancel = threading.Event()
        self._generation = worker.model_generation
        self.reader = GroundTruthReader(
            project, settings.max_masks, self.cancelled, lambda: worker.submit_task(self._step)
        )
        # worker thread only:
        self._truth: GroundTruth | None = None
        self._steps: Iterator[EvalProgress] | None = None
        self._needs_image = True  # the next step starts an image (or ends the run)
        self._image: PreparedImage | None = None
        self._image_path: Path | None = None
        self._cached_images = 0
        self._ended = False

    def start(self) -> None:
        """Start reading the ground truth; the steps follow on the worker's thread."""
        self.reader.start()

    def cancel(self) -> None:
        """Stop before the next encoder pass or click; no result is reported."""
        self._cancel.set()
        self.reader.stop()

    def cancelled(self) -> bool:
        return self._cancel.is_set() or self.worker.stopping

    def _end(self, cancelled: bool, message: str | None = None) -> None:
        """Worker thread: the last signals of the run, once."""
        self._ended = True
        self.reader.stop()
        self._steps = self._image = None  # lets the images and masks go
        if message is not None:
            self.failed.emit(message)
        self.finished.emit(cancelled)

    def _step(self, segmenter: Segmenter) -> None:
        """Worker thread: one click or one encoder pass (the first step also takes the
        listing)."""
        if self._ended:
            return
        try:
            if self.cancelled():
                self._end(True)
                return
            if self.worker.model_generation != self._generation:
                self._end(False, MODEL_CHANGED)
                return
            if self._steps is None:
                if not self.reader.ready():
                    return  # the reader queues this step again
                listing = self.reader.take()
                if isinstance(listing, ReadFailure):
                    self._image_path = listing.path
                    raise listing.error
                if not isinstance(listing, GroundTruth):  # stopped while listing
                    self._end(True)
                    return
                if listing.n_masks == 0:
                    self._end(False, f"{NO_MASKS} {' '.join(listing.notes())}".strip())
                    return
                self._truth = listing
                self._steps = iter_evaluate(
                    segmenter,
                    self._samples(),
                    self.settings.points,
                    self.settings.first,
                    seed=CLICK_SEED,
                    cancel=self.cancelled,
                    encode=lambda image: self._embedding(segmenter, image),
                    each_click=True,
                )
            if self._needs_image and not self.reader.ready():
                return  # the reader queues this step again
            step = next(self._steps, None)
        except Exception as exc:  # a bad image or a model error: say which image
            self._end(False, _describe_error(exc, self._image_path))
            return
        if step is None:  # the generator saw the cancel
            self._end(True)
            return
        self._needs_image = step.image_done
        truth = self._truth
        assert truth is not None
        if step.mask_done or step.report is not None:
            self.progress.emit(step.images, len(truth.images), step.masks, truth.n_masks)
        if step.report is None:
            self.worker.submit_task(self._step)
            return
        info = segmenter.info
        self.succeeded.emit(
            EvaluationResult(
                step.report,
                info.model_id,
                info.backend,
                self.project_name,
                truth,
                self.settings,
                self._cached_images,
            )
        )
        self._end(False)

    def _samples(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Worker thread: (image, masks) of each image, as the reader has them ready."""
        while True:
            item = self.reader.take()
            if isinstance(item, ReadFailure):
                self._image_path = item.path
                raise item.error
            if not isinstance(item, PreparedImage):
                return
            self._image, self._image_path = item, item.path
            yield item.image, item.masks

    def _embedding(self, segmenter: Segmenter, image: np.ndarray) -> ImageEmbedding:
        """Worker thread: the image's embedding through the annotator's caches."""
        item = self._image
        key = item.key if item is not None and item.image is image else None
        embedding, cached = self.worker.task_embedding(segmenter, image, key)
        self._cached_images += int(cached)
        return embedding
