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
    RatingSheet,
    Study,
    StudyError,
    StudyItem,
    load_ratings,
    load_study,
    participant_order,
    participant_slug,
    save_study,
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

    monkeypatch.setattr("samstudio.core.study.model.atomic_write_json", full_disk)
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
