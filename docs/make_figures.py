"""Make the README's pictures from REAL MiDaS small output (shared/real_midas).

Usage: xvfb-run -a python docs/make_figures.py [SHARED_DIR] [--only inpaint]   (default ../shared)

The 3D pictures come from ``depth2mesh convert --depth`` on the real model's disparity of NYU
frame 00065 (NYU's own intrinsics, near 1.2 m, far 5 m), shown by ``depth2mesh view
--screenshot``: the textured GLB from 25 degrees to the right and 12 degrees above the photo's
camera, and the point cloud through the photo's camera (the preview window's first view). The
occlusion-edge pair converts the same frame a second time, with ``--edges off`` (the earlier
mesh), and shows it beside the default (``--edges on``) from the same viewpoint (EDGES_ORBIT:
right of and a little above the photo's camera, beside the open door), side by side; both with
``--inpaint off``, so that the tears show. The default conversion is made with ``--mesh both``:
its Poisson GLB is shown beside the grid GLB from the textured GLB's viewpoint
(poisson_nyu_<frame>.png). The background-layer pair converts the frame with ``--inpaint off``
and with the default (``--inpaint on``) and shows them from the same viewpoint (INPAINT_ORBIT:
beside the photo's camera, as a viewer who steps to the right). ``--only inpaint`` makes that
pair alone.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from depth2mesh.exchange.pictures import colorize_disparity, write_png

REPO = Path(__file__).resolve().parents[1]
EDGES_ORBIT = ("20", "5")  # yaw right, pitch up, degrees: the door and cushion from the side
INPAINT_ORBIT = ("15", "3")  # yaw right, pitch up, degrees: beside the photo's camera
NYU_CAMERA = ["--fx", "518.8579", "--fy", "519.4696", "--cx", "325.5824", "--cy", "253.7362"]


def depth_figure(shared: Path, frame: str) -> np.ndarray:
    """Return the NYU frame beside the inferno picture of the real model's disparity."""
    rgb = cv2.imread(str(shared / "real_midas" / f"rgb_{frame}.png"))
    rgb = cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB)
    disparity = np.load(shared / "real_midas" / "midas_small_outputs" / f"disparity_{frame}.npy")
    full = cv2.resize(disparity.astype(np.float32), rgb.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    gap = np.full((rgb.shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([rgb, gap, colorize_disparity(full)], axis=1)


def side_by_side(
    before: Path,
    after: Path,
    width: int = 1280,
    labels: tuple[str, str] = ("--edges off", "--edges on (default)"),
) -> np.ndarray:
    """Return two renders side by side, labelled above, downscaled to ``width`` pixels."""
    pictures = []
    for path, label in zip((before, after), labels, strict=True):
        picture = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        band = np.full((64, picture.shape[1], 3), 255, np.uint8)  # the label above the render
        cv2.putText(band, label, (16, 46), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (0, 0, 0), 3,
                    cv2.LINE_AA)  # fmt: skip
        pictures.append(np.concatenate([band, picture]))
    gap = np.full((pictures[0].shape[0], 12, 3), 255, np.uint8)
    both = np.concatenate([pictures[0], gap, pictures[1]], axis=1)
    height = round(both.shape[0] * width / both.shape[1])
    return cv2.resize(both, (width, height), interpolation=cv2.INTER_AREA)


def depth2mesh(*args: str | Path) -> None:
    """Run the real command line."""
    subprocess.run([sys.executable, "-m", "depth2mesh", *map(str, args)], check=True)


def inpaint_figure(work: Path, photo: Path, images: Path, frame: str) -> None:
    """Write docs/images/inpaint_nyu_<frame>.png: --inpaint off and on, from beside the photo."""
    renders = []
    for name, extra in (("inpaint_off", ("--inpaint", "off")), ("inpaint_on", ())):
        convert_nyu(photo, work / name, work / "disparity.npy", *extra)
        depth2mesh(
            "view", work / name / f"rgb_{frame}.glb", "--screenshot", work / f"{name}.png",
            "--orbit", *INPAINT_ORBIT,
        )  # fmt: skip
        renders.append(work / f"{name}.png")
    labels = ("--inpaint off", "--inpaint on (default)")
    pair = side_by_side(renders[0], renders[1], labels=labels)
    write_png(images / f"inpaint_nyu_{frame}.png", pair, overwrite=True)


def convert_nyu(photo: Path, folder: Path, disparity: Path, *extra: str) -> None:
    """Convert an NYU frame from its real disparity (near 1.2 m, far 5 m, NYU's camera)."""
    depth2mesh(
        "convert", photo, "-o", folder, "--depth", disparity, "--depth-kind", "disparity",
        "--near", "1.2", "--far", "5", "--overwrite", *NYU_CAMERA, *extra,
    )  # fmt: skip


def main() -> None:
    """Write docs/images/{depth,mesh,preview,edges,poisson,inpaint}_nyu_<frame>.png."""
    arguments = [argument for argument in sys.argv[1:] if argument != "--only"]
    only = arguments.pop() if "--only" in sys.argv[1:] else None
    shared = Path(arguments[0]) if arguments else REPO.parent / "shared"
    images = REPO / "docs" / "images"
    frame = "00065"
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        disparity = np.load(
            shared / "real_midas" / "midas_small_outputs" / f"disparity_{frame}.npy"
        )
        np.save(work / "disparity.npy", disparity.astype(np.float32))
        photo = shared / "real_midas" / f"rgb_{frame}.png"
        inpaint_figure(work, photo, images, frame)
        if only == "inpaint":
            print(images)
            return
        write_png(images / f"depth_nyu_{frame}.png", depth_figure(shared, frame), overwrite=True)
        result = work / f"rgb_{frame}"  # the default mesh (--edges on)
        before = work / "edges_off" / f"rgb_{frame}"
        convert_nyu(photo, work, work / "disparity.npy", "--mesh", "both")
        for folder, edges in ((work / "edges_on", ()), (before.parent, ("--edges", "off"))):
            convert_nyu(photo, folder, work / "disparity.npy", "--inpaint", "off", *edges)
        depth2mesh(
            "view", result.with_suffix(".glb"), "--screenshot", images / f"mesh_nyu_{frame}.png",
            "--orbit", "25", "12",
        )  # fmt: skip
        depth2mesh(
            "view", result.with_name(f"rgb_{frame}_points.ply"),
            "--screenshot", images / f"preview_nyu_{frame}.png",
        )  # fmt: skip
        torn = work / "edges_on" / f"rgb_{frame}"  # --edges on without the layer: the tears
        for glb, name in ((before, "before"), (torn, "after")):
            depth2mesh(
                "view", glb.with_suffix(".glb"), "--screenshot", work / f"{name}.png",
                "--orbit", *EDGES_ORBIT,
            )  # fmt: skip
        pair = side_by_side(work / "before.png", work / "after.png")
        write_png(images / f"edges_nyu_{frame}.png", pair, overwrite=True)
        depth2mesh(
            "view", work / f"rgb_{frame}_poisson.glb", "--screenshot", work / "poisson.png",
            "--orbit", "25", "12",
        )  # fmt: skip
        depth2mesh(
            "view", result.with_suffix(".glb"), "--screenshot", work / "grid.png",
            "--orbit", "25", "12",
        )  # fmt: skip
        labels = ("grid mesh (default)", "--mesh poisson (or both)")
        pair = side_by_side(work / "grid.png", work / "poisson.png", labels=labels)
        write_png(images / f"poisson_nyu_{frame}.png", pair, overwrite=True)
    print(images)


if __name__ == "__main__":
    main()
