"""The straightforward pipeline the issue compares against (one photo -> the same kinds of files).

Usage: python benchmarks/baseline_pipeline.py PHOTO OUTDIR [--weights PATH]

What anyone would write first with the usual libraries, with no attention to speed or memory:
cv2.imread; the eager fp32 PyTorch network; bicubic upsampling of the disparity to the full
photo resolution (torch); disparity -> depth at full resolution (2/98 percentiles, near 1 m,
far 10 m); 16-bit and inferno depth PNGs at full resolution (cv2.imwrite); the depth resized
to a 1024x768 grid (1024 vertices on the long side), back-projected with a 60 degree
horizontal field of view; a trimesh grid mesh textured with the full-resolution photo
(exported by trimesh as a PNG inside the GLB); an Open3D point cloud with estimated normals,
oriented towards the camera (binary PLY); a small JSON sidecar. Writes OUTDIR/STEM.glb,
STEM_points.ply, STEM_depth.png, STEM_depth_inferno.png and STEM.json.
benchmarks/speed.py times it as a whole process beside ``depth2mesh convert``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
import torch
import torch.nn.functional as F  # noqa: N812
import trimesh
from PIL import Image

from depth2mesh.depth.model import load_model
from depth2mesh.depth.networks.midas_small import network_input_size
from depth2mesh.depth.preprocess import IMAGENET_MEAN, IMAGENET_STD
from depth2mesh.geometry.scale import disparity_to_depth

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = REPO.parent / "shared" / "midas" / "midas_small_random_init.pt"
NEAR, FAR, FOV_DEG, GRID = 1.0, 10.0, 60.0, 1024


def grid_faces(rows: int, cols: int) -> np.ndarray:
    """Two triangles per grid cell, counter-clockwise as seen from the camera (glTF axes)."""
    index = np.arange(rows * cols).reshape(rows, cols)
    a, b = index[:-1, :-1].ravel(), index[:-1, 1:].ravel()
    c, d = index[1:, :-1].ravel(), index[1:, 1:].ravel()
    return np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])


def official_transform(rgb: np.ndarray) -> torch.Tensor:
    """MiDaS's small_transform as written: the whole photo in float64, resized, normalised."""
    rows, cols = network_input_size(*rgb.shape[:2])
    scaled = cv2.resize(rgb / 255.0, (cols, rows), interpolation=cv2.INTER_CUBIC)
    normalised = (scaled - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])).float()


def main() -> None:
    """Convert one photo the straightforward way and write the five files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.photo.stem
    timings: dict[str, float] = {}
    start = lap = time.perf_counter()

    def done(name: str) -> None:
        nonlocal lap
        timings[name] = round(time.perf_counter() - lap, 3)
        lap = time.perf_counter()

    rgb = cv2.cvtColor(cv2.imread(str(args.photo), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    done("decode")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the test weights are not the official release
        model = load_model(args.weights, device="cpu", backend="torch")
    done("load_model")
    with torch.inference_mode():
        disparity = model.network(official_transform(rgb))
        full = F.interpolate(
            disparity[:, None], size=(height, width), mode="bicubic", align_corners=False
        )
        disparity_full = full[0, 0].numpy()
    done("network_and_upsample")
    depth = disparity_to_depth(disparity_full, near=NEAR, far=FAR)
    nearness = (1.0 / depth - 1.0 / FAR) / (1.0 / NEAR - 1.0 / FAR)  # 1 near, 0 far
    cv2.imwrite(str(args.out_dir / f"{stem}_depth.png"), (nearness * 65535).astype(np.uint16))
    inferno = cv2.applyColorMap((nearness * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    cv2.imwrite(str(args.out_dir / f"{stem}_depth_inferno.png"), inferno)
    done("depth_pngs")

    cols, rows = GRID, round(GRID * height / width)
    grid_depth = cv2.resize(depth, (cols, rows), interpolation=cv2.INTER_AREA)
    u = (np.arange(cols) + 0.5) * width / cols - 0.5  # grid vertices in photo pixels
    v = (np.arange(rows) + 0.5) * height / rows - 0.5
    uu, vv = np.meshgrid(u, v)
    fx = width / (2.0 * math.tan(math.radians(FOV_DEG) / 2.0))
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    x = (uu - cx) * grid_depth / fx
    y = (vv - cy) * grid_depth / fx
    # OpenCV camera frame -> glTF axes (y up, camera looking down -z), as depth2mesh writes.
    points = np.stack([x, -y, -grid_depth], axis=-1).reshape(-1, 3)
    colors = cv2.resize(rgb, (cols, rows), interpolation=cv2.INTER_AREA).reshape(-1, 3)
    uv = np.stack([(uu + 0.5) / width, 1.0 - (vv + 0.5) / height], axis=-1).reshape(-1, 2)
    done("grid")

    material = trimesh.visual.material.SimpleMaterial(image=Image.fromarray(rgb))
    mesh = trimesh.Trimesh(
        vertices=points,
        faces=grid_faces(rows, cols),
        visual=trimesh.visual.TextureVisuals(uv=uv, material=material),
        process=False,
    )
    mesh.export(str(args.out_dir / f"{stem}.glb"))
    done("glb")

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(colors.astype(np.float64) / 255.0)
    spacing = FAR / (fx * cols / width)  # grid spacing at the far plane, metres
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=4 * spacing, max_nn=30))
    cloud.orient_normals_towards_camera_location(np.zeros(3))
    o3d.io.write_point_cloud(str(args.out_dir / f"{stem}_points.ply"), cloud, write_ascii=False)
    done("ply")

    timings["total"] = round(time.perf_counter() - start, 3)
    sidecar = {
        "generator": "benchmarks/baseline_pipeline.py",
        "photo": {"path": str(args.photo), "width": width, "height": height},
        "intrinsics": {"fx": fx, "fy": fx, "cx": cx, "cy": cy},
        "depth": {"near_m": NEAR, "far_m": FAR},
        "counts": {"vertices": len(points), "faces": len(mesh.faces)},
        "timings_s": timings,
    }
    (args.out_dir / f"{stem}.json").write_text(json.dumps(sidecar, indent=2) + "\n")


if __name__ == "__main__":
    main()
