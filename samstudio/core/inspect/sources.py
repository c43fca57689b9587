"""What the inspect views read: the masks of each image of an annotation set
(``ImageMasks``), with what the importer had to say about the file (``LoadedSet``).

A set is a ``Dataset``, a sequence of ``ImageMasks`` or a path to anything
``formats.detect.import_annotations`` reads (COCO instances or results, SA-1B, labelme,
SA-V). A COCO results list names no files: its images are known by id only
(``ImageMasks.named`` is false), and given the other set of a comparison as
``ground_truth`` it takes that set's images (ids, sizes) and categories.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from samstudio.core.masks import RLE

SHOWN_PROBLEMS = 10  # import problems listed before "… and N more"

Source = Any  # a Dataset, a path to anything import_annotations reads, or ImageMasks


@dataclass(frozen=True)
class ImageMasks:
    """The masks of one image, as the inspect functions read them.

    ``masks``: RLEs (compressed or uncompressed) of size ``[height, width]``; ``ids``: their
    annotation ids in the same order (empty: 0..n-1); ``box_only``: annotations of the image
    that have a box but no mask (not in ``masks``). Per mask, where known (else empty):
    ``categories`` (category names; ``None`` for none), ``scores`` (COCO results
    confidence; ``None`` where absent) and ``crowd`` (COCO ``iscrowd``). ``image_id``: the
    image's id in its file (``None`` when unknown); ``named``: false when ``file_name`` is
    made up (a COCO results list names no files).
    """

    file_name: str
    height: int
    width: int
    masks: tuple[RLE, ...] = ()
    ids: tuple[int, ...] = ()
    box_only: int = 0
    image_id: int | None = None
    categories: tuple[str | None, ...] = ()
    scores: tuple[float | None, ...] = ()
    crowd: tuple[bool, ...] = ()
    named: bool = True

    def mask_ids(self) -> tuple[int, ...]:
        return self.ids if self.ids else tuple(range(len(self.masks)))

    def category_of(self, i: int) -> str | None:
        """Category name of mask ``i`` (``None`` when unknown)."""
        return self.categories[i] if self.categories else None

    def score_of(self, i: int) -> float | None:
        """Score of mask ``i`` (``None`` when it has none)."""
        return self.scores[i] if self.scores else None

    def is_crowd(self, i: int) -> bool:
        return bool(self.crowd[i]) if self.crowd else False


@dataclass
class LoadedSet:
    """An annotation set as read: its images, its name in reports, the detected format
    (``kind``: a ``formats.detect`` format name, or "dataset" / "images" for in-memory
    input), the ``Dataset`` read (``None`` for ``ImageMasks`` input) and the importer's
    problems, each as ``str(Issue)`` ("error: FILE, image I, annotation A: why")."""

    images: list[ImageMasks]
    name: str
    kind: str
    dataset: Any = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def named(self) -> bool:
        """Whether the images have file names of their own (not a COCO results list)."""
        return all(im.named for im in self.images)

    @property
    def n_masks(self) -> int:
        return sum(len(im.masks) for im in self.images)


def load_set(
    source: Source,
    images_dir: str | os.PathLike[str] | None = None,
    ground_truth: Any = None,
) -> LoadedSet:
    """Read ``source`` (see the module docstring). ``ground_truth``: a ``Dataset`` whose
    images and categories a COCO results list takes (ignored for other formats).

    A file that cannot be read at all raises ``ValueError`` naming it; annotations the
    importer refused are listed in ``errors``.
    """
    from samstudio.core.formats.detect import import_annotations
    from samstudio.core.formats.records import Dataset, FormatError

    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        try:
            dataset, report, kind = import_annotations(
                source, images_dir=images_dir, ground_truth=ground_truth
            )
        except FormatError as exc:
            raise ValueError(str(exc)) from None
        images = _from_dataset(dataset, name, named=kind != "coco-results")
        return LoadedSet(
            images,
            name,
            kind,
            dataset,
            [str(i) for i in report.errors],
            [str(i) for i in report.warnings],
        )
    if isinstance(source, Dataset):
        return LoadedSet(_from_dataset(source, "dataset"), "dataset", "dataset", source)
    images = list(source)
    if not all(isinstance(im, ImageMasks) for im in images):
        raise TypeError("source is a Dataset, a path, or a sequence of ImageMasks")
    return LoadedSet(images, "images", "images")


def load_images(
    source: Source, images_dir: str | os.PathLike[str] | None = None
) -> tuple[list[ImageMasks], str, int]:
    """(images, name, import errors) of ``source`` (see ``load_set``); "import errors"
    counts the annotations the importer refused (0 for in-memory input)."""
    loaded = load_set(source, images_dir)
    return loaded.images, loaded.name, len(loaded.errors)


def problem_lines(errors: Sequence[str], warnings: Sequence[str] = ()) -> list[str]:
    """The first ``SHOWN_PROBLEMS`` import problems (errors first), then "… and N more"."""
    problems = [*errors, *warnings]
    lines = list(problems[:SHOWN_PROBLEMS])
    if len(problems) > SHOWN_PROBLEMS:
        lines.append(f"… and {len(problems) - SHOWN_PROBLEMS} more")
    return lines


def _from_dataset(dataset: Any, name: str, named: bool = True) -> list[ImageMasks]:
    names = {c.id: c.name for c in dataset.categories}
    per_image: dict[int, list[Any]] = {im.id: [] for im in dataset.images}
    box_only: dict[int, int] = dict.fromkeys(per_image, 0)
    for ann in dataset.annotations:
        if ann.image_id not in per_image:
            raise ValueError(
                f"{name}: annotation {ann.id} refers to a missing image {ann.image_id}"
            )
        if ann.segmentation is None:
            box_only[ann.image_id] += 1
        else:
            per_image[ann.image_id].append(ann)
    out = []
    for im in dataset.images:
        anns = per_image[im.id]
        out.append(
            ImageMasks(
                file_name=im.file_name,
                height=im.height,
                width=im.width,
                masks=tuple(a.segmentation for a in anns),
                ids=tuple(a.id for a in anns),
                box_only=box_only[im.id],
                image_id=im.id,
                categories=tuple(_category_name(a.category_id, names) for a in anns),
                scores=tuple(a.score for a in anns),
                crowd=tuple(bool(a.iscrowd) for a in anns),
                named=named,
            )
        )
    return out


def _category_name(category_id: int | None, names: dict[int, str]) -> str | None:
    if category_id is None:
        return None
    return names.get(category_id, f"category {category_id}")
