"""``--depth-at``: pinned depths hold exactly in the written meshes; bad pins get one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
import trimesh
from helpers.glb import read_cloud
from PIL import Image
from typer.testing import CliRunner

from depth2mesh.apps.cli import app
from depth2mesh.errors import ParameterError
from depth2mesh.geometry.camera import Intrinsics
from depth2mesh.geometry.scale import (
    DEFAULT_FAR,
    DEFAULT_NEAR,
    PIN_FAR_FACTOR,
    DepthPin,
    disparity_to_depth,
    disparity_to_depth_pinned,
    grid_position,
    metric_depth_pinned,
    parse_depth_pin,
    sample_on_triangles,
)
from depth2mesh.pipeline.convert import CameraOptions, ConvertOptions, convert_photo, grid_size

HEIGHT, WIDTH = 64, 96
K = CameraOptions(fx=80.0, fy=90.0, cx=47.0, cy=30.5)
CAMERA = Intrinsics(fx=80.0, fy=90.0, cx=47.0, cy=30.5, width=WIDTH, height=HEIGHT)
NYU = CameraOptions(fx=518.8579, fy=519.4696, cx=325.5824, cy=253.7362)


def true_depth() -> np.ndarray:
    """(64, 96) float64 metres: a tilted plane with a bump, 1.5 to about 5 m."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    return 1.5 + 0.03 * u + 0.02 * v + 0.4 * np.exp(-((u - 60) ** 2 + (v - 20) ** 2) / 80.0)


