"""Statistics of a rating study: the figures of the paper's §7.1, §E and Table 8.

* Per condition: the mean rating with a t confidence interval (95% by default) and the
  histogram of the ratings 1..10 (Fig. 11, Fig. 18).
* Per pair of conditions (a, b): a paired t-test of a's scores against b's (two-sided and
  one-sided a > b, the paper's hypotheses) and a paired bootstrap confidence interval
  (99% by default, 10,000 resamples) of the difference of means a - b (Table 8).
* Rater consistency: over the jobs rated by two participants or more, the mean of the
  standard deviations of their ratings (the paper's 0.83 over five annotators).
* Per dataset (when the study's items come from several, `StudyItem.dataset`): all of the
  above again on each dataset's items and their jobs only, as the paper reports each of
  its 7 datasets (Fig. 9b, Fig. 18, Table 8), besides the figures over all items.

Scores. A job's score is the mean of its ratings (one per participant who rated it);
a condition's mean, std and CI are over the scores of its rated jobs. Pairs are made by
item: an item counts in the comparison of a and b when both conditions have a rated job
for it; a condition's score for an item is the mean of the scores of its rated jobs for
that item (in a study built by `build` there is one). Jobs nobody rated count nowhere
but in `n_jobs_total` and the progress.

Undefined figures are NaN (None in `to_json`): the CI of fewer than two scores, the test
and bootstrap of fewer than two pairs, the consistency of a study where no job has two
ratings.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as sps

from samstudio.core.study.model import MAX_RATING, MIN_RATING, Study, StudyError
from samstudio.core.study.sheets import Rating

NAN = float("nan")
BOOTSTRAP_METHOD = "percentile"
# relative spread under which the paired differences count as constant (scipy's t-test
# and bootstrap then return NaN with warnings; we give the limit values instead)
_CONSTANT_TOL = 1e-9


@dataclass(frozen=True)
class ConditionSummary:
    """One condition's ratings. `mean`, `std` (ddof=1) and the t interval
    [`ci_low`, `ci_high`] at `confidence` are over the per-job scores of the
    `n_jobs_rated` rated jobs; `histogram[k]` counts the individual ratings equal to
    k + 1 (10 counts, ratings 1..10)."""

    id: str
    name: str
    kind: str
    n_ratings: int
    n_jobs_rated: int
    n_jobs_total: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float
    histogram: list[int]


@dataclass(frozen=True)
class PairedComparison:
    """Condition `a` against condition `b` over the `n_pairs` items both have a rated
    job for. `mean_diff` = `mean_a` - `mean_b`. `t` and `p_value` are the paired t-test
    (two-sided), `p_value_greater` its one-sided version (alternative: a > b).
    [`ci_low`, `ci_high`] is the paired bootstrap (`method`) interval of the mean
    difference at `confidence`, from `n_resamples` resamples drawn with `seed`."""

    a: str
    a_name: str
    b: str
    b_name: str
    n_pairs: int
    mean_a: float
    mean_b: float
    mean_diff: float
    t: float
    p_value: float
    p_value_greater: float
    ci_low: float
    ci_high: float
    confidence: float
    n_resamples: int
    seed: int
    method: str = BOOTSTRAP_METHOD


@dataclass(frozen=True)
class RaterConsistency:
    """Mean over the `n_jobs` jobs rated by >= 2 participants of the standard deviation
    (ddof=1) of each job's ratings; NaN when there is no such job."""

    mean_std: float
    n_jobs: int


