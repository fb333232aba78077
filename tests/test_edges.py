"""Occlusion cuts (depth2mesh.geometry.edges): ramps of a network-like depth are torn at photo
edges."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.cli import run_cli
from helpers.glb import glb_arrays

from depth2mesh.errors import ParameterError
from depth2mesh.exchange.photo import Photo
from depth2mesh.geometry.camera import Intrinsics
from depth2mesh.geometry.edges import (
    DEFAULT_STRONG_RATIO,
    depth_ridges,
    occlusion_cuts,
    photo_edges,
    settle_ramps,
    step_strength,
)
from depth2mesh.geometry.points import depth_edge_faces
from depth2mesh.pipeline.convert import ConvertOptions, DepthMaps, cloud_arrays, geometry_stage


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A slanted wall (2 m to 3 m, left to right) with a near box (1.2 m) in front of it.

    Returns exact depth (240, 320) metres and the photo: grey wall, red box, both shaded.
    """
    height, width = 240, 320
    u = np.arange(width, dtype=np.float64)[None, :]
    v = np.arange(height, dtype=np.float64)[:, None]
    inverse = 1 / 2.0 + (1 / 3.0 - 1 / 2.0) * u / (width - 1) + 0 * v  # a plane: linear in 1/z
    depth = 1.0 / inverse
    box = (v >= 70) & (v < 170) & (u >= 110) & (u < 220)
    depth = np.where(box, 1.2, depth)
    shade = (20 * np.sin(u / 7.0) * np.cos(v / 9.0)).astype(np.float64)
    rgb = np.empty((height, width, 3), np.float64)
    rgb[...] = 140 + shade[..., None]
    rgb[box] = np.array([200.0, 40.0, 30.0]) + shade[box][:, None] * 0.5
    return depth.astype(np.float32), np.clip(rgb, 0, 255).astype(np.uint8)


def _network_like(
    depth: np.ndarray, size: tuple[int, int] = (64, 48), sigma: float = 1.5
) -> np.ndarray:
    """What a 64-pixel network would give: low-resolution disparity, blurred, upsampled 5x."""
    height, width = depth.shape
    small = cv2.resize(1.0 / depth, size, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma)
    return (1.0 / cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)).astype(
        np.float32
    )


def _true_edges(depth: np.ndarray) -> np.ndarray:
    z = depth.astype(np.float64)
    edges = np.zeros(z.shape, bool)
    edges[:, :-1] |= np.maximum(z[:, :-1] / z[:, 1:], z[:, 1:] / z[:, :-1]) > 1.25
    edges[:, 1:] |= np.maximum(z[:, :-1] / z[:, 1:], z[:, 1:] / z[:, :-1]) > 1.25
    edges[:-1, :] |= np.maximum(z[:-1] / z[1:], z[1:] / z[:-1]) > 1.25
    edges[1:, :] |= np.maximum(z[:-1] / z[1:], z[1:] / z[:-1]) > 1.25
    return edges


def _kept_cells(depth: np.ndarray, cuts: np.ndarray | None) -> np.ndarray:
    keep = depth_edge_faces(depth, threshold=1.1)
    if cuts is not None:
        keep &= ~cuts[:-1, :-1, None]
    return np.asarray(keep.any(axis=2))


