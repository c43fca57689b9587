"""Crash stress: kill a process editing a project with SIGKILL, reopen, check what survived.

Each trial starts a child process that opens the project and applies random edits
(adds, brush and eraser strokes, deletes, undos, redos, category changes, merges),
printing `done K` on stdout after the K-th operation's commit has returned. The parent
kills it with SIGKILL at a random moment, then reopens the project and checks:

1. `PRAGMA integrity_check` and `foreign_key_check` pass, and the writer lock is free;
2. the store holds exactly the first K operations the child reported committed, or the
   first K + 1. The (K + 1)-th is the one in flight at the kill: its COMMIT may have
   reached the WAL before the child could print `done`. Nothing else is allowed: no
   reported operation lost, no operation half applied, no later operation present;
3. the undo history is consistent with the masks: undoing everything and redoing it
   again runs without a diff mismatch and returns to the same state.

"Same state" is compared by a digest of every annotation row (mask counts, bbox, area,
category, source, alive flag), every history row (label, atoms, diff bytes, undone
flag) and every image status; wall-clock times are left out. The expected digests come
from replaying the child's deterministic edit sequence (seeded by trial) on a copy of
the project taken before the trial.

Trials run on the same project one after another, so each also tests editing after a
crash recovery. Prints JSON; exit status 1 when any trial fails.

    .venv/bin/python benchmarks/crash_stress.py --trials 100
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from samstudio.core.document import Project  # noqa: E402

IMAGE_SHAPES = [(300, 400), (480, 640), (240, 320)]


def make_project(folder: Path) -> Path:
    """A folder of small generated PNGs and its project with two categories."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(IMAGE_SHAPES):
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"image_{i}.png")
    with Project.create(folder) as project:
        project.add_category("thing")
        project.add_category("stuff")
        return project.path


def _blob(shape: tuple[int, int], rng: random.Random) -> np.ndarray:
    h, w = shape
    yy, xx = np.ogrid[:h, :w]
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(5, h / 4), rng.uniform(5, w / 4)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _stroke(shape: tuple[int, int], rng: random.Random) -> np.ndarray:
    h, w = shape
    out = np.zeros(shape, bool)
    yy, xx = np.ogrid[:h, :w]
    y, x, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, 15)
    for _ in range(rng.randint(1, 6)):
        out |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
        y, x = y + rng.uniform(-12, 12), x + rng.uniform(-12, 12)
    return out


def run_ops(project: Project, rng: random.Random, n_ops: int, after: Callable[[int], None]) -> None:
    """Apply `n_ops` random edits, calling after(k) once the k-th has committed.

    Deterministic for a given rng state and project content (ids included).
    """
    images = project.images()
    categories = [c.id for c in project.categories()]
    for k in range(1, n_ops + 1):
        image = images[rng.randrange(len(images))]
        shape = (image.height, image.width)
        alive = [a.id for a in project.annotations(image.id)]
        roll = rng.random()
        if roll < 0.25 or not alive:
            if rng.random() < 0.2:
                masks = [_blob(shape, rng) for _ in range(rng.randint(2, 5))]
                project.add_annotations(image.id, masks, None, "proposal")
            else:
                project.add_annotation(
                    image.id, _blob(shape, rng), rng.choice(categories), "manual"
                )
        elif roll < 0.60:
            project.paint(rng.choice(alive), _stroke(shape, rng), rng.random() < 0.6)
        elif roll < 0.70:
            project.delete_annotation(rng.choice(alive))
        elif roll < 0.85:
            project.undo(image.id)
        elif roll < 0.90:
            project.redo(image.id)
        elif roll < 0.95:
            project.set_category(rng.choice(alive), rng.choice(categories))
        elif len(alive) >= 2:
            project.merge(rng.sample(alive, 2))
        else:
            project.undo(image.id)
        after(k)


