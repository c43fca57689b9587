"""Where a rating study's items come from (Qt-free): source images with their
ground-truth masks, read on demand — a COCO annotation file with its images, held-out
synthetic scenes, or arrays in memory. `build.build_study` samples and predicts them.

Each `StudySource` describes one image (name, size, its masks' areas and crowd flags,
its dataset) and reads its pixels and masks only when asked, so building a study holds
one image at a time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from samstudio.core.study.model import StudyError


@dataclass(frozen=True)
class SourceMask:
    """One ground-truth mask of a source image: its annotation id, its area in pixels of
    the source image (before rescaling) and whether it is a crowd region."""

    annotation: int | str | None
    area: int
    crowd: bool = False


@dataclass(frozen=True, eq=False)
class StudySource:
    """One source image and its ground-truth masks, read only when needed.

    name: shown as the item's `source_image`. size: (H, W) of the image as displayed
    (EXIF orientation applied), the frame of the masks. masks: what can be sampled.
    read_image(max_side): (H', W', 3) uint8 RGB, either (H, W) or already reduced so that
    its long side is at most max_side (the builder rescales whatever is still larger).
    read_mask(k): (H, W) bool mask of `masks[k]`.
    dataset: the name of the dataset the image belongs to ("" when there is one only).
    """

    name: str
    size: tuple[int, int]
    masks: tuple[SourceMask, ...]
    read_image: Callable[[int], np.ndarray]
    read_mask: Callable[[int], np.ndarray]
    dataset: str = ""

    @classmethod
    def from_arrays(
        cls,
        image: np.ndarray,
        masks: Sequence[np.ndarray] | np.ndarray,
        name: str,
        annotations: Sequence[int | str | None] | None = None,
        crowd: Sequence[bool] | None = None,
        dataset: str = "",
    ) -> StudySource:
        """A source held in memory: image (H, W, 3) uint8 RGB, masks (H, W) bool each,
        annotation ids (default: the mask's index), crowd flags (default: none) and the
        dataset's name."""
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"{name}: an image is (H, W, 3) uint8, got {img.shape} {img.dtype}")
        h, w = img.shape[:2]
        arrays = [np.asarray(m, bool) for m in masks]
        for k, m in enumerate(arrays):
            if m.shape != (h, w):
                raise ValueError(f"{name}: mask {k} is {m.shape}, the image is {(h, w)}")
        ids = list(annotations) if annotations is not None else list(range(len(arrays)))
        flags = list(crowd) if crowd is not None else [False] * len(arrays)
        if len(ids) != len(arrays) or len(flags) != len(arrays):
            raise ValueError(f"{name}: {len(arrays)} masks but {len(ids)} ids, {len(flags)} flags")
        return cls(
            name=name,
            size=(h, w),
            masks=tuple(
                SourceMask(a, int(m.sum()), bool(c)) for a, m, c in zip(ids, arrays, flags)
            ),
            read_image=lambda _max_side: img,
            read_mask=lambda k: arrays[k],
            dataset=dataset,
        )


