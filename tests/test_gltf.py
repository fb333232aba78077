"""GLB encoding, checked by real consumers: the Khronos validator and trimesh."""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import trimesh
from helpers.glb import check_glb
from helpers.gltf_validator import issue_summary, validate_glb
from numpy.typing import NDArray
from PIL import Image

from depth2mesh.exchange.gltf import GltfCamera, decode_glb_json, encode_glb

# Photos are rarely power-of-two sized; the validator notes that as information only.
ALLOWED_INFOS = {"IMAGE_NPOT_DIMENSIONS"}


WriteAndValidate = Callable[[Path, str, bytes], Path]


@pytest.fixture
def write_and_validate(glb_validator: str) -> WriteAndValidate:
    """Write ``data`` to ``tmp_path/name`` and require our own checks to pass (``check_glb``);
    in the "khronos" variant (slow) also a clean Khronos validator report."""

    def write(tmp_path: Path, name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        check_glb(path)
        if glb_validator == "khronos":
            report = validate_glb(path)
            issues = report["issues"]
            summary = issue_summary(report)
            assert issues["numErrors"] == 0, summary
            assert issues["numWarnings"] == 0, summary
            others = {m["code"] for m in issues["messages"] if m["severity"] >= 2}
            assert others <= ALLOWED_INFOS, summary
        return path

    return write


def glb_binary_chunk(data: bytes) -> bytes:
    """Return the BIN chunk of a GLB file."""
    json_length = struct.unpack_from("<I", data, 12)[0]
    offset = 20 + json_length
    length, kind = struct.unpack_from("<II", data, offset)
    assert kind == 0x004E4942
    return data[offset + 8 : offset + 8 + length]


def load_scene(path: Path) -> trimesh.Scene:
    scene = trimesh.load(path, force="scene", process=False)
    assert isinstance(scene, trimesh.Scene)
    return scene


def only_geometry(scene: trimesh.Scene) -> Any:
    assert len(scene.geometry) == 1
    geometry: Any = next(iter(scene.geometry.values()))
    return geometry


def quad() -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
    """A 1 m square facing the viewer (+Z) at z = -2, in the glTF frame, with glTF UVs."""
    positions = np.array(
        [[-0.5, -0.5, -2.0], [0.5, -0.5, -2.0], [0.5, 0.5, -2.0], [-0.5, 0.5, -2.0]],
        dtype=np.float32,
    )
    faces = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int64)
    uvs = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    return positions, faces, uvs


def grid(rows: int, cols: int) -> tuple[NDArray[np.float32], NDArray[np.uint32]]:
    """A flat rows x cols vertex grid in the z = -1 plane, two triangles per cell."""
    v, u = np.mgrid[0:rows, 0:cols]
    positions = np.stack(
        [u / cols - 0.5, 0.5 - v / rows, -np.ones_like(u, dtype=np.float64)], axis=-1
    ).reshape(-1, 3)
    index = np.arange(rows * cols).reshape(rows, cols)
    a, b = index[:-1, :-1].ravel(), index[:-1, 1:].ravel()
    c, d = index[1:, :-1].ravel(), index[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    return positions.astype(np.float32), faces.astype(np.uint32)


def jpeg_photo(height: int = 48, width: int = 64) -> bytes:
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (5, 5), 0)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def test_textured_quad_with_camera(tmp_path: Path, write_and_validate: WriteAndValidate) -> None:
    positions, faces, uvs = quad()
    normals = np.tile(np.array([0.0, 0.0, 1.0], dtype=np.float32), (4, 1))
    photo = jpeg_photo()
    camera = GltfCamera(yfov=math.radians(45.0), aspect_ratio=64 / 48, znear=0.05, zfar=50.0)
    data = encode_glb(
        positions, faces, normals=normals, uvs=uvs, texture=photo, camera=camera, name="quad"
    )
    path = write_and_validate(tmp_path, "quad.glb", data)

    document = decode_glb_json(data)
    assert document["asset"] == {"version": "2.0", "generator": "depth2mesh"}
    perspective = document["cameras"][0]["perspective"]
    assert perspective == {
        "yfov": pytest.approx(math.radians(45.0)),
        "aspectRatio": pytest.approx(64 / 48),
        "znear": 0.05,
        "zfar": 50.0,
    }
    camera_node = next(n for n in document["nodes"] if "camera" in n)
    assert camera_node["name"] == "photo camera"
    assert not {"rotation", "translation", "matrix", "scale"} & camera_node.keys()
    assert sorted(document["scenes"][document["scene"]]["nodes"]) == [0, 1]
    material = document["materials"][0]
    pbr = material["pbrMetallicRoughness"]
    assert pbr["metallicFactor"] == 0.0
    assert pbr["baseColorFactor"] == [1.0, 1.0, 1.0, 1.0]
    assert pbr["baseColorTexture"] == {"index": 0}
    assert document["images"][0]["mimeType"] == "image/jpeg"
    view = document["bufferViews"][document["images"][0]["bufferView"]]
    binary = glb_binary_chunk(data)
    embedded = binary[view["byteOffset"] : view["byteOffset"] + view["byteLength"]]
    assert embedded == photo
    accessor = document["accessors"][document["meshes"][0]["primitives"][0]["indices"]]
    assert accessor["componentType"] == 5123

    scene = load_scene(path)
    mesh = only_geometry(scene)
    assert isinstance(mesh, trimesh.Trimesh)
    assert mesh.vertices.shape == (4, 3)
    assert mesh.faces.shape == (2, 3)
    np.testing.assert_array_equal(mesh.vertices, positions)
    np.testing.assert_array_equal(mesh.faces, faces)
    visual: Any = mesh.visual
    # trimesh moves the UV origin to the bottom-left: v' = 1 - v.
    np.testing.assert_array_equal(visual.uv[:, 0], uvs[:, 0])
    np.testing.assert_array_equal(visual.uv[:, 1], 1.0 - uvs[:, 1])
    texture = visual.material.baseColorTexture
    expected = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
    np.testing.assert_array_equal(np.asarray(texture.convert("RGB")), expected)
    assert scene.camera.fov[1] == pytest.approx(45.0)


