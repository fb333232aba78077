"""PLY encoding, checked by real readers: Open3D and trimesh."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import open3d as o3d
import pytest
import trimesh
from numpy.typing import NDArray

from depth2mesh.exchange.ply import encode_ply_mesh, encode_ply_points


def random_cloud(
    count: int, seed: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.uint8], NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    points = rng.uniform(-3.0, 3.0, (count, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (count, 3), dtype=np.uint8)
    normals = rng.normal(size=(count, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return points, colors, normals.astype(np.float32)


def load_trimesh(path: Path) -> Any:
    """Load with trimesh as it is (no vertex merging); typed Any for the tests' attribute use."""
    return trimesh.load(path, process=False)


def header_of(data: bytes) -> list[str]:
    head, _, _ = data.partition(b"end_header\n")
    return head.decode("ascii").splitlines()


def test_points_with_normals_round_trip(tmp_path: Path) -> None:
    points, colors, normals = random_cloud(1000)
    data = encode_ply_points(points, colors, normals=normals)
    assert header_of(data)[:2] == ["ply", "format binary_little_endian 1.0"]
    assert "element vertex 1000" in header_of(data)
    assert len(data.partition(b"end_header\n")[2]) == 1000 * (12 + 3 + 12)
    path = tmp_path / "points.ply"
    path.write_bytes(data)

    cloud = o3d.io.read_point_cloud(path)
    np.testing.assert_array_equal(np.asarray(cloud.points), points)
    np.testing.assert_array_equal(np.round(np.asarray(cloud.colors) * 255.0), colors)
    np.testing.assert_array_equal(np.asarray(cloud.normals), normals)

    loaded = load_trimesh(path)
    assert isinstance(loaded, trimesh.PointCloud)
    np.testing.assert_array_equal(loaded.vertices, points)
    np.testing.assert_array_equal(loaded.colors[:, :3], colors)
    raw = loaded.metadata["_ply_raw"]["vertex"]["data"]
    np.testing.assert_array_equal(np.stack([raw["nx"], raw["ny"], raw["nz"]], axis=1), normals)


def test_points_without_normals(tmp_path: Path) -> None:
    points, colors, _ = random_cloud(64, seed=1)
    data = encode_ply_points(points, colors.astype(np.int64))
    assert not any("nx" in line for line in header_of(data))
    path = tmp_path / "plain.ply"
    path.write_bytes(data)
    cloud = o3d.io.read_point_cloud(path)
    assert not cloud.has_normals()
    np.testing.assert_array_equal(np.asarray(cloud.points), points)
    np.testing.assert_array_equal(np.round(np.asarray(cloud.colors) * 255.0), colors)
    loaded = load_trimesh(path)
    np.testing.assert_array_equal(loaded.vertices, points)
    np.testing.assert_array_equal(loaded.colors[:, :3], colors)


def test_mesh_with_colours_and_normals_round_trip(tmp_path: Path) -> None:
    vertices, colors, normals = random_cloud(300, seed=2)
    rng = np.random.default_rng(3)
    faces = np.stack([rng.permutation(300)[:3] for _ in range(200)]).astype(np.uint32)
    data = encode_ply_mesh(vertices, faces, colors=colors, normals=normals)
    header = header_of(data)
    assert header[-2:] == ["element face 200", "property list uchar int vertex_indices"]
    assert len(data.partition(b"end_header\n")[2]) == 300 * 27 + 200 * 13
    path = tmp_path / "mesh.ply"
    path.write_bytes(data)

    mesh = o3d.io.read_triangle_mesh(path)
    np.testing.assert_array_equal(np.asarray(mesh.vertices), vertices)
    np.testing.assert_array_equal(np.asarray(mesh.triangles), faces)
    np.testing.assert_array_equal(np.round(np.asarray(mesh.vertex_colors) * 255.0), colors)
    np.testing.assert_array_equal(np.asarray(mesh.vertex_normals), normals)

    loaded = load_trimesh(path)
    assert isinstance(loaded, trimesh.Trimesh)
    np.testing.assert_array_equal(loaded.vertices, vertices)
    np.testing.assert_array_equal(loaded.faces, faces)
    visual: Any = loaded.visual
    np.testing.assert_array_equal(visual.vertex_colors[:, :3], colors)
    np.testing.assert_array_equal(loaded.vertex_normals, normals)