def coco_sources(
    annotations_json: str | Path, images_dir: str | Path, dataset: str = ""
) -> list[StudySource]:
    """The images of a COCO instances file that have masks, with their files in
    `images_dir` (found as `file_name`, then by its base name), as sources of the
    dataset named `dataset`.

    Annotations without a mask (box only) and those the importer rejects are left out;
    an image stored without its EXIF turn has its masks turned into the displayed frame.
    Raises StudyError (a ValueError) naming the file for an unreadable or malformed
    annotation file, a results file, and image files that are missing or disagree with
    their record.
    """
    from samstudio.core.formats.coco import read_coco
    from samstudio.core.formats.image_files import attach_images
    from samstudio.core.formats.records import FormatError
    from samstudio.core.formats.validate import load_json

    source = str(annotations_json)
    try:
        doc = load_json(annotations_json)
        if isinstance(doc, list):
            raise FormatError(source, "a COCO results file (a list), not ground-truth instances")
        coco, report = read_coco(doc, source)
    except FormatError as exc:
        raise StudyError(str(exc)) from exc
    if not Path(images_dir).is_dir():
        raise StudyError(f"{images_dir}: no such folder of images (for {source})")
    attach_images(coco, images_dir, report, source)
    mismatched = [i.message for i in report.errors if i.code == "image_size_mismatch"]
    if mismatched:
        raise StudyError(f"{source}: {mismatched[0]}")
    by_image: dict[int, list[Any]] = {}
    for ann in coco.annotations:
        if ann.segmentation is not None:
            by_image.setdefault(ann.image_id, []).append(ann)
    out: list[StudySource] = []
    missing: list[str] = []
    for image in coco.images:
        anns = by_image.get(image.id, [])
        if not anns:
            continue
        if image.path is None:
            missing.append(image.file_name)
            continue
        out.append(
            StudySource(
                name=image.file_name,
                size=(image.height, image.width),
                masks=tuple(SourceMask(a.id, a.area, a.iscrowd) for a in anns),
                read_image=_file_reader(Path(image.path)),
                read_mask=_rle_reader([a.segmentation for a in anns if a.segmentation]),
                dataset=dataset,
            )
        )
    if missing:
        raise StudyError(
            f"{source}: {len(missing)} annotated image file(s) not found or unreadable in "
            f"{images_dir}, e.g. {missing[0]!r}"
        )
    return out


def _file_reader(path: Path) -> Callable[[int], np.ndarray]:
    def read(max_side: int) -> np.ndarray:
        from samstudio.core.images import ImageLoadError, load_image

        try:
            return load_image(path, max_side=max_side)
        except ImageLoadError as exc:
            raise StudyError(str(exc)) from exc

    return read


def _rle_reader(rles: list[dict[str, Any]]) -> Callable[[int], np.ndarray]:
    from samstudio.core.masks import decode_rle

    return lambda k: decode_rle(rles[k])


class SyntheticSources(Sequence[StudySource]):
    """`n` held-out synthetic scenes as study sources, made on demand (see
    `synthetic_sources`); only the latest scene is kept."""

    def __init__(
        self, n: int, seed_base: int = 10_000_000, size: int = 256, dataset: str = "synthetic"
    ) -> None:
        if n < 0:
            raise ValueError(f"the number of synthetic scenes is >= 0, got {n}")
        self.n, self.seed_base, self.size, self.dataset = n, seed_base, size, dataset
        self._last: tuple[int, Any] | None = None

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, index: int) -> StudySource: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[StudySource]: ...

    def __getitem__(self, index: int | slice) -> StudySource | Sequence[StudySource]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.n))]
        if not -self.n <= index < self.n:
            raise IndexError(index)
        seed = self.seed_base + index % self.n
        masks = self._scene(seed).masks
        return StudySource(
            name=f"synthetic-{seed}",
            size=(int(masks.shape[1]), int(masks.shape[2])),
            masks=tuple(SourceMask(k, int(m.sum())) for k, m in enumerate(masks)),
            read_image=functools.partial(self._image, seed),
            read_mask=functools.partial(self._mask, seed),
            dataset=self.dataset,
        )

    def _scene(self, seed: int) -> Any:
        if self._last is None or self._last[0] != seed:
            from samstudio.training.synthetic import make_scene

            self._last = (seed, make_scene(seed, size=self.size))
        return self._last[1]

    def _image(self, seed: int, _max_side: int) -> np.ndarray:
        return np.asarray(self._scene(seed).image)

    def _mask(self, seed: int, k: int) -> np.ndarray:
        return np.asarray(self._scene(seed).masks[k], bool)


def synthetic_sources(
    n: int, seed_base: int = 10_000_000, size: int = 256, dataset: str = "synthetic"
) -> SyntheticSources:
    """`n` held-out synthetic scenes (`samstudio.training.synthetic.make_scene`, seeds
    seed_base .. seed_base + n - 1, long side `size`; numpy and OpenCV, no torch), as a
    sequence whose scenes are made when read. Annotation ids are the masks' indices in
    their scene; source names are "synthetic-<seed>"; all are of the dataset `dataset`."""
    return SyntheticSources(n, seed_base, size, dataset)
