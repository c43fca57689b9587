"""Session-scoped model fixtures (seeded random SAM weights, reference features).

Imported by tests/conftest.py so that every test directory can use them.

A vit_b encoder pass costs 25-40 s on the CI machines, so each fixture that runs
the encoder does it once per session:
- `reference_predictor`: Meta's `SamPredictor` with `set_image(test_image)` done.
- `torch_embedding`: our `TorchSegmenter.encode(test_image)`.
Everything that needs torch or segment_anything skips with a clear reason when
they are not importable (the ONNX path and `samstudio.core` work without them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

TEST_IMAGE_SIZE = (400, 600)  # (H, W): non-square, so padding and coordinate scaling matter


def _require_torch() -> Any:
    """Import torch and segment_anything or skip the test that needs them."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    pytest.importorskip("segment_anything", reason="Meta's segment-anything is not installed")
    return torch


def make_test_image(
    height: int = TEST_IMAGE_SIZE[0], width: int = TEST_IMAGE_SIZE[1]
) -> np.ndarray:
    """A deterministic (H, W, 3) uint8 RGB picture: a gradient, a few solid shapes, mild noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, 3), np.float32)
    image[..., 0] = 40 + 120 * xx / width
    image[..., 1] = 60 + 100 * yy / height
    image[..., 2] = 150 - 80 * xx / width
    # A red rectangle, a green disc, a dark triangle and a white bar.
    image[int(0.15 * height) : int(0.55 * height), int(0.1 * width) : int(0.35 * width)] = (
        220,
        40,
        30,
    )
    cy, cx, r = 0.6 * height, 0.65 * width, 0.22 * height
    image[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = (30, 200, 60)
    tri = (
        (yy > 0.7 * height) & (xx > 0.05 * width) & (xx - 0.05 * width < (yy - 0.7 * height) * 1.5)
    )
    image[tri] = (20, 20, 35)
    image[int(0.08 * height) : int(0.14 * height), int(0.45 * width) : int(0.95 * width)] = 245
    rng = np.random.default_rng(0)
    image += rng.normal(0, 4, image.shape).astype(np.float32)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def build_random_vit_b(seed: int = 0) -> Any:
    """segment_anything vit_b with PyTorch's default initialisation under `seed`, eval mode.

    The default init (the same as an untrained `sam_model_registry["vit_b"]()`) gives
    logits of both signs and IoU predictions that differ between tokens, but its mask
    logits stay within about +-0.3. The last layer of each mask-token hypernetwork is
    scaled by 10 so that logits span about +-3 as a trained model's do: masks then
    have confident pixels and stability scores (offset 1.0) are not all zero.
    """
    torch = _require_torch()
    from segment_anything import sam_model_registry

    torch.manual_seed(seed)
    sam = sam_model_registry["vit_b"](checkpoint=None).eval()
    with torch.no_grad():
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(10.0)
            mlp.layers[-1].bias.mul_(10.0)
    return sam


def build_tiny_vit_encoder(
    img_size: int,
    embed_dim: int = 64,
    depth: int = 2,
    num_heads: int = 2,
    out_chans: int = 32,
    use_rel_pos: bool = True,
    global_attn_indexes: tuple[int, ...] = (1,),
) -> Any:
    """Meta's `ImageEncoderViT` in small (windows of 4 patches, patch size 16)."""
    torch = _require_torch()
    from functools import partial

    from segment_anything.modeling import ImageEncoderViT

    return ImageEncoderViT(
        img_size=img_size,
        patch_size=16,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=4,
        out_chans=out_chans,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rel_pos=use_rel_pos,
        window_size=4,
        global_attn_indexes=global_attn_indexes,
    )


def build_tiny_sam(seed: int = 0, img_size: int = 256) -> Any:
    """A small SAM (ViT encoder of width 64, 2 blocks; prompt dim 32) built from Meta's
    modules with a non-1024 input size. Runs in well under a second: for tests of the
    whole encode/decode path without a 25 s encoder pass. Logits span about +-3."""
    torch = _require_torch()
    from segment_anything.modeling import (
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    torch.manual_seed(seed)
    grid = img_size // 16
    sam = Sam(
        image_encoder=build_tiny_vit_encoder(img_size),
        prompt_encoder=PromptEncoder(
            embed_dim=32,
            image_embedding_size=(grid, grid),
            input_image_size=(img_size, img_size),
            mask_in_chans=4,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=2),
            transformer_dim=32,
            iou_head_depth=3,
            iou_head_hidden_dim=32,
        ),
    ).eval()
    with torch.no_grad():
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(10.0)
            mlp.layers[-1].bias.mul_(10.0)
    return sam


@pytest.fixture(scope="session")
def random_vit_b_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path to a seeded random vit_b saved as an official-format checkpoint (a state dict)."""
    torch = _require_torch()
    sam = build_random_vit_b(seed=0)
    path = tmp_path_factory.mktemp("checkpoints") / "sam_vit_b_random_seed0.pth"
    torch.save(sam.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def test_image() -> np.ndarray:
    """(400, 600, 3) uint8 RGB generated picture (deterministic)."""
    return make_test_image()


@pytest.fixture(scope="session")
def reference_predictor(random_vit_b_checkpoint: Path, test_image: np.ndarray) -> Any:
    """Meta's `SamPredictor` on the random checkpoint, `set_image(test_image)` done once."""
    torch = _require_torch()
    from segment_anything import SamPredictor, sam_model_registry

    sam = sam_model_registry["vit_b"](checkpoint=None)
    sam.load_state_dict(torch.load(random_vit_b_checkpoint, map_location="cpu", weights_only=True))
    predictor = SamPredictor(sam.eval())
    predictor.set_image(test_image)
    return predictor


@pytest.fixture(scope="session")
def torch_segmenter(random_vit_b_checkpoint: Path) -> Any:
    """Our `TorchSegmenter` on the random checkpoint (CPU)."""
    _require_torch()
    from samstudio.inference.torch_backend import TorchSegmenter

    return TorchSegmenter.from_checkpoint(random_vit_b_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def torch_embedding(torch_segmenter: Any, test_image: np.ndarray) -> Any:
    """`torch_segmenter.encode(test_image)`, computed once per session."""
    return torch_segmenter.encode(test_image)


# A demo-architecture config small enough to build and run in milliseconds (tests only).
TINY_DEMO_CONFIG: dict = {
    "name": "tiny_test",
    "img_size": 64,
    "stem_channels": 8,
    "stage_channels": [8, 16, 16],
    "stage_blocks": [1, 1, 1],
    "attn_blocks": 1,
    "attn_heads": 2,
    "embed_dim": 32,
    "decoder_mlp_dim": 64,
    "decoder_heads": 2,
    "iou_head_hidden_dim": 32,
    "mask_in_chans": 8,
}
