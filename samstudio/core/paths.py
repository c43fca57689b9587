"""Per-user directories (platformdirs), overridable by environment variables.

SAMSTUDIO_DATA_DIR: models and settings; SAMSTUDIO_CACHE_DIR: the embedding cache.
Tests set both to temporary folders.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "samstudio"


def data_dir() -> Path:
    """Where downloaded and imported models and the model registry live."""
    return Path(os.environ.get("SAMSTUDIO_DATA_DIR") or platformdirs.user_data_dir(APP))


def cache_dir() -> Path:
    """Where the embedding cache lives."""
    return Path(os.environ.get("SAMSTUDIO_CACHE_DIR") or platformdirs.user_cache_dir(APP))


def models_dir() -> Path:
    return data_dir() / "models"
