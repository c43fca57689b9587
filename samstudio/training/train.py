"""The training loop of the demo model: synthetic batches, the 11-round simulation,
AdamW with linear warm-up and step decay, checkpoints and resume (torch-only).

Files in `train.out_dir`:
- `state.pt`: model, optimiser and scheduler state and the step (for resume);
- `model.pt`: the weights in the shipped format
  {"samstudio_model": model config, "state_dict": ...};
- `config.yaml`: the resolved config; `log.jsonl`: one JSON line per logged step.
Batches are a pure function of (config, step), so a resumed run sees the same data
as an uninterrupted one. `train.device` picks where the model runs ("cpu", "cuda",
"auto"); `train.workers` > 0 makes the batches ahead in that many processes (the
same batches: only who computes them changes). On the CPU a run is bit-reproducible;
on a GPU PyTorch does not promise identical arithmetic, so a rerun may differ slightly.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samstudio.core.atomic import atomic_write, atomic_write_text
from samstudio.inference.demo_arch import build_demo_sam
from samstudio.inference.preprocess import resize_image
from samstudio.training.config import dump_config
from samstudio.training.simulate import round_schedule, simulate
from samstudio.training.synthetic import make_scene


@dataclass(frozen=True)
class RawBatch:
    """A batch as the scene maker leaves it, compact enough to send between processes:
    images (B, S, S, 3) uint8, the scenes zero-padded bottom/right; valid_hw (B, 2)
    int64, each scene's (h, w); packed_masks (B, K, S, ceil(S / 8)) uint8, the padded
    target masks as `np.packbits` along the last axis. 4.2 MB for 16 images x 8 masks
    at 256 px, where `make_batch`'s float32 tensors are 46 MB, whose unpickling cost the
    training process about 0.15 s a batch on the 2-core machine (BENCHMARKS.md; stage 3
    of the demo model ran at 0.30-0.43 s per step on a GPU with 14 scene-making
    processes, possibly paced by that). `finish_batch` turns it into the model's
    tensors on the training device."""

    images: np.ndarray
    valid_hw: np.ndarray
    packed_masks: np.ndarray


def batch_scenes(config: dict[str, Any], step: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each image of batch `step`: (the scene's (h, w, 3) uint8 image, its K target
    masks (K, h, w) bool). Deterministic in (config, step): image i is the i-th scene
    with a mask from seed train_seed_base + 4 * batch_images * step on, its targets
    picked by the scene's own seed."""
    data, train = config["data"], config["train"]
    b, k, s = int(train["batch_images"]), int(train["masks_per_image"]), int(data["size"])
    seed = int(data["train_seed_base"]) + step * b * 4
    for _ in range(b):
        while True:
            scene = make_scene(
                seed,
                size=s,
                min_objects=int(data["min_objects"]),
                max_objects=int(data["max_objects"]),
                composite_prob=float(data["composite_prob"]),
            )
            seed += 1
            if len(scene.masks):
                break
        pick = np.random.default_rng(scene.seed).choice(
            len(scene.masks), size=k, replace=len(scene.masks) < k
        )
        yield scene.image, scene.masks[pick].astype(bool)


def make_raw_batch(config: dict[str, Any], step: int) -> RawBatch:
    """The scenes and target masks of batch `step` (deterministic in (config, step))."""
    data, train = config["data"], config["train"]
    b, k, s = int(train["batch_images"]), int(train["masks_per_image"]), int(data["size"])
    side = int(config["model"]["img_size"])
    factor = side // s
    images = np.zeros((b, side, side, 3), np.uint8)
    masks = np.zeros((b, k, side, side), bool)
    valid = np.zeros((b, 2), np.int64)
    for i, (image, targets) in enumerate(batch_scenes(config, step)):
        h, w = image.shape[:2]
        if max(h, w) != s:  # the model's resize would change the scene: not a batch of it
            raise ValueError(f"a scene of batch {step} is {w}x{h}, not {s} px on its long side")
        if factor > 1:  # what the app feeds the model for this picture; exact masks
            image = resize_image(image, side)
            targets = targets.repeat(factor, axis=1).repeat(factor, axis=2)
            h, w = image.shape[:2]
        images[i, :h, :w] = image
        masks[i, :, :h, :w] = targets
        valid[i] = (h, w)
    return RawBatch(images, valid, np.packbits(masks, axis=-1))


