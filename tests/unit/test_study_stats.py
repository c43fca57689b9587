"""The rating study's statistics, plots and CLI (`samstudio study stats/export`).

Studies are built by hand with tiny masks and rated through `RatingSheet`, the way the
app writes ratings; expected figures are computed by hand or independently of the code
under test."""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats as sps

from samstudio.cli.study_stats import HISTOGRAM_PNG, MEANS_PNG, register
from samstudio.core.masks import encode_rle
from samstudio.core.study.model import (
    Condition,
    RatingJob,
    Study,
    StudyError,
    StudyItem,
    save_study,
)
from samstudio.core.study.plots import mean_ratings, rating_histograms
from samstudio.core.study.sheets import Rating, RatingSheet, load_ratings
from samstudio.core.study.stats import analyse, rater_consistency

T_975_DF4 = 2.7764451051977987  # Student t quantile 0.975, 4 degrees of freedom (tables)
CONDITIONS = [
    Condition("c1", "sam", "model"),
    Condition("c2", "sam_single", "single-output"),
    Condition("c3", "gt", "ground-truth"),
]


def job_id(item: int, cond: str) -> str:
    return f"j{item:03d}{cond}"


def make_study(folder: Path, n_items: int, conditions: list[Condition] = CONDITIONS) -> Study:
    """n_items items (8x8 images), one job per (item, condition), saved in `folder`."""
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    items = [
        StudyItem(
            f"i{i:03d}",
            f"images/i{i:03d}.png",
            (8, 8),
            point=(3.0, 3.0),
            source_image=f"img{i}.jpg",
            source_annotation=100 + i,
        )
        for i in range(n_items)
    ]
    jobs = [
        RatingJob(job_id(i, c.id), f"i{i:03d}", c.id, encode_rle(mask))
        for i in range(n_items)
        for c in conditions
    ]
    study = Study("toy study", list(conditions), items, jobs, seed=3)
    save_study(study, folder)
    return study


def rate(study: Study, participant: str, scores: dict[str, list[int | None]]) -> None:
    """scores: condition id -> the rating of each item (None: not rated)."""
    sheet = RatingSheet(study, participant)
    for cond, values in scores.items():
        for i, value in enumerate(values):
            if value is not None:
                sheet.rate(job_id(i, cond), value, seconds=2.5)


@pytest.fixture
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_condition_mean_ci_and_histogram(tmp_path: Path) -> None:
    study = make_study(tmp_path, 5)
    rate(study, "ann", {"c1": [6, 7, 8, 9, 10], "c2": [5, 5, 5, 5, 5], "c3": [4, None, 4, 4, 4]})
    report = analyse(study, load_ratings(study))
    c1, c2, c3 = report.conditions
    assert (c1.id, c1.name, c1.kind) == ("c1", "sam", "model")
    assert c1.mean == pytest.approx(8.0)
    sd = math.sqrt(2.5)  # deviations -2..2: (4+1+0+1+4)/4
    assert c1.std == pytest.approx(sd)
    half = T_975_DF4 * sd / math.sqrt(5)
    assert (c1.ci_low, c1.ci_high) == pytest.approx((8 - half, 8 + half), abs=1e-9)
    assert c1.histogram == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert (c1.n_ratings, c1.n_jobs_rated, c1.n_jobs_total) == (5, 5, 5)
    # equal scores: a zero-width interval, not NaN
    assert (c2.mean, c2.ci_low, c2.ci_high) == (5.0, 5.0, 5.0)
    assert c2.histogram[4] == 5 and sum(c2.histogram) == 5
    assert (c3.n_jobs_rated, c3.n_jobs_total) == (4, 5)
    assert (report.jobs_rated, report.jobs_total) == (14, 15)
    assert report.progress == pytest.approx(14 / 15)
    assert (report.participants, report.n_ratings) == (1, 14)


