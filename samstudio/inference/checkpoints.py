"""Loading SAM checkpoints safely into Meta's `segment_anything` modules.

Official SAM checkpoints (`sam_vit_b_01ec64.pth`, `sam_vit_l_0b3195.pth`,
`sam_vit_h_4b8939.pth`) are plain state dicts. They are read with
`torch.load(..., weights_only=True)`, so a file whose pickle would construct
arbitrary objects or run code is refused before anything in it executes.

The project's own demo model is a dict `{"samstudio_model": {config}, "state_dict": {...}}`
built by `samstudio.inference.demo_arch.build_demo_sam(config)`.

Every failure raises `ModelLoadError` naming the file and the problem. torch is
imported inside the functions: this module is only used on the PyTorch path.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from samstudio.inference.errors import ModelLoadError

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

# Image encoder width -> (architecture, number of transformer blocks) of official SAM.
OFFICIAL_ARCHITECTURES: dict[int, tuple[str, int]] = {
    768: ("vit_b", 12),
    1024: ("vit_l", 24),
    1280: ("vit_h", 32),
}
ARCHITECTURE_NAMES = tuple(name for name, _ in OFFICIAL_ARCHITECTURES.values())

_PATCH_KEY = "image_encoder.patch_embed.proj.weight"
_BLOCK_KEY = re.compile(r"^image_encoder\.blocks\.(\d+)\.")
_MAX_LISTED = 5


def file_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in chunks (about 1 s for a 375 MB checkpoint)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def detect_architecture(state_dict: dict[str, Any]) -> str | None:
    """The official SAM architecture ("vit_b", "vit_l", "vit_h") a state dict belongs to.

    Read from the image encoder's patch-embedding width and its number of blocks;
    None when the dict does not look like any of them.
    """
    patch = state_dict.get(_PATCH_KEY)
    shape = getattr(patch, "shape", None)
    if shape is None or len(shape) != 4:
        return None
    known = OFFICIAL_ARCHITECTURES.get(int(shape[0]))
    if known is None:
        return None
    name, depth = known
    blocks = {int(m.group(1)) for key in state_dict if (m := _BLOCK_KEY.match(key))}
    if len(blocks) != depth:
        return None
    return name


def _describe_state_dict(state_dict: dict[str, Any]) -> str:
    patch = state_dict.get(_PATCH_KEY)
    shape = getattr(patch, "shape", None)
    blocks = {int(m.group(1)) for key in state_dict if (m := _BLOCK_KEY.match(key))}
    if shape is None:
        return "no SAM image encoder"
    return f"an image encoder of width {int(shape[0])} with {len(blocks)} blocks"


def _read_file(path: Path) -> Any:
    """torch.load with weights_only, every failure turned into a ModelLoadError."""
    import torch

    if not path.exists():
        raise ModelLoadError(f"model file {path} does not exist")
    if path.is_dir():
        raise ModelLoadError(f"model file {path} is a directory, not a .pth checkpoint")
    size = path.stat().st_size
    if size == 0:
        raise ModelLoadError(f"model file {path} is empty (0 bytes): the download or copy failed")
    with open(path, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive; very old files are a bare pickle (protocol 2+).
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise ModelLoadError(
            f"model file {path} is not a PyTorch checkpoint: it is neither a zip archive "
            f"nor a pickle (it starts with {head!r})"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        global_line = next((ln.strip() for ln in text.splitlines() if "GLOBAL" in ln.upper()), "")
        if global_line or "REDUCE" in text.upper():
            detail = f" (torch said: {global_line})" if global_line else ""
            raise ModelLoadError(
                f"model file {path} was refused: it contains code or objects that are not "
                "plain tensors and numbers, which could run arbitrary code when loaded"
                f"{detail}. Only use checkpoints from sources you trust; official SAM "
                "checkpoints load without this error."
            ) from None
        detail = next((ln.strip() for ln in text.splitlines() if "Unsupported" in ln), "")
        raise ModelLoadError(
            f"model file {path} was refused: it is not a plain checkpoint of tensors "
            f"(torch's safe loader stopped at: {detail or 'unreadable pickle data'}); "
            "nothing in it was executed"
        ) from None
    except Exception as exc:  # noqa: BLE001  (arbitrary bytes make torch.load raise anything)
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        lowered = text.lower()
        truncated = ("central directory", "truncated", "unexpected eof", "corrupted")
        if isinstance(exc, EOFError) or any(word in lowered for word in truncated):
            raise ModelLoadError(
                f"model file {path} is truncated or corrupt ({size} bytes; torch said: "
                f"{text[:120]}); download or copy it again"
            ) from None
        raise ModelLoadError(
            f"model file {path} is not a PyTorch checkpoint (torch said: {text[:160]})"
        ) from None


def _check_state_dict(path: Path, obj: Any) -> dict[str, Any]:
    import torch

    if not isinstance(obj, dict) or not obj:
        raise ModelLoadError(
            f"model file {path} is not a SAM checkpoint: it holds a {type(obj).__name__}, "
            "not a dict of weights"
        )
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelLoadError(
            f"model file {path} is not a SAM checkpoint: entries {bad[:_MAX_LISTED]!r} are not "
            "named tensors"
        )
    return obj


def _load_into(path: Path, sam: Sam, state_dict: dict[str, Any], architecture: str) -> None:
    """Strict load with a readable report of missing, unexpected and mis-shaped weights."""
    expected = sam.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mis_shaped = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing weights (e.g. {missing[:_MAX_LISTED]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected weights (e.g. {unexpected[:_MAX_LISTED]})")
    if mis_shaped:
        problems.append(
            f"{len(mis_shaped)} weights of the wrong shape (file vs model, e.g. {mis_shaped[:3]})"
        )
    if problems:
        raise ModelLoadError(
            f"model file {path} does not match the {architecture} architecture: "
            + "; ".join(problems)
        )
    try:
        sam.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:  # dtype problems and the like
        raise ModelLoadError(
            f"model file {path} could not be loaded as {architecture}: {exc}"
        ) from None


def _load_demo(path: Path, obj: dict[str, Any], architecture: str | None) -> tuple[Sam, str]:
    config = obj["samstudio_model"]
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise ModelLoadError(
            f"model file {path} has a malformed 'samstudio_model' entry (a dict with a 'name')"
        )
    name = config["name"]
    if architecture is not None and architecture != name:
        raise ModelLoadError(
            f"model file {path} holds the SAM Studio model {name!r}, not {architecture!r}"
        )
    try:
        from samstudio.inference import demo_arch
    except ImportError as exc:
        raise ModelLoadError(
            f"model file {path} is a SAM Studio model but this installation cannot build it ({exc})"
        ) from None
    known = getattr(demo_arch, "DEFAULT_CONFIG", None)
    if isinstance(known, dict):  # training metadata may ride along in the config
        config = {k: v for k, v in config.items() if k in known}
    try:
        sam = demo_arch.build_demo_sam(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(
            f"model file {path} has a configuration that cannot be built: {exc}"
        ) from None
    state_dict = _check_state_dict(path, obj["state_dict"])
    _load_into(path, sam, state_dict, name)
    return sam.eval(), name


def load_sam_checkpoint(
    path: str | os.PathLike[str], architecture: str | None = None
) -> tuple[Sam, str]:
    """Load a checkpoint file into a `segment_anything` `Sam` module on the CPU, in eval mode.

    path: an official SAM `.pth` (a plain state dict) or a SAM Studio model file.
    architecture: "vit_b", "vit_l" or "vit_h" to force one; None detects it from the
    state dict. Returns (sam, architecture name). Raises ModelLoadError naming the file
    for a missing, empty, truncated or non-checkpoint file, a pickle that would run
    code (refused by weights_only), or weights that do not fit the architecture.
    """
    p = Path(path)
    obj = _read_file(p)
    if isinstance(obj, dict) and "samstudio_model" in obj and "state_dict" in obj:
        return _load_demo(p, obj, architecture)

    state_dict = _check_state_dict(p, obj)
    detected = detect_architecture(state_dict)
    if architecture is None:
        if detected is None:
            raise ModelLoadError(
                f"model file {p} is not a SAM checkpoint this program knows: it has "
                f"{_describe_state_dict(state_dict)}, while SAM vit_b/vit_l/vit_h have widths "
                "768/1024/1280 with 12/24/32 blocks"
            )
        architecture = detected
    elif architecture not in ARCHITECTURE_NAMES:
        raise ModelLoadError(
            f"unknown architecture {architecture!r} for model file {p}; "
            f"choose one of {', '.join(ARCHITECTURE_NAMES)}"
        )
    elif detected is not None and detected != architecture:
        raise ModelLoadError(
            f"model file {p} is a {detected} checkpoint, not {architecture} "
            f"(it has {_describe_state_dict(state_dict)})"
        )

    from segment_anything import sam_model_registry

    sam = sam_model_registry[architecture](checkpoint=None)
    _load_into(p, sam, state_dict, architecture)
    return sam.eval(), architecture
