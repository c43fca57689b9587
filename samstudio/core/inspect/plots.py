"""Figures of the inspect results, drawn like the Segment Anything paper's Fig. 5 (object
centres) and Fig. 6 (mask properties), written as PNG files.

Uses matplotlib's object API with the Agg canvas (never pyplot, so nothing depends on a
display or global state) and writes each file atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from samstudio.core.atomic import atomic_write_bytes
from samstudio.core.inspect.mask_stats import (
    CONCAVITY_EDGES,
    MASKS_PER_IMAGE_BINS,
    RELATIVE_SIZE_EDGES,
    MaskStats,
    concavity_sample,
)
from samstudio.core.inspect.set_iou import SetComparison

DPI = 100


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


def _short(name: str, limit: int = 40) -> str:
    """A dataset name short enough for a legend: a long path becomes its last part."""
    if len(name) > limit:
        name = Path(name).name or name
    return name if len(name) <= limit else "..." + name[-(limit - 3) :]


def _percent(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return 100.0 * counts / total if total else np.zeros(counts.shape, dtype=np.float64)


def plot_mask_stats(
    datasets: Sequence[tuple[str, MaskStats]], path: str | os.PathLike[str], seed: int = 0
) -> Path:
    """Fig. 6: percent of all images per masks-per-image bin (bars), percent of masks per
    relative-size bin and percent of the stratified concavity sample (``seed``) per
    concavity bin (lines); one bar set or line per dataset, labelled with its name and
    image and mask counts. Returns ``path``."""
    if not datasets:
        raise ValueError("plot_mask_stats needs at least one dataset")
    fig = _figure(15, 4.6 + 0.3 * ((len(datasets) - 1) // 3))
    left, middle, right = fig.subplots(1, 3)
    labels = [label for label, _, _ in MASKS_PER_IMAGE_BINS]
    x = np.arange(len(labels))
    width = 0.8 / len(datasets)
    size_mid = (RELATIVE_SIZE_EDGES[:-1] + RELATIVE_SIZE_EDGES[1:]) / 2
    conc_mid = (CONCAVITY_EDGES[:-1] + CONCAVITY_EDGES[1:]) / 2
    for k, (name, stats) in enumerate(datasets):
        legend = f"{_short(name)} ({stats.n_images} images, {stats.n_masks} masks)"
        per_image = np.array([n for _, n in stats.masks_per_image_histogram()], dtype=np.float64)
        share = 100.0 * per_image / max(stats.n_images, 1)  # of all images, maskless ones too
        left.bar(x - 0.4 + width * (k + 0.5), share, width, label=legend)
        sizes = stats.relative_size_histogram().astype(np.float64)
        middle.plot(size_mid, _percent(sizes), marker=".", label=legend)
        sample = concavity_sample(stats, seed=seed).values
        conc = np.histogram(sample, bins=CONCAVITY_EDGES)[0].astype(np.float64)
        right.plot(conc_mid, _percent(conc), marker=".", label=legend)
    left.set_xticks(x)
    left.set_xticklabels(labels)
    left.set_xlabel("Number of masks per image")
    left.set_ylabel("Percent of images")
    middle.set_xlabel("Relative segmentation size")
    middle.set_ylabel("Percent of masks")
    right.set_xlabel("Concavity (stratified by size)")
    right.set_ylabel("Percent of masks")
    for ax in (left, middle, right):
        ax.grid(alpha=0.3)
    handles, names = left.get_legend_handles_labels()
    rows = -(-len(datasets) // 3)
    fig.legend(handles, names, loc="lower center", ncol=min(len(datasets), 3), fontsize="small")
    fig.tight_layout(rect=(0, 0.07 * rows, 1, 1))
    return _save(fig, path)


def plot_centres(
    stats: MaskStats | Sequence[tuple[str, MaskStats]], path: str | os.PathLike[str]
) -> Path:
    """Fig. 5: heat map of mask centres (x / W right, y / H down) on the
    ``MaskStats.centre_histogram`` grid, one panel per dataset. Returns ``path``."""
    panels = [(stats.name, stats)] if isinstance(stats, MaskStats) else list(stats)
    if not panels:
        raise ValueError("plot_centres needs at least one dataset")
    fig = _figure(3.6 * len(panels) + 0.6, 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (name, s) in zip(axes, panels):
        image = ax.imshow(
            s.centre_histogram(), extent=(0, 1, 1, 0), cmap="viridis", interpolation="nearest"
        )
        ax.set_title(f"{_short(name)}\n{s.n_masks} masks", fontsize="small")
        ax.set_xlabel("x / width")
        ax.set_ylabel("y / height")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return _save(fig, path)


def plot_pair_ious(result: SetComparison, path: str | os.PathLike[str]) -> Path:
    """Histogram of the matched pairs' IoU (bins of 0.02) with the paper's 0.75 and 0.9
    lines, each labelled with the share of pairs at or above it. Returns ``path``."""
    fig = _figure(6.4, 4.2)
    ax = fig.subplots()
    ious = result.ious
    ax.hist(ious, bins=np.linspace(0, 1, 51), color="tab:blue")
    for t, colour in ((0.75, "tab:orange"), (0.9, "tab:red")):
        ax.axvline(
            t,
            color=colour,
            linestyle="--",
            label=f"IoU >= {t:g}: {100 * result.share_at(t):.1f}% of pairs",
        )
    ax.set_xlim(0, 1)
    ax.set_xlabel("IoU of matched pair")
    ax.set_ylabel("Pairs")
    ax.set_title(f"{len(ious)} pairs; unmatched: a {result.unmatched_a}, b {result.unmatched_b}")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
