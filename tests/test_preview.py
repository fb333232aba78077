"""The Open3D preview: a real window under Xvfb, through the photo's own camera."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from depth2mesh.apps.preview import ensure_runtime_dir, sidecar_for, view_camera
from depth2mesh.pipeline.convert import CameraOptions, ConvertOptions, convert_photo

XVFB = shutil.which("xvfb-run")
XDOTOOL = shutil.which("xdotool")


@pytest.fixture
def needs_xvfb() -> str:
    if XVFB is None:
        if os.environ.get("CI"):
            pytest.fail("xvfb-run is missing: apt-get install xvfb xauth")
        pytest.skip("xvfb-run is missing")
    return XVFB


@pytest.fixture
def framed_result(tmp_path: Path) -> Path:
    """A photo whose top half is red and bottom half green; depth only in a central window."""
    rgb = np.zeros((120, 160, 3), np.uint8)
    rgb[:60] = (230, 40, 40)
    rgb[60:] = (40, 220, 60)
    photo = tmp_path / "framed.png"
    Image.fromarray(rgb).save(photo)
    depth = np.full((120, 160), np.nan, np.float32)
    depth[20:100, 40:120] = 2.0  # points only here: the rest of the view is background
    np.save(tmp_path / "depth.npy", depth)
    options = ConvertOptions(camera=CameraOptions(fov_deg=60.0))
    convert_photo(photo, tmp_path / "out", depth_file=tmp_path / "depth.npy", options=options)
    return tmp_path / "out"


def _view(
    xvfb: str, *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [xvfb, "-a", "-s", "-screen 0 1280x1024x24", sys.executable, "-m", "depth2mesh"]
    return subprocess.run(
        [*command, "view", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.mark.slow  # an X server (Xvfb) and a real window
@pytest.mark.parametrize("name", ["framed_points.ply", "framed.glb"])
def test_screenshot_shows_the_scene_through_the_photo_camera(
    needs_xvfb: str, framed_result: Path, tmp_path: Path, name: str
) -> None:
    shot = tmp_path / "shot.png"
    result = _view(needs_xvfb, framed_result / name, "--screenshot", shot)
    assert result.returncode == 0, result.stderr
    image = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    assert image.shape == (768, 1024, 3)  # the photo's aspect, 1024 pixels wide
    assert image.std() > 20  # not blank
    # the scene fills the window's centre, where the photo's camera sees it: pixels 40..120 of
    # 160 horizontally and 20..100 of 120 vertically, scaled by 6.4
    inside = image[160:600, 280:740]
    outside = np.concatenate([image[:, :230].reshape(-1, 3), image[:, 790:].reshape(-1, 3)])
    assert inside.mean() > outside.mean() + 60
    # upright, as the photo: red on top, green below
    top, bottom = (
        image[170:370, 300:720].mean(axis=(0, 1)),
        image[400:590, 300:720].mean(axis=(0, 1)),
    )
    assert top[0] > top[1] + 60
    assert bottom[1] > bottom[0] + 60


@pytest.mark.slow  # an X server (Xvfb) and a real window
def test_screenshot_into_a_new_folder_prints_no_error(
    needs_xvfb: str, framed_result: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "new" / "dir" / "shot.png"
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}  # as under xvfb-run
    result = _view(needs_xvfb, framed_result / "framed_points.ply", "--screenshot", shot, env=env)
    assert result.returncode == 0, result.stderr
    assert shot.is_file()
    lines = (result.stdout + result.stderr).splitlines()
    assert not [line for line in lines if line.lower().lstrip().startswith("error")], lines
    assert f"screenshot written to {shot}" in result.stdout


def test_runtime_dir_made_private_when_missing_or_kept_when_usable(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    made = ensure_runtime_dir(environ)
    assert environ["XDG_RUNTIME_DIR"] == made
    assert Path(made).is_dir()
    assert (Path(made).stat().st_mode & 0o777) == 0o700
    assert ensure_runtime_dir(environ) == made  # usable: kept
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    environ = {"XDG_RUNTIME_DIR": str(loose)}
    assert ensure_runtime_dir(environ) != str(loose)  # not private: replaced


def test_view_without_a_display_says_what_to_do(framed_result: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        [sys.executable, "-m", "depth2mesh", "view", str(framed_result / "framed_points.ply")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "xvfb-run -a" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_view_missing_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "depth2mesh", "view", str(tmp_path / "nope.ply")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "does not exist" in result.stderr


@pytest.mark.slow  # an X server (Xvfb) and a real window
def test_convert_preview_opens_a_real_window(needs_xvfb: str, tmp_path: Path) -> None:
    if XDOTOOL is None:
        if os.environ.get("CI"):
            pytest.fail("xdotool is missing: apt-get install xdotool")
        pytest.skip("xdotool is missing")
    photo = tmp_path / "plane.png"
    Image.fromarray(np.full((48, 64, 3), 200, np.uint8)).save(photo)
    np.save(tmp_path / "d.npy", np.full((48, 64), 2.0, np.float32))
    script = (
        f"{sys.executable} -m depth2mesh convert {photo} -o {tmp_path / 'out'} "
        f"--depth {tmp_path / 'd.npy'} --preview & "
        "for i in $(seq 1 100); do "
        "  w=$(xdotool search --name 'depth2mesh: plane_points.ply' 2>/dev/null | head -n1); "
        '  if [ -n "$w" ]; then echo "window $w"; xdotool key --window "$w" q; break; fi; '
        "  sleep 0.3; "
        "done; wait"
    )
    started = time.monotonic()
    result = subprocess.run(
        [needs_xvfb, "-a", "bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "window " in result.stdout, result.stdout + result.stderr
    assert re.search(r"plane\.png: \d+ files in", result.stdout), result.stdout
    assert "converted, " not in result.stdout  # one photo: one line, no summary table
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 100


def test_sidecar_and_camera_lookup(framed_result: Path) -> None:
    assert sidecar_for(framed_result / "framed_points.ply") == framed_result / "framed.json"
    assert sidecar_for(framed_result / "framed_poisson.glb") == framed_result / "framed.json"
    camera = view_camera(framed_result / "framed.glb", long_side=320)
    assert (camera.width, camera.height) == (320, 240)
    assert camera.fx == pytest.approx(320 / (2 * np.tan(np.radians(30))))
    (framed_result / "framed.json").unlink()  # then the GLB's own camera gives the view
    from_glb = view_camera(framed_result / "framed.glb", long_side=320)
    assert (from_glb.width, from_glb.height) == (320, 240)
    assert from_glb.fy == pytest.approx(camera.fy, rel=1e-4)


def test_orbit_extrinsic() -> None:
    from depth2mesh.apps.preview import orbit_extrinsic

    np.testing.assert_allclose(orbit_extrinsic(np.array([0.0, 0.0, -3.0])), np.diag([1, -1, -1, 1]))
    view = orbit_extrinsic(np.array([0.0, 0.0, -3.0]), 90.0, 0.0)
    # a quarter turn to the right around the pivot: the camera sits at (3, 0, -3), and the
    # pivot is still straight ahead of it (camera frame +Z), 3 m away
    pose = np.linalg.inv(view)
    np.testing.assert_allclose(pose[:3, 3], [3.0, 0.0, -3.0], atol=1e-12)
    pivot_in_camera = view @ np.array([0.0, 0.0, -3.0, 1.0])
    np.testing.assert_allclose(pivot_in_camera[:3], [0.0, 0.0, 3.0], atol=1e-12)
