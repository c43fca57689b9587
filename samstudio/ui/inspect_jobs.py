"""The Inspect dialog's work, off the UI thread: read the project's accepted masks, run the
core's views (``samstudio.core.inspect``: ``dataset_mask_stats``, ``compare_sets``) and
draw their figures as PNG bytes.

`InspectRunner` runs one job at a time on its own worker thread (a one-worker executor,
as `pixel_loader.PixelLoader` does) and reports through Qt signals, delivered on the UI
thread. A new job makes the one before it stale: its result is dropped, and it stops at
the next image while the project is being read. Everything a job needs from the project
is read in the worker, one image at a time (each read holds the store's lock briefly).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from samstudio.core.document.image_files import fits_image

if TYPE_CHECKING:
    from samstudio.core.inspect import ImageMasks

PROPOSAL = "proposal"  # an automatic mask not accepted yet (document.records.SOURCES)
SEED = 0  # of the stratified concavity sample, as the CLI's default

Cancelled = Callable[[], bool]


class JobCancelled(Exception):
    """A newer job replaced this one (or the dialog shut down) while it ran."""


@dataclass(frozen=True)
class ProjectMasks:
    """The accepted masks of a project, one `ImageMasks` per readable image (file name: its
    path relative to the project root, as File ▸ Export writes it); `proposals` counts the
    masks left out because they are not accepted yet, `unreadable` the images left out
    because their file could not be read (no size), `earlier` the masks left out because
    they were made on an earlier picture of another size (the file was replaced)."""

    name: str
    images: list[ImageMasks]
    proposals: int = 0
    unreadable: int = 0
    earlier: int = 0

    @property
    def n_masks(self) -> int:
        return sum(len(im.masks) for im in self.images)

    def notes(self) -> list[str]:
        out = []
        if self.proposals:
            out.append(
                f"{self.proposals} proposal(s) not accepted yet are left out "
                "(Auto-segment ▸ Accept all proposals)."
            )
        if self.unreadable:
            out.append(f"{self.unreadable} image(s) that cannot be read are left out.")
        if self.earlier:
            out.append(
                f"{self.earlier} mask(s) made on an earlier picture of another size are left "
                "out (Edit ▸ Delete masks made on an earlier picture)."
            )
        return out


def project_masks(project: Any, cancelled: Cancelled = lambda: False) -> ProjectMasks:
    """Read every image's accepted annotations (any source but "proposal") from `project`
    (a `samstudio.core.document.Project`). Raises `JobCancelled` when `cancelled()`."""
    from samstudio.core.inspect import ImageMasks

    images: list[ImageMasks] = []
    proposals = unreadable = earlier = 0
    names = {c.id: c.name for c in project.categories()}
    for record in project.images():
        if cancelled():
            raise JobCancelled
        if record.width <= 0 or record.height <= 0:
            unreadable += 1
            continue
        accepted = []
        for ann in project.annotations(record.id):
            if ann.source == PROPOSAL:
                proposals += 1
            elif not fits_image(ann.rle, record.height, record.width):
                earlier += 1
            else:
                accepted.append(ann)
        images.append(
            ImageMasks(
                record.path,
                record.height,
                record.width,
                tuple(a.rle for a in accepted),
                tuple(a.id for a in accepted),
                image_id=record.id,  # as File ▸ Export writes it: results lists pair by it
                categories=tuple(names.get(a.category_id) for a in accepted),
                crowd=tuple(bool(a.iscrowd) for a in accepted),
            )
        )
    name = f"project {Path(project.root).name}"
    return ProjectMasks(name, images, proposals, unreadable, earlier)


@dataclass(frozen=True)
class FigurePng:
    """One figure of a result: its tab title, its file name in a saved report, PNG bytes."""

    title: str
    file_name: str
    png: bytes


@dataclass(frozen=True)
class InspectResult:
    """What the dialog shows and saves. `empty`: the project has no accepted mask (then
    there are no figures); `report` is the JSON document saved as `report_name`."""

    heading: str
    table: str
    notes: tuple[str, ...]
    figures: tuple[FigurePng, ...]
    report_name: str
    report: dict[str, Any]
    empty: bool = False


NO_MASKS = (
    "No accepted masks yet in this project: accept some masks (or auto-segment proposals) "
    "first, then look at their statistics."
)


def render_png(draw: Callable[[Path], Any]) -> bytes:
    """The bytes of the PNG that `draw(path)` (a `core.inspect.plots` function bound to
    its data) writes, through a temporary folder that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="samstudio-inspect-") as folder:
        path = Path(folder) / "figure.png"
        draw(path)
        return path.read_bytes()


