"""A participant's ratings of a study: their own blinded order, a sheet saved after
every rating (and resumed), the shared queue of `Study.ratings_per_job`, and every
participant's ratings read back for the analysis. File format: see `model`'s docstring
("The sheet of a participant")."""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samstudio.core.atomic import atomic_write_json
from samstudio.core.study.model import (
    MAX_RATING,
    MIN_RATING,
    RATINGS_FORMAT,
    RATINGS_VERSION,
    Study,
    StudyError,
    _read_json,
    now_iso,
)

FolderStamp = tuple[tuple[str, int, int], ...]


def participant_slug(name: str) -> str:
    """A file name for a participant: letters, digits, '-', '_' kept, the rest '_',
    plus 8 hex digits of the name's hash so distinct names never share a file."""
    clean = name.strip()
    if not clean:
        raise StudyError("a participant needs a name (or a code)")
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", clean)[:40].strip("_") or "participant"
    digest = hashlib.sha256(clean.encode("utf-8")).hexdigest()[:8]
    return f"{base}-{digest}"


def participant_order(study: Study, participant: str) -> list[str]:
    """The job ids in the order this participant rates them: a random permutation
    seeded by (study seed, participant name), so every participant has an order of
    their own and a restarted session gets the same one. Two jobs of the same item
    (the same image and prompt with another condition's mask, often an identical one)
    are never shown one right after the other where the order allows it, so a mask is
    not judged against the one just seen."""
    digest = hashlib.sha256(f"{study.seed}\0{participant.strip()}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    ids = [j.id for j in study.jobs]
    order = [ids[i] for i in rng.permutation(len(ids))]
    item_of = {j.id: j.item for j in study.jobs}

    def alone(p: int) -> bool:  # no job of the same item next to position p
        near = (q for q in (p - 1, p + 1) if 0 <= q < len(order))
        return all(item_of[order[q]] != item_of[order[p]] for q in near)

    for i in range(1, len(order)):
        before = item_of[order[i - 1]]
        if item_of[order[i]] != before:
            continue
        for k in range(i + 1, len(order)):  # swap in the next job of another item
            if item_of[order[k]] != before:
                order[i], order[k] = order[k], order[i]
                break
        else:  # none left after it: swap with an earlier job where both fit
            for k in range(i - 1):
                order[i], order[k] = order[k], order[i]
                if alone(i) and alone(k):
                    break
                order[i], order[k] = order[k], order[i]
    return order


@dataclass(frozen=True)
class Rating:
    """One rating of one job by one participant."""

    participant: str
    job: str
    rating: int
    seconds: float = 0.0
    time: str = ""


class RatingSheet:
    """One participant's ratings of a study, saved (atomically) after every change.

    Opening a sheet that exists resumes it: the stored order is kept and rated jobs
    stay rated. `order` is what the participant works through: their own order
    (`own_order`, the one saved) when every participant rates every job, or in queue
    mode (`Study.ratings_per_job` >= 1) the jobs they rated, in the order they rated
    them, then the jobs still available to them (unrated by them and rated by fewer
    than K others) in their own order; `refresh` recomputes it from the other
    participants' sheets, `rate` refreshes after saving, and `poll` refreshes only when
    a ratings file was added, removed or rewritten since. Another participant's file
    that cannot be read is left out and its problem kept in `warnings`."""

    def __init__(self, study: Study, participant: str) -> None:
        if study.folder is None:
            raise StudyError("the study has no folder (save or load it first)")
        self.study = study
        self.participant = participant.strip()
        self.path = study.folder / "ratings" / f"{participant_slug(participant)}.json"
        self.own_order: list[str] = []
        self.order: list[str] = []
        self.ratings: dict[str, dict[str, Any]] = {}
        self.warnings: list[str] = []  # other participants' files left out, and why
        # other participants' files: path -> ((mtime_ns, size), jobs they rated, problem)
        self._others: dict[Path, tuple[tuple[int, int], frozenset[str], str]] = {}
        self._stamp: FolderStamp | None = None  # the ratings folder at the last refresh
        if self.path.exists():
            self._load()
        else:
            self.own_order = participant_order(study, self.participant)
        self.refresh()

    @property
    def queue(self) -> bool:
        """Whether participants draw jobs from a shared queue (ratings_per_job >= 1)."""
        return self.study.ratings_per_job >= 1

    def _load(self) -> None:
        _, order, self.ratings = _read_sheet(self.study, self.path)
        # jobs added to the study later go to the end, in this participant's order
        missing = [j for j in participant_order(self.study, self.participant) if j not in order]
        self.own_order = order + missing

    def refresh(self) -> None:
        """Recompute `order`; in queue mode re-read the other participants' sheets that
        changed (size or modification time) since the last refresh."""
        if not self.queue:
            self.order = list(self.own_order)
            return
        self._stamp = self.folder_stamp()  # before reading: a change meanwhile is seen next
        others = self._rated_by_others()
        k = self.study.ratings_per_job
        available = [j for j in self.own_order if j not in self.ratings and others[j] < k]
        self.order = list(self.ratings) + available

    def folder_stamp(self) -> FolderStamp:
        """The ratings folder's `*.json` files as (name, mtime_ns, size): it changes when
        any participant's file is added, removed or rewritten. One listing and a stat
        per file, no file read; empty while the folder does not exist."""
        try:
            with os.scandir(self.path.parent) as entries:
                found = [e for e in entries if e.name.endswith(".json")]
            stamp = []
            for entry in found:
                try:
                    info = entry.stat()
                except OSError:  # gone since the listing
                    continue
                stamp.append((entry.name, info.st_mtime_ns, info.st_size))
        except OSError:
            return ()
        return tuple(sorted(stamp))

    def poll(self) -> bool:
        """In queue mode, `refresh` when the ratings folder changed since the last
        refresh (`folder_stamp`); cheap enough to call every few seconds. True when it
        refreshed (`order` may then hold jobs that became available)."""
        if not self.queue or self.folder_stamp() == self._stamp:
            return False
        self.refresh()
        return True

    def _rated_by_others(self) -> Counter[str]:
        """How many other participants have rated each job, from their sheets."""
        folder = self.path.parent
        try:
            paths = sorted(p for p in folder.glob("*.json") if p.name != self.path.name)
        except OSError:
            paths = []
        counts: Counter[str] = Counter()
        kept: dict[Path, tuple[tuple[int, int], frozenset[str], str]] = {}
        for path in paths:
            try:
                info = path.stat()
            except OSError:  # gone since the listing
                continue
            stamp = (info.st_mtime_ns, info.st_size)
            entry = self._others.get(path)
            if entry is None or entry[0] != stamp:
                try:
                    entry = (stamp, frozenset(_read_sheet(self.study, path)[2]), "")
                except StudyError as exc:
                    entry = (stamp, frozenset(), str(exc))
            kept[path] = entry
            counts.update(entry[1])
        self._others = kept
        self.warnings = [problem for _, _, problem in kept.values() if problem]
        return counts

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.path,
            {
                "format": RATINGS_FORMAT,
                "version": RATINGS_VERSION,
                "participant": self.participant,
                "order": self.own_order,
                "ratings": self.ratings,
            },
            indent=1,
        )

    def rate(self, job_id: str, rating: int, seconds: float = 0.0) -> None:
        """Record (or change) the rating of `job_id`, save at once and `refresh`. Raises
        StudyError for an unknown job or a rating outside 1..10; OSError (naming the
        file) when the disk refuses the write, with the previous file intact. In queue
        mode a job that others have meanwhile rated enough may still be rated."""
        self.study.job(job_id)
        value = _check_rating(rating, f"job {job_id!r}")
        old = self.ratings.get(job_id)
        self.ratings[job_id] = {
            "rating": value,
            "seconds": round(float(seconds), 3),
            "time": now_iso(),
        }
        try:
            self._save()
        except OSError:
            if old is None:
                del self.ratings[job_id]
            else:
                self.ratings[job_id] = old
            raise
        self.refresh()

    def rating_of(self, job_id: str) -> int | None:
        rec = self.ratings.get(job_id)
        return None if rec is None else int(rec["rating"])

    def next_unrated(self, after: str | None = None) -> str | None:
        """The first job in `order` this participant has not rated, or None when there
        is none. With `after` (a job id): the first such job after it in the
        participant's own order, wrapping round, so a job that cannot be shown does not
        hold up the others (it is returned only when no other is left)."""
        unrated = [j for j in self.order if j not in self.ratings]
        if after is None or not unrated:
            return unrated[0] if unrated else None
        rank = {j: n for n, j in enumerate(self.own_order)}
        pivot = rank.get(after, -1)
        return next((j for j in unrated if rank[j] > pivot), unrated[0])

    @property
    def done(self) -> int:
        return len(self.ratings)

    @property
    def total(self) -> int:
        return len(self.order)


