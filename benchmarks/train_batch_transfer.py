"""What a training batch costs the training process when scene-making processes make it.

With `train.workers` > 0 the scenes are made in other processes and sent to the training
process, which on a GPU must keep up with the GPU. Measured here, in one run, for the same
batches of a config (default: stage 3 of the demo model, 16 images x 8 masks):
- reference: the earlier way, the workers send `make_batch`'s float32 tensors as numpy
  arrays (46 MB a batch) and the training process wraps them;
- now: the workers send the compact `RawBatch` (uint8 scenes, packed masks) and the
  training process finishes it with `finish_batch`.
Prints JSON: bytes per batch, and the training process's CPU time per batch
(`time.process_time`, so other load on the machine does not enter), split into receiving
(the pool's result thread unpickling) and finishing (wrapping the arrays, or
`finish_batch`: normalising and unpacking, on `--device`), with the ratios. On a CPU-only
machine the compact way's finishing is the float conversion that a GPU run does on the
device (`--device cuda`). The batches of both ways are checked to be identical (the
reference is the previous code, kept here).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_batch_transfer.py [--batches 12]
        [--workers 1] [--device cpu|cuda] [--config resources/models/samstudio-demo/train_stage3.yaml]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def float_arrays(config: dict[str, Any], step: int) -> tuple[np.ndarray, ...]:
    """The reference: the float32 tensors as the previous code made and sent them from
    the same scenes (per scene `prepare_input`, targets filled in float32), without
    `make_raw_batch` / `finish_batch`, so that the comparison of batches can fail."""
    from samstudio.inference.preprocess import Preprocessing, prepare_input
    from samstudio.training.train import batch_scenes

    data, train, model = config["data"], config["train"], config["model"]
    b, k = int(train["batch_images"]), int(train["masks_per_image"])
    s = int(model["img_size"])  # scenes of data.size, enlarged to the input
    factor = s // int(data["size"])
    prep = Preprocessing(s, tuple(model["pixel_mean"]), tuple(model["pixel_std"]))
    images = np.zeros((b, 3, s, s), np.float32)
    targets = np.zeros((b, k, s, s), np.float32)
    valid = np.zeros((b, 2), np.int64)
    for i, (image, masks) in enumerate(batch_scenes(config, step)):
        x, (h, w) = prepare_input(image, prep)
        images[i] = x[0]
        big = masks.repeat(factor, axis=1).repeat(factor, axis=2)
        targets[i, :, :h, :w] = big.astype(np.float32)
        valid[i] = (h, w)
    return images, targets, valid


def measure(
    config: dict[str, Any], n: int, workers: int, compact: bool, device: str
) -> dict[str, Any]:
    import torch

    from samstudio.training.train import finish_batch, make_raw_batch

    ctx = multiprocessing.get_context("spawn")
    job = make_raw_batch if compact else float_arrays
    dev = torch.device(device)
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pool.submit(job, config, 0).result()  # start the workers (imports, textures)
        # receiving: the process's CPU time (all its threads: the pool's result thread
        # unpickles) from the first request until every batch has arrived; the main
        # thread only sleeps while the workers make the scenes
        cpu0 = time.process_time()
        futures = [pool.submit(job, config, step) for step in range(1, n + 1)]
        while not all(f.done() for f in futures):
            time.sleep(0.05)
        cpu1 = time.process_time()
        out = []
        for fut in futures:  # finishing: what the training loop does with each batch
            got = fut.result()
            if compact:
                out.append(finish_batch(config, got, dev))
            else:
                out.append(tuple(torch.from_numpy(a).to(dev) for a in got))
        if dev.type == "cuda":
            torch.cuda.synchronize()
        cpu2 = time.process_time()
    nbytes = len(pickle.dumps(job(config, 1), protocol=pickle.HIGHEST_PROTOCOL))
    return {
        "mb_per_batch": round(nbytes / 1e6, 2),
        "receive_cpu_ms_per_batch": round((cpu1 - cpu0) / n * 1000, 1),
        "finish_cpu_ms_per_batch": round((cpu2 - cpu1) / n * 1000, 1),
        "total_cpu_ms_per_batch": round((cpu2 - cpu0) / n * 1000, 1),
        "batches": [tuple(t.cpu() for t in b) for b in out],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default=str(REPO / "resources/models/samstudio-demo/train_stage3.yaml")
    )
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--device", default="cpu", help="where batches are finished (cuda on a GPU)"
    )
    args = parser.parse_args()
    import torch

    from samstudio.training.config import load_config

    config = load_config(args.config)
    ref = measure(config, args.batches, args.workers, compact=False, device=args.device)
    new = measure(config, args.batches, args.workers, compact=True, device=args.device)
    same = all(
        torch.equal(a, b)
        for x, y in zip(ref["batches"], new["batches"], strict=True)
        for a, b in zip(x, y, strict=True)
    )
    tc = config["train"]
    result = {
        "benchmark": "train_batch_transfer",
        "config": args.config,
        "batch": f"{tc['batch_images']} images x {tc['masks_per_image']} masks",
        "batches": args.batches,
        "identical_batches": same,
        "device": args.device,
        "reference_float_arrays": {k: v for k, v in ref.items() if k != "batches"},
        "compact_raw_batch": {k: v for k, v in new.items() if k != "batches"},
        "bytes_ratio": round(ref["mb_per_batch"] / new["mb_per_batch"], 1),
        "receive_cpu_ratio": round(
            ref["receive_cpu_ms_per_batch"] / max(new["receive_cpu_ms_per_batch"], 1e-3), 1
        ),
        "total_cpu_ratio": round(
            ref["total_cpu_ms_per_batch"] / max(new["total_cpu_ms_per_batch"], 1e-3), 2
        ),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }
    print(json.dumps(result, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