@dataclass
class StudyReport:
    """Everything `analyse` computes. `progress` = `jobs_rated` / `jobs_total`
    (jobs rated at least once). `datasets`: when the study's items come from more than
    one dataset, dataset name -> the same report computed on that dataset's items and
    jobs only (its own `datasets` empty), in the order of the study's items; empty for
    a study of one dataset."""

    title: str
    participants: int
    n_ratings: int
    jobs_rated: int
    jobs_total: int
    confidence: float
    pair_confidence: float
    consistency: RaterConsistency
    conditions: list[ConditionSummary] = field(default_factory=list)
    comparisons: list[PairedComparison] = field(default_factory=list)
    datasets: dict[str, StudyReport] = field(default_factory=dict)

    @property
    def progress(self) -> float:
        return self.jobs_rated / self.jobs_total if self.jobs_total else NAN

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types; NaN and infinities become None. "datasets" (name -> the
        dataset's report) only when there are several."""
        doc = _clean(
            {
                "title": self.title,
                "participants": self.participants,
                "ratings": self.n_ratings,
                "jobs_rated": self.jobs_rated,
                "jobs_total": self.jobs_total,
                "progress": self.progress,
                "confidence": self.confidence,
                "pair_confidence": self.pair_confidence,
                "consistency": asdict(self.consistency),
                "conditions": [asdict(c) for c in self.conditions],
                "comparisons": [asdict(c) for c in self.comparisons],
            }
        )
        if self.datasets:
            doc["datasets"] = {name: r.to_json() for name, r in self.datasets.items()}
        return doc

    def table(self) -> str:
        """A text table for the terminal (condition names shown: this is for the
        researcher, not for participants)."""
        return _report_table(self)


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def job_scores(study: Study, ratings: Iterable[Rating]) -> dict[str, np.ndarray]:
    """The ratings of each rated job: job id -> (n,) float64 array of its ratings, in
    the order given. Raises StudyError naming a rated job that is not in `study`."""
    known = {j.id for j in study.jobs}
    by_job: dict[str, list[float]] = defaultdict(list)
    for r in ratings:
        if r.job not in known:
            raise StudyError(
                f"participant {r.participant!r} rated job {r.job!r}, which is not in study "
                f"{study.title!r}"
            )
        if not MIN_RATING <= int(r.rating) <= MAX_RATING:
            raise StudyError(
                f"participant {r.participant!r}, job {r.job!r}: a rating is from "
                f"{MIN_RATING} to {MAX_RATING}, got {r.rating}"
            )
        by_job[r.job].append(float(r.rating))
    return {job: np.asarray(v, dtype=np.float64) for job, v in by_job.items()}


def t_interval(scores: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The t confidence interval of the mean of `scores` ((n,) float): NaN bounds when
    n < 2, (mean, mean) when all scores are equal."""
    n = int(scores.size)
    if n < 2:
        return NAN, NAN
    mean = float(scores.mean())
    sem = float(scores.std(ddof=1)) / math.sqrt(n)
    if sem == 0.0:
        return mean, mean
    low, high = sps.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return float(low), float(high)


def summarise_condition(
    study: Study, condition_id: str, scores: dict[str, np.ndarray], confidence: float = 0.95
) -> ConditionSummary:
    """`condition_id`'s summary from `scores` (as `job_scores` returns)."""
    cond = study.condition(condition_id)
    jobs = [j.id for j in study.jobs if j.condition == condition_id]
    rated = [scores[j] for j in jobs if j in scores]
    per_job = np.array([float(s.mean()) for s in rated], dtype=np.float64)
    every = np.concatenate(rated) if rated else np.zeros(0)
    hist = np.bincount(every.astype(np.int64) - MIN_RATING, minlength=MAX_RATING - MIN_RATING + 1)
    low, high = t_interval(per_job, confidence)
    return ConditionSummary(
        id=cond.id,
        name=cond.name,
        kind=cond.kind,
        n_ratings=int(every.size),
        n_jobs_rated=len(rated),
        n_jobs_total=len(jobs),
        mean=float(per_job.mean()) if per_job.size else NAN,
        std=float(per_job.std(ddof=1)) if per_job.size >= 2 else NAN,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        histogram=[int(c) for c in hist],
    )


def item_scores(study: Study, condition_id: str, scores: dict[str, np.ndarray]) -> dict[str, float]:
    """item id -> `condition_id`'s score for it (mean of its rated jobs' scores)."""
    per_item: dict[str, list[float]] = defaultdict(list)
    for j in study.jobs:
        if j.condition == condition_id and j.id in scores:
            per_item[j.item].append(float(scores[j.id].mean()))
    return {item: float(np.mean(v)) for item, v in per_item.items()}


def compare_conditions(
    study: Study,
    a: str,
    b: str,
    scores: dict[str, np.ndarray],
    confidence: float = 0.99,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> PairedComparison:
    """Paired comparison of conditions `a` and `b` (by item) from `scores`."""
    cond_a, cond_b = study.condition(a), study.condition(b)
    sa, sb = item_scores(study, a, scores), item_scores(study, b, scores)
    common = [it.id for it in study.items if it.id in sa and it.id in sb]
    xa = np.array([sa[i] for i in common], dtype=np.float64)
    xb = np.array([sb[i] for i in common], dtype=np.float64)
    test = paired_tests(xa, xb, confidence, n_resamples, seed)
    return PairedComparison(
        a=cond_a.id,
        a_name=cond_a.name,
        b=cond_b.id,
        b_name=cond_b.name,
        n_pairs=len(common),
        mean_a=float(xa.mean()) if xa.size else NAN,
        mean_b=float(xb.mean()) if xb.size else NAN,
        mean_diff=float((xa - xb).mean()) if xa.size else NAN,
        confidence=confidence,
        t=test.t,
        p_value=test.p_value,
        p_value_greater=test.p_value_greater,
        ci_low=test.ci_low,
        ci_high=test.ci_high,
        n_resamples=n_resamples,
        seed=seed,
    )


class PairedTest(NamedTuple):
    t: float
    p_value: float
    p_value_greater: float
    ci_low: float
    ci_high: float


def paired_tests(
    xa: np.ndarray, xb: np.ndarray, confidence: float, n_resamples: int, seed: int
) -> PairedTest:
    """Paired t-test and paired bootstrap CI of mean(xa - xb); xa, xb (n,) float,
    paired by position. n < 2: all NaN. Constant
    differences d: t = 0, p = 1 when d = 0; t = +-inf, p = 0 otherwise; CI (d, d)."""
    n = int(xa.size)
    if n < 2:
        return PairedTest(NAN, NAN, NAN, NAN, NAN)
    d = xa - xb
    d_mean = float(d.mean())
    if float(np.ptp(d)) <= _CONSTANT_TOL * max(1.0, abs(d_mean)):
        if abs(d_mean) <= _CONSTANT_TOL:
            t, p, p_greater = 0.0, 1.0, 1.0
        else:
            t = math.copysign(math.inf, d_mean)
            p, p_greater = 0.0, (0.0 if d_mean > 0 else 1.0)
        return PairedTest(t, p, p_greater, d_mean, d_mean)
    two = sps.ttest_rel(xa, xb)
    greater = sps.ttest_rel(xa, xb, alternative="greater")
    boot = sps.bootstrap(
        (xa, xb),
        _mean_difference,
        n_resamples=n_resamples,
        paired=True,
        vectorized=True,
        confidence_level=confidence,
        method=BOOTSTRAP_METHOD,
        batch=max(1, min(n_resamples, 2_000_000 // n)),  # bounds memory on big studies
        rng=np.random.default_rng(seed),
    )
    return PairedTest(
        float(two.statistic),
        float(two.pvalue),
        float(greater.pvalue),
        float(boot.confidence_interval.low),
        float(boot.confidence_interval.high),
    )


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a - b, axis=axis)


def rater_consistency(ratings: Iterable[Rating]) -> RaterConsistency:
    """Mean over jobs rated by >= 2 participants of the std (ddof=1) of their ratings."""
    by_job: dict[str, list[float]] = defaultdict(list)
    for r in ratings:
        by_job[r.job].append(float(r.rating))
    stds = [float(np.std(v, ddof=1)) for v in by_job.values() if len(v) >= 2]
    return RaterConsistency(float(np.mean(stds)) if stds else NAN, len(stds))


def analyse(
    study: Study,
    ratings: Sequence[Rating],
    confidence: float = 0.95,
    pair_confidence: float = 0.99,
    n_resamples: int = 10_000,
    seed: int = 0,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> StudyReport:
    """The whole report: every condition's summary and the comparison of every pair of
    conditions (a before b in the study's order), or of `pairs` ((a, b) condition ids,
    difference a - b); over all items, and for each dataset when there are several
    (`StudyReport.datasets`, same options and bootstrap seed). Raises StudyError for a
    rating of a job not in the study or an unknown condition in `pairs`; ValueError for
    a confidence outside (0, 1) or n_resamples < 1."""
    for name, value in (("confidence", confidence), ("pair_confidence", pair_confidence)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    ratings = list(ratings)
    scores = job_scores(study, ratings)
    cond_ids = [c.id for c in study.conditions]
    if pairs is None:
        pairs = list(itertools.combinations(cond_ids, 2))
    for a, b in pairs:
        study.condition(a)
        study.condition(b)
    report = _report(study, ratings, scores, pairs, confidence, pair_confidence, n_resamples, seed)
    names = study.datasets()
    if len(names) > 1:
        for name in names:
            part = dataset_study(study, name)
            jobs = {j.id for j in part.jobs}
            mine = [r for r in ratings if r.job in jobs]
            part_scores = {j: v for j, v in scores.items() if j in jobs}
            report.datasets[name] = _report(
                part, mine, part_scores, pairs, confidence, pair_confidence, n_resamples, seed
            )
    return report


def dataset_study(study: Study, dataset: str) -> Study:
    """`study` restricted to the items of `dataset` and their jobs (same conditions),
    titled "<title> (<dataset>)"."""
    items = [it for it in study.items if it.dataset == dataset]
    ids = {it.id for it in items}
    jobs = [j for j in study.jobs if j.item in ids]
    title = f"{study.title} ({dataset or 'no name'})"
    return replace(study, title=title, items=items, jobs=jobs, _by_id={})


def _report(
    study: Study,
    ratings: list[Rating],
    scores: dict[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    confidence: float,
    pair_confidence: float,
    n_resamples: int,
    seed: int,
) -> StudyReport:
    cond_ids = [c.id for c in study.conditions]
    return StudyReport(
        title=study.title,
        participants=len({r.participant for r in ratings}),
        n_ratings=len(ratings),
        jobs_rated=len(scores),
        jobs_total=len(study.jobs),
        confidence=confidence,
        pair_confidence=pair_confidence,
        consistency=rater_consistency(ratings),
        conditions=[summarise_condition(study, c, scores, confidence) for c in cond_ids],
        comparisons=[
            compare_conditions(study, a, b, scores, pair_confidence, n_resamples, seed)
            for a, b in pairs
        ],
    )


def _num(value: float, digits: int = 2) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.{digits}f}" if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _p(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"


def _ci(low: float, high: float) -> str:
    return "-" if math.isnan(low) else f"({low:.2f}, {high:.2f})"


def _report_table(report: StudyReport) -> str:
    lines = [f"study: {report.title}"]
    if report.datasets:
        lines.append(f"datasets: {len(report.datasets)} ({', '.join(report.datasets)})")
    lines += _section(report)
    for name, part in report.datasets.items():
        lines += ["", f"=== dataset: {name or '(no name)'} ===", *_section(part)]
    return "\n".join(lines)


def _section(report: StudyReport) -> list[str]:
    """The table's lines for one report (all items, or one dataset's), without its title."""
    lines = [
        f"participants: {report.participants}   ratings: {report.n_ratings}   "
        f"jobs rated: {report.jobs_rated}/{report.jobs_total}"
        + ("" if math.isnan(report.progress) else f" ({100 * report.progress:.0f}%)"),
    ]
    cons = report.consistency
    lines.append(
        f"rater consistency: mean std {_num(cons.mean_std)} over {cons.n_jobs} jobs "
        "rated by 2+ participants"
        if cons.n_jobs
        else "rater consistency: - (no job rated by 2+ participants)"
    )
    lines.append("")
    name_w = max([9] + [len(c.name) for c in report.conditions])
    conf = f"{100 * report.confidence:g}% CI"
    lines.append(
        f"{'condition':<{name_w}}  {'kind':<13} {'ratings':>7} {'jobs':>11} {'mean':>6} "
        f"{'std':>5}  {conf:<15} " + " ".join(f"{k:>4}" for k in range(MIN_RATING, MAX_RATING + 1))
    )
    for c in report.conditions:
        jobs = f"{c.n_jobs_rated}/{c.n_jobs_total}"
        lines.append(
            f"{c.name:<{name_w}}  {c.kind:<13} {c.n_ratings:>7} {jobs:>11} {_num(c.mean):>6} "
            f"{_num(c.std):>5}  {_ci(c.ci_low, c.ci_high):<15} "
            + " ".join(f"{n:>4}" for n in c.histogram)
        )
    lines.append(
        "(mean, std and CI over the rated jobs' mean ratings, n = jobs; 'ratings' counts "
        f"single ratings; histogram: how many ratings of {MIN_RATING}..{MAX_RATING})"
    )
    if report.comparisons:
        lines.append("")
        pconf = f"{100 * report.pair_confidence:g}% CI diff"
        pair_w = max([6] + [len(f"{p.a_name} - {p.b_name}") for p in report.comparisons])
        lines.append(
            f"{'a - b':<{pair_w}}  {'pairs':>6} {'mean a':>6} {'mean b':>6} {'diff':>6} "
            f"{'t':>7} {'p':>8} {'p a>b':>8}  {pconf}"
        )
        for p in report.comparisons:
            lines.append(
                f"{p.a_name + ' - ' + p.b_name:<{pair_w}}  {p.n_pairs:>6} {_num(p.mean_a):>6} "
                f"{_num(p.mean_b):>6} {_num(p.mean_diff):>6} {_num(p.t):>7} "
                f"{_p(p.p_value):>8} {_p(p.p_value_greater):>8}  {_ci(p.ci_low, p.ci_high)}"
            )
        lines.append(
            f"(paired t-test over jobs rated in both conditions: p two-sided, 'p a>b' "
            f"one-sided for mean a > mean b; {report.comparisons[0].method} bootstrap, "
            f"{report.comparisons[0].n_resamples} resamples)"
        )
    return lines
