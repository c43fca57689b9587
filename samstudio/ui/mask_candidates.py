"""The model's answers to the prompts as the annotator shows them: `MaskCandidate`s,
gathered per decode request in a `CandidateSet`.

The worker thread (`worker_runs`) fills in the top-ranked candidate of each answer at
once (a big mask's overlay as a coarser draft) and the others a moment later; a key
press that is quicker than that completes a candidate on the spot (`complete_candidate`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from samstudio.inference.types import Prompts
from samstudio.ui.overlays import MaskPicture, mask_box, render_mask

DRAFT_PIXELS = 400_000  # a bigger overlay is first drawn at half or less resolution


@dataclass(frozen=True, eq=False)
class MaskCandidate:
    """One of the model's answers to the current prompts, ready to show.

    mask: (H, W) bool, image frame, or None until the candidate is completed (the
    top-ranked one always is; the others follow a moment later, see CandidateSet).
    box: XYXY end-exclusive (None when empty or not yet known). low_res_logits:
    (256, 256) float32, fed back as the next prompt's mask input. picture: the
    translucent overlay (None until completed); preview: (h, w, 3) uint8 RGB
    thumbnail. area: pixels (exact once completed, estimated from the logits before).
    """

    rank: int
    mask: np.ndarray | None
    box: tuple[int, int, int, int] | None
    predicted_iou: float
    stability_score: float
    low_res_logits: np.ndarray
    picture: MaskPicture | None
    preview: np.ndarray | None
    area: int

    @property
    def complete(self) -> bool:
        """Full-size mask and a full-resolution overlay (not a draft)."""
        return self.mask is not None and self.picture is not None and self.picture.scale == 1


@dataclass(eq=False)
class CandidateSet:
    """The decoder's answer to one request. decode_ms: model time; total_ms: from the
    request being posted to the first candidate being ready to paint.

    `complete(i)` fills in candidate i's full-size mask and overlay (the worker does
    it for all candidates right after the first is shown; a key press that is faster
    than that does it on the spot).
    """

    image_id: int
    request: int
    prompts: Prompts
    candidates: list[MaskCandidate]
    decode_ms: float
    total_ms: float
    submitted_at: float  # time.perf_counter() when the request was posted
    prediction: Any = None
    color: tuple[int, int, int] = (30, 144, 255)
    model_generation: int = 0  # `InferenceWorker.model_generation` of the model that decoded

    def complete(self, index: int) -> MaskCandidate:
        cand = self.candidates[index]
        if cand.complete or self.prediction is None:
            return cand
        done = complete_candidate(cand, self.prediction, self.color)
        self.candidates[index] = done
        return done


# The mask being made is edged in this colour, 2 px: a saved mask is edged in its own
# colour (1 px) or, selected, in white (2 px), so the candidate is never taken for one.
CANDIDATE_EDGE = (255, 214, 0)


def complete_candidate(
    cand: MaskCandidate, prediction: Any, color: tuple[int, int, int], draft: bool = False
) -> MaskCandidate:
    """The candidate with its full-size mask, box, exact area and overlay picture.

    draft: a big mask's overlay is drawn at a coarser step first (the first paint after a
    click); calling again without `draft` gives the full-resolution overlay.
    """
    from samstudio.ui.canvas import picture_qimage

    mask = (
        cand.mask if cand.mask is not None else np.asarray(prediction.mask(cand.rank), dtype=bool)
    )
    box = cand.box if cand.mask is not None else mask_box(mask)
    step = 1
    if draft and box is not None:
        pixels = (box[2] - box[0]) * (box[3] - box[1])
        step = max(1, int(np.ceil(np.sqrt(pixels / DRAFT_PIXELS))))
    picture = render_mask(
        mask,
        color,
        fill_alpha=120,
        box=box,
        outline_color=CANDIDATE_EDGE,
        outline_width=2,
        step=step,
    )
    picture_qimage(picture)  # convert here, in whichever thread completes it
    return replace(cand, mask=mask, box=box, picture=picture, area=int(np.count_nonzero(mask)))


def estimated_area(pred: Any, index: int) -> int:
    """Pixels of candidate `index` estimated from its low-res logits (before upscaling)."""
    low = pred.low_res_logits[index]
    scale = low.shape[0] / float(pred.image_size)
    vh = max(1, int(np.ceil(pred.input_size[0] * scale)))
    vw = max(1, int(np.ceil(pred.input_size[1] * scale)))
    h, w = pred.original_size
    return int(round(np.count_nonzero(low[:vh, :vw] > 0) * (h * w) / float(vh * vw)))
