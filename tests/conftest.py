"""Shared fixtures. Real public data is read from ../shared/data and skipped when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public test files, or skip when this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present beside this checkout")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tests out of the real per-user data and cache directories."""
    base = tmp_path_factory.getbasetemp() / "userdirs"
    monkeypatch.setenv("SAMSTUDIO_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("SAMSTUDIO_CACHE_DIR", str(base / "cache"))


from model_fixtures import *  # noqa: E402,F401,F403  (registers the model fixtures)
