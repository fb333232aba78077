"""Make the README's pictures from REAL MiDaS small output (shared/real_midas).

Usage: xvfb-run -a python docs/make_figures.py [SHARED_DIR]   (default ../shared)

The 3D pictures come from ``depth2mesh convert --depth`` on the real model's disparity of NYU
frame 00065 (NYU's own intrinsics, near 1.2 m, far 5 m), shown by ``depth2mesh view
--screenshot``: the textured GLB from 25 degrees to the right and 12 degrees above the photo's
camera, and the point cloud through the photo's camera (the preview window's first view).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from depth2mesh.pictures import colorize_disparity, write_png

REPO = Path(__file__).resolve().parents[1]
NYU_CAMERA = ["--fx", "518.8579", "--fy", "519.4696", "--cx", "325.5824", "--cy", "253.7362"]


def depth_figure(shared: Path, frame: str) -> np.ndarray:
    """Return the NYU frame beside the inferno picture of the real model's disparity."""
    rgb = cv2.imread(str(shared / "real_midas" / f"rgb_{frame}.png"))
    rgb = cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB)
    disparity = np.load(shared / "real_midas" / "midas_small_outputs" / f"disparity_{frame}.npy")
    full = cv2.resize(disparity.astype(np.float32), rgb.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    gap = np.full((rgb.shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([rgb, gap, colorize_disparity(full)], axis=1)


def depth2mesh(*args: str | Path) -> None:
    """Run the real command line."""
    subprocess.run([sys.executable, "-m", "depth2mesh", *map(str, args)], check=True)


def main() -> None:
    """Write docs/images/{depth,mesh,preview}_nyu_<frame>.png."""
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared"
    images = REPO / "docs" / "images"
    frame = "00065"
    write_png(images / f"depth_nyu_{frame}.png", depth_figure(shared, frame), overwrite=True)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        disparity = np.load(
            shared / "real_midas" / "midas_small_outputs" / f"disparity_{frame}.npy"
        )
        np.save(work / "disparity.npy", disparity.astype(np.float32))
        photo = shared / "real_midas" / f"rgb_{frame}.png"
        result = work / f"rgb_{frame}"
        depth2mesh(
            "convert", photo, "-o", work, "--depth", work / "disparity.npy",
            "--depth-kind", "disparity", "--near", "1.2", "--far", "5", "--overwrite", *NYU_CAMERA,
        )  # fmt: skip
        depth2mesh(
            "view", result.with_suffix(".glb"), "--screenshot", images / f"mesh_nyu_{frame}.png",
            "--orbit", "25", "12",
        )  # fmt: skip
        depth2mesh(
            "view", result.with_name(f"rgb_{frame}_points.ply"),
            "--screenshot", images / f"preview_nyu_{frame}.png",
        )  # fmt: skip
    print(images)


if __name__ == "__main__":
    main()
