from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from depth2mesh.geometry.camera import Intrinsics
from depth2mesh.geometry.points import (
    camera_facing_normals,
    depth_edge_faces,
    depth_to_points,
    grid_faces,
    linear_to_srgb,
    srgb_to_linear,
)
from depth2mesh.geometry.scale import disparity_to_depth, far_mask

K = Intrinsics(fx=400.0, fy=500.0, cx=15.5, cy=11.5, width=32, height=24)


def _to_gltf(points: NDArray[np.float32]) -> NDArray[np.float64]:
    flipped: NDArray[np.float64] = points.astype(np.float64) * np.array([1.0, -1.0, -1.0])
    return flipped


def _face_normals(vertices: NDArray[np.float64], faces: NDArray[np.int64]) -> NDArray[np.float64]:
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return np.cross(b - a, c - a)


# --------------------------------------------------------------------------- back-projection


def test_fronto_parallel_plane_back_projects_exactly() -> None:
    depth = np.full((24, 32), 2.0, dtype=np.float32)
    points = depth_to_points(depth, K)
    assert points.shape == (24, 32, 3)
    assert points.dtype == np.float32
    assert np.all(points[..., 2] == 2.0)
    # Hand-computed: X = (u - cx) * Z / fx, Y = (v - cy) * Z / fy.
    assert points[0, 31, 0] == pytest.approx((31 - 15.5) * 2 / 400, rel=1e-7)  # 0.0775
    assert points[0, 31, 1] == pytest.approx((0 - 11.5) * 2 / 500, rel=1e-7)  # -0.046
    assert points[23, 0, 0] == pytest.approx(-0.0775, rel=1e-7)
    assert points[23, 0, 1] == pytest.approx(0.046, rel=1e-7)
    # A pixel at the principal point would be on the optical axis; neighbours straddle it.
    assert points[11, 15, 0] == pytest.approx(-points[11, 16, 0], rel=1e-7)
    # Projecting back gives the pixel grid.
    u = K.fx * points[..., 0] / points[..., 2] + K.cx
    v = K.fy * points[..., 1] / points[..., 2] + K.cy
    np.testing.assert_allclose(u, np.broadcast_to(np.arange(32), (24, 32)), atol=1e-5)
    np.testing.assert_allclose(v, np.broadcast_to(np.arange(24)[:, None], (24, 32)), atol=1e-5)


def test_depth_shape_must_match_intrinsics() -> None:
    with pytest.raises(ValueError, match=r"\(24, 32\).*\(32, 24\)"):
        depth_to_points(np.ones((32, 24)), K)


# --------------------------------------------------------------------------- faces and edges


def test_grid_faces_layout() -> None:
    # Vertices 0 1 2 / 3 4 5: cell (0, 0) gives (0, 3, 1) and (1, 3, 4), cell (0, 1) the next.
    np.testing.assert_array_equal(grid_faces(2, 3), [[0, 3, 1], [1, 3, 4], [1, 4, 2], [2, 4, 5]])
    assert grid_faces(24, 32).shape == (2 * 23 * 31, 3)
    assert grid_faces(24, 32).dtype == np.int64
    assert grid_faces(1, 5).shape == (0, 3)
    with pytest.raises(ValueError, match="at least 1"):
        grid_faces(0, 5)


def test_winding_is_counter_clockwise_seen_from_the_camera_in_gltf_axes() -> None:
    # A fronto-parallel plane and a tilted one, converted to glTF axes (x, -y, -z).
    z = np.full((24, 32), 3.0)
    tilted = 3.0 + 0.02 * np.arange(32)[None, :] + 0.03 * np.arange(24)[:, None]
    faces = grid_faces(24, 32)
    for depth in (z, tilted):
        vertices = _to_gltf(depth_to_points(depth, K))
        flat = vertices.reshape(-1, 3)
        normals = _face_normals(flat, faces)
        centroids = flat[faces].mean(axis=1)
        # Camera at the origin looking down -Z: front faces' normals point back to it.
        assert np.all(np.sum(normals * centroids, axis=1) < 0)
        assert np.all(normals[:, 2] > 0)


