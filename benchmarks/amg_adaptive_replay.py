"""Adaptive mode's rule constants replayed on cached decoder outputs: recall and calls.

`amg_adaptive_recall.py` measures the shipped rule end to end; this script answers "what
if a constant were different" without decoding again. For each image the full grid is
decoded once through a caching wrapper (`ReplaySegmenter`: each point's three low-res
masks and predicted IoUs are kept, keyed by the point); adaptive mode then runs once per
setting of `samstudio.core.amg_adaptive`'s constants and is answered from the cache, so
a setting costs the filtering and post-processing, not the decoder. The decoder's output
for a point does not depend on the other points of its batch, so the replay gives the
masks the real run would (checked: the shipped rule's figures equal
`amg_adaptive_recall.py`'s). Prints one JSON object: for each setting, the recall of the
full grid's masks at IoU >= 0.95 (the issue's target: >= 98%), adaptive mode's decoder
calls and decoded points, and how many times fewer than the full grid's; on generated
scenes also how many of their annotated objects each finds at IoU >= 0.8 (as
`tests/unit/test_amg.py` counts them), beside the full grid's, and how many of the
objects the full grid finds it loses.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/amg_adaptive_replay.py \
        [--model M] [--scenes 12] [--first-seed 10000500] [--photos 4] [--filters 0.5/0.8] \
        [--set NEAR_MISS_MARGIN=0.05] [--set AGREEMENT_IOU=0.9,NEAR_MISS_MARGIN=0.15] [--set COARSE=12] ...

Each `--set` is one setting (comma-separated NAME=VALUE pairs); COARSE sets the coarse
grid (`adaptive_points_per_side`, 0 for its default of half the grid); the shipped
constants and default coarse grid are always measured first. Memory: one image's cache at a time (1,024 points x 3 masks
of the model's low-res logits: 200 MB at 128 x 128).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

CONSTANTS = ("NEAR_MISS_MARGIN", "AGREEMENT_IOU", "FILL_REACH")
COARSE = "COARSE"  # not a constant: AmgParams.adaptive_points_per_side (0: its default)


class ReplaySegmenter:
    """Wraps a Segmenter: decodes each point once, answers repeats from the cache, and
    counts calls and points as the real decoder would be asked."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cache: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}
        self.meta: tuple[Any, ...] | None = None
        self.calls = 0
        self.points = 0

    @property
    def info(self) -> Any:
        return self.inner.info

    def decode_points_batch(
        self, embedding: Any, points: np.ndarray, multimask: bool = True
    ) -> Any:
        from samstudio.inference.types import BatchPrediction

        self.calls += 1
        self.points += len(points)
        keys = [(float(x), float(y)) for x, y in points]
        missing = [i for i, key in enumerate(keys) if key not in self.cache]
        if missing:
            got = self.inner.decode_points_batch(
                embedding, np.asarray(points)[missing], multimask=multimask
            )
            for row, i in enumerate(missing):
                self.cache[keys[i]] = (got.low_res_logits[row], got.iou_predictions[row])
            self.meta = (got.original_size, got.input_size, got.image_size)
        assert self.meta is not None
        low = np.stack([self.cache[key][0] for key in keys])
        ious = np.stack([self.cache[key][1] for key in keys])
        return BatchPrediction(np.asarray(points), low, ious, *self.meta)


