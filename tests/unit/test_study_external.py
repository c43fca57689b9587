"""Masks from another tool as a study condition (`samstudio.core.study.external` and
`samstudio study prompts / add-masks`).

A small study is built by hand; "another tool" reads the prompts document and draws a
disc around each point (the box itself for a box item), written as RLE or as COCO
results with polygons, the way an outside code base would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samstudio.cli.main import main
from samstudio.core.masks import decode_rle, encode_rle
from samstudio.core.polygons import mask_to_polygons, polygons_to_mask
from samstudio.core.study.external import (
    MASKS_FORMAT,
    PROMPTS_FORMAT,
    add_condition,
    prompts_document,
    read_external_masks,
)
from samstudio.core.study.model import (
    Condition,
    RatingJob,
    Study,
    StudyError,
    StudyItem,
    load_study,
    save_study,
)
from samstudio.core.study.sheets import RatingSheet

N_ITEMS = 8
SIZES = [(40, 60), (50, 30)]  # (H, W), alternating


def make_study(folder: Path) -> Study:
    """N_ITEMS items (the last one a box), conditions c1 (model) and c2 (ground
    truth), jobs j0001..j0016 in a shuffled-looking order, saved in `folder`."""
    conditions = [
        Condition("c1", "model A", "model", "a.pth"),
        Condition("c2", "gt", "ground-truth"),
    ]
    items = []
    for k in range(N_ITEMS):
        h, w = SIZES[k % 2]
        if k == N_ITEMS - 1:
            items.append(StudyItem(f"i{k:04d}", f"images/i{k:04d}.png", (h, w), box=(3, 4, 20, 25)))
        else:
            items.append(
                StudyItem(f"i{k:04d}", f"images/i{k:04d}.png", (h, w), point=(10.0 + k, 12.0))
            )
    jobs = []
    rng = np.random.default_rng(1)
    pairs = [(it, c) for it in items for c in conditions]
    for n, p in enumerate(rng.permutation(len(pairs)), 1):
        it, c = pairs[p]
        m = np.zeros(it.size, bool)
        m[2:9, 3 : 9 + n % 4] = True
        jobs.append(RatingJob(f"j{n:04d}", it.id, c.id, encode_rle(m)))
    study = Study("external test", conditions, items, jobs, seed=7)
    save_study(study, folder)
    return study


def tool_mask(entry: dict[str, Any], radius: float = 6.0) -> np.ndarray:
    """What the other tool makes for one prompts entry: (height, width) bool, a disc
    around the point's pixel centre, or the box's pixels."""
    h, w = entry["height"], entry["width"]
    m = np.zeros((h, w), bool)
    if entry["point"] is not None:
        x, y = entry["point"]
        yy, xx = np.mgrid[:h, :w]
        m = (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
    else:
        x0, y0, x1, y1 = (int(v) for v in entry["box"])
        m[y0:y1, x0:x1] = True
    return m


def write_rle_masks(prompts: dict[str, Any], path: Path, skip: tuple[str, ...] = ()) -> dict:
    """The samstudio-study-masks form; returns item -> (H, W) bool as written."""
    written = {e["item"]: tool_mask(e) for e in prompts["items"] if e["item"] not in skip}
    doc = {"format": MASKS_FORMAT, "masks": {k: encode_rle(m) for k, m in written.items()}}
    path.write_text(json.dumps(doc))
    return written


def write_coco_polygons(prompts: dict[str, Any], path: Path, skip: tuple[str, ...] = ()) -> dict:
    """A COCO results list with polygons; returns item -> the polygons rasterised."""
    written, results = {}, []
    for e in prompts["items"]:
        if e["item"] in skip:
            continue
        # pixel-edge coordinates: the disc's centre is the point's pixel centre
        polys = mask_to_polygons(tool_mask(e, radius=7.5))
        written[e["item"]] = polygons_to_mask(polys, e["height"], e["width"])
        results.append({"item": e["item"], "segmentation": polys, "score": 0.9, "category_id": 1})
    path.write_text(json.dumps(results))
    return written


def new_jobs(study: Study, cond: str) -> list[RatingJob]:
    return [j for j in study.jobs if j.condition == cond]


def test_prompts_document_names_every_item_its_image_size_and_prompt(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s")
    doc = prompts_document(load_study(tmp_path / "s"))
    assert doc["format"] == PROMPTS_FORMAT and doc["version"] == 1
    assert doc["study"] == "external test" and "pixel" in doc["frame"]
    assert [e["item"] for e in doc["items"]] == [it.id for it in study.items]
    first, last = doc["items"][0], doc["items"][-1]
    assert first["image"] == str((tmp_path / "s" / "images" / "i0000.png").resolve())
    assert (first["width"], first["height"]) == (60, 40)
    assert first["point"] == [10.0, 12.0] and first["box"] is None
    assert last["point"] is None and last["box"] == [3.0, 4.0, 20.0, 25.0]
    assert (doc["items"][1]["width"], doc["items"][1]["height"]) == (30, 50)
    json.dumps(doc)  # plain JSON


def test_rle_masks_become_a_blinded_file_condition(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    before = make_study(folder)
    prompts = prompts_document(load_study(folder))
    written = write_rle_masks(prompts, tmp_path / "masks.json")

    found = read_external_masks(tmp_path / "masks.json", load_study(folder))
    assert found.missing == [] and found.warnings == []
    added = add_condition(load_study(folder), "RITM", found)
    back = load_study(folder)
    cond = back.conditions[-1]
    assert (cond.id, cond.name, cond.kind) == ("c3", "RITM", "file")
    assert cond.source == str(tmp_path / "masks.json")
    assert [c.name for c in added.conditions] == ["model A", "gt", "RITM"]

    jobs = new_jobs(back, "c3")
    assert sorted(j.item for j in jobs) == sorted(written)  # one job per item
    for j in jobs:
        np.testing.assert_array_equal(decode_rle(j.mask), written[j.item])
    ids = [j.id for j in back.jobs]
    assert len(set(ids)) == len(ids)
    assert sorted(j.id for j in jobs) == [f"j{n:04d}" for n in range(17, 17 + N_ITEMS)]
    # numbered after shuffling: by id, the items are not in the study's order
    by_id = [j.item for j in sorted(jobs, key=lambda j: j.id)]
    assert by_id != [it.id for it in back.items]
    # the jobs that were there are untouched
    assert back.jobs[: len(before.jobs)] == before.jobs


def test_coco_results_with_polygons_and_missing_items(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    make_study(folder)
    prompts = prompts_document(load_study(folder))
    path = tmp_path / "results.json"
    written = write_coco_polygons(prompts, path, skip=("i0002", "i0005"))

    found = read_external_masks(path, load_study(folder))
    assert found.missing == ["i0002", "i0005"]
    add_condition(load_study(folder), "baseline", found.masks, source="ritm_h18")
    back = load_study(folder)
    assert back.conditions[-1] == Condition("c3", "baseline", "file", "ritm_h18")
    jobs = new_jobs(back, "c3")
    assert sorted(j.item for j in jobs) == sorted(written)
    for j in jobs:
        np.testing.assert_array_equal(decode_rle(j.mask), written[j.item])
        assert written[j.item].sum() > 100


def test_an_existing_participant_gets_the_new_jobs_at_the_end(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    make_study(folder)
    sheet = RatingSheet(load_study(folder), "Ann")
    sheet.rate(sheet.order[0], 7)
    old_order = list(sheet.order)
    write_rle_masks(prompts_document(load_study(folder)), tmp_path / "m.json")
    found = read_external_masks(tmp_path / "m.json", load_study(folder))
    study_json = (folder / "study.json").read_text()

    with pytest.raises(StudyError, match="at the end of their orders") as err:
        add_condition(load_study(folder), "RITM", found)
    assert "'Ann'" in str(err.value) and "--after-ratings" in str(err.value)
    assert (folder / "study.json").read_text() == study_json  # nothing written

    add_condition(load_study(folder), "RITM", found, allow_after_ratings=True)
    back = load_study(folder)
    resumed = RatingSheet(back, "Ann")
    assert resumed.order[: len(old_order)] == old_order
    assert sorted(resumed.order[len(old_order) :]) == sorted(j.id for j in new_jobs(back, "c3"))
    assert resumed.rating_of(old_order[0]) == 7
    # a newcomer gets every job, the new condition's mixed among the others
    fresh = RatingSheet(back, "Bob").order
    assert sorted(fresh) == sorted(j.id for j in back.jobs)
    assert set(fresh[-N_ITEMS:]) != {j.id for j in new_jobs(back, "c3")}


def test_names_and_ids_of_several_added_conditions(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    make_study(folder)
    write_rle_masks(prompts_document(load_study(folder)), tmp_path / "m.json")
    found = read_external_masks(tmp_path / "m.json", load_study(folder))
    add_condition(load_study(folder), "RITM", found)
    for taken in ("RITM", " ritm ", "gt", "model A"):
        with pytest.raises(StudyError, match="already has a condition named"):
            add_condition(load_study(folder), taken, found)
    with pytest.raises(StudyError, match="needs a name"):
        add_condition(load_study(folder), "  ", found)
    add_condition(load_study(folder), "RITM again", found)
    back = load_study(folder)
    assert [c.id for c in back.conditions] == ["c1", "c2", "c3", "c4"]
    assert len({j.id for j in back.jobs}) == 2 * N_ITEMS + 2 * N_ITEMS
    # the two added conditions are shuffled differently
    order3 = [j.item for j in sorted(new_jobs(back, "c3"), key=lambda j: j.id)]
    order4 = [j.item for j in sorted(new_jobs(back, "c4"), key=lambda j: j.id)]
    assert order3 != order4


def _rle(h: int, w: int) -> dict[str, Any]:
    m = np.zeros((h, w), bool)
    m[1:5, 1:5] = True
    return encode_rle(m)


GOOD = _rle(40, 60)  # i0000's size


def _masks_doc(masks: dict[str, Any]) -> str:
    return json.dumps({"format": MASKS_FORMAT, "masks": masks})


@pytest.mark.parametrize(
    ("text", "item", "message"),
    [
        (_masks_doc({"i0099": GOOD}), "i0099", "is not in study"),
        (_masks_doc({"i0000": _rle(40, 61)}), "i0000", "the item image is 40 x 60"),
        (_masks_doc({"i0000": _rle(60, 40)}), "i0000", "height and width swapped"),
        (_masks_doc({"i0000": {"size": [40, 60], "counts": "??"}}), "i0000", "malformed RLE"),
        (_masks_doc({"i0000": {"size": [40, 60], "counts": [5, 3]}}), "i0000", "malformed RLE"),
        (_masks_doc({"i0000": {"counts": "abc"}}), "i0000", "malformed RLE"),
        (_masks_doc({"i0000": [[1, 2, 3]]}), "i0000", "malformed polygons"),
        (_masks_doc({"i0000": [[1, 2, 30, 2, 30, "x"]]}), "i0000", "malformed polygons"),
        (
            _masks_doc({"i0000": [[1, 2, 30, 2, 30, 20], [1, 2, 3, 4, 5]]}),
            "i0000",
            "malformed polygons",
        ),
        (_masks_doc({"i0000": 5}), "i0000", "an RLE or polygons"),
        (
            _masks_doc({"i0000": GOOD, "i0001": GOOD}).replace('"i0001"', '"i0000"'),
            "i0000",
            "more than one mask",
        ),
        (
            json.dumps([{"item": "i0000", "segmentation": GOOD}] * 2),
            "i0000",
            "more than one mask",
        ),
        (json.dumps([{"item": "i0042", "segmentation": GOOD}]), "i0042", "is not in study"),
        (json.dumps([{"item": "i0000"}]), "i0000", "no 'segmentation'"),
        (
            json.dumps([{"item": "i0000", "segmentation": _rle(40, 59)}]),
            "i0000",
            "the item image is 40 x 60",
        ),
    ],
)
def test_bad_masks_files_name_the_file_and_the_item(
    tmp_path: Path, text: str, item: str, message: str
) -> None:
    study = make_study(tmp_path / "s")
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(StudyError, match=message) as err:
        read_external_masks(path, study)
    assert str(path) in str(err.value) and repr(item) in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_masks_doc({"i0000": GOOD})[:-20], "not valid JSON"),
        ("", "not valid JSON"),
        (json.dumps({"masks": {}}), "not a masks file"),
        (json.dumps({"format": MASKS_FORMAT, "version": 9, "masks": {}}), "version 9"),
        (json.dumps({"format": MASKS_FORMAT, "masks": []}), "must map item ids"),
        (_masks_doc({}), "holds no mask"),
        (json.dumps([{"image_id": 3, "segmentation": GOOD}]), "'image_id'"),
        (json.dumps("masks"), "a JSON object or a COCO results list"),
    ],
)
def test_bad_masks_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    study = make_study(tmp_path / "s")
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(StudyError, match=message) as err:
        read_external_masks(path, study)
    assert str(path) in str(err.value)
    with pytest.raises(StudyError, match="no masks file"):
        read_external_masks(tmp_path / "absent.json", study)


def test_polygons_outside_the_image_are_clipped_with_a_warning(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s")
    path = tmp_path / "m.json"
    path.write_text(_masks_doc({"i0000": [[50, 30, 70, 30, 70, 50, 50, 50]], "i0001": []}))
    found = read_external_masks(path, study)
    assert decode_rle(found.masks["i0000"]).sum() == 10 * 10
    assert not decode_rle(found.masks["i0001"]).any()
    assert any("'i0000'" in w and "clipped" in w for w in found.warnings)
    assert any("'i0001'" in w and "empty mask" in w for w in found.warnings)


def test_add_condition_checks_masks_given_directly(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s")
    with pytest.raises(StudyError, match="'i0099' is not in study"):
        add_condition(study, "x", {"i0099": GOOD})
    with pytest.raises(StudyError, match="'i0001': its mask is"):
        add_condition(study, "x", {"i0001": GOOD})
    with pytest.raises(StudyError, match="no masks"):
        add_condition(study, "x", {})
    with pytest.raises(StudyError, match="no folder"):
        add_condition(Study("t", [], [], []), "x", {"i0000": GOOD})


# --- the CLI --------------------------------------------------------------------------


def test_cli_prompts_then_add_masks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "s"
    make_study(folder)
    out = tmp_path / "prompts.json"
    assert main(["study", "prompts", str(folder), "--out", str(out)]) == 0
    assert f"{N_ITEMS} item(s)" in capsys.readouterr().out
    prompts = json.loads(out.read_text())
    assert prompts["format"] == PROMPTS_FORMAT and len(prompts["items"]) == N_ITEMS

    masks = tmp_path / "ritm.json"
    write_coco_polygons(prompts, masks, skip=("i0003",))
    # a file without a mask for some items is refused unless --partial
    assert main(["study", "add-masks", str(folder), "--name", "RITM", str(masks)]) == 1
    err = capsys.readouterr().err
    assert str(masks) in err and f"no mask for 1 of the study's {N_ITEMS} items (i0003)" in err
    assert "--partial" in err and len(load_study(folder).conditions) == 2  # nothing added
    argv = ["study", "add-masks", str(folder), "--name", "RITM", str(masks), "--partial"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "c3 ('RITM', kind file)" in text
    assert f"jobs added: {N_ITEMS - 1}" in text
    assert "items without a mask: 1 (i0003)" in text
    assert len(new_jobs(load_study(folder), "c3")) == N_ITEMS - 1

    # the same name again, a bad file, a missing study: error on stderr, rc 1
    assert main(argv) == 1
    assert capsys.readouterr().err.startswith("error: ")
    masks.write_text(masks.read_text()[:50])
    assert main(["study", "add-masks", str(folder), "--name", "other", str(masks)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(masks) in err and "not valid JSON" in err
    assert main(["study", "prompts", str(tmp_path / "none"), "--out", str(out)]) == 1
    assert "error: " in capsys.readouterr().err


def test_cli_after_ratings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "s"
    make_study(folder)
    sheet = RatingSheet(load_study(folder), "Ann")
    sheet.rate(sheet.order[0], 5)
    masks = tmp_path / "m.json"
    write_rle_masks(prompts_document(load_study(folder)), masks)
    argv = ["study", "add-masks", str(folder), "--name", "RITM", str(masks)]
    assert main(argv) == 1
    assert "already rated" in capsys.readouterr().err
    assert main([*argv, "--after-ratings"]) == 0
    assert "c3 ('RITM', kind file)" in capsys.readouterr().out


def test_stats_compare_the_added_condition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "s"
    make_study(folder)
    masks = tmp_path / "m.json"
    write_rle_masks(prompts_document(load_study(folder)), masks)
    assert main(["study", "add-masks", str(folder), "--name", "RITM", str(masks)]) == 0
    study = load_study(folder)
    sheet = RatingSheet(study, "Ann")
    scores = {"c1": 8, "c2": 9, "c3": 5}
    for k, job in enumerate(study.jobs):
        sheet.rate(job.id, scores[job.condition] - (k % 2))
    report = tmp_path / "report.json"
    argv = ["study", "stats", str(folder), "--json", str(report), "--resamples", "200"]
    assert main(argv) == 0
    assert "RITM" in capsys.readouterr().out
    doc = json.loads(report.read_text())
    assert [c["name"] for c in doc["conditions"]] == ["model A", "gt", "RITM"]
    pairs = {(c["a_name"], c["b_name"]): c for c in doc["comparisons"]}
    assert set(pairs) == {("model A", "gt"), ("model A", "RITM"), ("gt", "RITM")}
    assert pairs[("model A", "RITM")]["n_pairs"] == N_ITEMS
    assert pairs[("model A", "RITM")]["mean_diff"] > 2


def test_added_masks_keep_a_queue_study_a_queue(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    study = make_study(folder)
    study.ratings_per_job = 2
    save_study(study, folder)
    assert json.loads((folder / "study.json").read_text())["version"] == 2
    prompts = prompts_document(load_study(folder))
    write_rle_masks(prompts, tmp_path / "masks.json")
    found = read_external_masks(tmp_path / "masks.json", load_study(folder))
    add_condition(load_study(folder), "RITM", found)
    back = load_study(folder)
    assert back.ratings_per_job == 2
    assert json.loads((folder / "study.json").read_text())["version"] == 2
