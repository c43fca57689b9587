"""The rating study's files: save/load, blinded per-participant orders, sheets that
save every rating at once and resume, and clear errors on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samstudio.core.masks import encode_rle
from samstudio.core.study.model import (
    Condition,
    RatingJob,
    Study,
    StudyError,
    StudyItem,
    load_study,
    save_study,
)
from samstudio.core.study.sheets import (
    RatingSheet,
    load_ratings,
    participant_order,
    participant_slug,
)


def _mask(h: int, w: int, y0: int, x0: int, side: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0 : y0 + side, x0 : x0 + side] = True
    return m


def make_study(n_items: int = 4, seed: int = 5) -> Study:
    conditions = [
        Condition("c1", "model A", "model", "a.pth"),
        Condition("c2", "ground truth", "ground-truth"),
    ]
    items = [
        StudyItem(f"i{k}", f"images/i{k}.png", (20, 30), point=(5.0 + k, 6.0))
        for k in range(n_items)
    ]
    jobs = []
    n = 0
    for it in items:
        for c in conditions:
            n += 1
            jobs.append(
                RatingJob(f"j{n:03d}", it.id, c.id, encode_rle(_mask(20, 30, 3, 4, 5 + n % 3)))
            )
    return Study("test study", conditions, items, jobs, seed=seed)


def test_study_round_trips_through_its_file(tmp_path: Path) -> None:
    study = make_study()
    path = save_study(study, tmp_path / "s")
    assert path == tmp_path / "s" / "study.json"
    assert (tmp_path / "s" / "ratings").is_dir()
    back = load_study(tmp_path / "s")
    assert back.title == "test study"
    assert [c.name for c in back.conditions] == ["model A", "ground truth"]
    assert back.item("i2").point == (7.0, 6.0)
    job = back.job("j003")
    assert job.item == "i1" and job.condition == "c1"
    np.testing.assert_array_equal(job.decode(), study.job("j003").decode())
    # load_study also takes the path of study.json itself
    assert len(load_study(path).jobs) == 8


def test_box_items_round_trip(tmp_path: Path) -> None:
    study = make_study(1)
    study.items[0] = StudyItem("i0", "images/i0.png", (20, 30), box=(1.0, 2.0, 10.0, 12.0))
    save_study(study, tmp_path)
    it = load_study(tmp_path).item("i0")
    assert it.box == (1.0, 2.0, 10.0, 12.0) and it.point is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["jobs"].append(dict(d["jobs"][0])), "appears twice"),
        (lambda d: d["jobs"][0].__setitem__("item", "nope"), "unknown item"),
        (lambda d: d["jobs"][0].__setitem__("condition", "c9"), "unknown condition"),
        (lambda d: d["jobs"][0]["mask"].__setitem__("size", [5, 5]), "mask's size"),
        (lambda d: d["jobs"][0]["mask"].__setitem__("size", ["a", 5]), "malformed study file"),
        (lambda d: d["conditions"][0].__setitem__("kind", "magic"), "unknown kind"),
        (lambda d: d["items"][0].__setitem__("prompt", {}), "exactly one of a point or a box"),
        (lambda d: d.__setitem__("format", "other"), "not a SAM Studio study file"),
        (lambda d: d.__setitem__("version", 99), "newer than this SAM Studio"),
        (lambda d: d.pop("jobs"), "malformed study file"),
    ],
)
def test_bad_study_files_name_the_file_and_the_problem(tmp_path: Path, edit, message) -> None:
    save_study(make_study(), tmp_path)
    path = tmp_path / "study.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(StudyError, match=message) as err:
        load_study(tmp_path)
    assert str(path) in str(err.value)


def test_truncated_and_missing_study_files(tmp_path: Path) -> None:
    save_study(make_study(), tmp_path)
    path = tmp_path / "study.json"
    path.write_text(path.read_text()[:100])
    with pytest.raises(StudyError, match="not valid JSON") as err:
        load_study(tmp_path)
    assert str(path) in str(err.value)
    with pytest.raises(StudyError, match="no study file"):
        load_study(tmp_path / "elsewhere")


def test_each_participant_has_an_order_of_their_own_that_is_stable() -> None:
    study = make_study(n_items=10)
    a1 = participant_order(study, "Ann")
    assert participant_order(study, "Ann") == a1
    assert participant_order(study, " Ann ") == a1
    b = participant_order(study, "Bob")
    assert sorted(a1) == sorted(b) == sorted(j.id for j in study.jobs)
    assert a1 != b
    assert a1 != [j.id for j in study.jobs]
    study.seed += 1
    assert participant_order(study, "Ann") != a1


def test_no_two_jobs_of_one_item_are_rated_back_to_back() -> None:
    study = make_study(n_items=10)  # 2 conditions: 10 pairs of jobs of one item
    item_of = {j.id: j.item for j in study.jobs}
    for who in [f"P{k:02d}" for k in range(40)]:
        order = participant_order(study, who)
        assert sorted(order) == sorted(item_of)
        assert all(item_of[a] != item_of[b] for a, b in zip(order, order[1:])), who
    # where it cannot be helped (one item only), every job is still there
    one = make_study(n_items=1)
    assert sorted(participant_order(one, "Ann")) == sorted(j.id for j in one.jobs)


def test_slugs_are_safe_file_names_and_distinct() -> None:
    a, b = participant_slug("A/B"), participant_slug("A:B")
    assert "/" not in a and ":" not in b and a != b
    assert participant_slug("Zoë Smith").startswith("Zo_Smith-")
    with pytest.raises(StudyError, match="needs a name"):
        participant_slug("  ")


def test_a_sheet_saves_each_rating_at_once_and_resumes(tmp_path: Path) -> None:
    save_study(make_study(), tmp_path)
    study = load_study(tmp_path)
    sheet = RatingSheet(study, "Ann")
    assert sheet.order == participant_order(study, "Ann")
    assert sheet.total == 8 and sheet.done == 0
    first = sheet.next_unrated()
    assert first == sheet.order[0]
    sheet.rate(first, 7, seconds=3.25)
    on_disk = json.loads(sheet.path.read_text())
    assert on_disk["ratings"][first]["rating"] == 7
    assert on_disk["ratings"][first]["seconds"] == 3.25
    sheet.rate(sheet.next_unrated(), 2)
    again = RatingSheet(load_study(tmp_path), "Ann")
    assert again.order == sheet.order
    assert again.done == 2 and again.next_unrated() == sheet.order[2]
    # changing a rating replaces it
    again.rate(first, 9)
    assert RatingSheet(study, "Ann").rating_of(first) == 9
    ratings = load_ratings(study)
    assert sorted((r.job, r.rating) for r in ratings) == sorted([(first, 9), (sheet.order[1], 2)])
    assert {r.participant for r in ratings} == {"Ann"}


def test_all_rated_means_no_next_job(tmp_path: Path) -> None:
    save_study(make_study(1), tmp_path)
    sheet = RatingSheet(load_study(tmp_path), "Ann")
    for job in list(sheet.order):
        sheet.rate(job, 5)
    assert sheet.next_unrated() is None and sheet.done == sheet.total == 2


@pytest.mark.parametrize("bad", [0, 11, 5.5, "7", True, None])
def test_ratings_outside_one_to_ten_are_refused(tmp_path: Path, bad) -> None:
    save_study(make_study(1), tmp_path)
    sheet = RatingSheet(load_study(tmp_path), "Ann")
    with pytest.raises(StudyError, match="rating"):
        sheet.rate(sheet.order[0], bad)
    assert not sheet.path.exists()


def test_unknown_job_is_refused(tmp_path: Path) -> None:
    save_study(make_study(1), tmp_path)
    sheet = RatingSheet(load_study(tmp_path), "Ann")
    with pytest.raises(StudyError, match="no job"):
        sheet.rate("j999", 5)


def test_a_failed_save_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_study(make_study(1), tmp_path)
    sheet = RatingSheet(load_study(tmp_path), "Ann")
    sheet.rate(sheet.order[0], 4)

    def full_disk(*args, **kwargs):
        raise OSError(28, f"cannot write {sheet.path}: No space left on device")

    monkeypatch.setattr("samstudio.core.study.sheets.atomic_write_json", full_disk)
    with pytest.raises(OSError, match="No space"):
        sheet.rate(sheet.order[1], 8)
    with pytest.raises(OSError):
        sheet.rate(sheet.order[0], 9)
    assert sheet.rating_of(sheet.order[1]) is None
    assert sheet.rating_of(sheet.order[0]) == 4
    assert sheet.next_unrated() == sheet.order[1]


def test_ratings_files_of_another_study_or_corrupt_are_named(tmp_path: Path) -> None:
    save_study(make_study(2), tmp_path / "a")
    study = load_study(tmp_path / "a")
    sheet = RatingSheet(study, "Ann")
    sheet.rate(sheet.order[0], 6)
    doc = json.loads(sheet.path.read_text())
    doc["ratings"] = {"j999": {"rating": 3}}
    sheet.path.write_text(json.dumps(doc))
    with pytest.raises(StudyError, match="not in this study") as err:
        load_ratings(study)
    assert sheet.path.name in str(err.value)
    sheet.path.write_text('{"format": "samstudio-ratings", "order": [')
    with pytest.raises(StudyError, match="not valid JSON"):
        RatingSheet(study, "Ann")
    doc["ratings"] = {doc["order"][0]: {"rating": 12}}
    sheet.path.write_text(json.dumps(doc))
    with pytest.raises(StudyError, match="from 1 to 10"):
        load_ratings(study)
    doc["ratings"] = {doc["order"][0]: {"rating": 5, "seconds": "12 s"}}
    sheet.path.write_text(json.dumps(doc))
    with pytest.raises(StudyError, match="'seconds'") as err:
        load_ratings(study)
    assert str(sheet.path) in str(err.value)


def test_jobs_added_later_join_the_end_of_an_existing_order(tmp_path: Path) -> None:
    study = make_study(2)
    save_study(study, tmp_path)
    sheet = RatingSheet(load_study(tmp_path), "Ann")
    sheet.rate(sheet.order[0], 6)
    old = list(sheet.order)
    study.jobs.append(RatingJob("j100", "i0", "c1", encode_rle(_mask(20, 30, 0, 0, 3))))
    save_study(study, tmp_path)
    again = RatingSheet(load_study(tmp_path), "Ann")
    assert again.order[: len(old)] == old and again.order[-1] == "j100"


# ----------------------------------------------------------------- the queue (§E)
def queue_study(tmp_path: Path, k: int, n_items: int = 4) -> Study:
    study = make_study(n_items)
    study.ratings_per_job = k
    save_study(study, tmp_path)
    return load_study(tmp_path)


def test_ratings_per_job_round_trips_and_old_studies_are_mode_0(tmp_path: Path) -> None:
    study = queue_study(tmp_path, 2)
    assert study.ratings_per_job == 2
    assert json.loads((tmp_path / "study.json").read_text())["ratings_per_job"] == 2
    doc = json.loads((tmp_path / "study.json").read_text())
    del doc["ratings_per_job"]  # a study written before the setting existed
    (tmp_path / "study.json").write_text(json.dumps(doc))
    old = load_study(tmp_path)
    assert old.ratings_per_job == 0
    sheet = RatingSheet(old, "Ann")
    assert not sheet.queue and sheet.order == participant_order(old, "Ann")


@pytest.mark.parametrize("bad", [-1, 1.0, "1", True, None])
def test_bad_ratings_per_job_is_refused_naming_the_file(tmp_path: Path, bad) -> None:
    save_study(make_study(), tmp_path)
    path = tmp_path / "study.json"
    doc = json.loads(path.read_text())
    doc["ratings_per_job"] = bad
    path.write_text(json.dumps(doc))
    with pytest.raises(StudyError, match="ratings_per_job") as err:
        load_study(tmp_path)
    assert str(path) in str(err.value)
    study = make_study()
    study.ratings_per_job = bad
    with pytest.raises(StudyError, match="ratings_per_job"):
        save_study(study, tmp_path / "other")


def test_k1_jobs_rated_by_one_participant_leave_the_others_queue(tmp_path: Path) -> None:
    study = queue_study(tmp_path, 1)
    ann = RatingSheet(study, "Ann")
    assert ann.queue and ann.total == 8 and ann.done == 0
    rated = []
    for rating in (3, 5, 7):
        job = ann.next_unrated()
        ann.rate(job, rating)
        rated.append(job)
    assert ann.order[:3] == rated and ann.done == 3 and ann.total == 8
    saved = json.loads(ann.path.read_text())
    assert saved["order"] == participant_order(study, "Ann")  # their permutation

    bob = RatingSheet(study, "Bob")
    assert not set(rated) & set(bob.order)
    assert bob.total == 5 and bob.done == 0
    assert bob.order == [j for j in participant_order(study, "Bob") if j not in rated]
    assert bob.next_unrated() == bob.order[0]


def test_k1_alternating_participants_cover_every_job_exactly_once(tmp_path: Path) -> None:
    study = queue_study(tmp_path, 1, n_items=5)
    sheets = [RatingSheet(study, "Ann"), RatingSheet(study, "Bob")]
    for turn in range(20):
        sheet = sheets[turn % 2]
        sheet.refresh()
        job = sheet.next_unrated()
        if job is None:
            break
        sheet.rate(job, 6)
    for sheet in sheets:
        sheet.refresh()
        assert sheet.next_unrated() is None and sheet.total == sheet.done
    jobs = [r.job for r in load_ratings(study)]
    assert sorted(jobs) == sorted(j.id for j in study.jobs)  # each once
    assert {r.participant for r in load_ratings(study)} == {"Ann", "Bob"}


def test_k2_lets_two_participants_rate_every_job_but_not_a_third(tmp_path: Path) -> None:
    study = queue_study(tmp_path, 2, n_items=2)
    for who in ("Ann", "Bob"):
        sheet = RatingSheet(study, who)
        assert sheet.total == 4
        while (job := sheet.next_unrated()) is not None:
            sheet.rate(job, 8)
        assert sheet.done == 4
    ratings = load_ratings(study)
    assert len(ratings) == 8 and {r.participant for r in ratings} == {"Ann", "Bob"}
    cleo = RatingSheet(study, "Cleo")
    assert cleo.total == 0 and cleo.next_unrated() is None


def test_a_job_taken_meanwhile_may_still_be_rated(tmp_path: Path) -> None:
    study = queue_study(tmp_path, 1, n_items=2)
    ann, bob = RatingSheet(study, "Ann"), RatingSheet(study, "Bob")
    job = ann.next_unrated()
    bob.rate(job, 2)  # while Ann looks at it
    ann.rate(job, 9)
    assert ann.rating_of(job) == 9 and ann.order[0] == job
    assert sorted((r.participant, r.rating) for r in load_ratings(study) if r.job == job) == [
        ("Ann", 9),
        ("Bob", 2),
    ]


def test_a_malformed_file_of_another_participant_is_ignored_with_a_warning(
    tmp_path: Path,
) -> None:
    study = queue_study(tmp_path, 1)
    ann = RatingSheet(study, "Ann")
    ann.rate(ann.next_unrated(), 4)
    broken = tmp_path / "ratings" / "zed-00000000.json"
    broken.write_text('{"format": "samstudio-ratings", "order": [')
    bob = RatingSheet(study, "Bob")
    assert bob.total == 7  # Ann's rating still counts
    assert len(bob.warnings) == 1 and str(broken) in bob.warnings[0]
    assert "not valid JSON" in bob.warnings[0]
    bob.rate(bob.next_unrated(), 5)  # rating goes on
    assert bob.done == 1 and bob.warnings
    broken.unlink()
    bob.refresh()
    assert bob.warnings == []


def test_resuming_in_queue_mode_keeps_the_rated_jobs_first(tmp_path: Path) -> None:
    study = queue_study(tmp_path, 1)
    ann = RatingSheet(study, "Ann")
    bob = RatingSheet(study, "Bob")
    bob_jobs = list(reversed(bob.order[-3:]))  # rated in an order unlike his own
    for job in bob_jobs:
        bob.rate(job, 3)
    ann.rate(ann.next_unrated(), 7)
    again = RatingSheet(load_study(tmp_path), "Bob")
    assert again.order[:3] == bob_jobs
    assert again.done == 3 and again.total == 3 + 8 - 3 - 1
    assert again.next_unrated() == again.order[3]
    assert json.loads(again.path.read_text())["order"] == participant_order(study, "Bob")


def test_refresh_rereads_only_changed_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from samstudio.core.study import sheets as model

    study = queue_study(tmp_path, 1, n_items=6)
    others = [RatingSheet(study, who) for who in ("Ann", "Bob", "Cleo")]
    for sheet in others:
        sheet.rate(sheet.next_unrated(), 5)
    reads: list[str] = []
    real = model._read_sheet

    def counting(study_: Study, path: Path):  # noqa: ANN202
        reads.append(path.name)
        return real(study_, path)

    monkeypatch.setattr(model, "_read_sheet", counting)
    dan = RatingSheet(study, "Dan")
    assert sorted(reads) == sorted(s.path.name for s in others)  # each other file once
    reads.clear()
    dan.refresh()
    assert reads == []  # nothing changed
    dan.rate(dan.next_unrated(), 6)  # his own file changed: not read as another's
    assert reads == []
    others[1].rate(others[1].next_unrated(), 4)  # (Bob's sheet reads the others)
    reads.clear()
    dan.refresh()
    assert reads == [others[1].path.name]
    assert dan.total == 12 - 4 and dan.done == 1


def test_poll_refreshes_only_when_the_ratings_folder_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = queue_study(tmp_path, 1, n_items=2)
    ann = RatingSheet(study, "Ann")
    assert ann.folder_stamp() == ()  # no ratings yet
    refreshes: list[int] = []
    real = RatingSheet.refresh

    def counting(self: RatingSheet) -> None:
        refreshes.append(1)
        real(self)

    monkeypatch.setattr(RatingSheet, "refresh", counting)
    assert not ann.poll() and refreshes == []  # nothing changed: nothing read
    bob = RatingSheet(study, "Bob")
    for job in list(bob.order):
        bob.rate(job, 3)
    refreshes.clear()
    assert ann.poll() and len(refreshes) == 1  # Bob's file appeared
    assert ann.total == 0 and ann.next_unrated() is None
    assert not ann.poll() and len(refreshes) == 1
    bob.path.unlink()  # the person running the study discards Bob's ratings
    assert ann.poll() and ann.total == len(study.jobs) and ann.next_unrated() == ann.order[0]
    assert not RatingSheet(load_study(tmp_path), "Dan").poll()  # just refreshed
    save_study(make_study(2), tmp_path / "plain")
    plain = RatingSheet(load_study(tmp_path / "plain"), "Ann")
    (tmp_path / "plain" / "ratings").mkdir(exist_ok=True)
    (tmp_path / "plain" / "ratings" / "x.json").write_text("{}")
    assert not plain.poll()  # every participant rates every job: nothing to poll


def test_only_a_queue_study_needs_the_newer_format(tmp_path: Path) -> None:
    """A study without a queue stays readable by SAM Studio versions that know only
    format 1; a queue study is written as format 2, which they refuse rather than
    letting every participant rate every job."""
    save_study(make_study(), tmp_path / "plain")
    assert json.loads((tmp_path / "plain" / "study.json").read_text())["version"] == 1
    study = make_study()
    study.ratings_per_job = 1
    save_study(study, tmp_path / "queue")
    doc = json.loads((tmp_path / "queue" / "study.json").read_text())
    assert doc["version"] == 2
    doc["version"] = 3
    (tmp_path / "queue" / "study.json").write_text(json.dumps(doc))
    with pytest.raises(StudyError, match="newer than this SAM Studio"):
        load_study(tmp_path / "queue")
