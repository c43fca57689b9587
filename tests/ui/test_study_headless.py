"""`python main.py --study FOLDER` without a screen (QT_QPA_PLATFORM=offscreen, as on a
build server or over ssh): a study that cannot be opened ends the process at once with
a non-zero exit code and the problem on stderr, instead of waiting for ever on an error
dialog nobody can see. Each case runs main.py in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from samstudio.core.study.sheets import RatingSheet
from ui.test_study_rating import make_study

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60  # a hang fails the test instead of blocking it


def run_main(*args: str) -> subprocess.Popen:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    command = [sys.executable, str(REPO / "main.py"), *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)  # fmt: skip


def finish(process: subprocess.Popen) -> tuple[int, str]:
    try:
        _, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"main.py still ran after {TIMEOUT} s; stderr:\n{err}") from None
    return process.returncode, err


def test_a_bad_study_folder_exits_with_its_problem_on_stderr(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_study"
    malformed = tmp_path / "malformed"
    malformed.mkdir()
    (malformed / "study.json").write_text('{"format": "samstudio-study", "items": [', "utf-8")
    good = tmp_path / "good"
    study = make_study(good)
    damaged = RatingSheet(study, "P01").path  # this participant's own sheet is damaged
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_text("{", "utf-8")
    cases = {  # started together, so the interpreters start in parallel
        "missing": run_main("--study", str(missing), "--participant", "P01"),
        "malformed": run_main(f"--study={malformed}"),
        "no participant": run_main("--study", str(good)),
        "damaged sheet": run_main("--study", str(good), "--participant", "P01"),
    }
    done = {name: finish(process) for name, process in cases.items()}

    code, err = done["missing"]
    assert code == 1 and str(missing) in err and "Traceback" not in err
    code, err = done["malformed"]
    assert code == 1 and str(malformed / "study.json") in err and "Traceback" not in err
    code, err = done["no participant"]  # nobody could answer the participant dialog
    assert code == 2 and "--participant" in err and "Traceback" not in err
    code, err = done["damaged sheet"]
    assert code == 1 and str(damaged) in err and "Traceback" not in err
    assert damaged.read_text("utf-8") == "{"  # left as it was, for the person running it
