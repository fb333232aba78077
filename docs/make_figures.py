"""Make the README's pictures from REAL MiDaS small output (shared/real_midas).

Usage: python docs/make_figures.py [SHARED_DIR]   (default ../shared)
"""

from __future__ import annotations

import sys
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


def main() -> None:
    """Write docs/images/depth_nyu_<frame>.png."""
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared"
    for frame in ("00065",):
        target = REPO / "docs" / "images" / f"depth_nyu_{frame}.png"
        write_png(target, depth_figure(shared, frame), overwrite=True)
        print(target)


if __name__ == "__main__":
    main()
