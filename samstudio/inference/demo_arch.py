"""The SAM Studio demo model: a small CNN image encoder in front of SAM's own
prompt encoder and two-way mask decoder (torch-only module).

The prompt encoder, `TwoWayTransformer` and `MaskDecoder` are Meta's classes from
`segment_anything`, unchanged, so both backends, the ONNX export and multimask
semantics follow the same code path as for the official checkpoints. Only the image
encoder is ours: a residual CNN (stride `2 ** (1 + len(stage_channels))`), a few
global self-attention blocks on the final grid, and SAM's neck (1x1 conv, LayerNorm,
3x3 conv, LayerNorm; paper §A).

Shapes: input (B, 3, S, S) float32, normalised and zero-padded as `Sam.preprocess`
does, S = `img_size`; output embedding (B, D, S/stride, S/stride), D = `embed_dim`.
Low-resolution mask logits are 4x the embedding grid.
"""

from __future__ import annotations

from typing import Any

import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from segment_anything.modeling.common import LayerNorm2d
from torch import nn

DEFAULT_CONFIG: dict[str, Any] = {
    "name": "samstudio_demo_v1",
    "img_size": 256,
    "stem_channels": 32,
    "stage_channels": [48, 96, 160],
    "stage_blocks": [1, 2, 2],
    "attn_blocks": 1,
    "attn_heads": 4,
    "embed_dim": 128,
    "decoder_depth": 2,
    "decoder_mlp_dim": 512,
    "decoder_heads": 4,
    "iou_head_hidden_dim": 128,
    "mask_in_chans": 16,
    "pixel_mean": [123.675, 116.28, 103.53],
    "pixel_std": [58.395, 57.12, 57.375],
}


def full_config(config: dict[str, Any]) -> dict[str, Any]:
    """The defaults overlaid with `config` (unknown keys raise ValueError)."""
    unknown = set(config) - set(DEFAULT_CONFIG)
    if unknown:
        raise ValueError(f"unknown demo model config keys: {sorted(unknown)}")
    out = dict(DEFAULT_CONFIG)
    out.update(config)
    return out


def encoder_stride(stage_channels: list[int]) -> int:
    """Pixels per embedding cell: the stem and every stage halve the resolution."""
    return 2 ** (1 + len(stage_channels))


class ConvBNAct(nn.Sequential):
    """3x3 (or k x k) convolution, batch norm, GELU."""

    def __init__(self, cin: int, cout: int, stride: int = 1, k: int = 3) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
            nn.BatchNorm2d(cout),
            nn.GELU(),
        )


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (channels kept)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(channels, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.bn2(self.conv2(self.conv1(x))))


class GlobalAttentionBlock(nn.Module):
    """Pre-norm transformer block over all grid positions, with a learned 2-D position
    embedding. x: (B, C, h, w) -> same shape."""

    def __init__(self, channels: int, heads: int, grid: int) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, grid * grid, channels))
        self.norm1 = nn.LayerNorm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, 2 * channels), nn.GELU(), nn.Linear(2 * channels, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2) + self.pos
        y = self.norm1(t)
        t = t + self.attn(y, y, y, need_weights=False)[0]
        t = t + self.mlp(self.norm2(t))
        return t.transpose(1, 2).reshape(b, c, h, w)


class DemoImageEncoder(nn.Module):
    """Residual CNN image encoder. (B, 3, S, S) -> (B, embed_dim, S/stride, S/stride)."""

    def __init__(
        self,
        img_size: int,
        stem_channels: int,
        stage_channels: list[int],
        stage_blocks: list[int],
        attn_blocks: int,
        attn_heads: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        if len(stage_channels) != len(stage_blocks):
            raise ValueError("stage_channels and stage_blocks must have the same length")
        self.img_size = img_size
        self.stride = encoder_stride(stage_channels)
        if img_size % self.stride:
            raise ValueError(f"img_size {img_size} is not a multiple of the stride {self.stride}")
        self.grid = img_size // self.stride
        layers: list[nn.Module] = [ConvBNAct(3, stem_channels, stride=2)]
        cin = stem_channels
        for cout, nblocks in zip(stage_channels, stage_blocks, strict=True):
            layers.append(ConvBNAct(cin, cout, stride=2))
            layers.extend(ResBlock(cout) for _ in range(nblocks))
            cin = cout
        self.body = nn.Sequential(*layers)
        self.attn = nn.Sequential(
            *(GlobalAttentionBlock(cin, attn_heads, self.grid) for _ in range(attn_blocks))
        )
        self.neck = nn.Sequential(
            nn.Conv2d(cin, embed_dim, 1, bias=False),
            LayerNorm2d(embed_dim),
            nn.Conv2d(embed_dim, embed_dim, 3, padding=1, bias=False),
            LayerNorm2d(embed_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.attn(self.body(x)))


def build_demo_sam(config: dict[str, Any]) -> Sam:
    """The untrained demo model for `config` (missing keys take DEFAULT_CONFIG values).

    Returns a `segment_anything.modeling.Sam` whose `image_encoder.img_size` is the
    square input size and whose pixel_mean/pixel_std buffers are set from the config.
    """
    cfg = full_config(config)
    encoder = DemoImageEncoder(
        img_size=int(cfg["img_size"]),
        stem_channels=int(cfg["stem_channels"]),
        stage_channels=[int(c) for c in cfg["stage_channels"]],
        stage_blocks=[int(b) for b in cfg["stage_blocks"]],
        attn_blocks=int(cfg["attn_blocks"]),
        attn_heads=int(cfg["attn_heads"]),
        embed_dim=int(cfg["embed_dim"]),
    )
    dim = int(cfg["embed_dim"])
    grid = encoder.grid
    return Sam(
        image_encoder=encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(grid, grid),
            input_image_size=(encoder.img_size, encoder.img_size),
            mask_in_chans=int(cfg["mask_in_chans"]),
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=int(cfg["decoder_depth"]),
                embedding_dim=dim,
                mlp_dim=int(cfg["decoder_mlp_dim"]),
                num_heads=int(cfg["decoder_heads"]),
            ),
            transformer_dim=dim,
            iou_head_depth=3,
            iou_head_hidden_dim=int(cfg["iou_head_hidden_dim"]),
        ),
        pixel_mean=[float(v) for v in cfg["pixel_mean"]],
        pixel_std=[float(v) for v in cfg["pixel_std"]],
    )


def load_demo_checkpoint(path: str) -> tuple[Sam, dict[str, Any]]:
    """Build and load a demo checkpoint ({"samstudio_model": config, "state_dict": ...}).

    fp16 tensors in the file are cast to float32. Raises ValueError naming the file
    when it is not a demo checkpoint.
    """
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "samstudio_model" not in blob or "state_dict" not in blob:
        raise ValueError(f"{path}: not a SAM Studio demo checkpoint (no 'samstudio_model' key)")
    config = dict(blob["samstudio_model"])
    sam = build_demo_sam({k: v for k, v in config.items() if k in DEFAULT_CONFIG})
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    sam.load_state_dict(state)
    sam.eval()
    return sam, config
