"""Building a study for Study ▸ New study…, off the UI thread.

`StudyPlan` is what the dialog collected; `build_planned_study` reads the ground truth,
opens the models (a `.pth` checkpoint imports torch: seconds) and runs the core's
`build.build_study` generator, checking for Cancel between its steps. A build that is
cancelled or fails leaves no study behind: the output folder is removed when the build
made it, emptied again when it was an empty folder (`create.remove_unfinished_study`).

`StudyBuildRunner` runs one build at a time on a thread of its own and reports through
Qt signals, delivered on the UI thread (the pattern of `inspect_jobs.InspectRunner`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal, SignalInstance

from samstudio.core.study.model import Study, load_study

Cancelled = Callable[[], bool]
Report = Callable[[str, int, int], None]  # (what is being done, done, total; 0: unknown)


class BuildCancelled(Exception):
    """The user pressed Cancel (or the app is closing) while the study was being built."""


@dataclass(frozen=True)
class CocoDataset:
    """One ground-truth dataset: its name ("" for the file's name without .json), its
    COCO instances file and the folder of its images."""

    name: str
    annotations: Path
    images: Path


@dataclass(frozen=True)
class StudyPlan:
    """What `samstudio study create` takes, as the dialog collected it.

    models: (name or None, checkpoint file / ONNX folder, or None for the shipped demo
    model). coco: the datasets; when empty, `synthetic` generated scenes are the ground
    truth. items: masks sampled per dataset. ratings_per_job: 0, every participant rates
    every job; K >= 1, a shared queue in which each job is rated K times.
    """

    folder: Path
    models: tuple[tuple[str | None, Path | None], ...]
    coco: tuple[CocoDataset, ...] = ()
    synthetic: int = 0
    title: str = ""
    items: int = 100
    prompt: str = "point"
    single_output: bool = False
    ground_truth: bool = True
    ratings_per_job: int = 0
    seed: int = 0
    min_area: int = 576
    max_side: int = 2000


STAGES = {"scanning": "Looking for masks in the images", "predicting": "Predicting masks"}


def build_planned_study(plan: StudyPlan, cancelled: Cancelled, report: Report) -> Study:
    """Build `plan`'s study and return it. Raises BuildCancelled when `cancelled()`, and
    the core's errors (StudyError / ValueError, OSError, ImageLoadError, ModelLoadError)
    naming the file at fault. Either way nothing of the study is left in its folder."""
    from samstudio.core.study import build, create
    from samstudio.core.study.sources import StudySource, synthetic_sources

    existed = create.check_empty_folder(plan.folder)  # before anything is written
    try:
        report("Reading the ground truth…", 0, 0)
        sources: Sequence[StudySource]
        if plan.coco:
            sources = create.coco_study_sources(
                [
                    (d.name or create.default_dataset_name(d.annotations), d.annotations, d.images)
                    for d in plan.coco
                ]
            )
        else:
            sources = synthetic_sources(plan.synthetic)
        _check(cancelled)
        report("Opening the models…", 0, 0)
        models = create.open_study_models(plan.models)
        _check(cancelled)
        steps = build.build_study(
            sources,
            models,
            plan.folder,
            n_items=plan.items,
            prompt=plan.prompt,
            single_output=plan.single_output,
            ground_truth=plan.ground_truth,
            min_area=plan.min_area,
            max_side=plan.max_side,
            seed=plan.seed,
            title=plan.title,
            ratings_per_job=plan.ratings_per_job,
        )
        for step in steps:
            if step.stage == "done":
                return load_study(plan.folder)  # as the rating window will read it
            _check(cancelled)
            text = STAGES.get(step.stage, step.stage)
            of = f" of {step.total}" if step.total else ""
            report(f"{text}: {step.done}{of} images", step.done, step.total)
        raise RuntimeError("the study builder stopped without a study")  # never expected
    except BaseException:
        create.remove_unfinished_study(plan.folder, existed)
        raise


def _check(cancelled: Cancelled) -> None:
    if cancelled():
        raise BuildCancelled


def describe_error(exc: BaseException) -> str:
    """The message to show: the core's errors name the file and the problem; anything
    else also says what kind of error it was."""
    from samstudio.core.images import ImageLoadError
    from samstudio.inference.errors import InferenceError

    text = str(exc).strip()
    if isinstance(exc, (ValueError, OSError, ImageLoadError, InferenceError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StudyBuildRunner(QObject):
    """Builds one study at a time on a worker thread.

    progress: (text, done, total; total 0 when not known). succeeded: the Study.
    failed: a message naming the file at fault. finished: always last, True when the
    build was cancelled. Emitted from the worker thread, delivered on the UI thread.
    """

    progress = Signal(str, int, int)
    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, plan: StudyPlan) -> bool:
        """Start building `plan`; False when a build is running already."""
        if self.running:
            return False
        self._cancel = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(plan, self._cancel), name="samstudio-study-build"
        )
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Stop at the next step (after the image or model being read); nothing is kept."""
        self._cancel.set()

    def shutdown(self, wait_s: float = 30.0) -> None:
        """Cancel the running build and wait (up to `wait_s`) for it to clean up."""
        self._cancel.set()
        if self._thread is not None:
            self._thread.join(wait_s)

    def _run(self, plan: StudyPlan, cancel: threading.Event) -> None:
        def report(text: str, done: int, total: int) -> None:
            self._emit(self.progress, text, done, total)

        try:
            study = build_planned_study(plan, cancel.is_set, report)
        except BuildCancelled:
            self._emit(self.finished, True)
            return
        except Exception as exc:  # a bad file or model: shown, naming it; never silent
            self._emit(self.failed, describe_error(exc))
            self._emit(self.finished, False)
            return
        self._emit(self.succeeded, study)
        self._emit(self.finished, False)

    def _emit(self, signal: SignalInstance, *args: object) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the dialog went away while the app was closing
            pass