def test_png_texture_power_of_two_is_fully_clean(tmp_path: Path, glb_validator: str) -> None:
    positions, faces, uvs = quad()
    image = np.random.default_rng(2).integers(0, 256, (64, 128, 3), dtype=np.uint8)
    ok, png = cv2.imencode(".png", image)
    assert ok
    data = encode_glb(positions, faces, uvs=uvs, texture=png.tobytes(), texture_mime="image/png")
    path = tmp_path / "png.glb"
    path.write_bytes(data)
    check_glb(path)
    if glb_validator == "khronos":
        report = validate_glb(path)
        assert report["issues"]["messages"] == [], issue_summary(report)
    assert decode_glb_json(data)["images"][0]["mimeType"] == "image/png"
    mesh = only_geometry(load_scene(path))
    texture = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    np.testing.assert_array_equal(texture, image[:, :, ::-1])


@pytest.mark.parametrize("channels", [3, 4])
def test_vertex_coloured_mesh(
    tmp_path: Path, channels: int, write_and_validate: WriteAndValidate
) -> None:
    positions, faces = grid(12, 10)
    count = positions.shape[0]
    rng = np.random.default_rng(3)
    colors = rng.random((count, channels), dtype=np.float32)
    if channels == 4:
        colors[:, 3] = 1.0
    normals = rng.normal(size=(count, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    data = encode_glb(positions, faces, normals=normals, colors_linear=colors)
    path = write_and_validate(tmp_path, f"colored{channels}.glb", data)

    document = decode_glb_json(data)
    primitive = document["meshes"][0]["primitives"][0]
    assert primitive["mode"] == 4
    assert set(primitive["attributes"]) == {"POSITION", "NORMAL", "COLOR_0"}
    color_accessor = document["accessors"][primitive["attributes"]["COLOR_0"]]
    assert color_accessor["type"] == ("VEC4" if channels == 4 else "VEC3")
    assert "alphaMode" not in document["materials"][0]
    assert "textures" not in document
    position_accessor = document["accessors"][primitive["attributes"]["POSITION"]]
    assert position_accessor["min"] == [float(v) for v in positions.min(axis=0)]
    assert position_accessor["max"] == [float(v) for v in positions.max(axis=0)]

    mesh = only_geometry(load_scene(path))
    assert mesh.vertices.shape == (count, 3)
    assert mesh.faces.shape == faces.shape
    np.testing.assert_array_equal(mesh.vertices, positions)
    np.testing.assert_array_equal(mesh.faces, faces)
    np.testing.assert_array_equal(mesh.visual.vertex_attributes["color"], colors)
    np.testing.assert_allclose(mesh.vertex_normals, normals, atol=1e-6)


def test_translucent_vertex_colours_blend(
    tmp_path: Path, write_and_validate: WriteAndValidate
) -> None:
    positions, faces, _ = quad()
    colors = np.full((4, 4), 0.5, dtype=np.float32)
    data = encode_glb(positions, faces, colors_linear=colors)
    write_and_validate(tmp_path, "blend.glb", data)
    assert decode_glb_json(data)["materials"][0]["alphaMode"] == "BLEND"


def test_point_cloud(tmp_path: Path, write_and_validate: WriteAndValidate) -> None:
    rng = np.random.default_rng(4)
    positions = rng.uniform(-1.0, 1.0, (500, 3)).astype(np.float32)
    colors = rng.random((500, 3), dtype=np.float32)
    data = encode_glb(positions, np.zeros((0, 3), dtype=np.int64), colors_linear=colors)
    path = write_and_validate(tmp_path, "points.glb", data)

    primitive = decode_glb_json(data)["meshes"][0]["primitives"][0]
    assert primitive["mode"] == 0
    assert "indices" not in primitive
    cloud = only_geometry(load_scene(path))
    assert isinstance(cloud, trimesh.PointCloud)
    np.testing.assert_array_equal(cloud.vertices, positions)
    np.testing.assert_allclose(cloud.colors[:, :3], colors * 255.0, atol=1.0)
    assert encode_glb(positions, None, colors_linear=colors) == data


def test_large_mesh_uses_32_bit_indices(
    tmp_path: Path, write_and_validate: WriteAndValidate
) -> None:
    positions, faces = grid(300, 250)
    assert positions.shape[0] > 65535
    data = encode_glb(positions, faces)
    path = write_and_validate(tmp_path, "large.glb", data)

    document = decode_glb_json(data)
    indices = document["accessors"][document["meshes"][0]["primitives"][0]["indices"]]
    assert indices["componentType"] == 5125
    assert indices["count"] == faces.size
    mesh = only_geometry(load_scene(path))
    assert mesh.vertices.shape == positions.shape
    assert mesh.faces.shape == faces.shape
    np.testing.assert_array_equal(mesh.faces, faces)


@pytest.mark.parametrize(("count", "component_type"), [(65535, 5123), (65536, 5125)])
def test_index_type_boundary(
    tmp_path: Path, count: int, component_type: int, write_and_validate: WriteAndValidate
) -> None:
    positions = np.zeros((count, 3), dtype=np.float32)
    positions[:, 0] = np.arange(count, dtype=np.float32) / count
    positions[-1, 1] = 1.0
    faces = np.array([[0, count - 2, count - 1]])
    data = encode_glb(positions, faces)
    write_and_validate(tmp_path, f"boundary{count}.glb", data)
    document = decode_glb_json(data)
    indices = document["accessors"][document["meshes"][0]["primitives"][0]["indices"]]
    assert indices["componentType"] == component_type


def test_without_camera(tmp_path: Path, write_and_validate: WriteAndValidate) -> None:
    positions, faces, _ = quad()
    data = encode_glb(positions, faces, name="plain", generator="depth2mesh 9.9")
    path = write_and_validate(tmp_path, "plain.glb", data)
    document = decode_glb_json(data)
    assert "cameras" not in document
    assert document["nodes"] == [{"name": "plain", "mesh": 0}]
    assert document["asset"]["generator"] == "depth2mesh 9.9"
    scene = load_scene(path)
    assert only_geometry(scene).faces.shape == (2, 3)


def test_camera_without_zfar_is_infinite(
    tmp_path: Path, write_and_validate: WriteAndValidate
) -> None:
    positions, faces, _ = quad()
    data = encode_glb(positions, faces, camera=GltfCamera(yfov=1.0, aspect_ratio=1.5))
    write_and_validate(tmp_path, "infinite.glb", data)
    perspective = decode_glb_json(data)["cameras"][0]["perspective"]
    assert perspective == {"yfov": 1.0, "aspectRatio": 1.5, "znear": 0.01}


def test_glb_layout_is_aligned_and_padded() -> None:
    positions, faces, uvs = quad()
    data = encode_glb(positions[:3], faces[:1], uvs=uvs[:3], texture=jpeg_photo(5, 7))
    assert len(data) % 4 == 0
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_length, json_kind = struct.unpack_from("<II", data, 12)
    assert json_kind == 0x4E4F534A
    assert json_length % 4 == 0
    text = data[20 : 20 + json_length]
    assert text.rstrip(b" ").endswith(b"}")
    binary = glb_binary_chunk(data)
    assert len(binary) % 4 == 0
    document = decode_glb_json(data)
    for view in document["bufferViews"]:
        assert view["byteOffset"] % 4 == 0
    assert document["buffers"] == [{"byteLength": len(binary)}]
    # 3 indices as uint16 are 6 bytes, padded with zeros before the next view.
    indices = document["bufferViews"][-2]
    assert indices["target"] == 34963
    end = indices["byteOffset"] + indices["byteLength"]
    assert binary[end : end + 2] == b"\x00\x00"


def test_degenerate_triangles_are_dropped(
    tmp_path: Path, write_and_validate: WriteAndValidate
) -> None:
    positions, faces, _ = quad()
    with_degenerate = np.concatenate([faces, [[1, 1, 2], [3, 0, 3]]])
    data = encode_glb(positions, with_degenerate)
    write_and_validate(tmp_path, "degenerate.glb", data)
    document = decode_glb_json(data)
    assert document["accessors"][1]["count"] == 6


def test_slightly_non_unit_normals_are_renormalised(
    tmp_path: Path, write_and_validate: WriteAndValidate
) -> None:
    positions, faces, _ = quad()
    normals = np.tile(np.array([0.0, 0.0, 1.0004], dtype=np.float32), (4, 1))
    write_and_validate(tmp_path, "renormalised.glb", encode_glb(positions, faces, normals=normals))


def bad_inputs() -> list[Any]:
    positions, faces, uvs = quad()
    nan = positions.copy()
    nan[2, 1] = np.nan
    photo = jpeg_photo(8, 8)
    cases: dict[str, dict[str, Any]] = {
        "positions 2 columns": {"positions": positions[:, :2]},
        "positions 3D": {"positions": positions[None]},
        "positions empty": {"positions": np.zeros((0, 3), np.float32), "faces": None},
        "positions NaN": {"positions": nan},
        "positions inf": {"positions": positions * np.float32(np.inf)},
        "positions strings": {"positions": np.array([["a", "b", "c"]])},
        "face index too big": {"faces": np.array([[0, 1, 4]])},
        "face index negative": {"faces": np.array([[0, -1, 2]])},
        "faces 4 columns": {"faces": np.array([[0, 1, 2, 3]])},
        "faces float": {"faces": faces.astype(np.float32)},
        "faces all degenerate": {"faces": np.array([[0, 0, 1]])},
        "normals not unit": {"normals": np.tile([0.0, 0.0, 2.0], (4, 1))},
        "normals zero": {"normals": np.zeros((4, 3))},
        "normals wrong count": {"normals": np.tile([0.0, 0.0, 1.0], (3, 1))},
        "normals NaN": {"normals": np.full((4, 3), np.nan)},
        "colors above 1": {"colors_linear": np.full((4, 3), 1.5)},
        "colors negative": {"colors_linear": np.full((4, 3), -0.1)},
        "colors 2 channels": {"colors_linear": np.full((4, 2), 0.5)},
        "uvs without texture": {"uvs": uvs},
        "texture without uvs": {"texture": photo},
        "uvs wrong shape": {"uvs": uvs[:, :1], "texture": photo},
        "texture mime mismatch": {"uvs": uvs, "texture": photo, "texture_mime": "image/png"},
        "texture mime unknown": {"uvs": uvs, "texture": photo, "texture_mime": "image/webp"},
        "texture not an image": {"uvs": uvs, "texture": b"hello"},
    }
    return [pytest.param(case, id=name) for name, case in cases.items()]


@pytest.mark.parametrize("case", bad_inputs())
def test_bad_input_raises_value_error(case: dict[str, Any]) -> None:
    positions, faces, _ = quad()
    arguments: dict[str, Any] = {"positions": positions, "faces": faces, **case}
    with pytest.raises(ValueError, match=r"^[^\n]+$"):
        encode_glb(**arguments)


@pytest.mark.parametrize(
    "values",
    [
        {"yfov": 0.0, "aspect_ratio": 1.0},
        {"yfov": math.pi, "aspect_ratio": 1.0},
        {"yfov": math.nan, "aspect_ratio": 1.0},
        {"yfov": 1.0, "aspect_ratio": 0.0},
        {"yfov": 1.0, "aspect_ratio": 1.0, "znear": 0.0},
        {"yfov": 1.0, "aspect_ratio": 1.0, "znear": 1.0, "zfar": 1.0},
    ],
)
def test_bad_camera_raises_value_error(values: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="camera"):
        GltfCamera(**values)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"glTF" + b"\x00" * 16,
        struct.pack("<4sII", b"glTF", 1, 20) + struct.pack("<II", 0, 0x4E4F534A),
        struct.pack("<4sII", b"glTF", 2, 24) + struct.pack("<II", 4, 0x4E4F534A) + b"[1] ",
        struct.pack("<4sII", b"glTF", 2, 24) + struct.pack("<II", 4, 0x4E4F534A) + b"{{{{",
        struct.pack("<4sII", b"glTF", 2, 24) + struct.pack("<II", 4, 0x004E4942) + b"{}  ",
    ],
)
def test_decode_glb_json_rejects_bad_data(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"^[^\n]+$"):
        decode_glb_json(data)
