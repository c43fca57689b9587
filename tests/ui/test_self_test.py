"""`main.py --self-test REPORT.json`: the installation check a user (or the desktop
build's test) runs; here on the source installation, in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_self_test_clicks_accepts_and_reports(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    home = tmp_path / "home"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(home),
               XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_CONFIG_HOME=str(home / "config"))  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--self-test", str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["ok"] and result["step"] == "done", result
    assert result["model"].startswith("samstudio_demo_v1")
    assert not result["torch_imported"]  # the shipped model opens through ONNX Runtime
    assert len(result["candidate_ious"]) == 3 and result["accepted_area"] > 0
    # nothing of the user's: no recent project, no settings written in the home folder
    assert not (home / "data" / "samstudio" / "sample-images").exists()
    assert not (home / "config").exists() or not any((home / "config").rglob("*.conf"))


def test_self_test_needs_a_report_path() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--self-test"],
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "usage: SAM Studio --self-test REPORT.json" in done.stderr