def _read_sheet(study: Study, path: Path) -> tuple[str, list[str], dict[str, dict[str, Any]]]:
    """(participant, order, ratings) of the ratings file `path`, checked against `study`.
    Raises StudyError naming the file when it is unreadable or malformed, or rates a job
    that is not in the study."""
    doc = _read_json(path, "ratings file")
    try:
        if not isinstance(doc, dict) or doc.get("format") != RATINGS_FORMAT:
            raise StudyError(f"{path}: not a SAM Studio ratings file")
        order = [str(j) for j in doc["order"]]
        ratings = {str(k): dict(v) for k, v in doc["ratings"].items()}
        who = str(doc.get("participant", path.stem))
    except StudyError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StudyError(f"{path}: malformed ratings file ({exc})") from exc
    known = {j.id for j in study.jobs}
    unknown = [j for j in list(order) + list(ratings) if j not in known]
    if unknown:
        raise StudyError(
            f"{path}: rates job {unknown[0]!r}, which is not in this study "
            f"(a ratings file of another study?)"
        )
    for job_id, rec in ratings.items():
        _check_rating(rec.get("rating"), f"{path}: job {job_id!r}")
        secs = rec.get("seconds", 0.0)  # read back as a float by the window and stats
        if isinstance(secs, bool) or not isinstance(secs, (int, float)):
            raise StudyError(f"{path}: job {job_id!r}: 'seconds' {secs!r} is not a number")
    return who, order, ratings


def _check_rating(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise StudyError(f"{where}: a rating is a whole number from 1 to 10, got {value!r}")
    if not MIN_RATING <= int(value) <= MAX_RATING:
        raise StudyError(f"{where}: a rating is from 1 to 10, got {value}")
    return int(value)


def load_ratings(study: Study, skipped: list[str] | None = None) -> list[Rating]:
    """Every participant's ratings of `study` (all files in `ratings/`). Raises
    StudyError naming a malformed file; with `skipped` (a list), a malformed file is
    left out instead and its message appended there, so one damaged sheet does not hide
    every other participant's ratings."""
    if study.folder is None:
        raise StudyError("the study has no folder")
    out: list[Rating] = []
    folder = study.folder / "ratings"
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            who, _, ratings = _read_sheet(study, path)
            slug = participant_slug(who)
            if path.name != f"{slug}.json":
                raise StudyError(f"{path}: its participant {who!r} belongs in {slug}.json")
        except StudyError as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
            continue
        for job_id, rec in ratings.items():
            out.append(
                Rating(
                    who,
                    job_id,
                    int(rec["rating"]),
                    float(rec.get("seconds", 0.0)),
                    str(rec.get("time", "")),
                )
            )
    return out
