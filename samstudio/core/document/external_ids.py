"""The ids and extra fields an imported COCO file gave its items, written back on export.

pycocotools matches results to ground truth by image id and category id, so a COCO file
imported into a project and exported again must keep them. On import of a COCO file
(instances or results; other formats' ids are made up by their readers) the project
remembers, in the `external_ids` table (schema version 6), the file's id of each image
it matched, each category it created or merged, and each annotation it added, with
the item's keys the project has no column for (an annotation's `attributes`, an
image's `license` or `coco_url`, a category's `keypoints`: what the formats layer keeps
in `extra`). A later import wins for the items it touches: an image or category that
a second file names too takes that file's id; annotations skipped as already there
keep theirs. The `info` and `licenses` of the first COCO import go into meta.

On export each kind (images, categories, annotations) is decided on its own, over the
items that go out: when their remembered ids are unique, those are written and items
without one (made in the app, or from another format) get fresh ids above the largest
remembered one, so that imported items keep theirs; when two items remember the same id
(two files that both number from 1), the project's own ids are written for that kind,
and `ExportIds.notes` says so. Without any remembered id a kind keeps the project's ids.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from samstudio.core.store import ProjectError, Store

Kind = Literal["image", "category", "annotation"]
COCO_FORMATS = frozenset({"coco", "coco-results"})
"""Formats whose ids are the file's own (and what COCO tools match by)."""

# Keys with these prefixes are the readers' and SAM Studio's own bookkeeping
# (`samstudio_source` is written by every export), not the user's data.
OWN_PREFIXES = ("labelme_", "samstudio_")
_META_KEYS = ("info", "licenses")
_INT64 = (-(2**63), 2**63 - 1)


def kept_fields(extra: dict[str, Any]) -> dict[str, Any]:
    """The keys of an item's `extra` that are remembered and written back."""
    return {k: v for k, v in extra.items() if not k.startswith(OWN_PREFIXES)}


def remember(
    conn: sqlite3.Connection, kind: Kind, rows: Iterable[tuple[int, int, dict[str, Any]]]
) -> None:
    """Remember (project id, file id, fields) for items of `kind`, inside the caller's
    transaction; an item remembered before takes the new file id and fields. A file id
    SQLite cannot hold (beyond 64 bits) is not remembered: the item gets a fresh one."""
    conn.executemany(
        "INSERT OR REPLACE INTO external_ids (kind, local_id, external_id, fields)"
        " VALUES (?, ?, ?, ?)",
        [
            (
                kind,
                int(local),
                int(external),
                json.dumps(fields, ensure_ascii=False) if fields else None,
            )
            for local, external, fields in rows
            if _INT64[0] <= external <= _INT64[1]
        ],
    )


def remember_document(conn: sqlite3.Connection, document: dict[str, Any]) -> None:
    """Keep the COCO `info` and `licenses` of the first import that has them."""
    for key in _META_KEYS:
        if key in document:
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                (f"coco_{key}", json.dumps(document[key], ensure_ascii=False)),
            )


def document_head(store: Store, description: str) -> dict[str, Any]:
    """The top-level keys of an exported COCO file: the remembered `info` (with
    `description` when it has none) and `licenses`, else `info` with `description`."""
    with store.reading() as conn:
        rows = dict(
            conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('coco_info', 'coco_licenses')"
            ).fetchall()
        )
    out: dict[str, Any] = {"info": {"description": description}}
    for key in _META_KEYS:
        value = _loads(rows.get(f"coco_{key}"))
        if value is not None:
            out[key] = value
    if isinstance(out["info"], dict):
        out["info"] = {"description": description, **out["info"]}
    return out


def _loads(text: str | None) -> Any:
    """The JSON value of a stored text; None when there is none or it is damaged (then
    the export goes on without it rather than fail)."""
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return None


def _fields(text: str | None) -> dict[str, Any]:
    value = _loads(text)
    return value if isinstance(value, dict) else {}