def finish_batch(
    config: dict[str, Any], raw: RawBatch, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images (B, 3, S, S) float32 normalised and padded, targets (B, K, S, S) float32
    0/1, valid_hw (B, 2) long) of a `RawBatch`, made on `device`. The normalisation is
    `preprocess.prepare_input`'s ((pixel - mean) / std in float32, zero padding): on the
    CPU the tensors are bit-identical to it."""
    model = config["model"]
    dev = torch.device(device)
    s = raw.images.shape[1]
    pixels = torch.from_numpy(raw.images).to(dev)
    valid = torch.from_numpy(raw.valid_hw).to(dev)
    mean = torch.tensor(model["pixel_mean"], dtype=torch.float32, device=dev)
    std = torch.tensor(model["pixel_std"], dtype=torch.float32, device=dev)
    rows = torch.arange(s, device=dev)
    inside = (rows[None, :, None] < valid[:, 0, None, None]) & (
        rows[None, None, :] < valid[:, 1, None, None]
    )
    # channels first before the arithmetic: 1.4x faster on the CPU than broadcasting
    # over a last axis of 3; the same float32 operations, so the same values
    normalised = (pixels.permute(0, 3, 1, 2).float() - mean[:, None, None]) / std[:, None, None]
    images = torch.where(inside[:, None], normalised, 0.0).contiguous()
    packed = torch.from_numpy(raw.packed_masks).to(dev)
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=dev)
    bits = (packed[..., None] >> shifts) & 1
    targets = bits.flatten(-2)[..., :s].float()
    return images, targets, valid


def make_batch(
    config: dict[str, Any], step: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch `step`: (images (B, 3, S, S) float32 normalised and padded, targets
    (B, K, S, S) float32 0/1, valid_hw (B, 2) long). Deterministic in (config, step)."""
    return finish_batch(config, make_raw_batch(config, step))


