"""Image files that changed on disk after the project recorded them.

A project records each image's size in pixels (the displayed frame), the SHA-256 of its
bytes and, since schema 5, the file's size and modification time when it was hashed
(its stamp). An image file can be replaced by another picture, edited in place,
deleted or made unreadable while the project is open or between sessions:

- `check_image_file` compares the file's stamp with the recorded one (one `stat`); only
  a different or unknown stamp costs a hash of the file. A file with other bytes gets
  its record updated (size, hash, stamp); saved masks are never touched.
- `unfitting_masks`: saved masks whose size is not their image's (made on an earlier
  picture of another size). They are kept, so that putting the old file back makes
  them fit again; the window marks them and an export leaves them out.
- `missing_images`: images whose file is gone or cannot be read, by a cheap existence
  and permission check (nothing is decoded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from samstudio.core.images import ImageLoadError, content_hash, file_stamp, image_size

FileState = Literal["unchanged", "changed", "missing", "unreadable"]


@dataclass(frozen=True)
class ImageFileCheck:
    """What `check_image_file` found.

    state: "unchanged" (same bytes as recorded), "changed" (other bytes; the record now
    describes them unless the project is read-only), "missing" (no file; the record is
    kept), "unreadable" (the file is there but cannot be read as an image; `reason`
    says why; the record is kept). old_size / new_size: (H, W) before and after the
    check ((0, 0) for a file that could not be read when recorded). unfitting: how many
    saved masks of the image do not have new_size.
    """

    image_id: int
    path: Path
    state: FileState
    old_size: tuple[int, int]
    new_size: tuple[int, int]
    unfitting: int = 0
    reason: str = ""

    @property
    def size_changed(self) -> bool:
        return self.state == "changed" and self.old_size != self.new_size


def check_image_file(project: Any, image_id: int) -> ImageFileCheck:
    """Compare image `image_id`'s file with its record; update the record when the file
    holds other bytes now (not in a read-only project). Raises the store's
    ProjectError when the update cannot be saved."""
    rec = project.image(image_id)
    path = Path(project.image_path(image_id))
    old = (int(rec.height), int(rec.width))
    stamp = file_stamp(path)
    if stamp is None:
        return ImageFileCheck(image_id, path, "missing", old, old, reason="file not found")
    if stamp == _recorded_stamp(project, image_id) and rec.error is None:
        return ImageFileCheck(
            image_id, path, "unchanged", old, old, _count_unfitting(project, image_id, old)
        )
    try:
        digest = content_hash(path)
        same = digest == rec.content_hash and rec.error is None
        new = old if same else tuple(int(v) for v in image_size(path))
    except ImageLoadError as exc:
        return ImageFileCheck(image_id, path, "unreadable", old, old, reason=exc.reason)
    except Exception as exc:  # a decoder's own error on a damaged header
        return ImageFileCheck(image_id, path, "unreadable", old, old, reason=str(exc))
    size = (new[0], new[1])
    if not project.read_only:
        _record(project, image_id, size, digest, stamp)
    return ImageFileCheck(
        image_id,
        path,
        "unchanged" if same else "changed",
        old,
        size,
        _count_unfitting(project, image_id, size),
    )


def fits_image(rle: Any, height: int, width: int) -> bool:
    """Whether a saved mask (its RLE) has the size (height, width) of its image's
    picture now; False for one made on an earlier picture of another size."""
    size = rle.get("size", ()) if isinstance(rle, dict) else ()
    return tuple(int(v) for v in size) == (height, width)


def unfitting_masks(project: Any, image_id: int | None = None) -> dict[int, list[int]]:
    """Image id -> ids of its saved masks whose size differs from the image's recorded
    size (of `image_id` only, when given); images with none are left out."""
    sql = (
        "SELECT a.image_id, a.id FROM annotations a JOIN images i ON i.id = a.image_id"
        " WHERE a.alive = 1 AND i.width > 0 AND (a.height != i.height OR a.width != i.width)"
    )
    args: tuple[Any, ...] = ()
    if image_id is not None:
        sql += " AND a.image_id = ?"
        args = (image_id,)
    out: dict[int, list[int]] = {}
    with project.store.reading() as conn:
        for img, ann in conn.execute(sql + " ORDER BY a.image_id, a.id", args):
            out.setdefault(int(img), []).append(int(ann))
    return out


def missing_images(project: Any) -> dict[int, str]:
    """Image id -> why its file cannot be used ("file not found", "no permission to read
    it"), for every image whose file is gone or unreadable. One `stat` per image; no
    file is opened. Images recorded as unreadable are left out (they say so already)."""
    out: dict[int, str] = {}
    root = Path(project.root)
    for rec in project.images():
        if rec.error:
            continue
        path = root / rec.path
        if file_stamp(path) is None:
            out[rec.id] = "file not found"
        elif not os.access(path, os.R_OK):
            out[rec.id] = "no permission to read it"
    return out


def _recorded_stamp(project: Any, image_id: int) -> tuple[int, int] | None:
    with project.store.reading() as conn:
        row = conn.execute(
            "SELECT file_size, file_mtime_ns FROM images WHERE id = ?", (image_id,)
        ).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return None
    return int(row[0]), int(row[1])


def _count_unfitting(project: Any, image_id: int, size: tuple[int, int]) -> int:
    if size[0] <= 0 or size[1] <= 0:
        return 0
    with project.store.reading() as conn:
        row = conn.execute(
            "SELECT count(*) FROM annotations WHERE image_id = ? AND alive = 1"
            " AND (height != ? OR width != ?)",
            (image_id, size[0], size[1]),
        ).fetchone()
    return int(row[0])


def _record(
    project: Any, image_id: int, size: tuple[int, int], digest: str, stamp: tuple[int, int]
) -> None:
    with project.store.transaction("recording the changed image file") as conn:
        conn.execute(
            "UPDATE images SET height = ?, width = ?, content_hash = ?, error = NULL,"
            " file_size = ?, file_mtime_ns = ? WHERE id = ?",
            (size[0], size[1], digest, stamp[0], stamp[1], image_id),
        )