def _near(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def test_blurred_network_depth_is_torn_at_the_true_edges_and_kept_elsewhere() -> None:
    exact, rgb = _scene()
    blurred = _network_like(exact)
    edges = _true_edges(exact)
    radius = 0.014 * max(exact.shape)
    # today's rule alone bridges the ramp: the answer is not in the input already
    torn_before = np.zeros(exact.shape, bool)
    torn_before[:-1, :-1] = ~_kept_cells(blurred, None)
    torn_before = _near(torn_before, 2)
    assert torn_before[edges].mean() < 0.5
    cuts = occlusion_cuts(blurred, rgb, radius=radius)
    kept = _kept_cells(blurred, cuts)
    torn = np.zeros(exact.shape, bool)
    torn[:-1, :-1] = ~kept
    inner = edges.copy()
    inner[:3] = inner[-3:] = False
    inner[:, :3] = inner[:, -3:] = False
    assert _near(torn, 2)[inner].mean() >= 0.95  # the box's outline is torn
    far_from_edges = ~_near(edges, 4)[:-1, :-1]
    assert kept[far_from_edges].mean() >= 0.995  # the wall and the box's face are kept


def test_exact_depth_is_torn_at_every_jump_and_nowhere_else() -> None:
    exact, rgb = _scene()
    cuts = occlusion_cuts(exact, rgb, radius=0.014 * max(exact.shape))
    kept = _kept_cells(exact, cuts)
    assert not kept[_true_edges(exact)[:-1, :-1] & _true_edges(exact)[1:, 1:]].any()
    assert kept[~_near(_true_edges(exact), 2)[:-1, :-1]].all()


def test_step_strength_is_zero_on_a_plane_and_the_step_on_a_ramp() -> None:
    u = np.arange(200, dtype=np.float64)[None, :].repeat(50, axis=0)
    plane = 1.0 / (0.5 - 0.2 * u / 199)  # slanted plane: depth 2 m to 3.3 m
    assert np.abs(step_strength(plane, radius=8)[:, 30:-30]).max() < 0.01
    ramp = np.exp(np.log(2.0) * np.clip((u - 100) / 8 + 0.5, 0, 1))  # 1 m to 2 m over 8 px
    strength = step_strength(ramp, radius=8)
    assert strength[25, 100] == pytest.approx(math.log(2.0), rel=0.05)
    assert np.abs(strength[:, :70]).max() < 0.01


def test_depth_ridges_find_the_middle_of_a_ramp() -> None:
    u = np.arange(120, dtype=np.float64)[None, :].repeat(20, axis=0)
    ramp = np.exp(np.log(2.0) * np.clip((u - 60) / 10 + 0.5, 0, 1))
    ridge_cols = np.nonzero(depth_ridges(ramp)[10])[0]
    middle = ridge_cols[(ridge_cols > 40) & (ridge_cols < 80)]
    assert middle.size
    assert np.all(np.abs(middle - 60) <= 6)


def test_photo_edges_are_one_pixel_lines_at_colour_changes() -> None:
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[:, 20:] = 200
    cols = np.nonzero(photo_edges(rgb).any(axis=0))[0]
    assert set(cols) <= {19, 20}
    with pytest.raises(ValueError, match="uint8"):
        photo_edges(rgb.astype(np.float32))  # type: ignore[arg-type]


def test_holes_make_no_step() -> None:
    depth = np.full((60, 60), 2.0, np.float32)
    depth[20:40, 20:40] = np.nan
    rgb = np.zeros((60, 60, 3), np.uint8)
    rgb[20:40, 20:40] = 255
    assert not occlusion_cuts(depth, rgb, radius=5).any()


@pytest.mark.parametrize(
    ("field", "value"),
    [("edges", "maybe"), ("edge_radius", 0.0), ("edge_radius", 0.5), ("edge_step", 1.0),
     ("edge_strong", float("nan"))],
)  # fmt: skip
def test_edge_options_are_checked_by_name(field: str, value: object) -> None:
    with pytest.raises(ParameterError, match=field):
        ConvertOptions(**{field: value}).check()  # type: ignore[arg-type]


def _floating(depth: np.ndarray, exact: np.ndarray, radius: int) -> np.ndarray:
    """Pixels whose depth lies between the true near and far side there, 10 % from both."""
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    low = cv2.erode(exact, kernel)
    high = cv2.dilate(exact, kernel)
    return np.asarray((depth > 1.1 * low) & (depth * 1.1 < high))


def test_blurred_network_depth_leaves_no_point_floating_between_the_surfaces() -> None:
    exact, rgb = _scene()
    # MiDaS small's scale at a 640 grid: 256 network pixels upsampled 2.5x, a 1-pixel blur
    blurred = _network_like(exact, (128, 96), 1.0)
    radius = 0.014 * max(exact.shape)
    cuts = occlusion_cuts(blurred, rgb, radius=radius)
    settled, moved = settle_ramps(blurred, cuts, radius=radius, step_ratio=DEFAULT_STRONG_RATIO)
    before = _floating(blurred, exact, 9).sum()
    after = _floating(settled, exact, 9).sum()
    assert before > 1000  # the ramp around the box: a band of flying pixels
    assert after <= 0.02 * before
    np.testing.assert_array_equal(settled[~moved], blurred[~moved])  # the rest is untouched
    # a moved pixel lands on the true surface of one side or the other, within 10 %
    kernel = np.ones((19, 19), np.uint8)
    low, high = cv2.erode(exact, kernel), cv2.dilate(exact, kernel)
    on_a_side = (np.abs(np.log(settled / low)) < 0.1) | (np.abs(np.log(settled / high)) < 0.1)
    assert on_a_side[moved].mean() >= 0.95


def test_exact_depth_keeps_every_point_where_it_is() -> None:
    exact, rgb = _scene()
    radius = 0.014 * max(exact.shape)
    cuts = occlusion_cuts(exact, rgb, radius=radius)
    assert cuts.any()
    for ratio in (1.03, DEFAULT_STRONG_RATIO):
        settled, moved = settle_ramps(exact, cuts, radius=radius, step_ratio=ratio)
        assert not moved.any()
        np.testing.assert_array_equal(settled, exact)


def test_the_cloud_and_the_poisson_input_are_the_settled_points() -> None:
    exact, rgb = _scene()
    blurred = _network_like(exact, (128, 96), 1.0)
    height, width = exact.shape
    photo = Photo(path=Path("scene.png"), rgb=rgb)
    camera = Intrinsics(300.0, 300.0, (width - 1) / 2, (height - 1) / 2, width, height)
    maps = DepthMaps(disparity=1 / blurred, picture=1 / blurred)  # near 1.2 m, far 3 m
    options = {"near": float(blurred.min()), "far": float(blurred.max())}
    on = geometry_stage(photo, camera, maps, ConvertOptions(**options))  # type: ignore[arg-type]
    off = geometry_stage(photo, camera, maps, ConvertOptions(edges="off", **options))  # type: ignore[arg-type]
    assert on.moved is not None  # "on", the default
    assert on.moved.any()
    assert off.moved is None
    points, normals, colors = cloud_arrays(on)
    assert points.shape == (height * width, 3)  # nothing left out: moved onto a surface
    np.testing.assert_allclose(points[:, 2], on.depth.ravel(), rtol=1e-6)
    changed = np.abs(on.depth - off.depth) > 1e-6
    np.testing.assert_array_equal(changed, on.moved)  # only the moved ones
    off_points, _, _ = cloud_arrays(off)
    np.testing.assert_array_equal(off_points[:, 2], off.depth.ravel())
    np.testing.assert_array_equal(colors, rgb.reshape(-1, 3))
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)


