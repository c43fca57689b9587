"""Researchers' views of annotation sets, after the Segment Anything paper's §5: mask
properties of a dataset (``dataset_mask_stats``) and the IoU agreement of two sets of the
same images (``compare_sets``). Plots live in ``samstudio.core.inspect.plots`` (imports
matplotlib)."""

from samstudio.core.inspect.mask_stats import (
    ConcavitySample,
    ImageMasks,
    MaskStats,
    concavity_sample,
    dataset_mask_stats,
    load_images,
    mask_concavity,
)
from samstudio.core.inspect.set_iou import (
    ImageComparison,
    MatchedPair,
    SetComparison,
    compare_sets,
    match_masks,
)

__all__ = [
    "ConcavitySample",
    "ImageComparison",
    "ImageMasks",
    "MaskStats",
    "MatchedPair",
    "SetComparison",
    "compare_sets",
    "concavity_sample",
    "dataset_mask_stats",
    "load_images",
    "mask_concavity",
    "match_masks",
]
