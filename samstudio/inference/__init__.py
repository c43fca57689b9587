"""Qt-free inference: the Segmenter protocol, its backends, catalog, downloads, cache.

Nothing here imports torch at module import time; the PyTorch backend is loaded
only when a PyTorch model is opened.
"""

from samstudio.inference.types import (
    BatchPrediction,
    ImageEmbedding,
    ModelInfo,
    Prediction,
    Prompts,
    Segmenter,
)

__all__ = [
    "BatchPrediction",
    "ImageEmbedding",
    "ModelInfo",
    "Prediction",
    "Prompts",
    "Segmenter",
]