def test_confidence_level_widens_interval(tmp_path: Path) -> None:
    study = make_study(tmp_path, 5)
    rate(study, "ann", {"c1": [6, 7, 8, 9, 10]})
    ratings = load_ratings(study)
    c95 = analyse(study, ratings).conditions[0]
    c99 = analyse(study, ratings, confidence=0.99).conditions[0]
    t_99 = sps.t.ppf(0.995, 4)
    assert c99.ci_high - c99.mean == pytest.approx(t_99 * math.sqrt(2.5) / math.sqrt(5))
    assert c99.ci_high - c99.ci_low > c95.ci_high - c95.ci_low


def test_several_raters_average_per_job_and_pairing_by_item(tmp_path: Path) -> None:
    study = make_study(tmp_path, 4)
    rate(study, "ann", {"c1": [6, 8, 9, 7], "c2": [5, 6, None, 4]})
    rate(study, "bob", {"c1": [9, None, None, None]})  # job (i0, c1): 6 and 9 -> 7.5
    report = analyse(study, load_ratings(study))
    c1 = report.conditions[0]
    assert c1.n_ratings == 5 and c1.n_jobs_rated == 4
    # mean of job scores (7.5, 8, 9, 7), not of the 5 ratings (7.8)
    assert c1.mean == pytest.approx((7.5 + 8 + 9 + 7) / 4)
    assert c1.histogram == [0, 0, 0, 0, 0, 1, 1, 1, 2, 0]
    assert report.participants == 2
    pair = next(p for p in report.comparisons if (p.a, p.b) == ("c1", "c2"))
    # item i002 has no rated c2 job: left out of this pair only
    assert pair.n_pairs == 3
    assert pair.mean_a == pytest.approx((7.5 + 8 + 7) / 3)
    assert pair.mean_b == pytest.approx(5.0)
    assert pair.mean_diff == pytest.approx(pair.mean_a - pair.mean_b)
    # c3 has no ratings: no pairs, NaN everywhere, no crash
    empty = next(p for p in report.comparisons if (p.a, p.b) == ("c1", "c3"))
    assert empty.n_pairs == 0 and math.isnan(empty.p_value) and math.isnan(empty.ci_low)


def test_paired_t_test_matches_independent_computation(tmp_path: Path, no_warnings: None) -> None:
    study = make_study(tmp_path, 5)
    a = [8, 9, 9, 7, 10]
    b = [7, 7, 6, 6, 7]  # differences 1, 2, 3, 1, 3: mean 2, sd 1
    rate(study, "ann", {"c1": a, "c2": b})
    report = analyse(study, load_ratings(study), pairs=[("c1", "c2"), ("c2", "c1")])
    ab, ba = report.comparisons
    t_hand = 2.0 / (1.0 / math.sqrt(5))
    assert ab.t == pytest.approx(t_hand)
    assert ab.p_value == pytest.approx(2 * sps.t.sf(t_hand, 4))
    assert ab.p_value_greater == pytest.approx(sps.t.sf(t_hand, 4))
    assert ab.p_value_greater == pytest.approx(ab.p_value / 2)
    assert (ab.a_name, ab.b_name, ab.n_pairs, ab.mean_diff) == ("sam", "sam_single", 5, 2.0)
    # the reversed pair: same two-sided p, opposite sign, one-sided p near 1
    assert ba.t == pytest.approx(-t_hand) and ba.p_value == pytest.approx(ab.p_value)
    assert ba.p_value_greater == pytest.approx(1 - ab.p_value_greater)
    assert ba.mean_diff == -2.0


def _ratings_for(study: Study, a: list[int], b: list[int]) -> list[Rating]:
    return [Rating("ann", job_id(i, "c1"), v) for i, v in enumerate(a)] + [
        Rating("ann", job_id(i, "c2"), v) for i, v in enumerate(b)
    ]


