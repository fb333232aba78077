"""The Poisson mesh, before and after issue 21: invented surface, speed, GLB sizes, in one run.

Usage: python benchmarks/poisson.py [SHARED_DIR] [--before REV] [--rounds 3] [--skip-speed]
       [--skip-quality]

Both versions run as the real command line (``python -m depth2mesh convert``), "before" from
``git archive REV`` (default: the merge-base with main) in a temporary folder, "after" from this
checkout, on the six NYU frames of ``shared/real_midas`` with the real MiDaS small disparity
(``--depth ... --depth-kind disparity --near 1.2 --far 5``, NYU's intrinsics, ``--mesh both``).

1. Quality, per frame and version: the share of the Poisson surface's area farther than 2 % of
   its depth from every point of the points PLY
   (:func:`depth2mesh.geometry.support.unsupported_share`, an exact nearest-neighbour search),
   the Poisson triangles, the sizes of the grid GLB and the Poisson GLB, and the Poisson stage's
   seconds (the sidecar's ``timings_s.poisson_mesh``).
2. Speed: frame 00065 at its 640x480 size and upscaled to a 4032x3024 JPEG (12 MP; the same
   disparity), ``--rounds`` rounds of both versions in a shuffled order after one warm-up
   each; the Poisson stage's median and minimum seconds and the conversion's, and the ratio
   before / after of the medians. The cores' float32 peak (the best 1536x1536 matmul, numpy
   and torch, as ``benchmarks/network.py`` measures it) is sampled between the runs, so that
   it sees the same load.

Prints the CPU model and the load averages before and after. The machine may be shared: quote
the ratios, measured side by side in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import open3d as o3d
from machine import cpu_model

from depth2mesh.geometry.support import unsupported_share

REPO = Path(__file__).resolve().parents[1]
FRAMES = ("00065", "00122", "00438", "00439", "00445", "00543")
NYU_CAMERA = ["--fx", "518.8579", "--fy", "519.4696", "--cx", "325.5824", "--cy", "253.7362"]
LARGE = (4032, 3024)


def export_revision(revision: str, folder: Path) -> Path:
    """Write the tree of ``revision`` (this repository) into ``folder``; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def convert(code: Path, photo: Path, disparity: Path, out: Path, *extra: str) -> dict[str, Any]:
    """Run ``depth2mesh convert`` from ``code``; return the sidecar plus the wall seconds."""
    command = [sys.executable, "-m", "depth2mesh", "convert", str(photo), "-o", str(out)]
    command += ["--depth", str(disparity), "--depth-kind", "disparity", "--near", "1.2"]
    command += ["--far", "5", *NYU_CAMERA, "--mesh", "both", "--overwrite", *extra]
    environment = {**os.environ, "PYTHONPATH": str(code)}
    start = time.perf_counter()
    # run from ``code``: ``python -m`` puts the working folder first on the path, ahead of
    # PYTHONPATH, so from this checkout both versions would import this checkout's package
    done = subprocess.run(
        command, env=environment, cwd=code, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"convert failed ({code}):\n{done.stderr}")
    sidecar: dict[str, Any] = json.loads((out / f"{photo.stem}.json").read_text())
    sidecar["wall_s"] = seconds
    return sidecar


def quality(code: Path, shared: Path, work: Path) -> list[dict[str, Any]]:
    """Convert every frame with ``code``; measure the unsupported share and the GLB sizes."""
    rows = []
    for frame in FRAMES:
        disparity = work / f"disparity_{frame}.npy"
        photo = shared / "real_midas" / f"rgb_{frame}.png"
        out = work / code.name / frame
        sidecar = convert(code, photo, disparity, out)
        stem = photo.stem
        cloud = np.asarray(o3d.io.read_point_cloud(str(out / f"{stem}_points.ply")).points)
        mesh = o3d.io.read_triangle_mesh(str(out / f"{stem}_poisson.ply"))
        share = unsupported_share(
            np.asarray(mesh.vertices), np.asarray(mesh.triangles, dtype=np.int64), cloud
        )
        rows.append(
            {
                "frame": frame,
                "unsupported": share,
                "faces": len(mesh.triangles),
                "grid_glb": (out / f"{stem}.glb").stat().st_size,
                "poisson_glb": (out / f"{stem}_poisson.glb").stat().st_size,
                "stage_s": sidecar["timings_s"]["poisson_mesh"],
            }
        )
        print(f"  {code.name} {frame}: {100 * share:.2f} %", file=sys.stderr, flush=True)
    return rows


