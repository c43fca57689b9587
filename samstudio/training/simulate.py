"""The interactive training simulation of the paper's §A (torch-only).

For each target mask: round 0 prompts with a random foreground point or the mask's
box with noise (std 10% of the side, at most 20 px), and predicts 3 masks; then 10
more rounds, 8 of which add one point sampled uniformly from the error region of
the previous prediction (foreground on a false negative, background on a false
positive) and 2 of which add nothing (one at a random place among the 8, one at the
end). Every round after the first feeds the previous low-res logits back as the mask
prompt and uses the single-mask output token. 11 rounds in all.

All M = B x K target masks are decoded together: point-first and box-first masks
have the same number of sparse tokens in every round (a point prompt gets SAM's
padding token, a box does not), so one decoder call serves the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from segment_anything.modeling.mask_decoder import MaskDecoder

from samstudio.training.losses import round_loss

N_POINT_ROUNDS = 8
N_ROUNDS = 1 + N_POINT_ROUNDS + 2
# upsampled logits in the padding (cropped away by the app) are replaced by this
# constant: no loss or gradient there, never counted as foreground
PADDING_LOGIT = -20.0


def round_schedule(rng: np.random.Generator) -> list[bool]:
    """For rounds 1..10: True where a new point is sampled, False for the two rounds
    without new information (one at a random place before the last point, one at
    the end). Always 8 True and 2 False; the last entry is False."""
    sched = [True] * N_POINT_ROUNDS
    sched.insert(int(rng.integers(0, N_POINT_ROUNDS)), False)
    sched.append(False)
    return sched


def decode_all(
    decoder: MaskDecoder,
    image_embeddings: torch.Tensor,
    image_pe: torch.Tensor,
    sparse: torch.Tensor,
    dense: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`MaskDecoder.predict_masks` for M prompt sets on M (not shared) embeddings.

    image_embeddings: (M, C, h, w), one per prompt set; image_pe: (1, C, h, w);
    sparse: (M, T, C); dense: (M, C, h, w). Returns all 4 tokens' masks
    (M, 4, 4h, 4w) and IoU predictions (M, 4): index 0 is the single-mask token,
    1..3 the multimask tokens (as `MaskDecoder.forward` slices them).
    The same modules in the same order as Meta's code; only the per-image
    `repeat_interleave` is left out (tests check equality with `forward`).
    """
    m = sparse.shape[0]
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat((output_tokens.unsqueeze(0).expand(m, -1, -1), sparse), dim=1)
    src = image_embeddings + dense
    pos_src = image_pe.expand(m, -1, -1, -1)
    b, c, h, w = src.shape
    hs, src = decoder.transformer(src, pos_src, tokens)
    iou_token_out = hs[:, 0, :]
    mask_tokens_out = hs[:, 1 : (1 + decoder.num_mask_tokens), :]
    src = src.transpose(1, 2).reshape(b, c, h, w)
    upscaled = decoder.output_upscaling(src)
    hyper_in = torch.stack(
        [
            decoder.output_hypernetworks_mlps[i](mask_tokens_out[:, i, :])
            for i in range(decoder.num_mask_tokens)
        ],
        dim=1,
    )
    b, c, h, w = upscaled.shape
    masks = (hyper_in @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
    return masks, decoder.iou_prediction_head(iou_token_out)


def sample_uniform(
    region: torch.Tensor, fallback: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """One pixel per mask, uniform over `region` (M, H, W) bool, or over `fallback`
    where the region is empty (or anywhere if both are). Returns (M, 2) float XY
    pixel indices."""
    m, h, w = region.shape
    empty = ~region.flatten(1).any(dim=1)
    pool = torch.where(empty[:, None, None], fallback, region)
    dev = region.device
    scores = torch.rand((m, h, w), generator=gen, device=dev) * pool + 1e-6 * torch.rand(
        (m, h, w), generator=gen, device=dev
    )
    idx = scores.flatten(1).argmax(dim=1)
    return torch.stack([idx % w, idx // w], dim=1).float()


def noisy_boxes(gt: torch.Tensor, gen: torch.Generator, valid_hw: torch.Tensor) -> torch.Tensor:
    """Tight XYXY boxes of gt (M, H, W) with per-coordinate Gaussian noise of std 10%
    of the side, clipped to +-20 px and to the image (valid_hw (M, 2) = h, w)."""
    m = gt.shape[0]
    rows = gt.any(dim=2)
    cols = gt.any(dim=1)
    ar_h = torch.arange(gt.shape[1], device=gt.device).float()
    ar_w = torch.arange(gt.shape[2], device=gt.device).float()
    big = 1e9
    y0 = torch.where(rows, ar_h, torch.full_like(ar_h, big)).min(dim=1).values
    y1 = torch.where(rows, ar_h, torch.full_like(ar_h, -big)).max(dim=1).values
    x0 = torch.where(cols, ar_w, torch.full_like(ar_w, big)).min(dim=1).values
    x1 = torch.where(cols, ar_w, torch.full_like(ar_w, -big)).max(dim=1).values
    box = torch.stack([x0, y0, x1, y1], dim=1)
    side = torch.stack([x1 - x0, y1 - y0, x1 - x0, y1 - y0], dim=1) + 1
    noise = (torch.randn((m, 4), generator=gen, device=gt.device) * 0.1 * side).clamp(-20, 20)
    box = box + noise
    hi = torch.stack([valid_hw[:, 1], valid_hw[:, 0], valid_hw[:, 1], valid_hw[:, 0]], 1) - 1
    box = torch.minimum(box.clamp(min=0), hi.float())
    lo = torch.minimum(box[:, :2], box[:, 2:])
    up = torch.maximum(box[:, :2], box[:, 2:])
    return torch.cat([lo, up], dim=1)


def error_points(
    pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The next click of §A for each mask: uniform over the error region.

    pred, gt, valid: (M, S, S) bool (prediction, ground truth, unpadded image area).
    Returns points (M, 2) float XY and labels (M,) float: 1 on a false negative,
    0 on a false positive. Where the prediction is exact, a foreground point
    uniform over the ground truth.
    """
    m = pred.shape[0]
    fn = gt & ~pred
    fp = ~gt & pred & valid
    new = sample_uniform(fn | fp, gt, gen)
    xi, yi = new[:, 0].long(), new[:, 1].long()
    lab = fn[torch.arange(m, device=fn.device), yi, xi] | (~(fn | fp).flatten(1).any(1))
    return new, lab.float()


@dataclass
class SimulationResult:
    """loss: scalar (mean over the 11 rounds); ious: (11,) mean IoU per round;
    used_multimask: (11,) bool; n_points: (11,) prompt points per mask in each round;
    losses: (11,) per-round losses."""

    loss: torch.Tensor
    ious: list[float]
    used_multimask: list[bool]
    n_points: list[int]
    losses: list[float]


def simulate(
    sam: Sam,
    images: torch.Tensor,
    targets: torch.Tensor,
    valid_hw: torch.Tensor,
    gen: torch.Generator,
    schedule: list[bool],
    box_prob: float = 0.5,
    loss_size: int | None = None,
) -> SimulationResult:
    """Run the 11-round simulation and return the loss to back-propagate.

    images: (B, 3, S, S) float32 normalised and padded (as `Sam.preprocess`);
    targets: (B, K, S, S) float 0/1 ground-truth masks in the padded input frame;
    valid_hw: (B, 2) long, the unpadded (h, w) of each image; schedule: from
    `round_schedule` (10 entries). Point coordinates are in the input frame.
    The mask loss and the IoU head's target are computed on the low-res logits
    against the area-averaged masks, or with `loss_size` on the logits upsampled
    (bilinear, as the app shows them) to a square of that side, the padding left
    out, against the masks area-averaged to it (exact at the input size).
    Runs on the device of `images` (model and targets there too); `gen` is a
    generator on that device.
    """
    if len(schedule) != N_ROUNDS - 1:
        raise ValueError(f"schedule must have {N_ROUNDS - 1} entries, got {len(schedule)}")
    b, k, s, _ = targets.shape
    emb = sam.image_encoder(images)
    emb = emb.repeat_interleave(k, dim=0)
    gt_bool = targets.reshape(b * k, s, s) > 0.5
    low_size = 4 * emb.shape[-1]
    hw = valid_hw.repeat_interleave(k, dim=0)
    m = b * k
    dev = images.device
    ys = torch.arange(s, device=dev)[None, :, None]
    xs = torch.arange(s, device=dev)[None, None, :]
    valid = (ys < hw[:, 0, None, None]) & (xs < hw[:, 1, None, None])
    # the loss frame: the low-res logits against the area-averaged ground truth (a
    # soft target at mask borders, 16x fewer pixels than the input frame), or the
    # upsampled logits in a loss_size frame
    size = low_size if loss_size is None else int(loss_size)
    gt_loss = F.interpolate(targets.reshape(m, 1, s, s), (size, size), mode="area")[:, 0]
    valid_loss = F.interpolate(valid[:, None].float(), (size, size), mode="area")[:, 0] > 0.5
    pe = sam.prompt_encoder.get_dense_pe()
    penc = sam.prompt_encoder

    use_box = torch.rand(m, generator=gen, device=dev) < box_prob
    first_pts = sample_uniform(gt_bool, valid, gen)
    boxes = noisy_boxes(gt_bool, gen, hw)
    points = torch.zeros((m, 0, 2), device=dev)
    labels = torch.zeros((m, 0), device=dev)
    prev_low: torch.Tensor | None = None
    total = torch.zeros((), device=dev)
    rows = torch.arange(m, device=dev)
    iou_t: list[torch.Tensor] = []
    used_mm: list[bool] = []
    n_points: list[int] = []
    loss_t: list[torch.Tensor] = []
    for r in range(N_ROUNDS):
        if r > 0 and schedule[r - 1]:
            assert prev_low is not None
            up_prev = F.interpolate(prev_low, (s, s), mode="bilinear", align_corners=False)[:, 0]
            new, lab = error_points(up_prev > 0, gt_bool, valid, gen)
            points = torch.cat([points, new[:, None]], dim=1)
            labels = torch.cat([labels, lab[:, None]], dim=1)
        # point-first masks: the first point + added points + padding token;
        # box-first masks: the two box corners + added points. Same token count.
        pt_all = torch.cat([first_pts[:, None], points], dim=1)
        lb_all = torch.cat([torch.ones((m, 1), device=dev), labels], dim=1)
        sparse_pt = penc._embed_points(pt_all, lb_all, pad=True)
        sparse_box = penc._embed_boxes(boxes)
        if points.shape[1] > 0:
            sparse_box = torch.cat([sparse_box, penc._embed_points(points, labels, pad=False)], 1)
        sparse = torch.where(use_box[:, None, None], sparse_box, sparse_pt)
        if prev_low is None:
            dense = penc.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
                m, -1, emb.shape[2], emb.shape[3]
            )
        else:
            dense = penc._embed_masks(prev_low)
        low, iou_pred = decode_all(sam.mask_decoder, emb, pe, sparse, dense)
        multimask = r == 0
        if multimask:
            low, iou_pred = low[:, 1:], iou_pred[:, 1:]
        else:
            low, iou_pred = low[:, :1], iou_pred[:, :1]
        if loss_size is None:  # stages 1-5: the padding counts, as before
            loss, _best, cand_iou = round_loss(low, iou_pred, gt_loss)
        else:
            up = F.interpolate(low, (size, size), mode="bilinear", align_corners=False)
            up = torch.where(valid_loss[:, None], up, torch.full_like(up, PADDING_LOGIT))
            loss, _best, cand_iou = round_loss(up, iou_pred, gt_loss)
        total = total + loss
        chosen = (
            iou_pred.argmax(dim=1) if multimask else torch.zeros(m, dtype=torch.long, device=dev)
        )
        prev_low = low[rows, chosen][:, None].detach()
        iou_t.append(cand_iou[rows, chosen].mean().detach())
        used_mm.append(multimask)
        n_points.append(int(points.shape[1]) + 0)
        loss_t.append(loss.detach())
    # one device-to-host copy per step, not two per round
    ious = [float(v) for v in torch.stack(iou_t).tolist()]
    losses = [float(v) for v in torch.stack(loss_t).tolist()]
    return SimulationResult(total / N_ROUNDS, ious, used_mm, n_points, losses)
