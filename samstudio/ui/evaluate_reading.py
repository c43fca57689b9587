"""The ground truth of Inspect ▸ Evaluate the model on this project's masks…, read off the
model thread (no Qt here).

- `list_ground_truth` lists the project's accepted masks' RLEs (at most N masks, drawn
  with a fixed seed when there are more, kept in project order so that each image is
  encoded once).
- `GroundTruthReader` does that listing, then reads each image (`load_rgb`, as the
  annotator reads it), decodes its masks and hashes its pixels (the embedding cache's
  key) in a plain background thread, one image ahead of the evaluation. The model
  thread only takes what is ready and never waits for the reader: when nothing is
  ready, the reader calls `on_ready` as soon as something is (the evaluation then
  queues its next step on the model thread).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samstudio.core.document.image_files import fits_image
from samstudio.core.masks import decode_rle
from samstudio.inference.cache import image_content_hash
from samstudio.ui.image_io import load_rgb

PROPOSAL = "proposal"  # an automatic mask not accepted yet (document.records.SOURCES)
SAMPLE_SEED = 0  # which masks are drawn when the project has more than "at most N"
AHEAD = 1  # items (the listing, images) read ahead of the evaluation


@dataclass(frozen=True)
class GroundTruthImage:
    """The masks of one image to evaluate: the image's file and the masks' RLEs."""

    image_id: int
    path: Path
    rles: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class GroundTruth:
    """The accepted masks to evaluate, in project order. `accepted`: accepted (non-empty)
    masks of the project; `proposals` and `unreadable`: masks and images left out;
    `earlier`: masks left out because they were made on an earlier picture of another
    size (the file was replaced)."""

    images: tuple[GroundTruthImage, ...]
    accepted: int
    proposals: int = 0
    unreadable: int = 0
    earlier: int = 0

    @property
    def n_masks(self) -> int:
        return sum(len(im.rles) for im in self.images)

    def notes(self) -> list[str]:
        out = []
        if self.n_masks < self.accepted:
            out.append(
                f"{self.n_masks} of the project's {self.accepted} accepted masks, drawn at "
                f"random (seed {SAMPLE_SEED})."
            )
        if self.proposals:
            out.append(f"{self.proposals} proposal(s) not accepted yet are left out.")
        if self.unreadable:
            out.append(f"{self.unreadable} image(s) that cannot be read are left out.")
        if self.earlier:
            out.append(
                f"{self.earlier} mask(s) made on an earlier picture of another size are left "
                "out (Edit ▸ Delete masks made on an earlier picture)."
            )
        return out


def list_ground_truth(
    project: Any, max_masks: int, cancelled: Callable[[], bool] = lambda: False
) -> GroundTruth | None:
    """The accepted, non-empty masks of `project` (a `core.document.Project`), at most
    `max_masks` of them drawn with `SAMPLE_SEED`. None when `cancelled()` while reading."""
    found: list[tuple[int, Path, dict[str, Any]]] = []
    proposals = unreadable = earlier = 0
    for record in project.images():
        if cancelled():
            return None
        if getattr(record, "error", None) or record.width <= 0 or record.height <= 0:
            unreadable += 1
            continue
        path = Path(project.root) / record.path
        for ann in project.annotations(record.id):
            if ann.source == PROPOSAL:
                proposals += 1
            elif not fits_image(ann.rle, record.height, record.width):
                earlier += 1
            elif ann.area > 0:
                found.append((record.id, path, ann.rle))
    chosen: list[int] | range = range(len(found))
    if len(found) > max_masks:
        rng = np.random.default_rng(SAMPLE_SEED)
        chosen = sorted(int(i) for i in rng.choice(len(found), max_masks, replace=False))
    images: list[GroundTruthImage] = []
    for i in chosen:
        image_id, path, rle = found[i]
        if images and images[-1].image_id == image_id:
            images[-1] = GroundTruthImage(image_id, path, (*images[-1].rles, rle))
        else:
            images.append(GroundTruthImage(image_id, path, (rle,)))
    return GroundTruth(tuple(images), len(found), proposals, unreadable, earlier)


@dataclass(frozen=True, eq=False)
class PreparedImage:
    """One image ready to evaluate: (H, W, 3) uint8 RGB, its masks (N, H, W) bool (at
    least one non-empty), and `key`, the pixel hash the embedding cache is keyed by."""

    path: Path
    image: np.ndarray
    masks: np.ndarray
    key: str


@dataclass(frozen=True, eq=False)
class ReadFailure:
    """The reader stopped on an error; `path`: the image it was reading, if any."""

    error: BaseException
    path: Path | None


class _End:
    """The reader is done: every image was read, or it was stopped."""


END = _End()
ReaderItem = GroundTruth | PreparedImage | ReadFailure | _End


def prepare_image(item: GroundTruthImage, cancelled: Callable[[], bool]) -> PreparedImage | None:
    """Read `item`'s image and decode its masks; None when `cancelled()` on the way or
    when none of its masks has a pixel. Raises ImageReadError or ValueError naming the
    file when the image cannot be read or is not the size of its masks."""
    image = load_rgb(item.path)
    h, w = image.shape[:2]
    masks = np.empty((len(item.rles), h, w), bool)
    for i, rle in enumerate(item.rles):
        if cancelled():
            return None
        mask = decode_rle(rle)
        if mask.shape != (h, w):
            raise ValueError(
                f"{item.path}: the image is {w}x{h} but its masks are "
                f"{mask.shape[1]}x{mask.shape[0]} (was the file replaced?)"
            )
        masks[i] = mask
    if not masks.any():
        return None
    return PreparedImage(item.path, image, masks, image_content_hash(image))


class GroundTruthReader:
    """Lists `project`'s ground truth and reads its images in a plain thread, AHEAD of
    the evaluation. Items come out of `take()` in this order: the `GroundTruth` (or
    END when stopped while listing), one `PreparedImage` per image, then END; or a
    `ReadFailure` in place of the rest. `on_ready()` is called from the reader's thread
    when an item is ready for a taker that found none (`ready()` False)."""

    def __init__(
        self,
        project: Any,
        max_masks: int,
        cancelled: Callable[[], bool],
        on_ready: Callable[[], None],
    ) -> None:
        self.project = project
        self.max_masks = max_masks
        self._cancelled = cancelled
        self._on_ready = on_ready
        self._cond = threading.Condition()
        self._items: deque[ReaderItem] = deque()
        self._waiting = True  # the evaluation waits for the listing from the start
        self._stop = False
        self._path: Path | None = None  # the image being read (reader thread)
        self._thread = threading.Thread(
            target=self._run, name="samstudio-evaluation-reader", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop reading soon (after the file or mask at hand); END follows."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def stopped(self) -> bool:
        return self._stop or self._cancelled()

    def ready(self) -> bool:
        """True when `take()` has an item; else False, and `on_ready` will be called."""
        with self._cond:
            self._waiting = not self._items
            return not self._waiting

    def take(self) -> ReaderItem:
        """The next item. Call only after `ready()` said True (it waits otherwise)."""
        with self._cond:
            while not self._items:
                self._cond.wait()
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def _put(self, item: ReaderItem, last: bool = False) -> bool:
        """Hand `item` over once there is room (the `last` one at once); False when
        stopped first."""
        with self._cond:
            while not last and len(self._items) >= AHEAD and not self.stopped():
                self._cond.wait(0.1)  # `cancelled` is polled: it has no notify
            if not last and self.stopped():
                return False
            self._items.append(item)
            wake, self._waiting = self._waiting, False
            self._cond.notify_all()
        if wake:
            self._on_ready()
        return True

    def _run(self) -> None:
        try:
            last: ReaderItem = self._read()
        except Exception as exc:  # the evaluation reports it when it reaches this image
            last = ReadFailure(exc, self._path)
        self._put(last, last=True)

    def _read(self) -> _End:
        truth = list_ground_truth(self.project, self.max_masks, self.stopped)
        if truth is None or not self._put(truth):
            return END
        for item in truth.images:
            self._path = item.path
            prepared = prepare_image(item, self.stopped)
            if self.stopped() or (prepared is not None and not self._put(prepared)):
                return END
        self._path = None
        return END