@dataclass
class KindIds:
    """How one kind's ids go out: `use` the remembered ones (`remembered`: project id ->
    (file id, fields)), items without one numbered from `fresh` up; or the project's own."""

    kind: Kind
    remembered: dict[int, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    use: bool = False
    fresh: int = 0
    repeated: int = 0  # exported items whose remembered id another one has too
    given: int = 0  # fresh ids handed out

    def _decide(self, n: int, distinct: int, top: int | None) -> None:
        """Use the remembered ids when the `n` exported items that have one hold
        `distinct` different ids, `top` the largest."""
        if n and top is not None:
            self.repeated = n - distinct
            self.use = self.repeated == 0
            self.fresh = top + 1

    def fields(self, local: int) -> dict[str, Any]:
        """The item's remembered extra keys (written back whether or not its id is)."""
        known = self.remembered.get(local)
        return dict(known[1]) if known else {}

    def note(self) -> str | None:
        """A sentence for the user when this kind did not go out with the file's ids."""
        what = self.kind
        if self.repeated:
            return (
                f"{what} ids: {self.repeated} imported {what}(s) have an id that another "
                f"exported {what} has too (from another imported file), so the project's "
                f"own {what} ids were written, not the imported files'"
            )
        if self.use and self.given:
            return (
                f"{what} ids: {self.given} {what}(s) not from an imported COCO file got new "
                f"ids from {self.fresh} up; imported ones kept their file's ids"
            )
        return None


@dataclass
class SmallIds(KindIds):
    """Images or categories: few enough to map all at once (`mapping`: project id ->
    id written), since every annotation names one."""

    mapping: dict[int, int] = field(default_factory=dict)

    @classmethod
    def plan(cls, store: Store, kind: Kind, exported: Iterable[int]) -> SmallIds:
        wanted = sorted(set(exported))
        ids = cls(kind)
        with store.reading() as conn:
            rows = conn.execute(
                "SELECT local_id, external_id, fields FROM external_ids WHERE kind = ?", (kind,)
            ).fetchall()
        keep = set(wanted)
        ids.remembered = {int(r[0]): (int(r[1]), _fields(r[2])) for r in rows if r[0] in keep}
        files = [v[0] for v in ids.remembered.values()]
        ids._decide(len(files), len(set(files)), max(files, default=None))
        for local in wanted:
            known = ids.remembered.get(local)
            if not ids.use:
                ids.mapping[local] = local
            elif known is not None:
                ids.mapping[local] = known[0]
            else:
                ids.mapping[local] = ids.fresh + ids.given
                ids.given += 1
        return ids

    def id(self, local: int) -> int:
        """The id written for the item with project id `local`."""
        return self.mapping.get(local, local)


@dataclass
class AnnotationIds(KindIds):
    """Annotations: decided with one query over the exported ones; each image's
    remembered ids are read when its first annotation goes out, and fresh ids are not
    kept (memory stays flat for a million annotations): each annotation asks once."""

    store: Store | None = None
    image: int | None = None
    unread: int = 0  # images whose remembered ids could not be read (damaged file)

    @classmethod
    def plan(cls, store: Store, image_ids: Iterable[int], proposals: bool) -> AnnotationIds:
        """Over the alive annotations of `image_ids` (proposals only with `proposals`)."""
        ids = cls("annotation", store=store)
        with store.reading() as conn:
            n, distinct, top = conn.execute(
                "SELECT count(*), count(DISTINCT e.external_id), max(e.external_id)"
                " FROM external_ids e JOIN annotations a ON a.id = e.local_id"
                " WHERE e.kind = 'annotation' AND a.alive = 1 AND (? OR a.source != 'proposal')"
                " AND a.image_id IN (SELECT value FROM json_each(?))",
                (int(proposals), json.dumps(sorted(set(image_ids)))),
            ).fetchone()
        ids._decide(int(n), int(distinct), None if top is None else int(top))
        if not n:
            ids.store = None  # nothing remembered: no reads per image
        return ids

    def for_image(self, image_id: int) -> None:
        """Read the remembered ids of one image's annotations (when the image changes)."""
        if image_id == self.image or self.store is None:
            return
        self.image = image_id
        try:
            with self.store.reading() as conn:
                rows = conn.execute(
                    "SELECT e.local_id, e.external_id, e.fields FROM external_ids e"
                    " JOIN annotations a ON a.id = e.local_id"
                    " WHERE e.kind = 'annotation' AND a.image_id = ?",
                    (image_id,),
                ).fetchall()
        except ProjectError:  # a damaged file read for salvage: fresh ids, still unique
            rows = []
            self.unread += 1
        self.remembered = {int(r[0]): (int(r[1]), _fields(r[2])) for r in rows}

    def id(self, local: int) -> int:
        """The id written for annotation `local` (of the image given to `for_image`)."""
        known = self.remembered.get(local)
        if not self.use:
            return local
        if known is not None:
            return known[0]
        self.given += 1
        return self.fresh + self.given - 1

    def note(self) -> str | None:
        if self.unread:
            return (
                "annotation ids: those remembered from imported files could not be read "
                f"on {self.unread} image(s) of the damaged file; their annotations got new ids"
            )
        return super().note()


@dataclass
class ExportIds:
    """The three kinds' plans for one export."""

    images: SmallIds
    categories: SmallIds
    annotations: AnnotationIds

    @classmethod
    def plan(
        cls, store: Store, image_ids: Iterable[int], category_ids: Iterable[int], proposals: bool
    ) -> ExportIds:
        image_ids = list(image_ids)
        return cls(
            SmallIds.plan(store, "image", image_ids),
            SmallIds.plan(store, "category", category_ids),
            AnnotationIds.plan(store, image_ids, proposals),
        )

    @classmethod
    def own(cls) -> ExportIds:
        """The project's own ids for every kind (the remembered ones cannot be read)."""
        return cls(SmallIds("image"), SmallIds("category"), AnnotationIds("annotation"))

    def notes(self) -> list[str]:
        """What went out with other ids than the imported files', and why."""
        kinds = (self.images, self.categories, self.annotations)
        return [note for note in (k.note() for k in kinds) if note]
