"""Occlusion edges on REAL MiDaS small output: are the meshes torn where the scene is?

Usage: python benchmarks/edges.py [--frames 00065 ...] [--json PATH]

For each of the six NYU frames in ``$DEPTH2MESH_SHARED/real_midas`` (``../shared``) and each
setting below, the real pipeline (:func:`depth2mesh.convert_photo`) converts ``rgb_<id>.png``
with ``depth_file=midas_small_outputs/disparity_<id>.npy`` (``depth_kind="disparity"``), NYU's
intrinsics, grid 640 and near/far at the 2nd/98th percentiles of the valid ground truth
(0.1 < gt < 10 m). The GLB's vertices are read back to pixels through the intrinsics; a cell
(the 2x2 pixel block with its top-left pixel at the smallest corner) is kept when a triangle
lies in it. Then:

- tear recall: true occlusion edges are valid pixels whose ground truth differs from a valid
  8-neighbour's by a ratio above 1.25; the share of them with a cell without a triangle within
  2 pixels (a 5x5 window of cells). Higher is better.
- smooth kept: cells whose four ground-truth depths are valid and within 5 % of each other;
  the share of them that keep a triangle.
- moved: the share of the point cloud's points that floated on a ramp beside a cut and were
  moved onto the nearer surface (the sidecar's ``ramp_points_moved``).
- floating: cloud points near a true occlusion edge (within the ramp half-width, 9 pixels)
  whose depth lies between the ground truth's two sides there (the smallest and the largest
  valid ground truth within those 9 pixels), more than 10 % away from both; as a share of the
  cloud points near true edges. Lower is better: the "flying pixels" of a rubber sheet.
- AbsRel and delta<1.25 of the refined disparity (the pipeline's own, taken back from the
  GLB's vertex depths as 1/z) under the ``evaluate`` protocol, beside the raw disparity's.

Prints the CPU, a table per frame and the averages (markdown).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from machine import cpu_model  # noqa: E402

from depth2mesh.depth.evaluate import evaluate_disparity  # noqa: E402
from depth2mesh.exchange.gltf_read import read_glb_mesh as read_glb  # noqa: E402
from depth2mesh.pipeline.convert import CameraOptions, ConvertOptions, convert_photo  # noqa: E402

SHARED = Path(os.environ.get("DEPTH2MESH_SHARED", REPO.parent / "shared")).resolve()
FRAMES = ("00065", "00122", "00438", "00439", "00445", "00543")
NYU = CameraOptions(fx=518.8579, fy=519.4696, cx=325.5824, cy=253.7362)
EDGE_RATIO = 1.25
SMOOTH_RATIO = 1.05
TEAR_RADIUS = 2
FLOAT_RADIUS = 9
FLOAT_MARGIN = 1.10
PLY_VERTEX = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"),
     ("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
)  # fmt: skip

SETTINGS: dict[str, dict[str, Any]] = {
    "--edges off": {"edges": "off"},
    "cut 1.03 (--edges off)": {"edges": "off", "edge_threshold": 1.03},
    "--edges on --edge-radius 0.0125": {"edges": "on", "edge_radius": 0.0125},
    "--edges on --edge-radius 0.016": {"edges": "on", "edge_radius": 0.016},
    "--edges on --edge-step 1.05": {"edges": "on", "edge_step": 1.05},
    "--edges on --edge-strong 1.1": {"edges": "on", "edge_strong": 1.1},
    "--edges on (default)": {"edges": "on"},
}
"""Named settings: ConvertOptions fields over the grid-640 NYU options."""


@dataclass(frozen=True)
class Figures:
    """What one conversion scores (fractions, not percent)."""

    tear_recall: float
    smooth_kept: float
    abs_rel: float
    delta1: float
    seconds: float
    moved: float
    floating: float


def read_glb_mesh(path: Path) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Return a GLB's positions (glTF axes, dequantised) and triangles, every primitive."""
    mesh = read_glb(path.read_bytes())
    return mesh.positions, mesh.faces


