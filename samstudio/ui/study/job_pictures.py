"""A job's five views as pixmaps: its item's image (decoded once for the jobs that
share it) and its mask, drawn by `samstudio.core.study.views.render_views`."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtGui import QPixmap

from samstudio.core.study.model import RatingJob, Study, StudyError
from samstudio.core.study.views import render_views
from samstudio.ui.canvas import rgb_qimage
from samstudio.ui.image_io import ImageReadError, load_rgb


class JobPictures:
    """Draws jobs of one study, keeping the last `keep` decoded image files."""

    def __init__(self, study: Study, keep: int = 4) -> None:
        self.study = study
        self.keep = max(1, keep)
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self.decoded = 0  # how many times an image file was read (for tests)

    def image_of(self, item_id: str) -> np.ndarray:
        """The item's image, (H, W, 3) uint8 RGB in the frame of its prompt and masks
        (items that share an image file share one decoded array). Raises StudyError
        naming the file when it cannot be read or has another size than the study's."""
        item = self.study.item(item_id)
        path = self.study.image_path(item)
        rgb = self._images.get(item.image)
        if rgb is not None:
            self._images.move_to_end(item.image)
        else:
            try:
                rgb = load_rgb(path)
            except ImageReadError as exc:
                raise StudyError(str(exc)) from exc
            self.decoded += 1
            self._images[item.image] = rgb
            while len(self._images) > self.keep:
                self._images.popitem(last=False)
        if rgb.shape[:2] != tuple(item.size):
            raise StudyError(
                f"{path}: the image is {rgb.shape[1]}x{rgb.shape[0]} pixels, the study "
                f"expects {item.size[1]}x{item.size[0]}"
            )
        return rgb

    def views(self, job: RatingJob) -> dict[str, np.ndarray]:
        """The five views of `job` (see `render_views`). Raises StudyError."""
        item = self.study.item(job.item)
        rgb = self.image_of(item.id)
        try:
            mask = job.decode()
        except ValueError as exc:  # RLEError: study.json edited or damaged by hand
            where = self.study.folder / "study.json" if self.study.folder else "study.json"
            raise StudyError(f"{where}: the mask of job {job.id!r} is malformed ({exc})") from exc
        return render_views(rgb, mask, point=item.point, box=item.box)

    def pixmaps(self, job: RatingJob) -> dict[str, QPixmap]:
        """The five views of `job` as pixmaps. Raises StudyError."""
        return {key: QPixmap.fromImage(rgb_qimage(v)) for key, v in self.views(job).items()}