def parse_setting(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in text.split(","):
        name, _, value = pair.partition("=")
        name = name.strip().upper()
        if name not in (*CONSTANTS, COARSE) or not value:
            raise SystemExit(
                f"--set {text!r}: expected NAME=VALUE with NAME in {(*CONSTANTS, COARSE)}"
            )
        out[name] = float(value)
    return out


@contextlib.contextmanager
def with_constants(setting: dict[str, float]) -> Iterator[None]:
    """`amg_adaptive`'s constants (and `amg`'s imported copies) set, restored after."""
    import samstudio.core.amg as amg
    import samstudio.core.amg_adaptive as adaptive

    saved = [
        (m, name, getattr(m, name))
        for m in (adaptive, amg)
        for name in setting
        if name in CONSTANTS and hasattr(m, name)
    ]
    try:
        for module, name, _ in saved:
            setattr(module, name, int(setting[name]) if name == "FILL_REACH" else setting[name])
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


FOUND_IOU = 0.8  # an object is found at this IoU, as tests/unit/test_amg.py counts


def objects_found(objects: list[Any], masks: list[Any]) -> np.ndarray:
    """(len(objects),) bool: which ground-truth objects (RLEs) some mask (RLE) matches at
    IoU >= 0.8."""
    from samstudio.core.masks import rle_iou

    if not objects or not masks:
        return np.zeros(len(objects), dtype=bool)
    return np.asarray(rle_iou(objects, masks).max(axis=1) >= FOUND_IOU)


def scene_objects(name: str) -> list[Any]:
    """The ground-truth objects of a generated scene ("scene SEED") as RLEs; [] for a photo."""
    if not name.startswith("scene "):
        return []
    from samstudio.core.masks import encode_rles
    from samstudio.training.synthetic import make_scene

    return encode_rles(make_scene(int(name.split()[1])).masks)


def run(
    seg: ReplaySegmenter, image: np.ndarray, embedding: Any, params: Any
) -> tuple[list[Any], int, int]:
    from samstudio.core.amg import generate_masks

    seg.calls = seg.points = 0
    records = generate_masks(seg, image, params, embedding=embedding)
    return [r.segmentation for r in records], seg.calls, seg.points


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: the shipped demo model")
    parser.add_argument("--scenes", type=int, default=12)
    parser.add_argument("--first-seed", type=int, default=10_000_500)
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--points-per-batch", type=int, default=64)
    parser.add_argument("--filters", default="0.5/0.8", help="PRED_IOU/STABILITY")
    parser.add_argument("--set", action="append", default=[], dest="settings")
    args = parser.parse_args()

    from amg_adaptive_recall import best_ious, images

    import samstudio.core.amg_adaptive as adaptive
    from samstudio.core.amg import AmgParams
    from samstudio.inference.loader import open_model

    settings = [{name: float(getattr(adaptive, name)) for name in CONSTANTS} | {COARSE: 0.0}]
    settings += [dict(settings[0], **parse_setting(text)) for text in args.settings]
    pred_iou, stability = (float(v) for v in args.filters.split("/"))
    common = {
        "points_per_side": args.points_per_side,
        "points_per_batch": args.points_per_batch,
        "pred_iou_thresh": pred_iou,
        "stability_score_thresh": stability,
    }
    segmenter = open_model(args.model, device="cpu")
    full_totals = [0, 0, 0, 0, 0]  # masks, calls, points, objects, objects found
    # found, calls, points, masks, objects found, objects the full grid finds and it does not
    totals = [[0, 0, 0, 0, 0, 0] for _ in settings]
    names = []
    for name, image in images(args):
        names.append(name)
        seg = ReplaySegmenter(segmenter)
        embedding = segmenter.encode(image)
        full = run(seg, image, embedding, AmgParams(**common))
        for i, value in enumerate(full):
            full_totals[i] += len(value) if i == 0 else value
        objects = scene_objects(name)
        full_totals[3] += len(objects)
        full_objects = objects_found(objects, full[0])
        full_totals[4] += int(full_objects.sum())
        for setting, total in zip(settings, totals, strict=True):
            with with_constants(setting):
                coarse = int(setting[COARSE]) or None
                params = AmgParams(adaptive=True, adaptive_points_per_side=coarse, **common)
                masks, calls, points = run(seg, image, embedding, params)
            total[0] += int((best_ious(full[0], masks) >= 0.95).sum())
            total[1] += calls
            total[2] += points
            total[3] += len(masks)
            found_here = objects_found(objects, masks)
            total[4] += int(found_here.sum())
            total[5] += int((full_objects & ~found_here).sum())
        print(json.dumps({"progress": name, "masks_full": len(full[0])}), file=sys.stderr)
    result = {
        "benchmark": "amg_adaptive_replay",
        "model": segmenter.info.model_id,
        "images": names,
        "filters": args.filters,
        "full": dict(
            zip(
                ("masks", "decoder_calls", "decoded_points", "scene_objects", "objects_found"),
                full_totals,
                strict=True,
            )
        ),
        "settings": [
            {
                "constants": setting,
                "recall_iou_0.95": round(found / max(full_totals[0], 1), 4),
                "masks": masks,
                "decoder_calls": calls,
                "decoded_points": points,
                "fewer_decoder_calls": round(full_totals[1] / max(calls, 1), 3),
                "fewer_decoded_points": round(full_totals[2] / max(points, 1), 3),
                "objects_found": objects,
                "objects_lost": lost,
            }
            for setting, (found, calls, points, masks, objects, lost) in zip(
                settings, totals, strict=True
            )
        ],
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
