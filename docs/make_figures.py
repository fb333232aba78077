"""Make the README's pictures from REAL MiDaS small output (shared/real_midas).

Usage: xvfb-run -a python docs/make_figures.py [SHARED_DIR]   (default ../shared)

The 3D picture is the textured GLB that ``depth2mesh convert --depth`` makes from the real
model's disparity of NYU frame 00065 (NYU's own intrinsics, near 1.2 m, far 5 m), rendered by
Open3D from a viewpoint beside the photo's camera.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from depth2mesh.export import colorize_disparity, write_png

REPO = Path(__file__).resolve().parents[1]


def depth_figure(shared: Path, frame: str) -> np.ndarray:
    """Return the NYU frame beside the inferno picture of the real model's disparity."""
    rgb = cv2.cvtColor(
        cv2.imread(str(shared / "real_midas" / f"rgb_{frame}.png")), cv2.COLOR_BGR2RGB
    )
    disparity = np.load(shared / "real_midas" / "midas_small_outputs" / f"disparity_{frame}.npy")
    full = cv2.resize(disparity.astype(np.float32), rgb.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    gap = np.full((rgb.shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([rgb, gap, colorize_disparity(full)], axis=1)


NYU_CAMERA = ["--fx", "518.8579", "--fy", "519.4696", "--cx", "325.5824", "--cy", "253.7362"]


def mesh_figure(shared: Path, frame: str) -> np.ndarray:
    """Convert the frame with the real disparity and render the GLB off to one side."""
    import open3d as o3d

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        disparity = np.load(
            shared / "real_midas" / "midas_small_outputs" / f"disparity_{frame}.npy"
        )
        np.save(work / "disparity.npy", disparity.astype(np.float32))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "depth2mesh",
                "convert",
                str(shared / "real_midas" / f"rgb_{frame}.png"),
                "-o",
                str(work),
                "--depth",
                str(work / "disparity.npy"),
                "--depth-kind",
                "disparity",
                "--near",
                "1.2",
                "--far",
                "5",
                *NYU_CAMERA,
            ],
            check=True,
        )
        mesh = o3d.io.read_triangle_mesh(str(work / f"rgb_{frame}.glb"), True)
        window = o3d.visualization.Visualizer()
        window.create_window(width=960, height=720, visible=True)
        window.add_geometry(mesh)
        window.get_render_option().background_color = np.array([1.0, 1.0, 1.0])
        window.get_render_option().light_on = False
        view = window.get_view_control()
        view.set_front([0.32, 0.18, 1.0])
        view.set_up([0.0, 1.0, 0.0])
        view.set_lookat([0.0, 0.0, -2.6])
        view.set_zoom(0.62)
        window.poll_events()
        window.update_renderer()
        image = np.asarray(window.capture_screen_float_buffer(do_render=True))
        window.destroy_window()
    rgb = np.round(image * 255).astype(np.uint8)
    content = np.nonzero((rgb < 250).any(axis=2))
    top, bottom = content[0].min(), content[0].max() + 1
    left, right = content[1].min(), content[1].max() + 1
    return np.ascontiguousarray(rgb[max(0, top - 8) : bottom + 8, max(0, left - 8) : right + 8])


def main() -> None:
    """Write docs/images/depth_nyu_<frame>.png and docs/images/mesh_nyu_<frame>.png."""
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared"
    images = REPO / "docs" / "images"
    for frame in ("00065",):
        write_png(images / f"depth_nyu_{frame}.png", depth_figure(shared, frame), overwrite=True)
        write_png(images / f"mesh_nyu_{frame}.png", mesh_figure(shared, frame), overwrite=True)
        print(images)


if __name__ == "__main__":
    main()