def disparity_of(depth: np.ndarray) -> np.ndarray:
    """A relative disparity affine in inverse depth: ``1 / z = (d + 0.1) / 3``."""
    return (3.0 / depth - 0.1).astype(np.float32)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([u * 255 // 95, v * 255 // 63, (u + v) * 255 // 158], axis=2).astype(np.uint8)
    path = tmp_path / "scene.png"
    Image.fromarray(rgb).save(path)
    return path


def save(tmp_path: Path, values: np.ndarray, name: str = "d.npy") -> Path:
    path = tmp_path / name
    np.save(path, values.astype(np.float32))
    return path


def glb_depth_on_rays(glb: Path, pixels: list[tuple[float, float]]) -> np.ndarray:
    """The written grid mesh's depth along the rays through photo pixels (Open3D ray casting).

    The GLB is read by trimesh (node transforms applied: a quantised GLB's dequantisation);
    its triangles are hit by Open3D's ray caster. The rays leave
    the camera at the origin in glTF axes, ``(x, -y, -z)`` of the camera frame, scaled so that
    the hit's ray parameter is the depth along +z.
    """
    mesh = glb_mesh(glb)
    caster = o3d.t.geometry.RaycastingScene()
    caster.add_triangles(
        o3d.core.Tensor(np.asarray(mesh.vertices, np.float32)),
        o3d.core.Tensor(np.asarray(mesh.faces, np.uint32)),
    )
    rays = [
        [0, 0, 0, (u - CAMERA.cx) / CAMERA.fx, -(v - CAMERA.cy) / CAMERA.fy, -1.0]
        for u, v in pixels
    ]
    hits = caster.cast_rays(o3d.core.Tensor(np.array(rays, np.float32)))
    return np.asarray(hits["t_hit"].numpy(), np.float64)


def glb_mesh(glb: Path) -> trimesh.Trimesh:
    """The GLB's mesh as trimesh reads it: every primitive, node transforms applied."""
    mesh: trimesh.Trimesh = trimesh.load(glb, force="scene", process=False).to_geometry()
    return mesh


def glb_vertex_depth(glb: Path) -> np.ndarray:
    """The grid mesh's vertex depths (metres along +z), in the file's order."""
    return -np.asarray(glb_mesh(glb).vertices, np.float64)[:, 2]


# the pins' arithmetic is checked exactly in float32 GLBs (quantised ones: see the last test)
FLOAT32 = {"glb_compression": "none"}


# --------------------------------------------------------------------------- the pure functions


def test_parse_depth_pin() -> None:
    assert parse_depth_pin("320,240=2.5") == DepthPin(320.0, 240.0, 2.5)
    assert parse_depth_pin(" 320.5, 240 = 2.5 ") == DepthPin(320.5, 240.0, 2.5)
    assert str(DepthPin(320.5, 240.0, 2.5)) == "320.5,240=2.5"


def test_sample_on_triangles_follows_the_grid_mesh() -> None:
    # any affine function is reproduced exactly, whichever triangle the point falls in
    v, u = np.mgrid[0:5, 0:7].astype(np.float64)
    plane = 2.0 + 0.5 * u - 0.25 * v
    for position in [(0.0, 0.0), (6.0, 4.0), (2.3, 1.6), (2.8, 1.9), (5.99, 0.01)]:
        assert sample_on_triangles(plane, *position) == pytest.approx(
            2.0 + 0.5 * position[0] - 0.25 * position[1], abs=1e-12
        )
    # the cell's diagonal runs from top-right to bottom-left, as grid_faces splits it
    corner = np.zeros((2, 2))
    corner[1, 1] = 1.0  # only the bottom-right vertex is 1: triangle 0 does not see it
    assert sample_on_triangles(corner, 0.4, 0.4) == 0.0
    assert sample_on_triangles(corner, 0.6, 0.6) == pytest.approx(0.2)
    assert sample_on_triangles(corner, 1.0, 1.0) == 1.0
    corner[0, 0] = np.nan  # NaN in the triangle the point falls in, not in the other
    assert math.isnan(sample_on_triangles(corner, 0.2, 0.2))
    assert sample_on_triangles(corner, 0.7, 0.6) == pytest.approx(0.3)


def test_grid_position_is_the_intrinsics_resizing() -> None:
    # a 3D point projects to (u, v) on the photo and to grid_position(u, v) on the grid
    grid = CAMERA.resized(width=40, height=27)
    point = np.array([0.3, -0.2, 2.0])
    u, v = CAMERA.fx * point[0] / point[2] + CAMERA.cx, CAMERA.fy * point[1] / point[2] + CAMERA.cy
    expected = (grid.fx * point[0] / point[2] + grid.cx, grid.fy * point[1] / point[2] + grid.cy)
    assert grid_position(u, v, (HEIGHT, WIDTH), (27, 40)) == pytest.approx(expected, abs=1e-12)


def test_two_pins_recover_an_affine_disparity_everywhere() -> None:
    depth = true_depth()
    pins = [DepthPin(10.0, 50.0, float(depth[50, 10])), DepthPin(90.0, 3.0, float(depth[3, 90]))]
    pinned, fit = disparity_to_depth_pinned(disparity_of(depth), pins, photo_size=(64, 96))
    np.testing.assert_allclose(pinned, depth, rtol=1e-6)  # 1 / z = (d + 0.1) / 3 found
    assert (fit.scale, fit.shift) == pytest.approx((1 / 3, 0.1 / 3), rel=1e-5)
    assert fit.fit == "scale and shift"
    assert fit.far == PIN_FAR_FACTOR * pins[1].metres
    assert fit.readings == pytest.approx([disparity_of(depth)[50, 10], disparity_of(depth)[3, 90]])


def test_one_pin_keeps_the_near_far_shape() -> None:
    depth = true_depth()
    disparity = disparity_of(depth)
    pin = DepthPin(30.0, 40.0, 7.0)
    pinned, fit = disparity_to_depth_pinned(disparity, [pin], photo_size=(64, 96))
    base = disparity_to_depth(disparity)
    k = 7.0 / base[40, 30]
    np.testing.assert_allclose(pinned, base * k, rtol=1e-6)
    assert pinned[40, 30] == pytest.approx(7.0, rel=1e-7)
    assert (fit.near, fit.far) == pytest.approx((DEFAULT_NEAR * k, DEFAULT_FAR * k))
    # between the percentiles the mapping is 1 / z = scale * d + shift
    middle = (pinned > fit.near * 1.001) & (pinned < fit.far * 0.999)
    np.testing.assert_allclose(1 / pinned[middle], fit.scale * disparity[middle] + fit.shift, 1e-5)


def test_metric_depth_one_pin_scales_two_pins_also_shift() -> None:
    depth = true_depth()
    depth[:5, :5] = np.nan  # unmeasured: stays so
    pins = [DepthPin(10.0, 50.0, float(depth[50, 10])), DepthPin(90.0, 3.0, float(depth[3, 90]))]
    scaled, fit = metric_depth_pinned(1.3 * depth, pins[:1], photo_size=(64, 96))
    np.testing.assert_allclose(scaled, depth, rtol=1e-6)
    assert (fit.source, fit.fit, fit.shift) == ("inverse depth", "scale", 0.0)
    assert fit.scale == pytest.approx(1.3)
    warped = 1.0 / (0.8 / depth + 0.05)
    unwarped, fit = metric_depth_pinned(warped, pins, photo_size=(64, 96))
    np.testing.assert_allclose(unwarped, depth, rtol=1e-6)
    assert (fit.scale, fit.shift) == pytest.approx((1 / 0.8, -0.05 / 0.8))


def test_a_pin_beside_a_clamped_pixel_is_refused() -> None:
    # sky (0) beside the farther pin, which is read between pixels: the line 1/z = a d + b
    # puts the sky beyond infinity; clamped to the far plane, the pin could not hold
    disparity = np.tile(np.linspace(2.0, 1.0, 8, dtype=np.float32), (6, 1))
    disparity[:, 7] = 0.0
    pins = [DepthPin(0.0, 2.0, 1.0), DepthPin(6.5, 2.0, 10.0)]
    with pytest.raises(ParameterError, match="beyond the far plane") as caught:
        disparity_to_depth_pinned(disparity, pins, photo_size=(6, 8))
    assert caught.value.parameter == "depth_at"


# --------------------------------------------------------------------------- through the files


def test_two_pins_hold_in_the_glb_and_ply(tmp_path: Path, photo: Path) -> None:
    depth = true_depth()
    pins = (DepthPin(10.0, 50.0, float(depth[50, 10])), DepthPin(90.0, 3.0, float(depth[3, 90])))
    options = ConvertOptions(camera=K, depth_kind="disparity", depth_at=pins, grid=WIDTH, **FLOAT32)
    result = convert_photo(photo, tmp_path / "out", depth_file=save(tmp_path, disparity_of(depth)),
                           options=options)  # fmt: skip
    # the grid is the photo: vertex i is pixel i, and every vertex is at the true depth
    np.testing.assert_allclose(glb_vertex_depth(result.paths["glb"]), depth.ravel(), rtol=2e-6)
    points, _, _ = read_cloud(result.paths["points"])
    cloud = -points[:, 2].reshape(HEIGHT, WIDTH)
    for pin in pins:
        assert cloud[int(pin.v), int(pin.u)] == pytest.approx(pin.metres, rel=1e-6)
    hits = glb_depth_on_rays(result.paths["glb"], [(p.u, p.v) for p in pins])
    np.testing.assert_allclose(hits, [p.metres for p in pins], rtol=1e-5)
    sidecar = json.loads(result.paths["sidecar"].read_text())["depth"]
    assert "near_m" not in sidecar
    recorded = sidecar["depth_at"]
    assert [(p["u"], p["v"], p["metres"]) for p in recorded["pins"]] == [
        (p.u, p.v, p.metres) for p in pins
    ]
    disparity = disparity_of(depth)
    assert [p["disparity"] for p in recorded["pins"]] == pytest.approx(
        [disparity[50, 10], disparity[3, 90]]
    )
    assert recorded["fit"] == "scale and shift"
    assert (recorded["scale"], recorded["shift"]) == pytest.approx((1 / 3, 0.1 / 3), rel=1e-5)


@pytest.mark.parametrize("count", [1, 2])
def test_fractional_pins_on_a_smaller_grid_lie_on_the_mesh(
    tmp_path: Path, photo: Path, count: int
) -> None:
    depth = true_depth()
    pins = (DepthPin(12.3, 47.6, 2.2), DepthPin(81.7, 6.2, 5.5))[:count]
    options = ConvertOptions(camera=K, depth_kind="disparity", depth_at=pins, grid=40, **FLOAT32)
    result = convert_photo(photo, tmp_path / "out", depth_file=save(tmp_path, disparity_of(depth)),
                           options=options)  # fmt: skip
    assert (result.counts["grid_rows"], result.counts["grid_cols"]) == grid_size(64, 96, 40)
    hits = glb_depth_on_rays(result.paths["glb"], [(p.u, p.v) for p in pins])
    np.testing.assert_allclose(hits, [p.metres for p in pins], rtol=1e-5)


def test_metric_depth_file_with_pins(tmp_path: Path, photo: Path) -> None:
    depth = true_depth()
    pins = (DepthPin(10.0, 50.0, float(depth[50, 10])), DepthPin(90.0, 3.0, float(depth[3, 90])))
    warped = save(tmp_path, 1.0 / (0.8 / depth + 0.05))
    options = ConvertOptions(camera=K, depth_kind="metric", depth_at=pins, grid=WIDTH, **FLOAT32)
    result = convert_photo(photo, tmp_path / "out", depth_file=warped, options=options)
    np.testing.assert_allclose(glb_vertex_depth(result.paths["glb"]), depth.ravel(), rtol=2e-6)
    recorded = json.loads(result.paths["sidecar"].read_text())["depth"]["depth_at"]
    assert recorded["pins"][0]["inverse_depth_per_m"] == pytest.approx(0.8 / depth[50, 10] + 0.05)


def test_pins_on_real_midas_output_hold_within_a_thousandth(
    tmp_path: Path, shared_dir: Path
) -> None:
    # the check on NYU frame 00065: the near and far pins of benchmarks/pins.py
    folder = shared_dir / "real_midas"
    gt = np.load(folder / "depth_00065.npy").astype(np.float64)
    pins = tuple(DepthPin(u, v, float(gt[int(v), int(u)])) for u, v in [(67, 302), (589, 66)])
    assert all(0.1 < pin.metres < 10 for pin in pins)
    options = ConvertOptions(camera=NYU, depth_kind="disparity", depth_at=pins, grid=640)
    result = convert_photo(
        folder / "rgb_00065.png",
        tmp_path,
        depth_file=folder / "midas_small_outputs" / "disparity_00065.npy",
        options=options,
    )
    # the default, quantised GLB (its positions within 1e-4 of the depth range)
    x, y, z = (np.asarray(glb_mesh(result.paths["glb"]).vertices, np.float64) * [1, -1, -1]).T
    u = np.rint(NYU.fx * x / z + NYU.cx)  # type: ignore[operator]
    v = np.rint(NYU.fy * y / z + NYU.cy)  # type: ignore[operator]
    for pin in pins:  # the grid is the photo (640x480): the pixel's own vertex (once per
        # primitive that shares it)
        at = np.nonzero((u == pin.u) & (v == pin.v))[0]
        assert at.size >= 1
        assert z[at] == pytest.approx([pin.metres] * at.size, rel=1e-3)


# --------------------------------------------------------------------------- bad pins, one line


def sky_and_rows(tmp_path: Path, photo: Path) -> list[str]:
    """A disparity that changes down the rows only, with sky in the first 10 columns."""
    disparity = np.tile(np.linspace(3.0, 1.0, HEIGHT, dtype=np.float32)[:, None], (1, WIDTH))
    disparity[:, :10] = 0.0
    return [str(photo), "--depth", str(save(tmp_path, disparity)), "--depth-kind", "disparity"]


def metric_with_hole(tmp_path: Path, photo: Path) -> list[str]:
    depth = true_depth()
    depth[20:30, 20:30] = 0.0  # unmeasured
    return [str(photo), "--depth", str(save(tmp_path, depth)), "--depth-kind", "metric"]


BAD_PINS = [
    ("malformed", ["1,2"], "--depth-at must be U,V=METRES"),
    ("not numbers", ["a,b=3"], "--depth-at must be U,V=METRES"),
    ("three numbers", ["1,2,3=4"], "--depth-at must be U,V=METRES"),
    ("three pins", ["1,2=3", "4,5=6", "7,8=9"], "--depth-at takes one pin"),
    ("zero metres", ["20,20=0"], "the depth must be a positive number of metres"),
    ("negative metres", ["20,20=-2"], "the depth must be a positive number of metres"),
    ("outside, right", ["96,20=2"], "is outside the photo, whose columns are 0..95"),
    ("outside, above", ["20,-0.5=2"], "is outside the photo"),
    ("the same pixel", ["20,20=2", "20,20=3"], "pin the same pixel"),
    ("far given less", ["30,5=4", "30,60=2"], "contradict the depth map"),
    ("equal depths", ["30,5=2", "30,60=2"], "contradict the depth map"),
    ("same disparity", ["20,30=2", "80,30=4"], "both pixels have the same disparity"),
    ("on sky", ["5,30=40"], "the disparity there is 0 (sky"),
    ("sky as second pin", ["30,30=2", "5,30=40"], "the disparity there is 0 (sky"),
]


@pytest.mark.parametrize(("name", "pins", "text"), BAD_PINS, ids=[case[0] for case in BAD_PINS])
def test_bad_pins_get_one_line_and_write_nothing(
    tmp_path: Path, photo: Path, name: str, pins: list[str], text: str
) -> None:
    out = tmp_path / "out"
    pin_args = [part for pin in pins for part in ("--depth-at", pin)]
    arguments = ["convert", *sky_and_rows(tmp_path, photo), "-o", str(out), *pin_args]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "--depth-at" in lines[0]
    assert text in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        (["--near", "2"], "--depth-at sets the depth scale itself: leave out --near and --far"),
        (["--far", "20"], "--depth-at sets the depth scale itself: leave out --near and --far"),
    ],
)
def test_pins_with_near_or_far_are_a_usage_error(
    tmp_path: Path, photo: Path, extra: list[str], text: str
) -> None:
    out = tmp_path / "out"
    arguments = ["convert", *sky_and_rows(tmp_path, photo), "-o", str(out), "--depth-at", "30,30=2"]
    result = CliRunner().invoke(app, [*arguments, *extra])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {text}"
    assert not out.exists()


