"""Counts the window and the export dialog show, each one SQL query (no mask decoded)."""

from __future__ import annotations

from samstudio.core.document.project import Project

PROPOSAL = "proposal"  # records.SOURCES: an auto-segment mask not reviewed yet


def masks_per_image(project: Project) -> dict[int, tuple[int, int]]:
    """Image id -> (reviewed masks, unreviewed proposals), for images that have any."""
    out: dict[int, tuple[int, int]] = {}
    with project.store.reading() as conn:
        rows = conn.execute(
            "SELECT image_id, sum(source != ?), sum(source = ?) FROM annotations"
            " WHERE alive = 1 GROUP BY image_id",
            (PROPOSAL, PROPOSAL),
        )
        for image_id, reviewed, proposals in rows:
            out[int(image_id)] = (int(reviewed), int(proposals))
    return out


def export_counts(project: Project) -> dict[str, int]:
    """For an export dialog: readable images ("images"), those with at least one
    reviewed mask ("annotated"), those marked done ("done"), and unreviewed proposals
    ("proposals")."""
    with project.store.reading() as conn:
        images, done = conn.execute(
            "SELECT count(*), coalesce(sum(status = 'done'), 0) FROM images"
            " WHERE width > 0 AND height > 0"
        ).fetchone()
        annotated = conn.execute(
            "SELECT count(DISTINCT a.image_id) FROM annotations a JOIN images i"
            " ON i.id = a.image_id WHERE a.alive = 1 AND a.source != ? AND i.width > 0",
            (PROPOSAL,),
        ).fetchone()[0]
        proposals = conn.execute(
            "SELECT count(*) FROM annotations WHERE alive = 1 AND source = ?", (PROPOSAL,)
        ).fetchone()[0]
    return {
        "images": int(images),
        "annotated": int(annotated),
        "done": int(done),
        "proposals": int(proposals),
    }
