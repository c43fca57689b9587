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


def fresh_user(home: Path) -> dict[str, str]:
    """The environment of a new user whose folders are all under `home` (the test
    session's own data and cache folders are not passed on)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMSTUDIO_")}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(home), TMPDIR=str(home / "tmp"),
               XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_CONFIG_HOME=str(home / "config"))  # fmt: skip
    (home / "tmp").mkdir(parents=True)
    return env


def self_test(report: Path, env: dict[str, str], *prefix: str) -> subprocess.CompletedProcess:
    command = [*prefix, "--self-test", str(report)] if prefix else [
        sys.executable, str(REPO / "main.py"), "--self-test", str(report)]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_self_test_clicks_accepts_and_reports(tmp_path: Path) -> None:
    report, home = tmp_path / "report.json", tmp_path / "home"
    done = self_test(report, fresh_user(home))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["ok"] and result["step"] == "done", result
    assert result["model"].startswith("samstudio_demo_v1")
    assert not result["torch_imported"]  # the shipped model opens through ONNX Runtime
    assert result["embedding_from_cache"] is False  # a fresh cache of its own
    assert len(result["candidate_ious"]) == 3 and result["accepted_area"] > 0
    # nothing of the user's touched (no data, cache or settings of SAM Studio; ONNX Runtime
    # keeps a device id of its own under ~/.cache), and its temporary folder removed
    ours = [p for p in home.rglob("*") if "samstudio" in p.name.lower() or "SAM Studio" in p.name]
    assert ours == [], ours


@pytest.mark.slow
def test_a_model_that_fails_to_load_ends_the_self_test_with_its_message(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    script = (
        "import sys\n"
        "import samstudio.inference.loader as loader\n"
        "def broken(*a, **k):\n"
        "    raise loader.ModelLoadError('model.onnx: the file is damaged')\n"
        "loader.open_model = broken\n"
        "from samstudio.ui.app import main\n"
        "sys.exit(main(sys.argv))\n"
    )
    done = self_test(report, fresh_user(tmp_path / "home"), sys.executable, "-c", script)
    assert done.returncode == 1, done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert not result["ok"] and result["step"] == "load the model"
    assert "the file is damaged" in result["error"]
    assert result["seconds"] < 120  # ended by the failure, not by the timeout


def test_self_test_needs_a_writable_report_path(tmp_path: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, str(REPO / "main.py"), "--self-test"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "usage: SAM Studio --self-test REPORT.json" in done.stderr
    done = self_test(tmp_path / "missing" / "report.json", env)
    assert done.returncode == 2 and "does not exist" in done.stderr