def test_plain_mesh(tmp_path: Path) -> None:
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    data = encode_ply_mesh(vertices, faces)
    assert header_of(data) == [
        "ply",
        "format binary_little_endian 1.0",
        "comment written by depth2mesh",
        "element vertex 4",
        "property float x",
        "property float y",
        "property float z",
        "element face 2",
        "property list uchar int vertex_indices",
    ]
    path = tmp_path / "quad.ply"
    path.write_bytes(data)
    mesh = o3d.io.read_triangle_mesh(path)
    np.testing.assert_array_equal(np.asarray(mesh.vertices), vertices)
    np.testing.assert_array_equal(np.asarray(mesh.triangles), faces)
    assert not mesh.has_vertex_colors()
    loaded = load_trimesh(path)
    np.testing.assert_array_equal(loaded.vertices, vertices)
    np.testing.assert_array_equal(loaded.faces, faces)


def test_mesh_without_faces_has_empty_face_element() -> None:
    vertices, _, _ = random_cloud(5)
    data = encode_ply_mesh(vertices, np.zeros((0, 3), dtype=np.int64))
    assert "element face 0" in header_of(data)
    assert len(data.partition(b"end_header\n")[2]) == 5 * 12


def bad_point_inputs() -> list[Any]:
    points, colors, normals = random_cloud(4)
    nan = points.copy()
    nan[1, 2] = np.nan
    cases: dict[str, tuple[Any, Any, Any]] = {
        "points 2 columns": (points[:, :2], colors, None),
        "points NaN": (nan, colors, None),
        "points inf": (points * np.float32(np.inf), colors, None),
        "colors float": (points, colors / 255.0, None),
        "colors wrong count": (points, colors[:3], None),
        "colors above 255": (points, colors.astype(np.int64) + 256, None),
        "colors negative": (points, colors.astype(np.int64) - 256, None),
        "normals not unit": (points, colors, normals * 2.0),
        "normals wrong count": (points, colors, normals[:2]),
        "normals NaN": (points, colors, np.full((4, 3), np.nan)),
    }
    return [pytest.param(*case, id=name) for name, case in cases.items()]


@pytest.mark.parametrize(("points", "colors", "normals"), bad_point_inputs())
def test_bad_points_raise_value_error(points: Any, colors: Any, normals: Any) -> None:
    with pytest.raises(ValueError, match=r"^[^\n]+$"):
        encode_ply_points(points, colors, normals=normals)


@pytest.mark.parametrize(
    "faces",
    [
        pytest.param(np.array([[0, 1, 4]]), id="index too big"),
        pytest.param(np.array([[0, -1, 2]]), id="index negative"),
        pytest.param(np.array([[0, 1, 2, 3]]), id="4 columns"),
        pytest.param(np.array([[0.0, 1.0, 2.0]]), id="float"),
    ],
)
def test_bad_faces_raise_value_error(faces: Any) -> None:
    vertices, _, _ = random_cloud(4)
    with pytest.raises(ValueError, match=r"^[^\n]+$"):
        encode_ply_mesh(vertices, faces)


def test_bad_mesh_attributes_raise_value_error() -> None:
    vertices, colors, normals = random_cloud(4)
    faces = np.array([[0, 1, 2]])
    with pytest.raises(ValueError, match="colors"):
        encode_ply_mesh(vertices, faces, colors=colors[:2])
    with pytest.raises(ValueError, match="normals"):
        encode_ply_mesh(vertices, faces, normals=normals * 0.5)
    with pytest.raises(ValueError, match="vertices"):
        encode_ply_mesh(vertices[:, :2], faces)