def test_step_loses_exactly_the_faces_across_the_step() -> None:
    depth = np.ones((6, 8))
    depth[:, 4:] = 2.0  # vertical step between columns 3 and 4
    keep = depth_edge_faces(depth, threshold=1.1)
    assert keep.shape == (5, 7, 2)
    # Both triangles of the 5 cells in column 3 touch both levels.
    assert np.count_nonzero(~keep) == 10
    assert not keep[:, 3].any()
    assert keep[:, [0, 1, 2, 4, 5, 6]].all()
    kept = grid_faces(6, 8)[keep.reshape(-1)]
    assert len(kept) == 2 * 5 * 7 - 10
    levels = depth.reshape(-1)[kept]
    assert np.all(levels == levels[:, :1])

    depth = np.ones((6, 8))
    depth[3:, :] = 3.0  # horizontal step between rows 2 and 3
    keep = depth_edge_faces(depth, threshold=1.1)
    assert np.count_nonzero(~keep) == 2 * 7
    assert not keep[2].any()


def test_edge_rule_is_scale_free_and_threshold_inclusive() -> None:
    depth = np.ones((4, 4))
    depth[:, 2:] = 1.05
    assert depth_edge_faces(depth, threshold=1.1).all()
    assert depth_edge_faces(depth * 1000.0, threshold=1.1).all()
    assert np.count_nonzero(~depth_edge_faces(depth * 7.0, threshold=1.01)) == 2 * 3
    step = np.ones((2, 2))
    step[1, 1] = 1.5
    keep = depth_edge_faces(step, threshold=1.5)  # ratio exactly at the threshold is kept
    assert keep.all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, 0.0, -1.0])
def test_unusable_depth_drops_the_six_triangles_around_it(bad: float) -> None:
    depth = np.full((5, 5), 2.0)
    depth[2, 2] = bad
    keep = depth_edge_faces(depth, threshold=1.1)
    assert np.count_nonzero(~keep) == 6
    dropped = grid_faces(5, 5)[~keep.reshape(-1)]
    assert np.all(np.any(dropped == 2 * 5 + 2, axis=1))


@pytest.mark.parametrize("threshold", [1.0, 0.5, np.nan, np.inf])
def test_edge_threshold_must_exceed_one(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        depth_edge_faces(np.ones((3, 3)), threshold=threshold)


# --------------------------------------------------------------------------- normals


def test_normals_of_a_fronto_parallel_plane_point_at_the_camera() -> None:
    points = depth_to_points(np.full((24, 32), 2.0), K)
    normals = camera_facing_normals(points)
    assert normals.dtype == np.float32
    np.testing.assert_allclose(normals, np.broadcast_to([0.0, 0.0, -1.0], normals.shape), atol=1e-6)


def test_normals_of_a_tilted_plane() -> None:
    # The plane Z = 2 + 0.5 X, i.e. (-0.5, 0, 1) . P = 2; along the ray of pixel u,
    # Z = 2 / (1 - 0.5 (u - cx) / fx).
    x_over_z = (np.arange(32) - K.cx) / K.fx
    depth = np.broadcast_to(2.0 / (1.0 - 0.5 * x_over_z), (24, 32))
    points = depth_to_points(depth, K)
    normals = camera_facing_normals(points)
    expected = np.array([0.5, 0.0, -1.0]) / np.sqrt(1.25)  # the side facing the origin
    np.testing.assert_allclose(normals, np.broadcast_to(expected, normals.shape), atol=2e-4)
    assert np.all(np.sum(normals * points, axis=2) < 0)


def test_normals_face_the_camera_on_a_bumpy_surface() -> None:
    rng = np.random.default_rng(3)
    depth = 2.0 + 0.3 * rng.random((24, 32))
    points = depth_to_points(depth, K)
    normals = camera_facing_normals(points)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=2), 1.0, atol=1e-6)
    assert np.all(np.sum(normals.astype(np.float64) * points, axis=2) < 0)