def resolve_device(name: str) -> torch.device:
    """`"auto"` -> CUDA when available, else CPU. Raises ValueError for a CUDA device
    on a machine without one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device is {name!r} but no CUDA device is available")
    return dev


def batches(
    config: dict[str, Any],
    first: int,
    last: int,
    workers: int,
    device: torch.device | str = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """make_batch(config, step) for step in [first, last), in order, on `device`; with
    workers > 0 the scenes are made ahead by that many processes (spawned: safe after
    CUDA starts), which send compact `RawBatch`es."""
    if workers <= 0:
        for step in range(first, last):
            yield finish_batch(config, make_raw_batch(config, step), device)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        ahead: list[Future[RawBatch]] = []
        nxt = first
        try:
            for _ in range(first, last):
                while nxt < last and len(ahead) < 3 * workers:
                    ahead.append(pool.submit(make_raw_batch, config, nxt))
                    nxt += 1
                # the workers make the scenes; the compact batch is finished on the
                # training device, with the same code as make_batch: the same tensors
                yield finish_batch(config, ahead.pop(0).result(), device)
        finally:
            for fut in ahead:
                fut.cancel()


def lr_factor(step: int, train: dict[str, Any]) -> float:
    """Linear warm-up to 1 over `warmup` steps, then x decay_factor at each decay step."""
    warm = int(train["warmup"])
    if step < warm:
        return (step + 1) / warm
    drops = sum(step >= int(d) for d in train["decay_steps"])
    return float(train["decay_factor"]) ** drops


def init_weights(sam: torch.nn.Module, model_config: dict[str, Any], path: Path) -> None:
    """Load the weights of an earlier stage (`save_weights` format) into `sam`.
    Raises ValueError naming the file when it is missing, not a demo checkpoint, or
    of another architecture than `model_config`.

    Weights of another input size (`img_size`, all else equal) are accepted: every
    layer is size-free except the encoder's learned position embeddings, which are
    resampled (bicubic) from the old embedding grid to the new one."""
    if not path.is_file():
        raise ValueError(f"{path}: init_from weights not found")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "samstudio_model" not in blob:
        raise ValueError(f"{path}: not a SAM Studio demo checkpoint")
    theirs = {k: v for k, v in blob["samstudio_model"].items() if k not in ("name", "img_size")}
    ours = {k: v for k, v in model_config.items() if k not in ("name", "img_size")}
    if theirs != ours:
        diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        raise ValueError(f"{path}: architecture differs from the config in {diff}")
    state = dict(blob["state_dict"])
    for name, target in sam.state_dict().items():
        old = state.get(name)
        if name.endswith(".pos") and old is not None and old.shape != target.shape:
            state[name] = resample_position_embedding(old, target.shape[1])
    sam.load_state_dict(state)


def resample_position_embedding(pos: torch.Tensor, tokens: int) -> torch.Tensor:
    """(1, g * g, C) learned grid position embedding -> (1, tokens, C), bicubic."""
    old_side, new_side = round(pos.shape[1] ** 0.5), round(tokens**0.5)
    if old_side**2 != pos.shape[1] or new_side**2 != tokens:
        raise ValueError(f"not square grids: {pos.shape[1]} -> {tokens} positions")
    grid = pos.reshape(1, old_side, old_side, -1).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(
        grid.float(), size=(new_side, new_side), mode="bicubic", align_corners=False
    )
    return grid.permute(0, 2, 3, 1).reshape(1, tokens, -1).to(pos.dtype)


def save_weights(sam: torch.nn.Module, model_config: dict[str, Any], path: Path) -> None:
    """Write {"samstudio_model": config, "state_dict": float32 tensors} atomically."""
    blob = {
        "samstudio_model": dict(model_config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in sam.state_dict().items()},
    }
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def train(
    config: dict[str, Any],
    resume: bool = True,
    log: Callable[[str], None] = print,
    max_steps: int | None = None,
) -> Path:
    """Train (or resume) the run described by the resolved `config`; returns the
    path of `model.pt`. `max_steps` stops early after that many steps in this call
    (the schedule still follows `train.iterations`)."""
    tc = config["train"]
    out = Path(tc["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(tc["threads"]))
    torch.manual_seed(int(tc["seed"]))
    device = resolve_device(str(tc["device"]))
    sam = build_demo_sam(config["model"])
    sam.train()
    opt = torch.optim.AdamW(
        sam.parameters(),
        lr=float(tc["lr"]),
        betas=(float(tc["betas"][0]), float(tc["betas"][1])),
        weight_decay=float(tc["weight_decay"]),
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, tc))
    step = 0
    state_path = out / "state.pt"
    if tc.get("init_from") and not (resume and state_path.exists()):
        init_weights(sam, config["model"], Path(tc["init_from"]))
        log(f"initialised from {tc['init_from']}")
    if resume and state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        sam.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
        log(f"resumed from {state_path} at step {step}")
    sam.to(device)
    _optimizer_to(opt, device)
    if device.type != "cpu":
        log(f"training on {device}")
    atomic_write_text(out / "config.yaml", dump_config(config))
    total = int(tc["iterations"])
    done_here = 0
    t_last = time.perf_counter()
    last = total if max_steps is None else min(total, step + max_steps)
    for images, targets, valid in batches(config, step, last, int(tc["workers"]), device):
        gen = torch.Generator(device=device).manual_seed(int(tc["seed"]) * 1_000_003 + step)
        schedule = round_schedule(np.random.default_rng([int(tc["seed"]), step]))
        result = simulate(
            sam,
            images,
            targets,
            valid,
            gen,
            schedule,
            float(tc["box_prob"]),
            loss_size=tc["loss_size"],
        )
        opt.zero_grad(set_to_none=True)
        result.loss.backward()
        if float(tc["grad_clip"]) > 0:
            torch.nn.utils.clip_grad_norm_(sam.parameters(), float(tc["grad_clip"]))
        opt.step()
        sched.step()
        step += 1
        done_here += 1
        if step % int(tc["log_every"]) == 0 or step == total:
            now = time.perf_counter()
            sec = (now - t_last) / int(tc["log_every"])
            t_last = now
            rec = {
                "step": step,
                "loss": round(float(result.loss.detach()), 4),
                "iou_round1": round(result.ious[0], 4),
                "iou_round11": round(result.ious[-1], 4),
                "lr": opt.param_groups[0]["lr"],
                "sec_per_step": round(sec, 2),
            }
            log(
                f"step {step}/{total} loss {rec['loss']:.4f} IoU r1 {rec['iou_round1']:.3f} "
                f"r11 {rec['iou_round11']:.3f} lr {rec['lr']:.2e} {sec:.2f}s/step "
                f"eta {sec * (total - step) / 60:.0f} min"
            )
            with open(out / "log.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec) + "\n")
        if step % int(tc["checkpoint_every"]) == 0 or step == total:
            _checkpoint(sam, opt, sched, step, config, out)
    if done_here == 0 and not (out / "model.pt").exists():
        _checkpoint(sam, opt, sched, step, config, out)
    return out / "model.pt"


def _optimizer_to(opt: torch.optim.Optimizer, device: torch.device) -> None:
    """Move a (possibly resumed) optimiser's state tensors to `device`; AdamW's step
    counters stay where torch keeps them."""
    for st in opt.state.values():
        for key, val in st.items():
            if isinstance(val, torch.Tensor) and key != "step":
                st[key] = val.to(device)


def _checkpoint(
    sam: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    config: dict[str, Any],
    out: Path,
) -> None:
    state = {
        "model": sam.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "step": step,
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(out / "state.pt", lambda fh: fh.write(buf.getvalue()))
    save_weights(sam, config["model"], out / "model.pt")
