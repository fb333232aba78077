"""A batch of 4032x3024 photos through ``depth2mesh convert`` with --jobs 1 and 2, side by side.

Usage: python benchmarks/batch.py [--weights PATH] [--count 20] [--jobs 1 2] [--repeat 1]

Prints the CPU, then a markdown table: wall time of the whole process, seconds per photo and
the ratio to --jobs 1, measured in this one run. The photos are made from samples/coffee.png
(cropped to 4:3, upscaled, slightly varied so no two files are equal).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]


def make_photos(folder: Path, count: int) -> None:
    """Write ``count`` different 4032x3024 JPEGs into ``folder``."""
    image = cv2.imread(str(REPO / "samples" / "coffee.png"))
    height, width = image.shape[:2]
    crop = image[:, (width - height * 4 // 3) // 2 :][:, : height * 4 // 3]
    large = cv2.resize(crop, (4032, 3024), interpolation=cv2.INTER_CUBIC)
    for index in range(count):
        shifted = np.roll(large, index * 37, axis=1)
        cv2.imwrite(str(folder / f"photo_{index:03d}.jpg"), shifted)


def main() -> None:
    """Run the batch once per --jobs value (and repeat), print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "photos").mkdir()
        make_photos(work / "photos", args.count)
        walls: dict[int, list[float]] = {jobs: [] for jobs in args.jobs}
        for repeat in range(args.repeat):
            for jobs in args.jobs:
                out = work / f"out_{jobs}_{repeat}"
                command = [sys.executable, "-m", "depth2mesh", "convert", str(work / "photos")]
                command += ["-o", str(out), "--jobs", str(jobs), "--device", "cpu"]
                if args.weights:
                    command += ["--weights", str(args.weights)]
                started = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                walls[jobs].append(time.perf_counter() - started)
    print(f"machine: {cpu_model()}")
    print(f"{args.count} photos of 4032x3024, default settings, median of {args.repeat}\n")
    print("| --jobs | wall time | per photo | ratio to --jobs 1 |")
    print("| --- | --- | --- | --- |")
    base = statistics.median(walls[args.jobs[0]])
    for jobs in args.jobs:
        wall = statistics.median(walls[jobs])
        print(f"| {jobs} | {wall:.1f} s | {wall / args.count:.2f} s | {wall / base:.2f} |")


if __name__ == "__main__":
    main()