def test_degenerate_normals_fall_back_to_the_camera_direction() -> None:
    points = depth_to_points(np.full((4, 5), 2.0), Intrinsics(1.0, 1.0, 2.0, 1.5, 5, 4))
    points[0, 0] = np.nan
    valid = np.ones((4, 5), dtype=bool)
    valid[1:3, 1:4] = False
    valid[2, 2] = True  # an isolated point: no usable neighbour
    normals = camera_facing_normals(points, valid=valid)
    assert np.all(np.isfinite(normals))
    np.testing.assert_allclose(np.linalg.norm(normals, axis=2), 1.0, atol=1e-6)
    p = points[2, 2].astype(np.float64)
    np.testing.assert_allclose(normals[2, 2], -p / np.linalg.norm(p), atol=1e-6)
    np.testing.assert_allclose(normals[0, 0], [0.0, 0.0, -1.0])
    q = points[1, 1].astype(np.float64)  # left out by `valid`: faces the camera
    np.testing.assert_allclose(normals[1, 1], -q / np.linalg.norm(q), atol=1e-6)
    assert np.all(camera_facing_normals(np.zeros((3, 3, 3))) == [0.0, 0.0, -1.0])
    single = camera_facing_normals(np.array([[[3.0, 0.0, 4.0]]]))
    np.testing.assert_allclose(single[0, 0], [-0.6, 0.0, -0.8], atol=1e-7)


def test_normals_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        camera_facing_normals(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="valid"):
        camera_facing_normals(np.zeros((4, 4, 3)), valid=np.ones((3, 4), dtype=bool))


# --------------------------------------------------------------------------- disparity


def test_disparity_percentiles_map_to_near_and_far() -> None:
    # 0..100: the 2nd percentile is 2, the 98th is 98 (linear interpolation is exact here).
    disparity = np.arange(101, dtype=np.float32).reshape(1, 101)
    depth = disparity_to_depth(disparity, near=1.0, far=10.0)
    assert depth.dtype == np.float32
    assert depth.shape == (1, 101)
    assert np.all(depth[0, :3] == pytest.approx(10.0))
    assert np.all(depth[0, 98:] == pytest.approx(1.0))
    # Halfway in disparity: 1 / z = 0.5 / 1 + 0.5 / 10 = 0.55.
    assert depth[0, 50] == pytest.approx(1 / 0.55, rel=1e-6)
    # Linear in inverse depth between the percentiles.
    t = (np.arange(2, 99) - 2) / 96
    np.testing.assert_allclose(1 / depth[0, 2:99], t / 1.0 + (1 - t) / 10.0, rtol=1e-6)


def test_disparity_to_depth_is_monotonic_and_bounded() -> None:
    rng = np.random.default_rng(7)
    disparity = rng.gamma(2.0, 100.0, size=(48, 64))
    depth = disparity_to_depth(disparity, near=0.5, far=20.0)
    order = np.argsort(disparity, axis=None)
    assert np.all(np.diff(depth.reshape(-1)[order]) <= 0)
    assert depth.min() == pytest.approx(0.5)
    assert depth.max() == pytest.approx(20.0)
    low, high = np.percentile(disparity, [2, 98])
    assert np.all(depth[disparity >= high] == pytest.approx(0.5))
    assert np.all(depth[disparity <= low] == pytest.approx(20.0))


def test_hot_pixels_do_not_flatten_the_scene() -> None:
    disparity = np.tile(np.linspace(0.0, 1.0, 100), (10, 1))
    disparity[0, 0] = 1e6
    depth = disparity_to_depth(disparity)
    assert depth[5, 50] < 3.0  # with min/max normalisation it would be at about `far`


