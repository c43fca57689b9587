"""A rating study over several datasets (the paper rates 7 and reports each, §E, Fig. 9b,
Fig. 18, Table 8): the items' dataset field, sampling n_items per dataset, statistics and
figures per dataset, and `samstudio study create` with several `--coco`.

Expected per-dataset figures are computed here with numpy and scipy on that dataset's
ratings only, independently of `samstudio.core.study.stats`."""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats as sps
from test_study_build import FakeModel, picture, rect, run, scene_sources

from samstudio.cli.main import main
from samstudio.cli.study_stats import (
    DATASETS_PNG,
    HISTOGRAM_PNG,
    MEANS_PNG,
    dataset_histogram_name,
    register,
)
from samstudio.core.masks import encode_rle
from samstudio.core.study.build import build_study, eligible_masks
from samstudio.core.study.model import (
    Condition,
    RatingJob,
    Study,
    StudyError,
    StudyItem,
    load_study,
    save_study,
)
from samstudio.core.study.plots import dataset_means
from samstudio.core.study.sheets import RatingSheet, load_ratings
from samstudio.core.study.sources import StudySource
from samstudio.core.study.stats import analyse

CONDITIONS = [
    Condition("c1", "sam", "model"),
    Condition("c2", "sam_single", "single-output"),
    Condition("c3", "gt", "ground-truth"),
]
# dataset -> condition -> rating of each of its items (None: not rated). Opposite
# orders in the two datasets, so overall figures differ from either dataset's.
RATINGS: dict[str, dict[str, list[int | None]]] = {
    "lvis": {"c1": [9, 8, 9, 10, 7, 9], "c2": [5, 6, 4, 6, 5, 7], "c3": [8, 8, 9, 9, 8, None]},
    "ndd20": {"c1": [4, 3, 5, 4], "c2": [8, 9, 7, 9], "c3": [6, 7, 6, 6]},
}


def make_study(folder: Path, datasets: dict[str, int], interleave: bool = True) -> Study:
    """Items i000.. of the named datasets (n items each; interleaved in the item list
    when asked), one job per (item, condition), 8x8 masks; saved in `folder`."""
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    names = [name for name, n in datasets.items() for _ in range(n)]
    if interleave:
        names = _interleave(datasets)
    items = [
        StudyItem(f"i{i:03d}", f"images/i{i:03d}.png", (8, 8), point=(3.0, 3.0), dataset=d)
        for i, d in enumerate(names)
    ]
    jobs = [
        RatingJob(f"j{it.id}{c.id}", it.id, c.id, encode_rle(mask))
        for it in items
        for c in CONDITIONS
    ]
    study = Study("two datasets", list(CONDITIONS), items, jobs, seed=5)
    save_study(study, folder)
    return study


def _interleave(datasets: dict[str, int]) -> list[str]:
    left = dict(datasets)
    out: list[str] = []
    while any(left.values()):
        for name in datasets:
            if left[name]:
                out.append(name)
                left[name] -= 1
    return out


def items_of(study: Study, dataset: str) -> list[str]:
    return [it.id for it in study.items if it.dataset == dataset]


def rate_all(
    study: Study, participant: str, ratings: dict[str, dict[str, list[int | None]]]
) -> None:
    """Rate through a RatingSheet, as the app does: the k-th item of each dataset."""
    sheet = RatingSheet(study, participant)
    for dataset, by_cond in ratings.items():
        ids = items_of(study, dataset)
        for cond, values in by_cond.items():
            for item, value in zip(ids, values):
                if value is not None:
                    sheet.rate(f"j{item}{cond}", value, seconds=1.0)


# --- the study file -----------------------------------------------------------------


