"""Figures of a rating study (like the paper's Fig. 9b, Fig. 11 and Fig. 18), as PNG files.

Drawn on a `matplotlib.figure.Figure` with the Agg canvas directly, never through
pyplot, so no global backend or figure registry is touched (safe inside the GUI
process and from worker threads). Files are written atomically.
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from samstudio.core.atomic import atomic_write_bytes
from samstudio.core.study.model import MAX_RATING, MIN_RATING
from samstudio.core.study.stats import ConditionSummary, StudyReport

DPI = 100


def _legend_label(c: ConditionSummary) -> str:
    """'name: mean ± half-width of the CI' (the t interval is symmetric)."""
    if math.isnan(c.mean):
        return f"{c.name}: no ratings"
    if math.isnan(c.ci_high):
        return f"{c.name}: {c.mean:.2f}"
    return f"{c.name}: {c.mean:.2f} ± {c.ci_high - c.mean:.2f}"


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return Path(atomic_write_bytes(path, buf.getvalue()))


def rating_histograms(report: StudyReport, path: str | os.PathLike[str]) -> Path:
    """Grouped bars: for each rating 1..10, the percentage of each condition's ratings
    that had it; legend 'name: mean ± CI'. Writes a PNG (about 900x500 px) to `path`
    and returns it."""
    fig = Figure(figsize=(9, 5), dpi=DPI)
    ax = fig.add_subplot()
    values = np.arange(MIN_RATING, MAX_RATING + 1)
    conds = report.conditions
    width = 0.8 / max(1, len(conds))
    for k, c in enumerate(conds):
        counts = np.asarray(c.histogram, dtype=np.float64)
        share = 100.0 * counts / counts.sum() if counts.sum() > 0 else counts
        offset = (k - (len(conds) - 1) / 2) * width
        ax.bar(values + offset, share, width=width, label=_legend_label(c))
    ax.set_xticks(values)
    ax.set_xlim(MIN_RATING - 0.6, MAX_RATING + 0.6)
    ax.set_xlabel("mask quality rating")
    ax.set_ylabel("percent of ratings")
    conf = f"{100 * report.confidence:g}%"
    ax.set_title(f"{report.title}: ratings by condition (mean ± {conf} CI)")
    if conds:
        ax.legend(loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def mean_ratings(report: StudyReport, path: str | os.PathLike[str]) -> Path:
    """Each condition's mean rating with its CI as error bars (conditions without
    ratings are labelled, with no marker). Writes a PNG (about 700x450 px) to `path`
    and returns it."""
    conds = report.conditions
    fig = Figure(figsize=(max(5.0, 1.8 * len(conds) + 2.0), 4.8), dpi=DPI)
    ax = fig.add_subplot()
    x = np.arange(len(conds))
    means = np.array([c.mean for c in conds], dtype=np.float64)
    low = np.array([c.mean - c.ci_low for c in conds], dtype=np.float64)
    high = np.array([c.ci_high - c.mean for c in conds], dtype=np.float64)
    yerr = np.nan_to_num(np.vstack([low, high]), nan=0.0) if conds else None
    ax.errorbar(x, means, yerr=yerr, fmt="o", capsize=6, markersize=8, linewidth=2)
    for xi, c in zip(x, conds):
        if not math.isnan(c.mean):
            ax.annotate(f"{c.mean:.2f}", (xi, c.mean), xytext=(10, 0), textcoords="offset points")
    ax.set_xticks(x, [f"{_wrap(c.name)}\n({c.kind}, n={c.n_jobs_rated})" for c in conds])
    ax.set_xlim(-0.6, max(0.6, len(conds) - 0.4))
    ax.set_ylim(MIN_RATING - 0.5, MAX_RATING + 0.5)
    ax.set_yticks(np.arange(MIN_RATING, MAX_RATING + 1))
    ax.set_ylabel("mean rating")
    ax.set_title(f"{report.title}: mean rating, {100 * report.confidence:g}% CI")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def dataset_means(report: StudyReport, path: str | os.PathLike[str]) -> Path:
    """Like the paper's Fig. 9b: one group per dataset of `report.datasets` (left to
    right, in their order), in it one marker per condition (colours and legend by
    condition) at its mean rating on that dataset's items, with its CI (`confidence`,
    95% by default) as error bars; a condition without ratings on a dataset has no
    marker there. Writes a PNG (at least 700x450 px, wider with more datasets) to `path`
    and returns it."""
    names = list(report.datasets)
    conds = report.conditions
    fig = Figure(figsize=(max(7.0, 2.0 + len(names) * (0.8 + 0.3 * len(conds))), 4.8), dpi=DPI)
    ax = fig.add_subplot()
    x = np.arange(len(names), dtype=np.float64)
    width = 0.7 / max(1, len(conds))
    for k, cond in enumerate(conds):
        parts = [_summary(report.datasets[n], cond.id) for n in names]
        means = np.array([c.mean if c else math.nan for c in parts], dtype=np.float64)
        low = np.array([c.mean - c.ci_low if c else math.nan for c in parts], dtype=np.float64)
        high = np.array([c.ci_high - c.mean if c else math.nan for c in parts], dtype=np.float64)
        yerr = np.nan_to_num(np.vstack([low, high]), nan=0.0)
        offset = (k - (len(conds) - 1) / 2) * width
        ax.errorbar(x + offset, means, yerr=yerr, fmt="o", capsize=4, markersize=7, label=cond.name)
    ax.set_xticks(x, [_wrap(n or "(no name)") for n in names])
    ax.set_xlim(-0.6, max(0.6, len(names) - 0.4))
    ax.set_ylim(MIN_RATING - 0.5, MAX_RATING + 0.5)
    ax.set_yticks(np.arange(MIN_RATING, MAX_RATING + 1))
    ax.set_xlabel("dataset")
    ax.set_ylabel("mean rating")
    ax.set_title(f"{report.title}: mean rating by dataset, {100 * report.confidence:g}% CI")
    if conds and names:
        ax.legend(loc="best")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _summary(report: StudyReport, condition_id: str) -> ConditionSummary | None:
    return next((c for c in report.conditions if c.id == condition_id), None)


def _wrap(name: str, width: int = 18) -> str:
    """A condition name broken into lines of about `width` characters (long model ids
    would overlap their neighbours' labels); a word longer than that is cut."""
    return "\n".join(textwrap.wrap(name, width, break_on_hyphens=True)) or name
