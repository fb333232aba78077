"""A network's own normals (MoGe-2) as the point cloud's and the Poisson input's normals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from helpers.moge2 import pinhole_checkpoint, synthetic_photo
from numpy.typing import NDArray

from depth2mesh.exchange.photo import Photo
from depth2mesh.geometry.camera import Intrinsics
from depth2mesh.geometry.points import (
    camera_facing_normals,
    camera_to_gltf,
    depth_to_points,
    model_normals,
)
from depth2mesh.geometry.scale import DepthPin
from depth2mesh.pipeline.convert import (
    ESTIMATED_NORMALS,
    ConvertOptions,
    DepthMaps,
    Geometry,
    geometry_stage,
    normals_record,
    output_paths,
    point_cloud_stage,
    poisson_input,
)

TOWARD = np.array([0.3, -0.2, -0.9])
"""A normal that faces a camera looking down +z, far from any the points would give."""


def _unit(vector: NDArray[np.float64]) -> NDArray[np.float64]:
    unit: NDArray[np.float64] = vector / np.linalg.norm(vector)
    return unit


def _ply_normals(path: Path) -> NDArray[np.float64]:
    cloud = trimesh.load(path, process=False)
    raw = cloud.metadata["_ply_raw"]["vertex"]["data"]
    return np.stack([raw["nx"], raw["ny"], raw["nz"]], axis=1).astype(np.float64)


def _step_scene(rows: int = 96, cols: int = 128) -> tuple[Photo, Intrinsics, DepthMaps]:
    """A near box (1.2 m) left of a far wall (3 m), the step a network-like ramp of 4 pixels
    (linear in 1/z) at the photo's black-to-white edge; the network's normals are
    :data:`TOWARD` everywhere but a masked corner, where it gives zeros."""
    rgb = np.zeros((rows, cols, 3), np.uint8)
    rgb[:, cols // 2 :] = 255
    ramp = np.clip((np.arange(cols) - (cols // 2 - 2)) / 4.0, 0.0, 1.0)
    inverse = 1 / 1.2 + (1 / 3.0 - 1 / 1.2) * ramp
    depth = np.broadcast_to(1 / inverse, (rows, cols)).astype(np.float32)
    normals = np.broadcast_to(TOWARD * 2.5, (rows, cols, 3)).astype(np.float32).copy()
    normals[:5, :5] = 0.0  # the network's mask: no normal
    maps = DepthMaps(
        disparity=(1.0 / depth).astype(np.float32),
        picture=(1.0 / depth).astype(np.float32),
        metric=depth,
        normals=normals,
        normals_source="moge2-small",
    )
    camera = Intrinsics(60.0, 60.0, (cols - 1) / 2, (rows - 1) / 2, cols, rows)
    return Photo(path=Path("step.png"), rgb=rgb), camera, maps


def test_model_normals_are_unit_turned_to_the_camera_and_only_where_usable() -> None:
    points = np.zeros((2, 3, 3))
    points[..., 2] = 2.0
    points[0, 0] = [np.nan, 0.0, 2.0]
    given = np.array(
        [
            [[0, 0, 1e-9], [0.0, 0.0, 3.0], [1.0, 1.0, -1.0]],  # ~0; faces away; toward
            [[np.nan, 0, -1], [0.0, 2.0, -2.0], [0.0, 0.0, -5.0]],  # NaN; toward; unusable
        ]
    )
    usable = np.ones((2, 3), bool)
    usable[1, 2] = False
    fallback = np.zeros((2, 3, 3), np.float32)
    fallback[..., 2] = -1.0
    normals, taken = model_normals(given, points, usable=usable, fallback=fallback)
    assert normals.dtype == np.float32
    np.testing.assert_array_equal(taken, [[False, True, True], [False, True, False]])
    np.testing.assert_allclose(normals[0, 1], [0, 0, -1])  # flipped towards the camera
    np.testing.assert_allclose(normals[0, 2], _unit(np.array([1.0, 1.0, -1.0])), rtol=1e-6)
    np.testing.assert_allclose(normals[1, 1], _unit(np.array([0.0, 1.0, -1.0])), rtol=1e-6)
    np.testing.assert_array_equal(normals[~taken], fallback[~taken])  # the fallback elsewhere
    with pytest.raises(ValueError, match="same"):
        model_normals(given[:, :2], points, usable=usable, fallback=fallback)
    with pytest.raises(ValueError, match="usable"):
        model_normals(given, points, usable=usable[:, :2], fallback=fallback)


def test_geometry_takes_the_networks_normals_except_where_moved_or_masked() -> None:
    photo, camera, maps = _step_scene()
    geometry = geometry_stage(photo, camera, maps, ConvertOptions(grid=128))
    assert geometry.model_normals is not None
    assert geometry.moved is not None
    assert geometry.moved.any()  # the ramp's pixels were settled onto a side
    assert geometry.normals_source == "moge2-small"
    expected_taken = geometry.valid & ~geometry.moved
    expected_taken[:5, :5] = False
    np.testing.assert_array_equal(geometry.model_normals, expected_taken)
    np.testing.assert_allclose(
        geometry.normals[expected_taken],
        np.broadcast_to(_unit(TOWARD), (int(expected_taken.sum()), 3)),
        atol=1e-6,
    )
    # elsewhere, the normals estimated from the (settled) points
    estimated = camera_facing_normals(geometry.points, valid=geometry.valid)
    np.testing.assert_array_equal(geometry.normals[~expected_taken], estimated[~expected_taken])
    assert normals_record(geometry) == {
        "source": "moge2-small",
        "from_model": int(expected_taken.sum()),
        "from_points": int((geometry.valid & ~expected_taken).sum()),
    }


def test_the_points_ply_and_the_poisson_input_carry_the_networks_normals(tmp_path: Path) -> None:
    photo, camera, maps = _step_scene()
    geometry = geometry_stage(photo, camera, maps, ConvertOptions(grid=128, edges="off"))
    paths = output_paths(tmp_path, "step")
    point_cloud_stage(geometry, paths, overwrite=False)
    written = _ply_normals(paths["points"])
    taken = geometry.model_normals
    assert taken is not None
    assert written.shape == (int(geometry.valid.sum()), 3)
    model_rows = taken[geometry.valid]
    want = camera_to_gltf(_unit(TOWARD)[None]).astype(np.float64)  # glTF axes: (x, -y, -z)
    np.testing.assert_allclose(written[model_rows], np.repeat(want, model_rows.sum(), 0), atol=1e-6)
    points, normals = poisson_input(geometry, 500)
    assert 0 < len(points) <= 500
    valid = geometry.valid
    cloud = dict(zip(map(bytes, geometry.points[valid]), geometry.normals[valid], strict=True))
    for point, normal in zip(points, normals, strict=True):  # the cloud's own normals
        np.testing.assert_array_equal(normal, cloud[bytes(point)])
    facing = np.isclose(normals @ _unit(TOWARD), 1.0, atol=1e-6)
    assert facing.mean() > 0.8  # the network's, not the ones estimated from the flat walls


def test_other_depth_sources_and_two_pins_estimate_normals_from_the_points() -> None:
    photo, camera, maps = _step_scene()
    plain = DepthMaps(disparity=maps.disparity, picture=maps.picture, metric=maps.metric)
    geometry = geometry_stage(photo, camera, plain, ConvertOptions(grid=128))
    assert geometry.model_normals is None
    assert normals_record(geometry)["source"] == ESTIMATED_NORMALS
    # two pins reshape the network's depth (scale and shift of 1/z): its normals no longer hold
    pins = (DepthPin(10.0, 20.0, 1.5), DepthPin(120.0, 20.0, 4.0))
    pinned = geometry_stage(photo, camera, maps, ConvertOptions(grid=128, depth_at=pins))
    assert pinned.model_normals is None
    # one pin scales the scene: the directions stay the network's
    scaled = geometry_stage(photo, camera, maps, ConvertOptions(grid=128, depth_at=pins[:1]))
    assert scaled.model_normals is not None
    assert scaled.model_normals.any()


def _normals_geometry(valid: NDArray[np.bool_]) -> Geometry:
    rows, cols = valid.shape
    depth = np.full((rows, cols), 2.0, np.float32)
    points = depth_to_points(depth, Intrinsics(10.0, 10.0, 1.0, 1.0, cols, rows))
    normals = camera_facing_normals(points)
    colors = np.zeros((rows, cols, 3), np.uint8)
    return Geometry(depth, valid, points, normals, colors)


def test_the_record_of_estimated_normals_counts_the_points() -> None:
    valid = np.ones((3, 4), bool)
    valid[0, 0] = False
    record = normals_record(_normals_geometry(valid))
    assert record == {"source": ESTIMATED_NORMALS, "from_model": 0, "from_points": 11}


@pytest.mark.slow  # builds, saves and runs a ViT-S MoGe-2 on a photo: seconds
def test_a_moge2_conversion_writes_the_networks_normals(
    tmp_path: Path, isolated_env: dict[str, str]
) -> None:
    from PIL import Image

    import depth2mesh

    direction = (0.25, -0.35, -0.9)
    weights = pinhole_checkpoint(tmp_path / "model.pt", normal=direction)
    with pytest.warns(depth2mesh.UnofficialWeightsWarning):
        model = depth2mesh.load_model(weights, model="moge2-small", backend="torch")
    photo = tmp_path / "plane.png"
    Image.fromarray(synthetic_photo(90, 120, 3)).save(photo)
    options = depth2mesh.ConvertOptions(mesh="both", grid=120)
    result = depth2mesh.convert_photo(photo, tmp_path / "out", model=model, options=options)
    sidecar = json.loads(result.paths["sidecar"].read_text())
    assert sidecar["normals"]["source"] == "moge2-small"
    assert sidecar["normals"]["from_model"] == sidecar["counts"]["points"] == 90 * 120
    written = _ply_normals(result.paths["points"])
    want = camera_to_gltf(_unit(np.array(direction))[None]).astype(np.float64)
    np.testing.assert_allclose(written, np.repeat(want, len(written), 0), atol=1e-6)
    # not what the points alone would give: the surface's own normals are other ones
    cloud = trimesh.load(result.paths["points"], process=False)
    grid = camera_to_gltf(np.asarray(cloud.vertices)).reshape(90, 120, 3)  # row-major pixels
    estimated = camera_to_gltf(camera_facing_normals(grid).reshape(-1, 3)).astype(np.float64)
    angles = np.degrees(np.arccos(np.clip(np.sum(estimated * written, axis=1), -1.0, 1.0)))
    assert np.median(angles) > 10.0
