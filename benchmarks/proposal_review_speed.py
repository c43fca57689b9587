"""UI-thread cost of reviewing auto-segment proposals from the keyboard, printed as JSON.

The real window (offscreen Qt, FakeSegmenter) shows a 2250x1500 photo with N proposals
(random ellipses, as `proposal_stall.py` makes them). Each step is what a reviewer does
hundreds of times: Ctrl+Return (accept the proposal under the cursor and go on to the
next) or J (next proposal). Measured per step: UI-thread CPU time (`time.thread_time`,
robust to other load on the machine) and wall time, until the event loop is idle.

`--ref REV` runs the same steps on git revision REV (a temporary worktree) in the same
run, before the working tree, and reports the ratio: the reference is the code before a
change, measured beside it.

Usage: .venv/bin/python benchmarks/proposal_review_speed.py [--masks 620] [--steps 20]
       [--ref REV]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]


def measure(masks: int, steps: int) -> dict[str, float]:
    """In this process (whose `samstudio` is the tree under test)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    sys.path.insert(0, str(REPO / "benchmarks"))
    from proposal_stall import ellipses, photos_window, spin

    tree = os.environ.get("REVIEW_SPEED_TREE")  # proposal_stall put this repo first
    if tree:
        sys.path[:0] = [tree, str(Path(tree) / "tests")]

    win = photos_window("review_speed_")
    deadline = time.perf_counter() + 60
    while win.annotator.image_rgb is None and time.perf_counter() < deadline:
        spin(app, 0.05)
    auto = win.autosegment_menu.auto
    review = win.autosegment_menu.review
    image_id = win.annotator.image_id
    auto.add_proposals(image_id, ellipses(masks))
    deadline = time.perf_counter() + 300
    while len(win.canvas.instance_ids()) < masks and time.perf_counter() < deadline:
        spin(app, 0.05)
    review.step(1)
    spin(app, 0.2)
    cpu: dict[str, list[float]] = {"accept": [], "next": []}
    wall: dict[str, list[float]] = {"accept": [], "next": []}
    for i in range(steps):
        if i % 2 == 0:
            name, action = "accept", review.accept_current
        else:
            name, action = "next", lambda: review.step(1)
        t, c = time.perf_counter(), time.thread_time()
        action()
        app.processEvents()
        app.processEvents()
        cpu[name].append((time.thread_time() - c) * 1000)
        wall[name].append((time.perf_counter() - t) * 1000)
    left = len(auto.proposals())
    win.shutdown()
    out = {f"{k}_cpu_ms": round(statistics.median(v), 1) for k, v in cpu.items()}
    out |= {f"{k}_wall_ms": round(statistics.median(v), 1) for k, v in wall.items()}
    out["proposals_left"] = left
    import samstudio

    out["code"] = str(Path(samstudio.__file__).parent.parent)
    return out


def run_tree(tree: Path, masks: int, steps: int) -> dict[str, float]:
    """`measure` in a subprocess importing samstudio from `tree`."""
    env = dict(os.environ, REVIEW_SPEED_TREE=str(tree))
    script = tree / "benchmarks" / Path(__file__).name
    if not script.exists():  # an older tree: this file from here, its code from there
        script = Path(__file__)
    cmd = [sys.executable, str(script), "--child", "--masks", str(masks), "--steps", str(steps)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--masks", type=int, default=620)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--ref", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.masks, args.steps)))
        return
    result: dict[str, object] = {"masks": args.masks, "steps": args.steps}
    if args.ref:
        with tempfile.TemporaryDirectory(prefix="review_ref_") as tmp:
            tree = Path(tmp) / "tree"
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), args.ref],
                check=True,
                capture_output=True,
            )
            try:
                result["reference"] = {"rev": args.ref} | run_tree(tree, args.masks, args.steps)
            finally:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                    check=False,
                    capture_output=True,
                )
    current = run_tree(REPO, args.masks, args.steps)
    result["current"] = current
    ref = result.get("reference")
    if isinstance(ref, dict):
        result["ratio_cpu"] = {
            k: round(ref[f"{k}_cpu_ms"] / max(current[f"{k}_cpu_ms"], 1e-3), 2)
            for k in ("accept", "next")
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