def test_bootstrap_ci_excludes_zero_for_a_clear_difference(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 40
    study = make_study(tmp_path, n)
    a = rng.integers(7, 11, n).tolist()
    b = rng.integers(3, 7, n).tolist()
    report = analyse(study, _ratings_for(study, a, b), pairs=[("c1", "c2")], n_resamples=5000)
    p = report.comparisons[0]
    d = np.array(a, float) - np.array(b, float)
    assert 0 < p.ci_low < d.mean() < p.ci_high
    assert p.p_value < 1e-10 and p.confidence == 0.99 and p.n_resamples == 5000
    # against a plain numpy percentile bootstrap of the differences
    idx = np.random.default_rng(123).integers(0, n, (20_000, n))
    boot = d[idx].mean(axis=1)
    low, high = np.percentile(boot, [0.5, 99.5])
    assert p.ci_low == pytest.approx(low, abs=0.12)
    assert p.ci_high == pytest.approx(high, abs=0.12)


def test_bootstrap_ci_includes_zero_without_difference_and_is_seeded(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n = 30
    study = make_study(tmp_path, n)
    a = rng.integers(4, 9, n).tolist()
    b = list(a)
    for i in range(0, n, 2):  # differences +1, -1, +1, -1, ...: mean 0
        b[i] = a[i] + 1 if i % 4 == 0 else a[i] - 1
    b[1::2] = a[1::2]
    ratings = _ratings_for(study, a, b)
    p1 = analyse(study, ratings, pairs=[("c1", "c2")], seed=5).comparisons[0]
    p2 = analyse(study, ratings, pairs=[("c1", "c2")], seed=5).comparisons[0]
    assert p1.ci_low < 0 < p1.ci_high
    assert p1.p_value > 0.5
    assert (p1.ci_low, p1.ci_high) == (p2.ci_low, p2.ci_high)
    # the seed drives the resampling (the bounds are multiples of 1/30: use few resamples)
    cis = set()
    for seed in range(6):
        p = analyse(study, ratings, pairs=[("c1", "c2")], seed=seed, n_resamples=50)
        cis.add((p.comparisons[0].ci_low, p.comparisons[0].ci_high))
    assert len(cis) > 1


def test_degenerate_pairs_give_sensible_values_without_warnings(
    tmp_path: Path, no_warnings: None
) -> None:
    study = make_study(tmp_path, 4)
    same = analyse(
        study, _ratings_for(study, [5, 6, 7, 8], [5, 6, 7, 8]), pairs=[("c1", "c2")]
    ).comparisons[0]
    assert (same.t, same.p_value, same.p_value_greater) == (0.0, 1.0, 1.0)
    assert (same.ci_low, same.ci_high) == (0.0, 0.0)
    shifted = analyse(
        study,
        _ratings_for(study, [7, 8, 9, 10], [5, 6, 7, 8]),
        pairs=[
            (
                "c1",
                "c2",
            )
        ],
    ).comparisons[0]
    assert shifted.t == math.inf and shifted.p_value == 0.0 and shifted.p_value_greater == 0.0
    assert (shifted.ci_low, shifted.ci_high) == (2.0, 2.0)
    worse = analyse(
        study, _ratings_for(study, [7, 8, 9, 10], [5, 6, 7, 8]), pairs=[("c2", "c1")]
    ).comparisons[0]
    assert worse.t == -math.inf and worse.p_value_greater == 1.0
    one = analyse(study, _ratings_for(study, [7], [5]), pairs=[("c1", "c2")])
    pair, c1 = one.comparisons[0], one.conditions[0]
    assert pair.n_pairs == 1 and pair.mean_diff == 2.0
    assert all(math.isnan(v) for v in (pair.t, pair.p_value, pair.ci_low, pair.ci_high))
    assert c1.mean == 7.0 and math.isnan(c1.std) and math.isnan(c1.ci_low)
    empty = analyse(study, [])
    assert math.isnan(empty.conditions[0].mean) and empty.conditions[0].histogram == [0] * 10
    assert empty.jobs_rated == 0 and empty.progress == 0.0


def test_rater_consistency(tmp_path: Path) -> None:
    study = make_study(tmp_path, 3)
    rate(study, "ann", {"c1": [6, 7, 5]})
    rate(study, "bob", {"c1": [9, 7, None]})
    rate(study, "cat", {"c1": [None, 10, None]})
    ratings = load_ratings(study)
    cons = rater_consistency(ratings)
    # job i000: 6, 9 -> sd 2.1213; job i001: 7, 7, 10 -> sd sqrt(3); i002 has one rating
    assert cons.n_jobs == 2
    assert cons.mean_std == pytest.approx((math.sqrt(4.5) + math.sqrt(3.0)) / 2)
    assert analyse(study, ratings).consistency == cons
    none = rater_consistency([Rating("ann", job_id(0, "c1"), 5)])
    assert none.n_jobs == 0 and math.isnan(none.mean_std)


def test_rating_of_unknown_job_names_it(tmp_path: Path) -> None:
    study = make_study(tmp_path, 2)
    with pytest.raises(StudyError, match="j999zz"):
        analyse(study, [Rating("ann", "j999zz", 5)])
    with pytest.raises(StudyError, match="c9"):
        analyse(study, [], pairs=[("c1", "c9")])
    with pytest.raises(ValueError, match="confidence"):
        analyse(study, [], confidence=95)


def test_json_is_plain_and_round_trips(tmp_path: Path) -> None:
    study = make_study(tmp_path, 4)
    rate(study, "ann", {"c1": [8, 9, 7, 9], "c2": [6, 5, 6, 4], "c3": [9, None, None, None]})
    report = analyse(study, load_ratings(study), n_resamples=2000)
    text = json.dumps(report.to_json(), allow_nan=False)  # raises on a NaN token
    back = json.loads(text)
    assert back["ratings"] == 9 and back["jobs_total"] == 12 and back["jobs_rated"] == 9
    assert back["progress"] == pytest.approx(0.75)
    by_id = {c["id"]: c for c in back["conditions"]}
    assert by_id["c1"]["mean"] == pytest.approx(8.25)
    assert by_id["c1"]["histogram"] == [0, 0, 0, 0, 0, 0, 1, 1, 2, 0]
    assert by_id["c3"]["ci_low"] is None and by_id["c3"]["std"] is None
    pairs = {(p["a"], p["b"]): p for p in back["comparisons"]}
    assert set(pairs) == {("c1", "c2"), ("c1", "c3"), ("c2", "c3")}
    assert pairs[("c1", "c3")]["p_value"] is None and pairs[("c1", "c3")]["n_pairs"] == 1
    assert pairs[("c1", "c2")]["p_value"] == pytest.approx(report.comparisons[0].p_value)
    assert back["consistency"] == {"mean_std": None, "n_jobs": 0}


def test_table_is_unblinded_and_shows_the_figures(tmp_path: Path) -> None:
    study = make_study(tmp_path, 5)
    rate(study, "ann", {"c1": [6, 7, 8, 9, 10], "c2": [5, 5, 6, 5, 5]})
    table = analyse(study, load_ratings(study), n_resamples=1000).table()
    assert "sam_single" in table and "ground-truth" in table
    half = T_975_DF4 * math.sqrt(2.5) / math.sqrt(5)
    assert f"({8 - half:.2f}, {8 + half:.2f})" in table
    assert "sam - sam_single" in table
    assert "5/5" in table and "10/15" in table


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


def test_plots_are_real_pngs(tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", 6)
    rate(study, "ann", {"c1": [8, 9, 9, 7, 10, 9], "c2": [5, 6, 4, 6, 5, 7], "c3": [9] * 6})
    report = analyse(study, load_ratings(study), n_resamples=1000)
    out = tmp_path / "plots"
    out.mkdir()
    hist = rating_histograms(report, out / "h.png")
    means = mean_ratings(report, out / "m.png")
    assert (hist, means) == (out / "h.png", out / "m.png")
    c0 = np.array([31, 119, 180])  # matplotlib's first colour: the first condition's bars
    for path in (hist, means):
        px = _png(path)
        h, w, _ = px.shape
        assert 300 <= h <= 1200 and 400 <= w <= 1600
        assert (np.abs(px.astype(int) - c0).sum(axis=2) < 10).sum() > 100
        assert len(np.unique(px.reshape(-1, 3), axis=0)) > 20
    assert sorted(p.name for p in out.iterdir()) == ["h.png", "m.png"]  # no temp files left
    # a study with no ratings still draws (empty bars, no markers)
    empty = analyse(study, [])
    assert _png(rating_histograms(empty, out / "e.png")).shape[0] > 300
    assert _png(mean_ratings(empty, out / "e2.png")).shape[0] > 300


def _cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    register(sub)
    args = p.parse_args(argv)
    return int(args.func(args))


def test_cli_stats_writes_json_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "study"
    study = make_study(folder, 5)
    rate(study, "ann", {"c1": [8, 9, 9, 7, 10], "c2": [5, 6, 4, 6, 5]})
    out, plots = tmp_path / "report.json", tmp_path / "figs"
    argv = ["stats", str(folder), "--json", str(out), "--plots", str(plots)]
    rc = _cli(argv + ["--resamples", "500", "--seed", "4", "--confidence", "0.9"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "sam_single" in printed and str(plots / HISTOGRAM_PNG) in printed
    doc = json.loads(out.read_text())
    assert doc["confidence"] == 0.9 and doc["comparisons"][0]["n_resamples"] == 500
    assert doc["comparisons"][0]["seed"] == 4
    assert doc["conditions"][0]["mean"] == pytest.approx(8.6)
    for name in (HISTOGRAM_PNG, MEANS_PNG):
        assert _png(plots / name).size > 0


def test_cli_stats_rejects_bad_options(tmp_path: Path) -> None:
    make_study(tmp_path, 2)
    for bad in (["--confidence", "95"], ["--resamples", "0"]):
        with pytest.raises(SystemExit):
            _cli(["stats", str(tmp_path), *bad])


def test_cli_stats_corrupt_study_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_study(tmp_path, 2)
    path = tmp_path / "study.json"
    path.write_text(path.read_text()[:50])
    assert _cli(["stats", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err
    assert _cli(["export", str(tmp_path), "--csv", str(tmp_path / "x.csv")]) == 1
    assert str(path) in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_cli_export_one_row_per_rating(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = make_study(tmp_path / "s", 2)
    rate(study, "ann", {"c1": [8, 9], "c3": [10, None]})
    rate(study, "bob, the second", {"c1": [6, None]})
    out = tmp_path / "ratings.csv"
    assert _cli(["export", str(tmp_path / "s"), "--csv", str(out)]) == 0
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert list(rows[0]) == [
        "participant", "job", "item", "condition", "condition_name", "kind", "rating",
        "seconds", "time", "source_image", "source_annotation", "dataset",
    ]  # fmt: skip
    got = {(r["participant"], r["job"]): r for r in rows}
    row = got[("bob, the second", job_id(0, "c1"))]
    assert (row["item"], row["condition"], row["condition_name"], row["kind"]) == (
        "i000",
        "c1",
        "sam",
        "model",
    )
    assert (row["rating"], row["seconds"], row["source_image"], row["source_annotation"]) == (
        "6",
        "2.5",
        "img0.jpg",
        "100",
    )
    assert row["time"].startswith("20")
    assert got[("ann", job_id(0, "c3"))]["kind"] == "ground-truth"
    assert "4 ratings" in capsys.readouterr().out


def test_cli_module_imports_only_the_standard_library() -> None:
    code = (
        "import sys, samstudio.cli.study_stats; "
        "print(sorted(m for m in ('numpy', 'scipy', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_cli_stats_leaves_out_a_damaged_sheet_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by review: one participant's truncated ratings file stopped all of `stats`."""
    folder = tmp_path / "study"
    study = make_study(folder, 5)
    rate(study, "ann", {"c1": [8, 9, 9, 7, 10], "c2": [5, 6, 4, 6, 5]})
    broken = folder / "ratings" / "zed-00000000.json"
    broken.write_text('{"format": "samstudio-ratings", "order": [')
    assert _cli(["stats", str(folder), "--resamples", "200"]) == 1
    captured = capsys.readouterr()
    assert "sam_single" in captured.out  # the figures of the readable sheets
    assert f"warning: left out: {broken}" in captured.err
    assert "1 rating sheet(s) left out" in captured.err
    # export still refuses (it must list every rating or none)
    assert _cli(["export", str(folder), "--csv", str(tmp_path / "x.csv")]) == 1
    assert str(broken) in capsys.readouterr().err
