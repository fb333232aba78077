"""Triangle strips (glTF mode 5) for the grid GLB: the encoding, and the files consumers read."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh
from helpers.glb import GlbCheck, canonical_triangles, count_drawn, drawn_triangles, glb_chunks

from depth2mesh.exchange.gltf import encode_glb
from depth2mesh.exchange.gltf_read import glb_part_sizes, read_glb_mesh
from depth2mesh.exchange.strips import strip_to_triangles, triangles_to_strip
from depth2mesh.geometry.points import grid_faces


def cut_grid(height: int, width: int, kept: float, seed: int) -> np.ndarray:
    """A grid's triangles with a random share of them left out, in the grid's order."""
    faces = grid_faces(height, width)
    return faces[np.random.default_rng(seed).random(len(faces)) < kept]


def spec_triangles(strip: np.ndarray) -> np.ndarray:
    """A strip's triangles as the glTF specification writes them, degenerate ones dropped.

    Triangle j is (s[j], s[j+1], s[j+2]) for even j and (s[j], s[j+2], s[j+1]) for odd j
    (written independently of ``depth2mesh.exchange.strips``).
    """
    windows = np.stack([strip[:-2], strip[1:-1], strip[2:]], axis=1)
    odd = np.arange(len(windows)) % 2 == 1
    windows[odd] = windows[odd][:, [0, 2, 1]]
    a, b, c = windows.T
    return windows[(a != b) & (b != c) & (c != a)]


@pytest.mark.parametrize(
    ("height", "width", "kept", "seed"),
    [(2, 2, 1.0, 0), (5, 7, 1.0, 0), (9, 4, 0.9, 1), (12, 11, 0.5, 2), (6, 30, 0.2, 3)],
)
def test_a_grid_comes_back_exactly_and_draws_the_same_triangles(
    height: int, width: int, kept: float, seed: int
) -> None:
    faces = cut_grid(height, width, kept, seed)
    if not len(faces):
        pytest.skip("every triangle was cut")
    strip = triangles_to_strip(faces)
    # our decoder: the triangles in their order, each with its first index and winding
    np.testing.assert_array_equal(strip_to_triangles(strip), faces)
    # the specification's reading of odd triangles: the same triangles, winding kept
    np.testing.assert_array_equal(
        canonical_triangles(spec_triangles(strip)), canonical_triangles(faces)
    )


def test_any_triangle_order_comes_back() -> None:
    rng = np.random.default_rng(4)
    for _ in range(50):
        faces = np.array([rng.choice(12, 3, replace=False) for _ in range(rng.integers(1, 40))])
        np.testing.assert_array_equal(strip_to_triangles(triangles_to_strip(faces)), faces)


def test_a_fan_of_triangles_comes_back() -> None:
    # around vertex 1 each triangle could follow the one before only at the same parity as
    # that one: every other link is cut
    faces = np.array([[0, 1, 2], [2, 1, 3], [3, 1, 4], [4, 1, 5], [5, 1, 6]])
    strip = triangles_to_strip(faces)
    np.testing.assert_array_equal(strip_to_triangles(strip), faces)
    np.testing.assert_array_equal(
        canonical_triangles(spec_triangles(strip)), canonical_triangles(faces)
    )


def test_an_uncut_grid_takes_one_index_per_triangle_and_two_per_row_join() -> None:
    height, width = 7, 10
    strip = triangles_to_strip(grid_faces(height, width))
    rows = height - 1
    # a row of cells: two indices per column; rows joined by repeating two indices
    assert len(strip) == rows * 2 * width + 2 * (rows - 1)
    assert len(strip) < 0.45 * 3 * 2 * rows * (width - 1)  # the list: 3 per triangle


def test_strips_refuse_what_they_cannot_hold() -> None:
    with pytest.raises(ValueError, match="distinct"):
        triangles_to_strip(np.array([[0, 1, 2], [3, 3, 4]]))
    with pytest.raises(ValueError, match="shape"):
        triangles_to_strip(np.zeros((0, 3), dtype=np.int64))
    assert strip_to_triangles(np.array([0, 1])).shape == (0, 3)


def _grid_glb(
    height: int, width: int, faces: np.ndarray, compression: str, *, strips: bool
) -> bytes:
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    z = -(2.0 + 0.01 * u + 0.02 * v)
    positions = np.stack([u * 0.01, -v * 0.01, z], axis=-1).reshape(-1, 3)
    uvs = np.stack([(u + 0.5) / width, (v + 0.5) / height], axis=-1).reshape(-1, 2)
    ok, jpeg = cv2.imencode(".jpg", np.full((8, 8, 3), 128, np.uint8))
    assert ok
    return encode_glb(
        positions,
        faces,
        uvs=uvs,
        texture=jpeg.tobytes(),
        compression=compression,  # type: ignore[arg-type]
        strips=strips,
    )


@pytest.mark.parametrize("compression", ["none", "quantized"])
def test_strip_glbs_are_valid_smaller_and_draw_the_same_triangles(
    compression: str, tmp_path: Path, assert_valid_glb: GlbCheck
) -> None:
    height, width = 200, 400  # 80,000 vertices: the quantised grid is split in two windows
    faces = cut_grid(height, width, 0.98, 5)
    data = _grid_glb(height, width, faces, compression, strips=True)
    path = tmp_path / "grid.glb"
    path.write_bytes(data)
    assert_valid_glb(path)  # the Khronos validator in the slow variant: no error, no warning
    document, _ = glb_chunks(data)
    primitives = document["meshes"][0]["primitives"]
    assert {primitive["mode"] for primitive in primitives} == {5}
    assert len(primitives) == (2 if compression == "quantized" else 1)
    assert drawn_triangles(path) == len(faces)
    mesh = read_glb_mesh(data)
    assert len(mesh.faces) == len(faces)
    # each vertex is the grid pixel its texture coordinate names: compare by pixel
    assert mesh.uvs is not None
    pixel = np.rint(mesh.uvs[:, 1] * height - 0.5) * width + np.rint(mesh.uvs[:, 0] * width - 0.5)
    decoded = pixel.astype(np.int64)[mesh.faces]
    np.testing.assert_array_equal(canonical_triangles(decoded), canonical_triangles(faces))
    # trimesh reads mode 5 with the joins in it: the triangles it draws are the same
    scene = trimesh.load(path, force="scene", process=False)
    assert sum(count_drawn(part.faces) for part in scene.geometry.values()) == len(faces)
    # a third of the list's index bytes, or less
    lists = _grid_glb(height, width, faces, compression, strips=False)
    assert glb_part_sizes(data)["indices"] < 0.4 * glb_part_sizes(lists)["indices"]


def test_triangles_that_share_no_edges_stay_a_list() -> None:
    faces = np.arange(300).reshape(-1, 3)  # 100 separate triangles: a strip would be longer
    data = encode_glb(np.random.default_rng(6).random((300, 3)), faces, strips=True)
    document, _ = glb_chunks(data)
    assert document["meshes"][0]["primitives"][0]["mode"] == 4
    np.testing.assert_array_equal(read_glb_mesh(data).faces, faces)
