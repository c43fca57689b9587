"""Reading image files and drawing stored masks off the UI thread for the canvas."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from samstudio.ui.canvas import picture_qimage, rgb_qimage
from samstudio.ui.image_io import ImageReadError, load_rgb
from samstudio.ui.overlays import MaskPicture, OverlayStyle, render_mask, with_fill_alpha

BATCH = 16  # masks drawn per signal while filling in a crowded image


@dataclass(frozen=True)
class InstanceJob:
    """One stored mask to draw: its RLE (as the store keeps it) and how to draw it.

    picture: a picture of the same mask, colour and selection drawn in another style:
    only its fill changes (no decoding).
    """

    annotation_id: int
    key: tuple[Any, ...]  # what the picture depends on (mask, colour, selection, style)
    rle: dict[str, Any]
    rgb: tuple[int, int, int]
    selected: bool
    style: OverlayStyle = field(default_factory=OverlayStyle)
    picture: MaskPicture | None = None


def render_instance(job: InstanceJob) -> tuple[InstanceJob, MaskPicture]:
    """Decode and draw one instance (any thread): the selected one brighter, white-edged;
    the fill as `job.style` says."""
    from samstudio.core.masks import decode_rle

    alpha = job.style.fill_alpha(job.selected)
    if job.picture is not None:
        picture = with_fill_alpha(job.picture, alpha)
    elif job.selected:
        picture = render_mask(
            decode_rle(job.rle),
            job.rgb,
            fill_alpha=alpha,
            outline_color=(255, 255, 255),
            outline_width=2,
        )
    else:
        picture = render_mask(decode_rle(job.rle), job.rgb, fill_alpha=alpha, outline_width=1)
    picture_qimage(picture)
    return job, picture


class PixelLoader(QObject):
    """Reads image files off the UI thread; results come back as signals."""

    loaded = Signal(int, int, object, object)  # ticket, image id, (H, W, 3) uint8, QImage
    failed = Signal(int, int, str)  # ticket, image id, message
    instances = Signal(int, object)  # generation, [(InstanceJob, MaskPicture)]

    def __init__(self) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="samstudio-io")

    def load(self, ticket: int, image_id: int, path: str) -> None:
        self._pool.submit(self._run, ticket, image_id, path)

    def _run(self, ticket: int, image_id: int, path: str) -> None:
        try:
            rgb = load_rgb(path)
            # QImage work is thread-safe: convert here so the UI thread only wraps it.
            qimage = rgb_qimage(rgb).convertToFormat(QImage.Format.Format_RGB32)
            self.loaded.emit(ticket, image_id, rgb, qimage)
        except ImageReadError as exc:
            self.failed.emit(ticket, image_id, str(exc))
        except Exception as exc:  # a decoder bug must not kill the reader thread
            self.failed.emit(ticket, image_id, f"{path}: {type(exc).__name__}: {exc}")

    def render_instances(self, generation: int, jobs: list[InstanceJob]) -> None:
        self._pool.submit(self._render, generation, jobs)

    def _render(self, generation: int, jobs: list[InstanceJob]) -> None:
        for i in range(0, len(jobs), BATCH):
            try:
                done = [render_instance(j) for j in jobs[i : i + BATCH]]
            except Exception:  # a damaged mask: the others still show
                done = []
                for j in jobs[i : i + BATCH]:
                    try:
                        done.append(render_instance(j))
                    except Exception:
                        continue
            self.instances.emit(generation, done)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
