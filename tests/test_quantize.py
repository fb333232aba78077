"""Lighter GLBs (issue 15): quantised (``KHR_mesh_quantization``) and Draco files.

Each claim is checked on the files themselves and through real readers: our structural checks
plus trimesh (``assert_valid_glb``; in the slow variant the Khronos validator too), Open3D (the
preview's geometry) and the web page's viewer copy. Blender and three.js read them in
``test_blender.py`` and ``test_three.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
import trimesh
from helpers.glb import GlbCheck, assert_same_triangles, glb_chunks, read_cloud
from helpers.gltf_validator import issue_summary, validate_glb
from typer.testing import CliRunner

from depth2mesh.apps.cli import app
from depth2mesh.exchange.draco import draco_installed
from depth2mesh.exchange.gltf import (
    DRACO,
    QUANTIZATION,
    GltfCamera,
    decode_glb_json,
    encode_glb,
    position_error_bound,
)
from depth2mesh.exchange.gltf_read import glb_part_sizes, read_glb_mesh
from depth2mesh.exchange.quantize import (
    MAX_RELATIVE_ERROR,
    SHORT_INDEX_VERTICES,
    dequantize_positions,
    quantize_normals,
    quantize_positions,
    split_for_short_indices,
)
from depth2mesh.geometry.camera import Intrinsics
from depth2mesh.pipeline.convert import ConvertOptions, convert_photo

DRACO_INFOS = {"UNSUPPORTED_EXTENSION", "UNUSED_OBJECT", "IMAGE_NPOT_DIMENSIONS"}
"""The validator's information about a Draco file: it cannot decode Draco, so it neither
validates the extension nor sees who uses the compressed bufferView."""


@pytest.fixture(scope="module")
def draco() -> None:
    """DracoPy (the ``draco`` extra): missing fails under CI, else skips."""
    if not draco_installed():
        message = "DracoPy is missing: pip install -e '.[draco]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def surface(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A wavy depth surface seen by a 60-degree camera: glTF positions, faces, UVs."""
    v, u = np.mgrid[0:rows, 0:cols].astype(np.float64)
    depth = 2.0 + np.sin(u / 23.0) + v / rows * 3.0
    focal = cols / (2 * np.tan(np.radians(30)))
    x = (u - (cols - 1) / 2) / focal * depth
    y = (v - (rows - 1) / 2) / focal * depth
    positions = np.stack([x, -y, -depth], axis=-1).reshape(-1, 3).astype(np.float32)
    index = np.arange(rows * cols).reshape(rows, cols)
    a, b = index[:-1, :-1].ravel(), index[:-1, 1:].ravel()
    c, d = index[1:, :-1].ravel(), index[1:, 1:].ravel()
    faces = np.stack([np.stack([a, c, b], 1), np.stack([b, c, d], 1)], 1).reshape(-1, 3)
    uvs = np.stack([(u + 0.5) / cols, (v + 0.5) / rows], -1).reshape(-1, 2).astype(np.float32)
    return positions, faces, uvs


def jpeg() -> bytes:
    import cv2

    pixels = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    return bytes(cv2.imencode(".jpg", pixels)[1].tobytes())


def depth_range(positions: np.ndarray) -> float:
    return float(np.ptp(positions[:, 2]))


# --------------------------------------------------------------------------- pure functions


def test_positions_come_back_within_half_a_step() -> None:
    points = np.random.default_rng(1).normal(size=(5000, 3)) * [3.0, 2.0, 4.0]
    quantized = quantize_positions(points)
    restored = dequantize_positions(quantized.values, quantized.translation, quantized.scale)
    error = np.abs(restored - points).max(axis=0)
    np.testing.assert_array_less(error, quantized.step / 2 + 1e-12)
    assert quantized.step == pytest.approx(np.ptp(points, axis=0).max() / 65535)
    assert np.all(quantized.scale == quantized.scale[0])  # uniform: normals keep direction
    flat = quantize_positions(np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 3.0]]))
    assert flat.scale.tolist() == [1.0, 1.0, 1.0]
    assert flat.values[:, 1:].max() == 0