def mesh_on_pixels(
    positions: NDArray[np.float32], faces: NDArray[np.int64], shape: tuple[int, int]
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Kept cells (H-1, W-1) and the vertices' depth per pixel (H, W; NaN where none)."""
    camera = positions.astype(np.float64) * np.array([1.0, -1.0, -1.0])
    z = camera[:, 2]
    u = np.rint(NYU.fx * camera[:, 0] / z + NYU.cx).astype(np.int64)  # type: ignore[operator]
    v = np.rint(NYU.fy * camera[:, 1] / z + NYU.cy).astype(np.int64)  # type: ignore[operator]
    height, width = shape
    depth = np.full(shape, np.nan)
    depth[v, u] = z
    corner_v = v[faces].min(axis=1)
    corner_u = u[faces].min(axis=1)
    kept = np.zeros((height - 1, width - 1), dtype=bool)
    kept[corner_v, corner_u] = True
    return kept, depth


def occlusion_edges(gt: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Valid pixels whose depth differs from a valid 8-neighbour's by a ratio above 1.25."""
    valid = (gt > 0.1) & (gt < 10)
    padded = np.pad(np.where(valid, gt, np.nan), 1, constant_values=np.nan)
    height, width = gt.shape
    edges = np.zeros(gt.shape, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        for dv in (-1, 0, 1):
            for du in (-1, 0, 1):
                if dv == du == 0:
                    continue
                other = padded[1 + dv : 1 + dv + height, 1 + du : 1 + du + width]
                ratio = np.maximum(gt / other, other / gt)
                edges |= valid & (ratio > EDGE_RATIO)
    return edges


def tear_recall(gt: NDArray[np.float64], kept: NDArray[np.bool_]) -> float:
    """Share of the true occlusion-edge pixels with a cell without a triangle within 2 px."""
    edges = occlusion_edges(gt)
    height, width = gt.shape
    torn = np.zeros((height + 2 * TEAR_RADIUS, width + 2 * TEAR_RADIUS), dtype=bool)
    torn[TEAR_RADIUS : TEAR_RADIUS + height - 1, TEAR_RADIUS : TEAR_RADIUS + width - 1] = ~kept
    near_tear = np.zeros(gt.shape, dtype=bool)
    for dv in range(-TEAR_RADIUS, TEAR_RADIUS + 1):
        for du in range(-TEAR_RADIUS, TEAR_RADIUS + 1):
            near_tear |= torn[
                TEAR_RADIUS + dv : TEAR_RADIUS + dv + height,
                TEAR_RADIUS + du : TEAR_RADIUS + du + width,
            ]
    return float(near_tear[edges].mean())


def read_cloud_depth(path: Path, shape: tuple[int, int]) -> NDArray[np.float64]:
    """The point cloud PLY's depth per pixel (H, W; NaN where it has no point)."""
    data = path.read_bytes()
    body = data.index(b"end_header\n") + len(b"end_header\n")
    records = np.frombuffer(data, PLY_VERTEX, offset=body)
    z = -records["z"].astype(np.float64)
    u = np.rint(NYU.fx * records["x"] / z + NYU.cx).astype(np.int64)  # type: ignore[operator]
    v = np.rint(NYU.fy * -records["y"] / z + NYU.cy).astype(np.int64)  # type: ignore[operator]
    depth = np.full(shape, np.nan)
    depth[v, u] = z
    return depth


def floating_share(gt: NDArray[np.float64], cloud: NDArray[np.float64]) -> float:
    """Share of the cloud points near true occlusion edges that float between the two sides."""
    valid = (gt > 0.1) & (gt < 10)
    size = 2 * FLOAT_RADIUS + 1
    kernel = np.ones((size, size), np.uint8)
    near_edges = cv2.dilate(occlusion_edges(gt).astype(np.uint8), kernel) > 0
    low = cv2.erode(np.where(valid, gt, np.inf).astype(np.float32), kernel)
    high = cv2.dilate(np.where(valid, gt, 0.0).astype(np.float32), kernel)
    points = near_edges & np.isfinite(cloud)
    with np.errstate(over="ignore", invalid="ignore"):
        between = (cloud > FLOAT_MARGIN * low) & (cloud * FLOAT_MARGIN < high)
    return float(between[points].mean())


def smooth_kept(gt: NDArray[np.float64], kept: NDArray[np.bool_]) -> float:
    """Share of the smooth cells (four valid depths within 5 %) that keep a triangle."""
    valid = (gt > 0.1) & (gt < 10)
    corners = [gt[:-1, :-1], gt[:-1, 1:], gt[1:, :-1], gt[1:, 1:]]
    good = valid[:-1, :-1] & valid[:-1, 1:] & valid[1:, :-1] & valid[1:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        high = np.maximum.reduce(corners)
        low = np.minimum.reduce(corners)
        smooth = good & (high <= SMOOTH_RATIO * low)
    return float(kept[smooth].mean())


def score_frame(shared: Path, frame: str, fields: dict[str, Any], work: Path) -> Figures:
    """Convert one frame with one setting and score its GLB."""
    folder = shared / "real_midas"
    gt = np.load(folder / f"depth_{frame}.npy").astype(np.float64)
    valid = (gt > 0.1) & (gt < 10)
    near, far = np.percentile(gt[valid], [2.0, 98.0])
    disparity = np.load(folder / "midas_small_outputs" / f"disparity_{frame}.npy")
    depth_file = work / f"disparity_{frame}.npy"
    np.save(depth_file, disparity.astype(np.float32))
    options = ConvertOptions(
        near=float(near),
        far=float(far),
        grid=640,
        camera=NYU,
        depth_kind="disparity",
        overwrite=True,
        **fields,
    )
    started = time.perf_counter()
    result = convert_photo(
        folder / f"rgb_{frame}.png", work / "out", options=options, depth_file=depth_file
    )
    seconds = time.perf_counter() - started
    positions, faces = read_glb_mesh(result.paths["glb"])
    kept, depth = mesh_on_pixels(positions, faces, gt.shape)  # type: ignore[arg-type]
    # the refined disparity: 1 / depth of the pixels the mesh keeps (others: not evaluated)
    with np.errstate(divide="ignore", invalid="ignore"):
        refined = np.where(np.isfinite(depth), 1.0 / depth, np.nan)
    scores = evaluate_disparity(refined, gt, valid=np.isfinite(refined))
    cloud = read_cloud_depth(result.paths["points"], gt.shape)  # type: ignore[arg-type]
    moved = result.counts.get("ramp_points_moved", 0) / result.counts["points"]
    return Figures(
        tear_recall(gt, kept),
        smooth_kept(gt, kept),
        scores.abs_rel,
        scores.delta1,
        seconds,
        moved,
        floating_share(gt, cloud),
    )


def raw_scores(shared: Path, frame: str) -> tuple[float, float]:
    """AbsRel and delta<1.25 of the raw disparity (the ``evaluate`` protocol)."""
    folder = shared / "real_midas"
    gt = np.load(folder / f"depth_{frame}.npy").astype(np.float64)
    disparity = np.load(folder / "midas_small_outputs" / f"disparity_{frame}.npy")
    scores = evaluate_disparity(disparity.astype(np.float32), gt)
    return scores.abs_rel, scores.delta1


def main() -> None:
    """Print the tables (and write them as JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", nargs="+", default=list(FRAMES))
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    shared = SHARED
    print(f"CPU: {cpu_model()}")
    rows: dict[str, dict[str, Figures]] = {}
    raw: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for frame in args.frames:
            raw[frame] = raw_scores(shared, frame)
            rows[frame] = {
                name: score_frame(shared, frame, SETTINGS[name], Path(folder))
                for name in args.settings
            }
    header = (
        "| frame | setting | tear recall | smooth kept | moved | floating | AbsRel | delta<1.25 "
        "| s |"
    )
    rule = "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    print(header, rule, sep="\n")
    for frame in args.frames:
        abs_rel, delta1 = raw[frame]
        print(f"| {frame} | raw disparity | | | | | {abs_rel:.3f} | {delta1:.3f} | |")
        for name, fig in rows[frame].items():
            print(
                f"| {frame} | {name} | {100 * fig.tear_recall:.1f} % | "
                f"{100 * fig.smooth_kept:.2f} % | {100 * fig.moved:.2f} % | "
                f"{100 * fig.floating:.1f} % | {fig.abs_rel:.3f} | {fig.delta1:.3f} | "
                f"{fig.seconds:.2f} |"
            )
    print(f"\nAveraged over {len(args.frames)} frames:\n")
    print("| setting | tear recall | smooth kept | moved | floating | AbsRel | delta<1.25 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    mean_abs = statistics.fmean(raw[f][0] for f in args.frames)
    mean_delta = statistics.fmean(raw[f][1] for f in args.frames)
    print(f"| raw disparity | | | | | {mean_abs:.3f} | {mean_delta:.3f} |")
    averages: dict[str, dict[str, float]] = {}
    for name in args.settings:
        figs = [rows[f][name] for f in args.frames]
        averages[name] = {
            key: statistics.fmean(getattr(fig, key) for fig in figs)
            for key in ("tear_recall", "smooth_kept", "moved", "floating", "abs_rel", "delta1")
        }
        avg = averages[name]
        print(
            f"| {name} | {100 * avg['tear_recall']:.1f} % | {100 * avg['smooth_kept']:.2f} % | "
            f"{100 * avg['moved']:.2f} % | {100 * avg['floating']:.1f} % | "
            f"{avg['abs_rel']:.3f} | {avg['delta1']:.3f} |"
        )
    if args.json is not None:
        document = {
            "cpu": cpu_model(),
            "raw": raw,
            "frames": {f: {n: vars(fig) for n, fig in rows[f].items()} for f in args.frames},
            "averages": averages,
        }
        args.json.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
