"""How a ``set_iou.SetComparison`` is reported: a JSON document and a terminal table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from samstudio.core.inspect.pairing import BY_IMAGE_ID
from samstudio.core.inspect.sources import problem_lines

if TYPE_CHECKING:
    from samstudio.core.inspect.set_iou import SetComparison

CROWD_NOTE = "not objects: not counted, and a mask over one is no false positive (as in COCO)"


def comparison_json(result: SetComparison) -> dict[str, Any]:
    """Every figure of ``result``, its images and pairs, and the import problems."""
    ious = result.ious
    return {
        "a": result.name_a,
        "b": result.name_b,
        "images_paired_by": result.pairing,
        "images_paired_by_why": result.pairing_why,
        "matched_within_category": result.by_category,
        "images_compared": len(result.images),
        "only_in_a": result.only_in_a,
        "only_in_b": result.only_in_b,
        "size_mismatch": result.size_mismatch,
        "masks_a": result.n_a,
        "masks_b": result.n_b,
        "skipped_a": result.skipped_a,
        "skipped_b": result.skipped_b,
        "crowd_regions": {"a": result.crowd_a, "b": result.crowd_b},
        "matched_pairs": len(result.pairs),
        "unmatched_a": result.unmatched_a,
        "unmatched_b": result.unmatched_b,
        "iou": {
            "mean": float(ious.mean()) if ious.size else 0.0,
            "median": float(np.median(ious)) if ious.size else 0.0,
            "share_at_least": {str(t): result.share_at(t) for t in result.thresholds},
        },
        "precision_recall": {
            str(t): {
                **dict(zip(("precision", "recall"), result.precision_recall(t))),
                "a_over_crowd_not_counted": result.over_crowd_at(t),
            }
            for t in result.thresholds
        },
        "mask_ap": result.mask_ap.to_json() if result.mask_ap else None,
        "mask_ap_note": result.ap_note,
        "import_problems": {
            "a": {"errors": result.errors_a, "warnings": result.warnings_a},
            "b": {"errors": result.errors_b, "warnings": result.warnings_b},
        },
        "images": [
            {
                "file_name_a": im.file_name_a,
                "file_name_b": im.file_name_b,
                "masks_a": im.n_a,
                "masks_b": im.n_b,
                "matched": len(im.ious),
                "mean_iou": im.mean_iou,
                "unmatched_a": list(im.unmatched_a),
                "unmatched_b": list(im.unmatched_b),
            }
            for im in result.images
        ],
        "pairs": [
            {"image": p.image, "id_a": p.id_a, "id_b": p.id_b, "iou": p.iou} for p in result.pairs
        ],
    }


def comparison_table(result: SetComparison) -> str:
    """A plain-text summary for a terminal."""
    ious = result.ious
    paired_by = result.pairing
    if result.pairing == BY_IMAGE_ID and result.pairing_why:
        paired_by += f" ({result.pairing_why})"
    lines = [
        f"a: {result.name_a}",
        f"b: {result.name_b} (reference)",
        f"  images paired by  {paired_by}",
        f"  images compared   {len(result.images)} (only in a: {len(result.only_in_a)}, "
        f"only in b: {len(result.only_in_b)}, size differs: {len(result.size_mismatch)})",
        f"  masks             a {result.n_a}, b {result.n_b} "
        f"(skipped empty/box-only: a {result.skipped_a}, b {result.skipped_b})",
    ]
    if result.crowd_a or result.crowd_b:
        lines.append(f"  crowd regions     a {result.crowd_a}, b {result.crowd_b}: {CROWD_NOTE}")
    within = "within each category" if result.by_category else "regardless of category"
    lines.append(
        f"  matched pairs     {len(result.pairs)} (unmatched: a {result.unmatched_a}, "
        f"b {result.unmatched_b}), {within}"
    )
    if ious.size:
        lines.append(f"  pair IoU          mean {ious.mean():.3f}, median {np.median(ious):.3f}")
    for t in result.thresholds:
        p, r = result.precision_recall(t)
        over = result.over_crowd_at(t)
        crowd = f" ({over} of a over crowd regions not counted)" if over else ""
        lines.append(
            f"  IoU >= {t:<4g}       {100 * result.share_at(t):5.1f}% of pairs; "
            f"precision {p:.3f}, recall {r:.3f}{crowd}"
        )
    if result.mask_ap is not None:
        lines.append(f"  mask AP           {result.mask_ap.describe()}")
    elif result.ap_note:
        lines.append(f"  mask AP           {result.ap_note}")
    for label, names in (("only in a", result.only_in_a), ("only in b", result.only_in_b)):
        if names:
            shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
            lines.append(f"  {label:<17} {shown}")
    for side, errors, warnings in (
        ("a", result.errors_a, result.warnings_a),
        ("b", result.errors_b, result.warnings_b),
    ):
        if errors or warnings:
            lines.append(
                f"  import problems {side} {len(errors)} annotation(s) not read (errors), "
                f"{len(warnings)} warning(s):"
            )
            lines += [f"    {line}" for line in problem_lines(errors, warnings)]
    return "\n".join(lines)
