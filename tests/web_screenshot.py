"""Make docs/images/web_page.png: the web page showing a REAL result.

Usage: python tests/web_screenshot.py [SHARED_DIR]   (default ../shared; needs chromium, npm ci)

No picture may come from the random-valued test weights, and the real weights cannot be
downloaded here, so the page is started with its developer-only ``disparity_files`` option:
an upload whose bytes are NYU Depth V2 frame 00065 (``real_midas/rgb_00065.png``) uses the
disparity that the real, pretrained MiDaS v2.1 small predicted for it
(``real_midas/midas_small_outputs/disparity_00065.npy``) instead of the network. The page's
summary says so in the screenshot. Everything else is the page as users get it: the photo is
uploaded through the page, the options are set in it (NYU's focal length as a 63.3 degree
horizontal FOV, near 1.2 m, far 5 m, as in the README's other pictures), and the button
makes the result. The weights loaded to start the server are the test checkpoint; they are
never run on this photo.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import cv2

from depth2mesh.apps import web

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "images" / "web_page.png"
NYU_FX = 518.8579
NYU_WIDTH = 640


def main(shared: Path) -> None:
    """Start the page, drive it in headless Chromium and write the screenshot."""
    photo = shared / "real_midas" / "rgb_00065.png"
    disparity = shared / "real_midas" / "midas_small_outputs" / "disparity_00065.npy"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the start-up weights are the unofficial test file
        server = web.serve(
            port=port,
            weights=shared / "midas" / "midas_small_random_init.pt",
            device="cpu",
            disparity_files={photo: disparity},
            block=False,
        )
    try:
        fov = math.degrees(2 * math.atan(NYU_WIDTH / 2 / NYU_FX))
        with tempfile.TemporaryDirectory() as folder:
            shot = Path(folder) / "page.png"
            job = {
                "url": server.url,
                "photo": str(photo),
                "options": {"camera": "fov", "fov": round(fov, 1), "near": 1.2, "far": 5},
                "expect": "result",
                "screenshot": str(shot),
                "viewport": {"width": 1280, "height": 1000},
            }
            completed = subprocess.run(
                ["node", str(REPO / "tests" / "web_browser.mjs"), json.dumps(job)],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO,
            )
            report = json.loads(completed.stdout)
            if report["toasts"] or report["offHost"] or "disparity file" not in report["summary"]:
                raise SystemExit(f"unexpected page: {report}")
            image = cv2.imread(str(shot), cv2.IMREAD_COLOR)
            cv2.imwrite(str(OUT), image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    finally:
        server.close()
    print(f"wrote {OUT}: {report['summary'].splitlines()[0]}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared")
