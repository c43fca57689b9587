"""SAM's training losses (paper §A), torch-only.

Mask loss: focal and dice in a 20:1 ratio. IoU head: mean-square error between the
predicted IoU and the IoU of the thresholded prediction with the ground truth,
added with weight 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FOCAL_WEIGHT = 20.0
DICE_WEIGHT = 1.0
IOU_WEIGHT = 1.0


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Sigmoid focal loss averaged over pixels. logits, target: (..., H, W) float;
    returns (...,) float (one value per mask)."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return (alpha_t * loss).flatten(-2).mean(-1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft dice loss on sigmoid probabilities. (..., H, W) -> (...,)."""
    prob = logits.sigmoid().flatten(-2)
    t = target.flatten(-2)
    inter = (prob * t).sum(-1)
    return 1 - (2 * inter + eps) / (prob.sum(-1) + t.sum(-1) + eps)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of (logits > 0) with target > 0.5, no gradient. (..., H, W) -> (...,).
    Two empty masks have IoU 1."""
    with torch.no_grad():
        pred = logits > 0
        gt = target > 0.5
        inter = (pred & gt).flatten(-2).sum(-1).float()
        union = (pred | gt).flatten(-2).sum(-1).float()
        return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def mask_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """20 * focal + 1 * dice, per mask. (..., H, W) -> (...,)."""
    return FOCAL_WEIGHT * focal_loss(logits, target) + DICE_WEIGHT * dice_loss(logits, target)


def round_loss(
    logits: torch.Tensor, iou_pred: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loss of one prediction round.

    logits: (M, K, H, W) candidate masks (K = 3 for a single prompt, else 1);
    iou_pred: (M, K); target: (M, H, W) float 0/1.
    Only the candidate with the lowest mask loss is back-propagated (paper §A); the
    IoU head is supervised on every candidate. Returns (scalar loss averaged over M,
    index of the best candidate (M,), IoU of each candidate (M, K)).
    """
    tgt = target[:, None].expand_as(logits)
    per_candidate = mask_loss(logits, tgt)  # (M, K)
    best = per_candidate.argmin(dim=1)
    best_loss = per_candidate.gather(1, best[:, None]).squeeze(1)
    ious = mask_iou(logits, tgt)
    iou_mse = F.mse_loss(iou_pred, ious, reduction="none").mean(dim=1)
    return (best_loss + IOU_WEIGHT * iou_mse).mean(), best, ious
