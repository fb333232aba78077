"""Convert one 4032x3024 photo end to end (a whole process) and print time, memory, file sizes.

Usage: python benchmarks/convert_large.py [--weights PATH] [--photo PATH] [--mesh grid|both]

Without --photo, a 4032x3024 photo is made from samples/coffee.png (cropped to 4:3 and
upscaled); the content does not change the cost. Timing with the parity fixture weights is the
same as with the official ones (same network, same shapes).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """Return the CPU model name and its widest vector extension."""
    name = platform.processor() or "unknown CPU"
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = line
                break
    except OSError:
        pass
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name}, {os.cpu_count()} cores, {vector}"


def make_photo(path: Path) -> None:
    """Write a 4032x3024 JPEG made from a sample photo."""
    image = cv2.imread(str(REPO / "samples" / "coffee.png"))
    height, width = image.shape[:2]
    crop = image[:, (width - height * 4 // 3) // 2 :][:, : height * 4 // 3]
    cv2.imwrite(str(path), cv2.resize(crop, (4032, 3024), interpolation=cv2.INTER_CUBIC))


def main() -> None:
    """Run the conversion in a child process and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--photo", type=Path, default=None)
    parser.add_argument("--mesh", default="grid")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        photo = args.photo or work / "large.jpg"
        if args.photo is None:
            make_photo(photo)
        command = [
            sys.executable,
            "-m",
            "depth2mesh",
            "convert",
            str(photo),
            "-o",
            str(work / "out"),
        ]
        command += ["--mesh", args.mesh, "--device", "cpu"]
        if args.weights:
            command += ["--weights", str(args.weights)]
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"machine: {cpu_model()}")
        print(f"photo: {photo.name} 4032x3024, --mesh {args.mesh}\n")
        print("| measure | value |\n| --- | --- |")
        print(f"| wall time (whole process) | {wall:.1f} s |")
        print(f"| peak RSS | {peak_mb:.0f} MB |")
        for output in sorted((work / "out").iterdir()):
            print(f"| {output.name} | {output.stat().st_size / 1e6:.2f} MB |")


if __name__ == "__main__":
    main()