def mask_stats_job(project: Any, cancelled: Cancelled) -> InspectResult:
    """Mask statistics of the project's accepted masks (paper §5, Fig. 5 and 6)."""
    from samstudio.core.inspect import dataset_mask_stats
    from samstudio.core.inspect.plots import plot_centres, plot_mask_stats

    masks = project_masks(project, cancelled)
    heading = f"Mask statistics of {masks.name}"
    notes = masks.notes()
    if masks.n_masks == 0:
        return InspectResult(heading, "", (NO_MASKS, *notes), (), "", {}, empty=True)
    stats = dataset_mask_stats(masks.images, name=masks.name)
    if cancelled():
        raise JobCancelled
    named = [(stats.name, stats)]
    figures = (
        FigurePng(
            "Mask properties",
            "mask_properties.png",
            render_png(lambda p: plot_mask_stats(named, p, seed=SEED)),
        ),
        FigurePng("Object centres", "centres.png", render_png(lambda p: plot_centres(named, p))),
    )
    report = {
        "seed": SEED,
        "datasets": [stats.to_json(seed=SEED)],
        "left_out": {
            "proposals": masks.proposals,
            "unreadable_images": masks.unreadable,
            "masks_of_an_earlier_picture": masks.earlier,
        },
    }
    return InspectResult(
        heading, stats.table(seed=SEED), tuple(notes), figures, "mask_stats.json", report
    )


def source_label(source: Path) -> str:
    """How a comparison's heading names its annotation file or folder."""
    return f"the folder {source.name}" if source.is_dir() else source.name


def comparison_job(project: Any, source: Path, cancelled: Cancelled) -> InspectResult:
    """The project's accepted masks (set a) against `source` (set b, the reference): an
    annotation file, or a folder of per-image SA-1B or labelme files (as `samstudio
    inspect compare` reads it); masks paired one to one by IoU (paper §5, "Mask
    quality"). Errors name the file or folder (and, in a folder, the file at fault)."""
    from samstudio.core.inspect import compare_sets
    from samstudio.core.inspect.plots import plot_pair_ious

    masks = project_masks(project, cancelled)
    try:
        result = compare_sets(masks.images, source, names=(masks.name, str(source)))
    except (ValueError, OSError) as exc:
        message = str(exc)
        raise ValueError(message if str(source) in message else f"{source}: {message}") from None
    if cancelled():
        raise JobCancelled
    notes = masks.notes()
    if masks.n_masks == 0:
        notes.insert(
            0,
            "This project has no accepted masks yet: every mask of "
            f"{source_label(source)} is unmatched.",
        )
    figure = FigurePng(
        "IoU of pairs", "pair_ious.png", render_png(lambda p: plot_pair_ious(result, p))
    )
    return InspectResult(
        f"{masks.name} compared with {source_label(source)}",
        result.table(),
        tuple(notes),
        (figure,),
        "comparison.json",
        result.to_json(),
    )


def save_report(result: InspectResult, folder: Path) -> list[Path]:
    """Write the result's JSON and PNG figures into `folder` (created if needed), each file
    atomically. Returns the files written; raises OSError naming the path."""
    from samstudio.core.atomic import atomic_write_bytes, atomic_write_json

    folder.mkdir(parents=True, exist_ok=True)
    written = [atomic_write_json(folder / result.report_name, result.report, indent=1)]
    written += [atomic_write_bytes(folder / f.file_name, f.png) for f in result.figures]
    return [Path(p) for p in written]


Job = Callable[[Cancelled], InspectResult]


class InspectRunner(QObject):
    """Runs inspect jobs one at a time on a worker thread.

    done: (ticket, InspectResult); failed: (ticket, message naming the file or project).
    Both are emitted from the worker thread and delivered on the UI thread; a job that a
    newer one replaced reports nothing.
    """

    done = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="samstudio-inspect")
        self._ticket = 0
        self._cancel = threading.Event()

    def run(self, job: Job) -> int:
        """Start `job` (after the running one stops); returns its ticket."""
        self._cancel.set()
        self._cancel = threading.Event()
        self._ticket += 1
        self._pool.submit(self._run, self._ticket, job, self._cancel)
        return self._ticket

    def _run(self, ticket: int, job: Job, cancel: threading.Event) -> None:
        try:
            result = job(cancel.is_set)
        except JobCancelled:
            return
        except (ValueError, OSError) as exc:  # unreadable input: the core names the file
            message = str(exc)
        except Exception as exc:  # e.g. the project was closed meanwhile; never silent
            message = f"{type(exc).__name__}: {exc}"
        else:
            if not cancel.is_set():
                self.done.emit(ticket, result)
            return
        if not cancel.is_set():
            self.failed.emit(ticket, message)

    def cancel(self) -> None:
        """Stop reporting the running job (it stops at the next image it reads)."""
        self._cancel.set()

    def shutdown(self) -> None:
        """Cancel the running job and wait for the worker thread to end."""
        self._cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