def test_bad_disparity_values_are_farthest_and_never_nan() -> None:
    disparity = np.tile(np.linspace(1.0, 5.0, 50), (4, 1))
    disparity[0, 10] = np.nan
    disparity[1, 20] = np.inf
    disparity[2, 30] = -np.inf
    disparity[3, 40] = -0.3  # bicubic overshoot next to sky
    disparity[3, 41] = 0.0
    depth = disparity_to_depth(disparity, near=1.0, far=10.0)
    assert np.all(np.isfinite(depth))
    for v, u in ((0, 10), (1, 20), (2, 30), (3, 40), (3, 41)):
        assert depth[v, u] == pytest.approx(10.0)
    assert np.all((depth >= 1.0) & (depth <= 10.0))


@pytest.mark.parametrize("value", [0.0, 3.7, -2.0, np.nan])
def test_constant_disparity_puts_everything_at_far(value: float) -> None:
    depth = disparity_to_depth(np.full((5, 6), value), near=2.0, far=8.0)
    assert np.all(depth == np.float32(8.0))


def test_mostly_sky_falls_back_to_the_full_range() -> None:
    disparity = np.zeros((10, 10))
    disparity[0, 0] = 1.0  # 1 % of the image: both percentiles are 0
    depth = disparity_to_depth(disparity)
    assert depth[0, 0] == pytest.approx(1.0)
    assert np.all(depth.reshape(-1)[1:] == pytest.approx(10.0))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"near": 0.0}, "near"),
        ({"near": -1.0}, "near"),
        ({"near": np.nan}, "near"),
        ({"far": 1.0}, "far"),
        ({"far": np.inf}, "far"),
        ({"near": 5.0, "far": 2.0}, "far"),
        ({"low_percentile": 50.0, "high_percentile": 50.0}, "percentile"),
        ({"low_percentile": -1.0}, "percentile"),
        ({"high_percentile": 101.0}, "percentile"),
    ],
)
def test_disparity_to_depth_rejects_bad_options(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        disparity_to_depth(np.ones((3, 3)), **options)


def test_disparity_must_be_2d() -> None:
    with pytest.raises(ValueError, match=r"2-D.*\(3, 3, 1\)"):
        disparity_to_depth(np.ones((3, 3, 1)))


def test_far_mask_finds_the_sky() -> None:
    disparity = np.tile(np.linspace(1.0, 2.0, 20), (5, 1))
    disparity[:2] = 0.0  # sky
    depth = disparity_to_depth(disparity, near=1.0, far=10.0)
    mask = far_mask(depth, 10.0)
    assert mask.dtype == np.bool_
    assert mask[:2].all()
    assert not mask[2:].any()
    assert far_mask(np.array([[np.inf, np.nan, 9.0]]), 10.0).tolist() == [[True, False, False]]
    with pytest.raises(ValueError, match="far"):
        far_mask(depth, 0.0)


# --------------------------------------------------------------------------- colours


def test_srgb_transfer_known_values() -> None:
    linear = srgb_to_linear(np.array([0, 10, 128, 255], dtype=np.uint8))
    assert linear.dtype == np.float32
    assert linear[0] == 0.0
    assert linear[1] == pytest.approx(10 / 255 / 12.92, rel=1e-6)  # linear segment
    assert linear[2] == pytest.approx(0.21586, abs=1e-5)  # the usual table value
    assert linear[3] == pytest.approx(1.0)
    assert linear_to_srgb(np.array([0.0, 0.5, 1.0])).tolist() == [0, 188, 255]


def test_srgb_round_trip_and_clipping() -> None:
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    linear = srgb_to_linear(values)
    assert np.all(np.diff(linear.reshape(-1)) > 0)
    np.testing.assert_array_equal(linear_to_srgb(linear), values)
    encoded = linear_to_srgb(np.array([-1.0, 2.0, np.nan, np.inf]))
    assert encoded.dtype == np.uint8
    assert encoded.tolist() == [0, 255, 0, 255]
    with pytest.raises(ValueError, match="uint8"):
        srgb_to_linear(np.array([0.5]))