class Peak:
    """The best float32 1536x1536 matmul GFLOP/s on all cores (numpy, and torch if present)."""

    def __init__(self, size: int = 1536) -> None:
        rng = np.random.default_rng(0)
        self.size = size
        self.a = rng.standard_normal((size, size), dtype=np.float32)
        self.b = rng.standard_normal((size, size), dtype=np.float32)
        self.best = 0.0
        self.library = "numpy"

    def sample(self) -> None:
        """Time one matmul per library; keep the best."""
        multiplies = [("numpy", lambda: self.a @ self.b)]
        try:
            import torch

            ta, tb = torch.from_numpy(self.a), torch.from_numpy(self.b)
            multiplies.append(("torch", lambda: ta @ tb))
        except ImportError:
            pass
        for library, multiply in multiplies:
            start = time.perf_counter()
            multiply()
            gflops = 2.0 * self.size**3 / (time.perf_counter() - start) / 1e9
            if gflops > self.best:
                self.best, self.library = gflops, library


def speed(
    versions: dict[str, Path], inputs: dict[str, tuple[Path, Path]], rounds: int, work: Path
) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], Peak]:
    """Shuffled rounds of every version on every input (one warm-up round first)."""
    peak = Peak()
    peak.sample()
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {
        (version, name): [] for version in versions for name in inputs
    }
    order = list(runs)
    shuffle = random.Random(0)
    for index in range(rounds + 1):
        shuffle.shuffle(order)
        for version, name in order:
            photo, disparity = inputs[name]
            out = work / "speed" / f"{version}_{name}_{index}"
            sidecar = convert(versions[version], photo, disparity, out)
            if index:  # round 0 warms the caches up
                runs[(version, name)].append(sidecar)
            peak.sample()
        print(f"  speed round {index}/{rounds}", file=sys.stderr, flush=True)
    return runs, peak


def large_input(shared: Path, work: Path) -> Path:
    """Frame 00065 upscaled to a 4032x3024 JPEG (the disparity file is resized to any grid)."""
    rgb = cv2.imread(str(shared / "real_midas" / "rgb_00065.png"))
    large = cv2.resize(rgb, LARGE, interpolation=cv2.INTER_CUBIC)
    path = work / "large" / "rgb_00065_12mp.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), large, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def main() -> None:
    """Measure and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", nargs="?", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--before", default=None, help="git revision (default: merge-base main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    before = (
        args.before
        or subprocess.run(
            ["git", "-C", str(REPO), "merge-base", "HEAD", "main"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    print(f"CPU: {cpu_model()}; load average at start: {os.getloadavg()}")
    print(f"before: {before[:10]} (git archive), after: this checkout ({REPO})\n")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        versions = {"before": export_revision(before, work / "before"), "after": REPO}
        for frame in FRAMES:
            disparity = np.load(
                args.shared / "real_midas" / "midas_small_outputs" / f"disparity_{frame}.npy"
            )
            np.save(work / f"disparity_{frame}.npy", disparity.astype(np.float32))
        if not args.skip_quality:
            table = {name: quality(code, args.shared, work) for name, code in versions.items()}
            print(
                "| frame | Poisson area > 2 % of depth from the cloud, before / after | "
                "Poisson triangles before / after | grid GLB | Poisson GLB before / after | "
                "Poisson stage s before / after |"
            )
            print("| --- | --- | --- | --- | --- | --- |")
            for old, new in zip(table["before"], table["after"], strict=True):
                print(
                    f"| {new['frame']} | {100 * old['unsupported']:.2f} % / "
                    f"**{100 * new['unsupported']:.2f} %** | {old['faces']:,} / {new['faces']:,} "
                    f"| {new['grid_glb'] / 1e6:.2f} MB | {old['poisson_glb'] / 1e6:.2f} / "
                    f"**{new['poisson_glb'] / 1e6:.2f} MB** | {old['stage_s']:.2f} / "
                    f"{new['stage_s']:.2f} |"
                )
            print(f"\nload average after the quality table: {os.getloadavg()}\n")
        if not args.skip_speed:
            inputs = {
                "640x480": (
                    args.shared / "real_midas" / "rgb_00065.png",
                    work / "disparity_00065.npy",
                ),
                "4032x3024": (large_input(args.shared, work), work / "disparity_00065.npy"),
            }
            runs, peak = speed(versions, inputs, args.rounds, work)
            print(
                f"Peak: {peak.best:.0f} GFLOP/s float32 (best {peak.size}x{peak.size} matmul "
                f"on all cores, {peak.library}, sampled between the runs)\n"
            )
            print(
                "| photo | Poisson stage before: median (min) s | after: median (min) s | "
                "before / after | whole convert before / after, median s |"
            )
            print("| --- | --- | --- | --- | --- |")
            for name in inputs:
                stage = {
                    version: [run["timings_s"]["poisson_mesh"] for run in runs[(version, name)]]
                    for version in versions
                }
                wall = {
                    version: statistics.median(run["wall_s"] for run in runs[(version, name)])
                    for version in versions
                }
                old, new = statistics.median(stage["before"]), statistics.median(stage["after"])
                print(
                    f"| {name} | {old:.2f} ({min(stage['before']):.2f}) | **{new:.2f}** "
                    f"({min(stage['after']):.2f}) | **{old / new:.2f}** | "
                    f"{wall['before']:.2f} / {wall['after']:.2f} |"
                )
            print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
