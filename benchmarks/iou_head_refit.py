"""Would a better-trained IoU head pick better masks? Refit the head alone and compare.

After one click SAM returns three candidates and ranks them by its IoU head, a small MLP
on the decoder's IoU token; the 1-point mIoU counts the top-ranked candidate, the 1-point
"oracle" the best. With the demo model the two differ by about 0.15, which could be a
head that is under-trained or a token that does not carry the information. This
collects, for a centre click and a random interior click on every mask of generated
scenes, the IoU token (the head's input) and the true IoU of each of the three
candidates (full resolution, threshold 0), refits a copy of the head on the training
scenes (MSE, as the recipe's IoU loss), and prints as JSON, on separate validation
scenes, for the shipped head and the refitted one: the 1-point mIoU of the candidate
each ranks first, the oracle, the MSE and correlation of predicted and true IoU, and
the mean predicted IoU of the candidates that are truly good (IoU >= 0.8). The masks do
not change: only the ranking and the scores.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/iou_head_refit.py [--model M.pt]
        [--train-scenes 400] [--val-scenes 100] [--steps 1000]

Needs torch (the PyTorch backend); 4-6 minutes with the defaults on one core.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GOOD = 0.8
KINDS = ("center", "random")


def collect(seg, seeds: range, rng: np.random.Generator):
    """(tokens (N, C), true IoUs (N, 3) in token order, first-click kind (N,)) for a
    centre click and a random interior click on every mask of the scenes."""
    import torch

    from samstudio.core.point_eval import farthest_from_boundary, iou
    from samstudio.inference.preprocess import resized_shape, upscale_logits
    from samstudio.training.synthetic import make_scene

    head = seg.sam.mask_decoder.iou_prediction_head
    seen: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, args, _out: seen.append(args[0].clone()))
    tokens, ious, kinds = [], [], []
    try:
        for seed in seeds:
            scene = make_scene(seed)
            h, w = scene.image.shape[:2]
            emb = seg.encode(scene.image)
            for kind in range(len(KINDS)):
                points = []
                for gt in scene.masks:
                    if kind == 0:
                        points.append(farthest_from_boundary(gt))
                    else:
                        ys, xs = np.nonzero(gt)
                        j = int(rng.integers(len(xs)))
                        points.append((xs[j] + 0.5, ys[j] + 0.5))
                seen.clear()
                batch = seg.decode_points_batch(emb, np.array(points, np.float32))
                tok = torch.cat(seen).float()
                with torch.inference_mode():
                    check = head(tok)[:, 1:].numpy()
                if not np.allclose(check, batch.iou_predictions, atol=1e-4):
                    raise RuntimeError("the captured IoU tokens do not give the decoder's scores")
                input_size = resized_shape(h, w, batch.image_size)
                for gt, low in zip(scene.masks, batch.low_res_logits, strict=True):
                    up = upscale_logits(low, input_size, (h, w), batch.image_size)
                    ious.append([iou(m > 0, gt) for m in up])
                tokens.append(tok.numpy())
                kinds += [kind] * len(points)
    finally:
        hook.remove()
    return np.concatenate(tokens), np.array(ious, np.float32), np.array(kinds)


def scores(head, tokens: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return head(torch.from_numpy(tokens))[:, 1:].numpy()


def report(pred: np.ndarray, true: np.ndarray, kinds: np.ndarray) -> dict[str, dict[str, float]]:
    out = {}
    for k, name in enumerate(KINDS):
        p, y = pred[kinds == k], true[kinds == k]
        good = y >= GOOD
        out[name] = {
            "miou_1": round(float(y[np.arange(len(y)), p.argmax(1)].mean()), 4),
            "oracle_miou_1": round(float(y.max(1).mean()), 4),
            "mse": round(float(((p - y) ** 2).mean()), 4),
            "correlation": round(float(np.corrcoef(p.ravel(), y.ravel())[0, 1]), 4),
            "good_mean_predicted": round(float(p[good].mean()), 4),
            "good_predicted_over_0.88": round(float((p[good] > 0.88).mean()), 4),
        }
    return out


def refit(head, tokens: np.ndarray, true: np.ndarray, steps: int, seed: int):
    import torch

    torch.manual_seed(seed)
    new = copy.deepcopy(head).float().train()
    for param in new.parameters():
        param.requires_grad_(True)
    opt = torch.optim.AdamW(new.parameters(), lr=1e-3, weight_decay=0.1)
    x, y = torch.from_numpy(tokens), torch.from_numpy(true)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (512,))
        loss = ((new(x[idx])[:, 1:] - y[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return new.eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(REPO / "resources/models/samstudio-demo/model.pt"))
    p.add_argument("--train-scenes", type=int, default=400)
    p.add_argument("--train-seed", type=int, default=4_700_000_000, help="unused by training")
    p.add_argument("--val-scenes", type=int, default=100)
    p.add_argument("--val-seed", type=int, default=11_000_000, help="the validation scenes")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    from samstudio.inference.loader import open_model

    torch.set_num_threads(1)
    seg = open_model(args.model, device="cpu")
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    train = collect(seg, range(args.train_seed, args.train_seed + args.train_scenes), rng)
    val = collect(seg, range(args.val_seed, args.val_seed + args.val_scenes), rng)
    head = seg.sam.mask_decoder.iou_prediction_head
    new = refit(head, train[0], train[1], args.steps, args.seed)
    print(
        json.dumps(
            {
                "benchmark": "iou_head_refit",
                "model": seg.info.model_id,
                "train": {
                    "seeds": [args.train_seed, args.train_seed + args.train_scenes - 1],
                    "clicks": len(train[0]),
                },
                "validation": {
                    "seeds": [args.val_seed, args.val_seed + args.val_scenes - 1],
                    "clicks": len(val[0]),
                },
                "steps": args.steps,
                "shipped_head": report(scores(head, val[0]), val[1], val[2]),
                "refitted_head": report(scores(new, val[0]), val[1], val[2]),
                "seconds": round(time.perf_counter() - t0, 1),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