def test_pins_go_with_one_photo(tmp_path: Path, photo: Path) -> None:
    out = tmp_path / "out"
    other = tmp_path / "other.png"
    other.write_bytes(photo.read_bytes())
    arguments = ["convert", str(photo), str(other), "-o", str(out), "--depth-at", "30,30=2"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --depth-at goes with exactly one photo, got 2"
    assert not out.exists()


def test_a_pin_on_a_hole_of_a_metric_file(tmp_path: Path, photo: Path) -> None:
    out = tmp_path / "out"
    arguments = ["convert", *metric_with_hole(tmp_path, photo), "-o", str(out)]
    result = CliRunner().invoke(app, [*arguments, "--depth-at", "25,25=2"])
    assert result.exit_code == 2
    assert "--depth-at 25,25=2: the depth there is not measured" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not any(out.iterdir())
    assert CliRunner().invoke(app, [*arguments, "--depth-at", "50,50=2"]).exit_code == 0


def test_library_error_names_depth_at() -> None:
    with pytest.raises(ParameterError) as caught:
        ConvertOptions(depth_at=(DepthPin(1, 2, 3),) * 3).check()
    assert caught.value.parameter == "depth_at"
    assert str(caught.value).startswith("depth_at takes one pin")
    with pytest.raises(ParameterError, match=r"^depth_at sets the depth scale itself"):
        ConvertOptions(depth_at=(DepthPin(1, 2, 3),), near=0.5).check()