def state_digest(path: Path) -> str:
    """Digest of everything an operation may change, wall-clock times left out."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        h = hashlib.sha256()
        for row in conn.execute(
            "SELECT id, image_id, category_id, counts, bbox_x, bbox_y, bbox_w, bbox_h, area, "
            "source, alive FROM annotations ORDER BY id"
        ):
            h.update(repr(row).encode())
        for hid, image_id, seq, label, atoms, blob, undone in conn.execute(
            "SELECT id, image_id, seq, label, atoms, blob, undone FROM history ORDER BY id"
        ):
            kept = [a for a in json.loads(atoms) if a.get("f") != "modified"]
            h.update(repr((hid, image_id, seq, label, kept, blob, undone)).encode())
        for row in conn.execute("SELECT id, status FROM images ORDER BY id"):
            h.update(repr(row).encode())
        refs = conn.execute("SELECT history_id, annotation_id FROM history_refs ORDER BY 1, 2")
        h.update(repr(refs.fetchall()).encode())
        return h.hexdigest()
    finally:
        conn.close()


def _checks(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"foreign key: {r}" for r in conn.execute("PRAGMA foreign_key_check")]
        return problems
    finally:
        conn.close()


def _copy(src: Path, dst: Path) -> None:
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def _replay(backup: Path, work: Path, seed: str, upto: int) -> dict[int, str]:
    """Digests after 0..upto operations of trial `seed`, replayed on a copy of `backup`."""
    if work.exists():
        work.unlink()
    _copy(backup, work)
    digests = {0: state_digest(work)}
    project = Project.open(work, check="none")
    try:
        # Digest from a second connection sees each op right after its commit.
        run_ops(
            project, random.Random(seed), upto, lambda k: digests.__setitem__(k, state_digest(work))
        )
    finally:
        project.close()
    return digests


def _undo_redo_walk(path: Path) -> str | None:
    """Undo everything on every image, redo it all; None when the state comes back."""
    before = state_digest(path)
    with Project.open(path, check="none") as project:
        for image in project.images():
            n = 0
            while project.undo(image.id):
                n += 1
            for _ in range(n):
                if not project.redo(image.id):
                    return f"image {image.id}: redo stopped early"
    after = state_digest(path)
    return None if after == before else "undo-all/redo-all did not return to the same state"


def child_main(path: Path, seed: str) -> int:
    project = Project.open(path, check="none")
    print("ready", flush=True)
    run_ops(project, random.Random(seed), 10**9, lambda k: print(f"done {k}", flush=True))
    return 0


def run_trials(trials: int, seed: int, max_delay: float, workdir: Path) -> dict[str, object]:
    folder = workdir / "images"
    path = make_project(folder)
    backup = workdir / "before_trial.samstudio"
    replay = workdir / "replay.samstudio"
    rng = random.Random(seed)
    exact = in_flight = failures = 0
    committed: list[int] = []
    reopen_ms: list[float] = []
    failed: list[dict[str, object]] = []
    t_start = time.perf_counter()
    for trial in range(trials):
        trial_seed = f"{seed}-{trial}"
        if backup.exists():
            backup.unlink()
        _copy(path, backup)
        errors = workdir / "child_stderr.txt"
        with open(errors, "w", encoding="utf-8") as err_fh:
            child = subprocess.Popen(
                [sys.executable, __file__, "--child", str(path), "--child-seed", trial_seed],
                stdout=subprocess.PIPE,
                stderr=err_fh,
                text=True,
            )
            assert child.stdout is not None
            ready = child.stdout.readline().strip()
            if ready == "ready":
                time.sleep(rng.uniform(0.0, max_delay))
            child.send_signal(signal.SIGKILL)
            rest = child.stdout.read()
            child.wait()
        if ready != "ready" or child.returncode != -signal.SIGKILL:
            # The child failed by itself: an error in the edits, not a crash we caused.
            failures += 1
            tail = errors.read_text(encoding="utf-8")[-2000:]
            failed.append({"trial": trial, "problems": [f"child exited by itself: {tail}"]})
            continue
        reported = [int(line.split()[1]) for line in rest.splitlines() if line.startswith("done ")]
        k = max(reported, default=0)
        committed.append(k)
        t0 = time.perf_counter()
        problems: list[str] = []
        try:
            Project.open(path).close()  # full integrity check; the dead child's lock is free
        except Exception as exc:  # noqa: BLE001 - reported as a failed trial
            problems.append(f"reopen failed: {exc}")
        reopen_ms.append((time.perf_counter() - t0) * 1000)
        problems += _checks(path)
        digest = state_digest(path)
        expected = _replay(backup, replay, trial_seed, k + 1)
        if digest == expected[k]:
            exact += 1
        elif digest == expected[k + 1]:
            in_flight += 1
        else:
            problems.append(f"store matches neither {k} nor {k + 1} operations")
        if not problems:
            walk = _undo_redo_walk(path)
            if walk:
                problems.append(walk)
        if problems:
            failures += 1
            failed.append({"trial": trial, "reported": k, "problems": problems})
    return {
        "benchmark": "crash_stress",
        "trials": trials,
        "seed": seed,
        "failures": failures,
        "store_equals_reported": exact,
        "store_has_in_flight_op_too": in_flight,
        "ops_reported_committed_total": sum(committed),
        "ops_per_trial_median": statistics.median(committed) if committed else 0,
        "reopen_with_integrity_check_ms_median": round(statistics.median(reopen_ms), 2)
        if reopen_ms
        else 0,
        "elapsed_s": round(time.perf_counter() - t_start, 1),
        "failed_trials": failed[:10],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-delay", type=float, default=0.8, help="longest wait before SIGKILL (s)"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-seed", default="0", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return child_main(args.child, args.child_seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="samstudio-crash-"))
    try:
        result = run_trials(args.trials, args.seed, args.max_delay, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