def test_normals_stay_within_one_percent_of_unit() -> None:
    normals = np.random.default_rng(2).normal(size=(20000, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    stored = quantize_normals(normals).astype(np.float64) / 127
    assert np.abs(np.linalg.norm(stored, axis=1) - 1).max() < 0.01
    assert np.abs(stored - normals).max() <= 0.5 / 127 + 1e-12


def test_windows_hold_every_triangle_once() -> None:
    _, faces, _ = surface(200, 700)  # 140,000 vertices
    shuffled = faces[np.random.default_rng(3).permutation(len(faces))]
    chunks = split_for_short_indices(shuffled)
    assert chunks is not None
    assert len(chunks) >= 3
    back = np.concatenate([chunk.faces + chunk.first_vertex for chunk in chunks])
    assert sorted(map(tuple, back)) == sorted(map(tuple, shuffled))
    for chunk in chunks:
        assert chunk.vertex_count <= SHORT_INDEX_VERTICES
        assert chunk.faces.min() >= 0
        assert chunk.faces.max() < chunk.vertex_count
    # a triangle whose indices lie a window apart fits no window
    assert split_for_short_indices(np.array([[0, 1, SHORT_INDEX_VERTICES]])) is None


# --------------------------------------------------------------------------- the encoder


def test_quantized_grid_is_valid_smaller_and_draws_the_same_triangles(
    tmp_path: Path, assert_valid_glb: GlbCheck
) -> None:
    positions, faces, uvs = surface(240, 320)  # 76,800 vertices: two primitives
    camera = GltfCamera(yfov=0.9, aspect_ratio=4 / 3)
    common = {"uvs": uvs, "texture": jpeg(), "camera": camera}
    plain = encode_glb(positions, faces, **common, compression="none")
    small = encode_glb(positions, faces, **common, compression="quantized")
    path = tmp_path / "grid.glb"
    path.write_bytes(small)
    report = assert_valid_glb(path)
    assert report["info"]["totalTriangleCount"] == len(faces)

    document, _ = glb_chunks(small)
    assert document["extensionsUsed"] == [QUANTIZATION]
    assert document["extensionsRequired"] == [QUANTIZATION]
    primitives = document["meshes"][0]["primitives"]
    assert len(primitives) == 2
    assert {p["material"] for p in primitives} == {0}
    for primitive in primitives:
        indices = document["accessors"][primitive["indices"]]
        assert indices["componentType"] == 5123  # unsigned short
        assert document["accessors"][primitive["attributes"]["POSITION"]]["count"] <= 65535
    # the dequantisation is the mesh node's; the camera node stays at the origin, unscaled
    mesh_node, camera_node = document["nodes"]
    assert set(mesh_node) == {"name", "mesh", "translation", "scale"}
    assert camera_node == {"name": "photo camera", "camera": 0}

    sizes, before = glb_part_sizes(small), glb_part_sizes(plain)
    assert sizes["positions"] == 8 * len(positions)  # 3 x 16 bits, padded to 4 bytes
    assert sizes["uvs"] == 4 * len(positions)
    assert sizes["indices"] == 2 * faces.size
    assert sizes["texture"] == before["texture"]
    assert len(small) < 0.55 * len(plain)

    mesh = read_glb_mesh(small)
    bound = position_error_bound(positions, "quantized")
    assert 0 < bound <= MAX_RELATIVE_ERROR * depth_range(positions)
    error = assert_same_triangles(positions, faces, mesh.positions, mesh.faces, atol=bound * 1.01)
    assert error > 0  # it is quantised
    assert mesh.uvs is not None
    np.testing.assert_allclose(mesh.uvs, uvs[_nearest(positions, mesh.positions)], atol=1e-5)
    assert mesh.camera == camera


def _nearest(reference: np.ndarray, positions: np.ndarray) -> np.ndarray:
    search = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(reference.astype(np.float64)))
    search.knn_index()
    found, _ = search.knn_search(o3d.core.Tensor(positions.astype(np.float64)), 1)
    return np.asarray(found.numpy()).reshape(-1)


def test_quantized_poisson_attributes(tmp_path: Path, assert_valid_glb: GlbCheck) -> None:
    positions, faces, _ = surface(60, 80)
    rng = np.random.default_rng(4)
    normals = rng.normal(size=positions.shape)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    colors = rng.random((len(positions), 3)).astype(np.float32)
    data = encode_glb(
        positions, faces, normals=normals, colors_linear=colors, compression="quantized"
    )
    path = tmp_path / "poisson.glb"
    path.write_bytes(data)
    assert_valid_glb(path)
    document, _ = glb_chunks(data)
    accessors = document["accessors"]
    attributes = document["meshes"][0]["primitives"][0]["attributes"]
    assert accessors[attributes["NORMAL"]]["componentType"] == 5120  # signed byte
    assert accessors[attributes["COLOR_0"]]["componentType"] == 5123  # unsigned short
    mesh = read_glb_mesh(data)  # one primitive: the vertices keep their order
    assert mesh.normals is not None
    assert mesh.colors_linear is not None
    np.testing.assert_allclose(mesh.colors_linear, colors, atol=0.5 / 65535 + 1e-7)
    assert np.abs(mesh.normals - normals).max() < 0.01


def test_a_scene_too_wide_for_its_depth_keeps_float_positions(assert_valid_glb: GlbCheck) -> None:
    positions, faces, _ = surface(20, 30)
    positions[:, 2] = -2.0 - 1e-3 * (positions[:, 2] + 2.0)  # 3 mm of depth, metres wide
    assert position_error_bound(positions, "quantized") == 0.0
    data = encode_glb(positions, faces, compression="quantized")
    document, _ = glb_chunks(data)
    position = document["accessors"][
        document["meshes"][0]["primitives"][0]["attributes"]["POSITION"]
    ]
    assert position["componentType"] == 5126  # float32: a 16-bit step would be too coarse
    assert "scale" not in document["nodes"][0]
    np.testing.assert_array_equal(read_glb_mesh(data).positions, positions)


def test_trimesh_reads_the_quantised_geometry(tmp_path: Path) -> None:
    positions, faces, uvs = surface(240, 320)
    path = tmp_path / "grid.glb"
    path.write_bytes(encode_glb(positions, faces, uvs=uvs, texture=jpeg(), compression="quantized"))
    scene = trimesh.load(path, force="scene", process=False)
    merged = scene.to_geometry()  # the node transforms applied
    bound = position_error_bound(positions, "quantized")
    assert_same_triangles(positions, faces, merged.vertices, merged.faces, atol=bound * 1.01)
    # trimesh 5.2 reads normalised integers as stored (its UVs are 0..65535): documented
    np.testing.assert_allclose(merged.bounds, [positions.min(0), positions.max(0)], atol=bound)


def test_draco_is_smaller_and_draws_the_same_triangles(draco: None, tmp_path: Path) -> None:
    positions, faces, uvs = surface(240, 320)
    data = encode_glb(positions, faces, uvs=uvs, texture=jpeg(), compression="draco")
    quantized = encode_glb(positions, faces, uvs=uvs, texture=jpeg(), compression="quantized")
    assert len(data) < 0.5 * len(quantized)
    document = decode_glb_json(data)
    assert document["extensionsUsed"] == [DRACO]
    assert document["extensionsRequired"] == [DRACO]
    mesh = read_glb_mesh(data)
    bound = position_error_bound(positions, "draco")
    assert 0 < bound <= MAX_RELATIVE_ERROR * depth_range(positions)
    assert_same_triangles(positions, faces, mesh.positions, mesh.faces, atol=bound * 1.01)
    assert mesh.uvs is not None
    np.testing.assert_allclose(mesh.uvs, uvs[_nearest(positions, mesh.positions)], atol=1e-4)


@pytest.mark.slow  # node and the Khronos validator
def test_draco_glb_passes_the_khronos_validator(draco: None, tmp_path: Path) -> None:
    positions, faces, uvs = surface(240, 320)
    path = tmp_path / "draco.glb"
    path.write_bytes(encode_glb(positions, faces, uvs=uvs, texture=jpeg(), compression="draco"))
    report = validate_glb(path)  # the validator cannot decode Draco: it says so, as infos
    assert report["issues"]["numErrors"] == 0, issue_summary(report)
    assert report["issues"]["numWarnings"] == 0, issue_summary(report)
    assert {m["code"] for m in report["issues"]["messages"]} <= DRACO_INFOS


# --------------------------------------------------------------------------- the pipeline


K = Intrinsics(110.0, 110.0, 47.5, 31.5, 96, 64, "explicit")


@pytest.fixture
def ramp_photo(tmp_path: Path) -> tuple[Path, Path]:
    import cv2

    photo = tmp_path / "ramp.png"
    cv2.imwrite(str(photo), np.random.default_rng(5).integers(0, 255, (64, 96, 3), np.uint8))
    depth = tmp_path / "ramp.npy"
    np.save(depth, np.linspace(1.5, 3.0, 64, dtype=np.float32)[:, None].repeat(96, axis=1))
    return photo, depth


def _convert(photo: Path, depth: Path, out: Path, compression: str, mesh: str = "both") -> dict:
    from depth2mesh.pipeline.convert import CameraOptions

    camera = CameraOptions(fx=K.fx, fy=K.fy, cx=K.cx, cy=K.cy)
    options = ConvertOptions(camera=camera, glb_compression=compression, mesh=mesh)  # type: ignore[arg-type]
    convert_photo(photo, out, depth_file=depth, options=options)
    sidecar: dict = json.loads((out / f"{photo.stem}.json").read_text())
    return sidecar


@pytest.mark.parametrize("compression", ["none", "quantized"])
def test_sidecar_says_how_the_glbs_are_stored(
    ramp_photo: tuple[Path, Path], tmp_path: Path, compression: str, assert_valid_glb: GlbCheck
) -> None:
    photo, depth = ramp_photo
    out = tmp_path / compression
    record = _convert(photo, depth, out, compression)["glb"]
    assert record["compression"] == compression
    assert record["quantized"] == (compression != "none")
    points, _, _ = read_cloud(out / "ramp_points.ply")
    for name, file in (("grid", "ramp.glb"), ("poisson", "ramp_poisson.glb")):
        assert_valid_glb(out / file)
        document = decode_glb_json((out / file).read_bytes())
        mesh = record["meshes"][name]
        if compression == "none":
            assert "extensionsUsed" not in document
            assert record["extension"] is None
            assert mesh["position_error_bound_m"] == 0
        else:
            assert document["extensionsRequired"] == [QUANTIZATION] == [record["extension"]]
            assert 0 < mesh["position_error_bound_m"] <= 1e-4 * mesh["depth_range_m"]
    # the dequantised grid overlays the float32 point cloud within the bound
    grid = read_glb_mesh((out / "ramp.glb").read_bytes())
    bound = record["meshes"]["grid"]["position_error_bound_m"]
    np.testing.assert_allclose(grid.positions, points, atol=bound + 1e-6)


def test_cli_option_and_its_errors(ramp_photo: tuple[Path, Path], tmp_path: Path) -> None:
    photo, depth = ramp_photo
    runner = CliRunner()
    base = ["convert", str(photo), "-o", str(tmp_path / "out"), "--depth", str(depth)]
    bad = runner.invoke(app, [*base, "--glb-compression", "zip"])
    assert bad.exit_code == 2
    assert "--glb-compression" in bad.output
    done = runner.invoke(app, [*base, "--glb-compression", "none"])
    assert done.exit_code == 0, done.output
    assert "extensionsUsed" not in decode_glb_json((tmp_path / "out" / "ramp.glb").read_bytes())


def test_preview_geometry_is_what_open3d_reads_from_the_float_file(
    ramp_photo: tuple[Path, Path], tmp_path: Path
) -> None:
    from depth2mesh.apps.preview import _read_geometry

    photo, depth = ramp_photo
    _convert(photo, depth, tmp_path / "none", "none", mesh="grid")
    record = _convert(photo, depth, tmp_path / "quantized", "quantized", mesh="grid")["glb"]
    bound = record["meshes"]["grid"]["position_error_bound_m"]
    (ours,) = _read_geometry(o3d, tmp_path / "quantized" / "ramp.glb")  # one textured mesh
    theirs = o3d.io.read_triangle_mesh(str(tmp_path / "none" / "ramp.glb"), True)
    # Open3D reads the float32 grid's strip with its joins, triangles that repeat an index
    triangles = np.asarray(theirs.triangles)
    a, b, c = triangles.T
    drawn = (a != b) & (b != c) & (c != a)
    assert drawn.sum() < len(triangles)
    corners = np.asarray(ours.vertices)[np.asarray(ours.triangles)]
    expected = np.asarray(theirs.vertices)[triangles[drawn]]
    np.testing.assert_allclose(corners, expected, atol=bound + 1e-6)
    uvs = np.asarray(theirs.triangle_uvs).reshape(-1, 3, 2)[drawn].reshape(-1, 2)
    np.testing.assert_allclose(ours.triangle_uvs, uvs, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(ours.textures[0]), np.asarray(theirs.textures[0]))


def test_web_viewer_gets_a_quantised_copy_of_a_draco_glb(
    draco: None, ramp_photo: tuple[Path, Path], tmp_path: Path, assert_valid_glb: GlbCheck
) -> None:
    web = pytest.importorskip("depth2mesh.apps.web")
    photo, depth = ramp_photo
    _convert(photo, depth, tmp_path, "draco", mesh="grid")
    original = tmp_path / "ramp.glb"
    assert DRACO in decode_glb_json(original.read_bytes())["extensionsUsed"]
    shown, low, high = web.viewer_glb(original, tmp_path / "viewer.glb")
    document = decode_glb_json(shown.read_bytes())
    assert document["extensionsRequired"] == [QUANTIZATION]  # Babylon decodes it offline
    assert_valid_glb(shown)
    mesh, copy = read_glb_mesh(original.read_bytes()), read_glb_mesh(shown.read_bytes())
    assert len(copy.faces) == len(mesh.faces) + 1  # plus the zero-area bounds triangle
    assert copy.texture == mesh.texture
    assert (low[2], high[2]) == pytest.approx(
        (mesh.positions[:, 2].min(), mesh.positions[:, 2].max()), abs=1e-3
    )
