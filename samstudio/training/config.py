"""Training configuration: a YAML file with `model`, `data` and `train` sections.

Every value has a default here, so a config file lists only what it changes; the
full resolved config is written next to the checkpoints and into the shipped model
directory, so the weights can be reproduced.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from samstudio.inference.demo_arch import DEFAULT_CONFIG as MODEL_DEFAULTS
from samstudio.inference.demo_arch import encoder_stride

DATA_DEFAULTS: dict[str, Any] = {
    # long side of the synthetic scenes; model.img_size must be a whole multiple of it.
    # Smaller than the input, a scene is enlarged the app's way (PIL bilinear) and its
    # masks by pixel repetition, so the model trains on what it sees of such a picture
    "size": 256,
    "min_objects": 3,
    "max_objects": 9,
    "composite_prob": 0.45,
    "train_seed_base": 0,  # training scene i uses seed train_seed_base + i
    "heldout_seed_base": 10_000_000,  # evaluation scenes never overlap training
}

TRAIN_DEFAULTS: dict[str, Any] = {
    "out_dir": "runs/demo",
    "seed": 0,
    "threads": 1,  # more threads spin-wait badly on a shared, oversubscribed CPU
    "device": "cpu",  # "cpu", "cuda", "cuda:N" or "auto" (CUDA when available)
    "workers": 0,  # processes making batches ahead (0: in the training process)
    "batch_images": 8,
    "masks_per_image": 4,
    "iterations": 2000,
    "lr": 8.0e-4,
    "warmup": 250,
    "decay_steps": [1333, 1926],  # the paper's 60k / 86.67k of 90k, rescaled
    "decay_factor": 0.1,
    "weight_decay": 0.1,
    "betas": [0.9, 0.999],
    "box_prob": 0.5,
    # side of the square frame where the mask loss and the IoU head's target are
    # computed: null = the low-res logits (4x the embedding grid, stages 1-5);
    # larger = the logits upsampled (bilinear, as the app shows them) to that side,
    # against the ground truth area-averaged to it (exact masks at the input size).
    # A soft target on the 64 x 64 logits caps even a perfect model at mean IoU 0.87
    # on the held-out scenes (MODEL_CARD.md)
    "loss_size": None,
    # weights file of an earlier stage (`model.pt` format) to start from instead of
    # a random initialisation; optimiser and schedule start fresh
    "init_from": None,
    "grad_clip": 1.0,
    "checkpoint_every": 50,
    "log_every": 10,
}

SECTIONS = {"model": MODEL_DEFAULTS, "data": DATA_DEFAULTS, "train": TRAIN_DEFAULTS}


def resolve(raw: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Defaults overlaid with `raw`. Raises ValueError naming `source` on unknown
    sections or keys."""
    out = {name: copy.deepcopy(defaults) for name, defaults in SECTIONS.items()}
    for section, values in (raw or {}).items():
        if section not in SECTIONS:
            raise ValueError(f"{source}: unknown section {section!r} (expected {sorted(SECTIONS)})")
        if not isinstance(values, dict):
            raise ValueError(f"{source}: section {section!r} must be a mapping")
        unknown = set(values) - set(SECTIONS[section])
        if unknown:
            raise ValueError(f"{source}: unknown keys in {section!r}: {sorted(unknown)}")
        out[section].update(values)
    size, img_size = out["data"]["size"], out["model"]["img_size"]
    stride = encoder_stride(out["model"]["stage_channels"])
    if (
        isinstance(img_size, bool)
        or not isinstance(img_size, int)
        or img_size < stride
        or img_size % stride
    ):
        raise ValueError(
            f"{source}: model.img_size must be a whole multiple of the encoder's stride "
            f"({stride}), got {img_size!r}"
        )
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or img_size % size:
        raise ValueError(
            f"{source}: data.size ({size!r}) must be model.img_size ({img_size!r}) or a "
            "whole divisor of it"
        )
    loss_size = out["train"]["loss_size"]
    model = out["model"]
    low = 4 * int(model["img_size"]) // encoder_stride(model["stage_channels"])
    if loss_size is not None and (
        isinstance(loss_size, bool)
        or not isinstance(loss_size, int)
        or not low <= loss_size <= model["img_size"]
    ):
        raise ValueError(
            f"{source}: train.loss_size must be null or a whole number from the low-res "
            f"logits' side ({low}) to model.img_size ({model['img_size']}), got {loss_size!r}"
        )
    return out


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and resolve a YAML training config. Raises ValueError naming the file."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{p}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{p}: not valid YAML: {exc}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ValueError(f"{p}: a config is a mapping with model/data/train sections")
    return resolve(raw or {}, str(p))


def dump_config(config: dict[str, Any]) -> str:
    """YAML text of a resolved config."""
    return yaml.safe_dump(config, sort_keys=False)
