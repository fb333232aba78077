"""True scale from two known depths: ``--depth-at`` on REAL MiDaS small output against NYU.

Usage: python benchmarks/pins.py [--frames 00065 ...]

For each NYU frame in ``$DEPTH2MESH_SHARED/real_midas`` (``../shared``), two pixels get their
ground-truth depth as pins, and the real pipeline (:func:`depth2mesh.convert_photo`, what
``depth2mesh convert`` runs) converts ``rgb_<id>.png`` with
``depth_file=midas_small_outputs/disparity_<id>.npy`` (``depth_kind="disparity"``), NYU's
intrinsics, grid 640 (the photo's own 640x480, so every pixel is a mesh vertex) and the two
pins. The command each row equals is printed below the table.

The pins (a rule, not a hand pick): among the pixels at least 16 pixels from the border whose
valid ground truth (0.1 < gt < 10 m) varies by at most 1 % over their 5x5 neighbourhood, the
near pin is the one whose depth is closest to the 10th percentile of the frame's valid ground
truth, the far pin the one closest to the 90th (the first in row-major order on a tie).

Read back from the written files (glTF axes undone, vertices projected to their pixels):

- pin error: the largest relative error of the GLB's depth at the two pinned pixels (and of
  the point cloud PLY's), against the ground truth there. The contract: below 0.1 %.
- pinned: AbsRel, delta<1.25 and RMSE of the GLB's depth per pixel against the ground truth,
  as ``depth2mesh evaluate --metric`` scores metric depth (:func:`evaluate_depth`: no
  alignment; valid pixels 0.1 < gt < 10 m; predictions capped at 10 m).
- fitted: the same figures that ``depth2mesh evaluate DISPARITY GT`` reports for the same
  disparity (least-squares scale and shift against all the ground truth: the best any affine
  map of the disparity can do; two pins get there from two pixels).
- one pin: AbsRel with the near pin alone (scale only, the default near/far shape).

Prints the CPU and a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from edges import NYU, mesh_on_pixels, read_cloud_depth, read_glb_mesh  # noqa: E402
from machine import cpu_model  # noqa: E402

from depth2mesh.depth.evaluate import EvalResult, evaluate_depth, evaluate_disparity  # noqa: E402
from depth2mesh.geometry.scale import DepthPin  # noqa: E402
from depth2mesh.pipeline.convert import ConvertOptions, convert_photo  # noqa: E402

SHARED = Path(os.environ.get("DEPTH2MESH_SHARED", REPO.parent / "shared")).resolve()
FRAMES = ("00065", "00122", "00438", "00439", "00445", "00543")
MIN_DEPTH, MAX_DEPTH = 0.1, 10.0
BORDER = 16
SMOOTH = 1.01
PERCENTILES = (10.0, 90.0)


@dataclass(frozen=True)
class PinScores:
    """What one frame scores with two pins (fractions, not percent)."""

    pins: tuple[DepthPin, DepthPin]
    glb_pin_error: float
    ply_pin_error: float
    pinned: EvalResult
    fitted: EvalResult
    one_pin: EvalResult


def choose_pins(gt: NDArray[np.float64]) -> tuple[DepthPin, DepthPin]:
    """The near and far pins of a frame by the rule in the module docstring."""
    valid = (gt > MIN_DEPTH) & (gt < MAX_DEPTH)
    kernel = np.ones((5, 5), np.uint8)
    high = cv2.dilate(np.where(valid, gt, np.inf).astype(np.float32), kernel)
    low = cv2.erode(np.where(valid, gt, 0.0).astype(np.float32), kernel)
    smooth = valid & (high <= SMOOTH * low) & (low > 0)
    inner = np.zeros_like(smooth)
    inner[BORDER:-BORDER, BORDER:-BORDER] = True
    candidates = smooth & inner
    pins = []
    for percentile in PERCENTILES:
        target = np.percentile(gt[valid], percentile)
        distance = np.where(candidates, np.abs(gt - target), np.inf)
        v, u = np.unravel_index(int(np.argmin(distance)), gt.shape)
        pins.append(DepthPin(float(u), float(v), float(gt[v, u])))
    return pins[0], pins[1]


def glb_depth(glb: Path, shape: tuple[int, int]) -> NDArray[np.float64]:
    """The grid mesh's depth per pixel, from the GLB's vertices (NaN where none)."""
    positions, faces = read_glb_mesh(glb)
    return mesh_on_pixels(positions, faces, shape)[1]


def convert(frame: str, pins: tuple[DepthPin, ...], out: Path) -> tuple[Path, Path]:
    """Convert one frame with the pins; return its GLB and point cloud PLY."""
    folder = SHARED / "real_midas"
    result = convert_photo(
        folder / f"rgb_{frame}.png",
        out,
        depth_file=folder / "midas_small_outputs" / f"disparity_{frame}.npy",
        options=ConvertOptions(
            depth_kind="disparity", grid=640, camera=NYU, depth_at=pins, overwrite=True
        ),
    )
    return result.paths["glb"], result.paths["points"]


def score_frame(frame: str, work: Path) -> PinScores:
    """Pin one frame twice (and once), convert it, read the files back, score them."""
    folder = SHARED / "real_midas"
    gt = np.load(folder / f"depth_{frame}.npy").astype(np.float64)
    pins = choose_pins(gt)
    glb, ply = convert(frame, pins, work / "two")
    mesh = glb_depth(glb, gt.shape)
    cloud = read_cloud_depth(ply, gt.shape)
    errors = {
        name: max(abs(d[int(p.v), int(p.u)] / p.metres - 1.0) for p in pins)
        for name, d in (("glb", mesh), ("ply", cloud))
    }
    disparity = np.load(folder / "midas_small_outputs" / f"disparity_{frame}.npy")
    one_glb, _ = convert(frame, pins[:1], work / "one")
    return PinScores(
        pins,
        errors["glb"],
        errors["ply"],
        evaluate_depth(mesh, gt, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH),
        evaluate_disparity(disparity, gt, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH),
        evaluate_depth(glb_depth(one_glb, gt.shape), gt, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH),
    )


def exact(pin: DepthPin) -> str:
    """A pin as ``--depth-at`` takes it, its depth in full (the float16 ground truth's)."""
    return f"{pin.u:g},{pin.v:g}={pin.metres!r}"


def main() -> None:
    """Score the frames and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", nargs="+", default=list(FRAMES))
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}")
    print()
    print(
        "| frame | near pin (u,v=m) | far pin (u,v=m) | pin error GLB | pin error PLY "
        "| AbsRel pinned (evaluate --metric) | AbsRel fitted (evaluate) | delta<1.25 pinned "
        "| delta<1.25 fitted | RMSE pinned (m) | RMSE fitted (m) | AbsRel one pin (near) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    commands = []
    for frame in args.frames:
        with tempfile.TemporaryDirectory() as work:
            s = score_frame(frame, Path(work))
        near, far = s.pins
        pinned, fitted = s.pinned, s.fitted
        print(
            f"| {frame} | {near} | {far} | {s.glb_pin_error:.1e} | {s.ply_pin_error:.1e} "
            f"| {pinned.abs_rel:.3f} | {fitted.abs_rel:.3f} | {pinned.delta1:.3f} "
            f"| {fitted.delta1:.3f} | {pinned.rmse:.3f} | {fitted.rmse:.3f} "
            f"| {s.one_pin.abs_rel:.3f} |"
        )
        folder = "$DEPTH2MESH_SHARED/real_midas"
        commands.append(
            f"depth2mesh convert {folder}/rgb_{frame}.png -o out/ --depth "
            f"{folder}/midas_small_outputs/disparity_{frame}.npy --depth-kind disparity "
            f"--grid 640 --fx {NYU.fx} --fy {NYU.fy} --cx {NYU.cx} --cy {NYU.cy} "
            f"--depth-at {exact(near)} --depth-at {exact(far)}"
        )
    print("\nEach row's two-pin conversion, as a command:\n")
    print("\n".join(commands))


if __name__ == "__main__":
    main()