def test_settle_ramps_checks_its_inputs() -> None:
    depth = np.ones((10, 10), np.float32)
    with pytest.raises(ValueError, match="one size"):
        settle_ramps(depth, np.zeros((5, 5), bool), radius=2)
    with pytest.raises(ValueError, match="margin"):
        settle_ramps(depth, np.zeros((10, 10), bool), radius=2, margin=0.5)


def _tears(glb: Path, exact: np.ndarray) -> tuple[float, float]:
    """Tear recall and smooth kept of a GLB of ``exact``'s scene (definitions of issue 14).

    The share of the true occlusion-edge pixels with a cell without a triangle within 2
    pixels, and the share of the cells 4 pixels or more from them that keep a triangle. The
    grid is the photo's size and the camera fx = fy = 300 at the centre: each vertex is read
    back to its pixel; a triangle's smallest column and row are its cell's top-left.
    """
    height, width = exact.shape
    arrays = glb_arrays(glb)
    x, y, z = arrays["POSITION"].astype(np.float64).T  # glTF axes: (x, -y, -z)
    u = np.rint(300.0 * x / -z + (width - 1) / 2).astype(int)
    v = np.rint(300.0 * -y / -z + (height - 1) / 2).astype(int)
    faces = arrays["indices"]
    kept = np.zeros((height - 1, width - 1), bool)
    kept[v[faces].min(axis=1), u[faces].min(axis=1)] = True
    torn = np.zeros((height, width), bool)
    torn[:-1, :-1] = ~kept
    edges = _true_edges(exact)
    inner = edges.copy()
    inner[:3] = inner[-3:] = False
    inner[:, :3] = inner[:, -3:] = False
    far_from_edges = ~_near(edges, 4)[:-1, :-1]
    return float(_near(torn, 2)[inner].mean()), float(kept[far_from_edges].mean())


