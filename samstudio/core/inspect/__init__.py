"""Researchers' views of annotation sets, after the Segment Anything paper's §5: mask
properties of a dataset (``dataset_mask_stats``) and the IoU agreement of two sets of the
same images (``compare_sets``; a model's COCO results against ground truth, with COCO
mask AP). Plots live in ``samstudio.core.inspect.plots`` (imports
matplotlib)."""

from samstudio.core.inspect.coco_ap import MaskAP
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
from samstudio.core.inspect.sources import LoadedSet, load_set

__all__ = [
    "ConcavitySample",
    "ImageComparison",
    "ImageMasks",
    "LoadedSet",
    "MaskAP",
    "MaskStats",
    "MatchedPair",
    "SetComparison",
    "compare_sets",
    "concavity_sample",
    "dataset_mask_stats",
    "load_images",
    "load_set",
    "mask_concavity",
    "match_masks",
]