def test_the_dataset_round_trips_and_old_studies_load_unchanged(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", {"lvis": 2, "ndd20": 1})
    doc = json.loads((tmp_path / "s" / "study.json").read_text())
    assert doc["version"] == 1  # no new format version for the extra key
    assert [it["dataset"] for it in doc["items"]] == ["lvis", "ndd20", "lvis"]
    back = load_study(tmp_path / "s")
    assert back.items == study.items
    assert back.datasets() == ["lvis", "ndd20"]

    for it in doc["items"]:  # a study written before datasets existed
        del it["dataset"]
    (tmp_path / "s" / "study.json").write_text(json.dumps(doc))
    old = load_study(tmp_path / "s")
    assert [it.dataset for it in old.items] == ["", "", ""] and old.datasets() == [""]

    unnamed = make_study(tmp_path / "u", {"": 2})  # nothing written for no name
    items = json.loads((tmp_path / "u" / "study.json").read_text())["items"]
    assert all("dataset" not in it for it in items) and unnamed.datasets() == [""]


def test_a_dataset_that_is_not_a_name_is_refused_naming_the_file(tmp_path: Path) -> None:
    make_study(tmp_path, {"lvis": 1})
    path = tmp_path / "study.json"
    doc = json.loads(path.read_text())
    doc["items"][0]["dataset"] = ["lvis"]
    path.write_text(json.dumps(doc))
    with pytest.raises(StudyError, match=r"study\.json.*i000.*dataset"):
        load_study(tmp_path)


# --- building -----------------------------------------------------------------------


def named(sources: list[StudySource], dataset: str, prefix: str) -> list[StudySource]:
    return [
        StudySource(f"{prefix}{s.name}", s.size, s.masks, s.read_image, s.read_mask, dataset)
        for s in sources
    ]


def test_build_samples_n_items_from_each_dataset(tmp_path: Path) -> None:
    big = named(scene_sources(4), "coco", "a/")  # 12 eligible masks
    small = named(scene_sources(2), "lvis", "b/")  # 6 eligible masks
    assert sum(len(eligible_masks(s, 576, 2000)) for s in small) == 6
    sources = [big[0], small[0], big[1], big[2], small[1], big[3]]  # interleaved
    study = run(build_study(sources, [("fake", FakeModel())], tmp_path / "s", n_items=6))
    assert Counter(it.dataset for it in study.items) == {"coco": 6, "lvis": 6}
    for it in study.items:  # each item keeps its own source's dataset
        assert it.source_image.startswith("a/" if it.dataset == "coco" else "b/")
    # lvis has exactly 6 eligible masks: all of them are in (not 6 of 18 overall)
    lvis = {(it.source_image, it.source_annotation) for it in study.items if it.dataset == "lvis"}
    assert lvis == {(f"b/img{k}.png", 10 * k + j) for k in range(2) for j in (1, 2, 3)}
    assert len(study.jobs) == 12 * 2
    assert {j.item for j in study.jobs} == {it.id for it in study.items}
    back = load_study(tmp_path / "s")
    assert [it.dataset for it in back.items] == [it.dataset for it in study.items]


def test_one_named_dataset_samples_as_before(tmp_path: Path) -> None:
    plain = run(build_study(scene_sources(4), [], tmp_path / "a", n_items=5, seed=3))
    one = named(scene_sources(4), "coco", "")
    study = run(build_study(one, [], tmp_path / "b", n_items=5, seed=3))
    key = [(it.id, it.source_image, it.source_annotation) for it in study.items]
    assert key == [(it.id, it.source_image, it.source_annotation) for it in plain.items]
    assert {it.dataset for it in study.items} == {"coco"}
    assert {it.dataset for it in plain.items} == {""}


def test_a_dataset_with_too_few_masks_is_named(tmp_path: Path) -> None:
    sources = named(scene_sources(3), "coco", "a/") + named(scene_sources(1), "tiny", "b/")
    with pytest.raises(StudyError, match=r"only 3 mask\(s\) are eligible in dataset 'tiny'.*"
                       r"fewer than the 4 items asked for per dataset"):  # fmt: skip
        run(build_study(sources, [], tmp_path / "s", n_items=4))
    assert not (tmp_path / "s" / "study.json").exists()


def test_synthetic_sources_are_one_dataset_named_synthetic() -> None:
    from samstudio.core.study.sources import synthetic_sources

    assert synthetic_sources(1)[0].dataset == "synthetic"
    assert synthetic_sources(1, dataset="held-out")[0].dataset == "held-out"


# --- statistics ---------------------------------------------------------------------


def t_ci(x: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    half = sps.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)


def test_figures_per_dataset_match_an_independent_computation(tmp_path: Path) -> None:
    study = make_study(tmp_path, {"lvis": 6, "ndd20": 4})
    rate_all(study, "ann", RATINGS)
    rate_all(study, "bob", {"ndd20": {"c1": [6, None, None, None]}})  # job score (4+6)/2
    report = analyse(study, load_ratings(study), n_resamples=2000, seed=7)
    assert list(report.datasets) == ["lvis", "ndd20"]
    assert all(not part.datasets for part in report.datasets.values())

    scores = {d: {c: list(v) for c, v in by.items()} for d, by in RATINGS.items()}
    scores["ndd20"]["c1"][0] = 5.0  # mean of ann's 4 and bob's 6
    for dataset, part in report.datasets.items():
        n = len(items_of(study, dataset))
        assert part.jobs_total == 3 * n
        rated = sum(v is not None for vs in RATINGS[dataset].values() for v in vs)
        assert part.jobs_rated == rated
        assert part.participants == (2 if dataset == "ndd20" else 1)
        for summary in part.conditions:
            x = np.array([v for v in scores[dataset][summary.id] if v is not None], float)
            assert summary.n_jobs_total == n and summary.n_jobs_rated == x.size
            assert summary.mean == pytest.approx(x.mean())
            assert (summary.ci_low, summary.ci_high) == pytest.approx(t_ci(x))
        for pair in part.comparisons:
            xa, xb = scores[dataset][pair.a], scores[dataset][pair.b]
            both = [(a, b) for a, b in zip(xa, xb) if a is not None and b is not None]
            a = np.array([p[0] for p in both], float)
            b = np.array([p[1] for p in both], float)
            assert pair.n_pairs == len(both)
            assert pair.mean_diff == pytest.approx((a - b).mean())
            assert pair.p_value == pytest.approx(sps.ttest_rel(a, b).pvalue)
            boot = sps.bootstrap(
                (a, b),
                lambda u, v, axis=-1: np.mean(u - v, axis=axis),
                paired=True,
                vectorized=True,
                n_resamples=2000,
                confidence_level=0.99,
                method="percentile",
                rng=np.random.default_rng(7),
            ).confidence_interval
            assert (pair.ci_low, pair.ci_high) == pytest.approx((boot.low, boot.high))
    # the histogram of ndd20's c1 counts bob's rating too: 3, 4, 4, 5, 6
    ndd_c1 = report.datasets["ndd20"].conditions[0]
    assert ndd_c1.histogram == [0, 0, 1, 2, 1, 1, 0, 0, 0, 0]
    # lvis: SAM beats its single output; ndd20: the other way round
    assert report.datasets["lvis"].comparisons[0].mean_diff > 0
    assert report.datasets["ndd20"].comparisons[0].mean_diff < 0
    # the overall figures are those of all 10 items together
    everything = [v for d in ("lvis", "ndd20") for v in scores[d]["c1"] if v is not None]
    assert report.conditions[0].mean == pytest.approx(np.mean(everything))
    assert report.comparisons[0].n_pairs == 10


def test_one_dataset_gives_the_report_it_always_gave(tmp_path: Path) -> None:
    ratings = {"c1": [8, 9, 7, 9, 10], "c2": [6, 5, 6, 4, 5], "c3": [9, None, 8, None, 9]}
    named_study = make_study(tmp_path / "a", {"lvis": 5})
    plain = make_study(tmp_path / "b", {"": 5})
    rate_all(named_study, "ann", {"lvis": ratings})
    rate_all(plain, "ann", {"": ratings})
    a = analyse(named_study, load_ratings(named_study), n_resamples=500)
    b = analyse(plain, load_ratings(plain), n_resamples=500)
    assert a.datasets == {} and b.datasets == {}
    assert a.table() == b.table() and "=== dataset" not in a.table()
    assert a.to_json() == b.to_json() and "datasets" not in a.to_json()


def test_table_and_json_have_a_section_per_dataset(tmp_path: Path) -> None:
    study = make_study(tmp_path, {"lvis": 6, "ndd20": 4})
    rate_all(study, "ann", RATINGS)
    report = analyse(study, load_ratings(study), n_resamples=500)
    table = report.table()
    assert "datasets: 2 (lvis, ndd20)" in table
    overall, lvis_part = table.split("=== dataset: lvis ===")
    lvis_part, ndd_part = lvis_part.split("=== dataset: ndd20 ===")
    lvis, ndd = report.datasets["lvis"].conditions[0], report.datasets["ndd20"].conditions[0]
    assert f"({lvis.ci_low:.2f}, {lvis.ci_high:.2f})" in lvis_part
    assert f"({ndd.ci_low:.2f}, {ndd.ci_high:.2f})" in ndd_part
    assert "jobs rated: 17/18" in lvis_part and "jobs rated: 12/12" in ndd_part
    assert "jobs rated: 29/30" in overall and "sam - sam_single" in ndd_part

    doc = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert list(doc["datasets"]) == ["lvis", "ndd20"]
    assert doc["datasets"]["ndd20"]["conditions"][1]["mean"] == pytest.approx(8.25)
    assert doc["datasets"]["lvis"]["comparisons"][0]["n_pairs"] == 6
    assert doc["conditions"][0]["mean"] == pytest.approx((52 + 16) / 10)


# --- figures and the command line ---------------------------------------------------


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


def _pixels_like(px: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int((np.abs(px.astype(int) - np.array(rgb)).sum(axis=2) < 10).sum())


def test_dataset_means_draws_a_marker_per_condition_and_dataset(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", {"lvis": 6, "ndd20": 4})
    rate_all(study, "ann", RATINGS)
    report = analyse(study, load_ratings(study), n_resamples=200)
    path = dataset_means(report, tmp_path / "d.png")
    assert path == tmp_path / "d.png"
    px = _png(path)
    assert 400 <= px.shape[0] <= 1200 and 650 <= px.shape[1] <= 1600
    for colour in ((31, 119, 180), (255, 127, 14), (44, 160, 44)):  # the 3 conditions
        assert _pixels_like(px, colour) > 50
    green = _pixels_like(px, (44, 160, 44))  # gt: 2 markers, their error bars, the legend
    # without one condition's ratings there is no marker of its colour
    only = {d: {c: v for c, v in by.items() if c != "c3"} for d, by in RATINGS.items()}
    other = make_study(tmp_path / "o", {"lvis": 6, "ndd20": 4})
    rate_all(other, "ann", only)
    report = analyse(other, load_ratings(other), n_resamples=200)
    px = _png(dataset_means(report, tmp_path / "o.png"))
    assert _pixels_like(px, (44, 160, 44)) < green / 3  # the legend's marker only


def _stats(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    args = p.parse_args(argv)
    return int(args.func(args))


def test_cli_stats_plots_the_datasets_only_when_there_are_several(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = make_study(tmp_path / "two", {"lvis": 6, "ndd20": 4})
    rate_all(study, "ann", RATINGS)
    figs, out = tmp_path / "figs", tmp_path / "r.json"
    argv = ["stats", str(tmp_path / "two"), "--plots", str(figs), "--json", str(out)]
    assert _stats([*argv, "--resamples", "200"]) == 0
    printed = capsys.readouterr().out
    assert f"plot: {figs / DATASETS_PNG}" in printed and "=== dataset: ndd20 ===" in printed
    assert _png(figs / DATASETS_PNG).shape[0] >= 400
    assert list(json.loads(out.read_text())["datasets"]) == ["lvis", "ndd20"]
    # one rating histogram per dataset (the paper's Fig. 18), drawn from that dataset only
    lvis, ndd20 = (figs / dataset_histogram_name(n) for n in ("lvis", "ndd20"))
    assert f"plot: {lvis}" in printed and f"plot: {ndd20}" in printed
    assert not np.array_equal(_png(lvis), _png(ndd20))
    # the CSV export names each rating's dataset
    csv_path = tmp_path / "r.csv"
    assert _stats(["export", str(tmp_path / "two"), "--csv", str(csv_path)]) == 0
    with csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    items = {it.id: it.dataset for it in load_study(tmp_path / "two").items}
    assert rows and all(r["dataset"] == items[r["item"]] for r in rows)
    assert {r["dataset"] for r in rows} == {"lvis", "ndd20"}

    one = make_study(tmp_path / "one", {"lvis": 3})
    rate_all(one, "ann", {"lvis": {"c1": [8, 9, 7]}})
    assert _stats(["stats", str(tmp_path / "one"), "--plots", str(tmp_path / "f1")]) == 0
    assert DATASETS_PNG not in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "f1").iterdir()) == sorted([HISTOGRAM_PNG, MEANS_PNG])


def write_coco(folder: Path, n_images: int, seed: int) -> Path:
    """A COCO file of `n_images` 120x160 PNGs in `folder`, each with 3 eligible
    rectangles (polygons) and one too small."""
    folder.mkdir(parents=True)
    images, anns = [], []
    boxes = [(5, 5, 45, 45), (60, 10, 150, 40), (20, 60, 44, 84), (100, 70, 123, 93)]
    for k in range(n_images):
        Image.fromarray(picture((120, 160), seed + k)).save(folder / f"p{k}.png")
        images.append({"id": k + 1, "file_name": f"p{k}.png", "height": 120, "width": 160})
        for j, (x0, y0, x1, y1) in enumerate(boxes):
            assert rect((120, 160), x0, y0, x1, y1).sum() == (x1 - x0) * (y1 - y0)
            anns.append(
                {
                    "id": 100 * (k + 1) + j,
                    "image_id": k + 1,
                    "category_id": 1,
                    "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
                    "area": (x1 - x0) * (y1 - y0),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "iscrowd": 0,
                }
            )
    doc = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}
    path = folder / "instances.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """`study create` opens a FakeModel instead of a real one."""
    import samstudio.inference.loader as loader

    monkeypatch.setattr(loader, "open_model", lambda spec, device=None: FakeModel())


def test_cli_create_with_two_coco_datasets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_models: None
) -> None:
    a = write_coco(tmp_path / "a", 2, seed=0)  # 6 eligible masks
    b = write_coco(tmp_path / "b", 3, seed=10)  # 9 eligible masks, file stem "instances"
    out = tmp_path / "study"
    argv = ["study", "create", "--coco", f"Set A={a}", "--images", str(a.parent)]
    argv += ["--coco", str(b), "--images", str(b.parent), "--items", "4", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "items: 8" in printed and "datasets: 2 (Set A: 4 items, instances: 4 items)" in printed
    study = load_study(out)
    assert study.datasets() == ["Set A", "instances"]
    assert Counter(it.dataset for it in study.items) == {"Set A": 4, "instances": 4}
    for it in study.items:  # each item's image is its own dataset's picture
        folder = a.parent if it.dataset == "Set A" else b.parent
        with Image.open(folder / it.source_image) as src, Image.open(study.image_path(it)) as im:
            assert np.array_equal(np.asarray(src.convert("RGB")), np.asarray(im.convert("RGB")))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--coco", "A={a}", "--images", "{d}", "--coco", "A={a}"], "2 --coco but 1 --images"),
        (["--coco", "{a}", "--images", "{d}", "--coco", "{a}", "--images", "{d}"], "'instances'"),
        (["--coco", "A={a}", "--images", "{d}", "--coco", "A={a}", "--images", "{d}"], "'A'"),
        (["--coco", "={a}", "--images", "{d}"], "NAME=ANNOTATIONS.json"),
        (["--images", "{d}", "--synthetic", "2"], "--images goes with --coco"),
    ],
)
def test_cli_create_usage_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_models: None,
    extra: list[str],
    message: str,
) -> None:
    a = write_coco(tmp_path / "a", 1, seed=0)
    out = tmp_path / "study"
    argv = [x.format(a=a, d=a.parent) for x in extra]
    assert main(["study", "create", *argv, "--items", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err
    if "named" in err:
        assert "--coco NAME=ANNOTATIONS.json" in err
    assert not out.exists()