@pytest.mark.slow  # seconds: CLI processes or a model load (the fast loop's rule)
def test_the_default_tears_a_network_like_depth_and_edges_off_does_not(tmp_path: Path) -> None:
    exact, rgb = _scene()
    photo = tmp_path / "scene.png"
    cv2.imwrite(str(photo), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    depth = tmp_path / "depth.npy"
    np.save(depth, _network_like(exact))  # 64 pixels wide, blurred: a ramp around the box
    camera = ("--fx", "300", "--fy", "300", "--cx", "159.5", "--cy", "119.5")
    for folder, extra in (("default", ()), ("off", ("--edges", "off"))):
        done = run_cli(  # the seen grid alone: no background layer in its tears
            "convert", photo, "-o", tmp_path / folder, "--depth", depth, *camera, *extra,
            "--inpaint", "off",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert ConvertOptions().edges == "on"  # the page, Ray and Python callers: the same default
    sidecar = json.loads((tmp_path / "default" / "scene.json").read_text())
    assert sidecar["edges"]["mode"] == "on"
    recall, smooth_kept = _tears(tmp_path / "default" / "scene.glb", exact)
    assert recall >= 0.95
    assert smooth_kept >= 0.995
    recall, smooth_kept = _tears(tmp_path / "off" / "scene.glb", exact)
    assert recall < 0.5  # rubber sheets from the box to the wall
    assert smooth_kept >= 0.995


def test_settled_pixels_stay_within_the_surfaces_around_them() -> None:
    """A ramp up to a narrow far strip (a metric model at its maximum, 20 m) and back down.

    Carried on in a straight line, the far side's surface would overshoot the strip's 20 m
    (29.8 m before sides were kept within their samples); settled pixels must not leave the
    depths around them.
    """
    x = np.arange(120, dtype=np.float64)
    profile = np.full_like(x, 2.0)
    profile = np.where(x >= 40, 2.0 * 10.0 ** ((x - 40) / 20.0), profile)  # 2 -> 20 m ramp
    profile = np.where(x >= 60, 20.0 - 0.6 * (x - 60), profile)  # the strip, then nearer
    profile = np.where(x >= 80, 8.0, profile)
    depth = np.tile(profile, (40, 1)).astype(np.float32)
    cuts = np.zeros(depth.shape, dtype=bool)
    cuts[:, 50] = True
    settled, floating = settle_ramps(depth, cuts, radius=12.0)
    assert floating.sum() > 0  # the ramp pixels were moved...
    assert float(settled.max()) <= float(depth.max())  # ...never beyond the farthest depth
    assert float(settled.min()) >= float(depth.min())


def test_a_disparity_file_is_settled_like_a_network_and_a_metric_file_is_not(
    tmp_path: Path,
) -> None:
    """A disparity file is a network's output (its ramps float); a metric file is a sensor's."""
    from depth2mesh.pipeline.convert import convert_photo

    exact, rgb = _scene()
    photo = tmp_path / "scene.png"
    cv2.imwrite(str(photo), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    blurred = _network_like(exact)
    files = {"disparity": 1.0 / blurred, "metric": blurred}
    moved = {}
    for kind, array in files.items():
        path = tmp_path / f"{kind}.npy"
        np.save(path, array.astype(np.float32))
        options = ConvertOptions(depth_kind=kind, grid=320)  # type: ignore[arg-type]
        result = convert_photo(photo, tmp_path / kind, options=options, depth_file=path)
        sidecar = json.loads(result.paths["sidecar"].read_text())
        moved[kind] = sidecar["counts"]["ramp_points_moved"]
    assert moved["disparity"] > 100  # the ramp around the box, put onto its two surfaces
    assert moved["metric"] == 0
