"""Crash safety: SIGKILL a process in the middle of edits; the store keeps exactly what it reported.

Runs benchmarks/crash_stress.py (10 trials here; the script's default is 100) and checks
that its checker really tells a half-applied operation from a committed one.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from samstudio.core.document import Project

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "crash_stress.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_stress", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_at_random_moments_loses_nothing_committed(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--trials",
            "10",
            "--seed",
            "7",
            "--max-delay",
            "0.5",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    result = json.loads(proc.stdout)
    assert proc.returncode == 0 and result["failures"] == 0, result["failed_trials"]
    assert result["trials"] == 10
    assert result["store_equals_reported"] + result["store_has_in_flight_op_too"] == 10
    assert result["ops_reported_committed_total"] > 0  # the child really was editing when killed


def test_the_checker_tells_half_applied_and_lost_operations_apart(tmp_path: Path) -> None:
    stress = _load_script()
    path = stress.make_project(tmp_path / "imgs")
    seed = "control"
    expected = stress._replay(path, tmp_path / "replay.samstudio", seed, 10)
    assert expected[9] != expected[10]  # operation 10 changes something (not every op does)

    states = {}
    for n in (9, 10):
        states[n] = tmp_path / f"after_{n}.samstudio"
        stress._copy(path, states[n])
        with Project.open(states[n], check="none") as project:
            stress.run_ops(project, random.Random(seed), n, lambda k: None)
        assert stress.state_digest(states[n]) == expected[n]

    # Half applied: operation 10's effect on the annotations without its history rows.
    conn = sqlite3.connect(states[10])
    conn.execute("ATTACH DATABASE ? AS before", (str(states[9]),))
    for table in ("history_refs", "history"):
        conn.execute(f"DELETE FROM main.{table}")
    for table in ("history", "history_refs"):
        conn.execute(f"INSERT INTO main.{table} SELECT * FROM before.{table}")
    conn.commit()
    conn.close()
    assert stress.state_digest(states[10]) not in (expected[9], expected[10])
