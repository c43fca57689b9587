"""Which image of one annotation set is which image of the other.

By file name when both sets name their files: the whole relative name, else the base name,
else the name without extension, each only where it is unique in both sets. By image id
when either set names no files (a COCO results list): its ids are those of the file it
was made for (``sources.load_set`` gives it that file's images), so the other set must
carry ids too.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from samstudio.core.inspect.sources import ImageMasks, LoadedSet

BY_FILE_NAME = "file name"
BY_IMAGE_ID = "image id"


@dataclass
class ImagePairing:
    """Images present in both sets, and the labels (file names, or "image ID" when paired
    by id) of those present in one only. ``how``: ``BY_FILE_NAME`` or ``BY_IMAGE_ID``;
    ``why``: a sentence saying why images were paired by id (empty otherwise)."""

    how: str
    pairs: list[tuple[ImageMasks, ImageMasks]]
    only_in_a: list[str]
    only_in_b: list[str]
    why: str = ""


def pair_images(a: LoadedSet, b: LoadedSet) -> ImagePairing:
    """Pair the images of ``a`` and ``b`` (see the module docstring). Raises ``ValueError``
    naming the set for a file name or image id repeated within it, or when one set names no
    files and the other has no image ids."""
    if a.named and b.named:
        by_a, by_b = _by_name(a), _by_name(b)
        pairs = _pair_names(by_a, by_b)
        seen_a = {ia.file_name for ia, _ in pairs}
        seen_b = {ib.file_name for _, ib in pairs}
        return ImagePairing(
            BY_FILE_NAME,
            pairs,
            [n for n in by_a if n not in seen_a],
            [n for n in by_b if n not in seen_b],
        )
    unnamed, other = (a, b) if not a.named else (b, a)
    for side in (other, unnamed):
        if any(im.image_id is None for im in side.images):
            raise ValueError(
                f"{unnamed.name} is a COCO results list, which names no files: its images "
                f"are known only by id, and {side.name} has no image ids to pair them with "
                "(compare it with the COCO file the results were made for)"
            )
    letter, other_letter = ("a", "b") if unnamed is a else ("b", "a")
    why = f"{letter} is a COCO results list, which names no files"
    if other.named and other.dataset is not None:  # then read with it as ground truth
        why += f"; it takes {other_letter}'s image ids, sizes and categories"
    ids_a, ids_b = _by_id(a), _by_id(b)
    return ImagePairing(
        BY_IMAGE_ID,
        [(ids_a[k], ids_b[k]) for k in ids_a if k in ids_b],
        [f"image {k}" for k in ids_a if k not in ids_b],
        [f"image {k}" for k in ids_b if k not in ids_a],
        why,
    )


def _by_name(loaded: LoadedSet) -> dict[str, ImageMasks]:
    out: dict[str, ImageMasks] = {}
    for im in loaded.images:
        if im.file_name in out:
            raise ValueError(f"{loaded.name}: file name {im.file_name} appears more than once")
        out[im.file_name] = im
    return out


def _by_id(loaded: LoadedSet) -> dict[int, ImageMasks]:
    out: dict[int, ImageMasks] = {}
    for im in loaded.images:
        if im.image_id is None:  # pair_images checked that there is none
            continue
        if im.image_id in out:
            raise ValueError(f"{loaded.name}: image id {im.image_id} appears more than once")
        out[im.image_id] = im
    return out


def _pair_names(
    a: dict[str, ImageMasks], b: dict[str, ImageMasks]
) -> list[tuple[ImageMasks, ImageMasks]]:
    """Pair by the whole name, then base name, then name without extension (unique keys)."""

    def base(n: str) -> str:
        return posixpath.basename(n.replace("\\", "/"))

    keys = (lambda n: n, base, lambda n: posixpath.splitext(base(n))[0])
    left, right = dict(a), dict(b)
    pairs: list[tuple[ImageMasks, ImageMasks]] = []
    for key in keys:
        ka: dict[str, list[str]] = {}
        kb: dict[str, list[str]] = {}
        for n in left:
            ka.setdefault(key(n), []).append(n)
        for n in right:
            kb.setdefault(key(n), []).append(n)
        for k, names in ka.items():
            if len(names) == 1 and len(kb.get(k, ())) == 1:
                pairs.append((left.pop(names[0]), right.pop(kb[k][0])))
    return pairs
