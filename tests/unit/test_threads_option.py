"""`samstudio --threads N`: PyTorch and ONNX Runtime use N CPU threads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from samstudio.cli.main import main

AT_IMPORT = {name: os.environ.get(name) for name in ("SAMSTUDIO_THREADS", "OMP_NUM_THREADS")}


@pytest.fixture
def torch_threads_kept() -> object:
    """The option also sets torch's thread count when torch is loaded: put it back."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    if torch is not None and before is not None:
        torch.set_num_threads(before)


def test_threads_reach_onnx_runtime_and_torch(
    monkeypatch: pytest.MonkeyPatch, torch_threads_kept: object
) -> None:
    # setenv first so that monkeypatch records (and restores) the variables that
    # main() is about to set; delenv alone records nothing for an absent variable
    for name in ("SAMSTUDIO_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    from samstudio.inference.onnx_backend import cpu_threads, default_session_options

    pytest.importorskip("onnxruntime")
    assert default_session_options().intra_op_num_threads == cpu_threads()
    assert main(["--threads", "1", "--version"]) == 0
    assert os.environ["OMP_NUM_THREADS"] == "1" and cpu_threads() == 1
    assert default_session_options().intra_op_num_threads == 1
    assert default_session_options(threads=3).intra_op_num_threads == 3  # explicit wins


def test_torch_imported_after_the_option_uses_that_many_threads() -> None:
    pytest.importorskip("torch")
    code = (
        "from samstudio.cli.main import main; main(['--threads', '1', '--version']); "
        "import torch; print('threads', torch.get_num_threads())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "SAMSTUDIO_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "threads 1" in out


def test_bad_thread_count_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--threads", "0", "info"])
    assert exc.value.code == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


def test_the_tests_above_leave_no_thread_setting_behind() -> None:
    """Runs after them (file order): what main() set is gone again for later tests."""
    now = {name: os.environ.get(name) for name in AT_IMPORT}
    assert now == AT_IMPORT


@pytest.mark.parametrize(
    ("argv", "threads"),
    [
        (["--threads", "2", "project", "info", "P"], 2),
        (["project", "info", "P", "--threads", "3"], 3),
        (["evaluate", "--threads", "1", "--synthetic", "2"], 1),
        (["convert", "in.json", "--to", "sa1b", "--out", "o"], None),
        (["--threads", "2", "evaluate", "--threads", "4", "--synthetic", "2"], 4),
    ],
)
def test_threads_before_or_after_the_command(argv: list[str], threads: int | None) -> None:
    """Found by review: `evaluate --threads 1` was a usage error, the option being taken
    only before the command, while the README tells busy machines to use it."""
    from samstudio.cli.main import build_parser

    assert build_parser().parse_args(argv).threads == threads


def test_threads_after_the_command_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["project", "info", "P", "--threads", "0"])
    assert exc.value.code == 2 and "--threads must be at least 1" in capsys.readouterr().err
