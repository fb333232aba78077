"""Reading and checking GLB files in tests, without node.

``check_glb`` is our own structural validator: it parses the container and the JSON and checks
what the Khronos validator checks for the files this project writes (chunk layout, indices in
range, accessor bounds and ``min``/``max``, finite values, unit normals, colours in 0..1, images
that decode as their MIME type), then loads the file in trimesh, a real consumer. The fast tests
use it; the ``khronos`` variant of the ``assert_valid_glb`` fixture (``conftest.py``, marked
slow) runs the Khronos validator as well (``helpers/gltf_validator.py``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import open3d as o3d
import trimesh

from depth2mesh.exchange.gltf import QUANTIZATION, decode_glb_json
from depth2mesh.exchange.gltf_read import accessor_array, read_glb_mesh

ALLOWED_INFOS = {"IMAGE_NPOT_DIMENSIONS"}  # photos are rarely power-of-two sized
"""Validator messages allowed in a clean report (information only)."""

COMPONENTS = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32}
COMPONENTS[5126] = np.float32
SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
GlbCheck = Callable[[str | Path], dict[str, Any]]
"""A GLB check: raises AssertionError for an invalid file, returns a report with ``info``."""

JSON_CHUNK, BIN_CHUNK = 0x4E4F534A, 0x004E4942
IMAGE_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


def glb_chunks(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Return the JSON document and the BIN chunk of a GLB (checking the container)."""
    assert len(data) >= 20, "shorter than a GLB header"
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF", magic
    assert version == 2, version
    assert length == len(data), f"header length {length} != file size {len(data)}"
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == JSON_CHUNK, hex(json_type)
    assert json_length % 4 == 0, "JSON chunk not padded to 4 bytes"
    document: dict[str, Any] = json.loads(data[20 : 20 + json_length].decode("utf-8"))
    assert document == decode_glb_json(data)
    offset = 20 + json_length
    if offset == len(data):
        return document, b""
    bin_length, bin_type = struct.unpack_from("<II", data, offset)
    assert bin_type == BIN_CHUNK, hex(bin_type)
    assert bin_length % 4 == 0, "BIN chunk not padded to 4 bytes"
    assert offset + 8 + bin_length == len(data), "data after the BIN chunk"
    return document, data[offset + 8 : offset + 8 + bin_length]


def _accessor(document: dict[str, Any], binary: bytes, index: int) -> np.ndarray:
    """Read accessor ``index`` (checking it lies inside its view and buffer)."""
    spec = document["accessors"][index]
    dtype = np.dtype(COMPONENTS[spec["componentType"]])
    width = SIZES[spec["type"]]
    assert spec["count"] >= 1, f"accessor {index} is empty"
    view = document["bufferViews"][spec["bufferView"]]
    assert view.get("buffer", 0) == 0
    view_start = view.get("byteOffset", 0)
    assert view_start + view["byteLength"] <= document["buffers"][0]["byteLength"]
    offset = spec.get("byteOffset", 0)
    assert (view_start + offset) % dtype.itemsize == 0, f"accessor {index} misaligned"
    stride = view.get("byteStride", width * dtype.itemsize)
    assert stride >= width * dtype.itemsize
    end = offset + stride * (spec["count"] - 1) + width * dtype.itemsize
    assert end <= view["byteLength"], f"accessor {index} runs past its buffer view"
    raw = np.frombuffer(binary, np.uint8, count=view["byteLength"], offset=view_start)
    rows = np.lib.stride_tricks.as_strided(
        raw[offset:], shape=(spec["count"], width * dtype.itemsize), strides=(stride, 1)
    )
    values = np.ascontiguousarray(rows).view(dtype).reshape(spec["count"], width)
    if "min" in spec or "max" in spec:  # the validator compares them exactly
        np.testing.assert_array_equal(values.min(axis=0), np.asarray(spec["min"], dtype))
        np.testing.assert_array_equal(values.max(axis=0), np.asarray(spec["max"], dtype))
    return values


def check_glb(path: str | Path) -> dict[str, Any]:
    """Check a GLB file's structure and load it in trimesh; raise AssertionError if invalid.

    Returns:
        ``{"info": {"totalVertexCount": ..., "totalTriangleCount": ...}}``, the same keys as the
        Khronos validator's report.
    """
    data = Path(path).read_bytes()
    document, binary = glb_chunks(data)
    assert document["asset"]["version"] == "2.0"
    if "buffers" in document:
        assert len(document["buffers"]) == 1
        byte_length = document["buffers"][0]["byteLength"]
        assert byte_length <= len(binary) < byte_length + 4, "BIN chunk and buffer disagree"
    vertices = triangles = 0
    for mesh in document["meshes"]:
        for primitive in mesh["primitives"]:
            mode = primitive.get("mode", 4)
            assert mode in (0, 4, 5), mode
            attributes = {
                name: _accessor(document, binary, index)
                for name, index in primitive["attributes"].items()
            }
            assert "min" in document["accessors"][primitive["attributes"]["POSITION"]]
            counts = {len(values) for values in attributes.values()}
            assert len(counts) == 1, f"attribute counts differ: {counts}"
            count = counts.pop()
            vertices += count
            for name, values in attributes.items():
                assert np.isfinite(values).all(), f"{name} has non-finite values"
                spec = document["accessors"][primitive["attributes"][name]]
                if values.dtype != np.float32:  # integer attributes need the extension
                    assert QUANTIZATION in document.get("extensionsRequired", []), name
                    assert QUANTIZATION in document.get("extensionsUsed", []), name
                    assert spec.get("normalized", False) == (name != "POSITION"), name
            if "NORMAL" in attributes:
                normals = accessor_array(document, binary, primitive["attributes"]["NORMAL"])
                lengths = np.linalg.norm(normals.astype(np.float64), axis=1)
                quantized = attributes["NORMAL"].dtype == np.int8  # 1/127 steps: 1 % at most
                tolerance = 0.01 if quantized else 5e-4
                np.testing.assert_allclose(lengths, 1.0, atol=tolerance, err_msg="NORMAL not unit")
            if "COLOR_0" in attributes:
                colors = attributes["COLOR_0"]
                assert colors.dtype in (np.float32, np.uint16), colors.dtype
                if colors.dtype == np.float32:
                    assert (colors >= 0).all(), "COLOR_0 below 0"
                    assert (colors <= 1).all(), "COLOR_0 above 1"
            if "indices" in primitive:
                indices = _accessor(document, binary, primitive["indices"]).reshape(-1)
                assert document["accessors"][primitive["indices"]]["type"] == "SCALAR"
                assert indices.max() < count, "index out of range"
                if mode == 4:
                    assert len(indices) % 3 == 0
                    triangles += len(indices) // 3
                if mode == 5:  # as the validator counts: the joins' degenerate ones too
                    assert len(indices) >= 3
                    triangles += len(indices) - 2
            if "material" in primitive:
                material = document["materials"][primitive["material"]]
                texture = material.get("pbrMetallicRoughness", {}).get("baseColorTexture")
                if texture is not None:
                    assert "TEXCOORD_0" in attributes
                    _check_texture(document, binary, texture["index"])
    for node in document.get("nodes", []):
        if "mesh" in node:
            assert node["mesh"] < len(document["meshes"])
        if "camera" in node:
            camera = document["cameras"][node["camera"]]["perspective"]
            assert camera["yfov"] > 0
            assert camera["znear"] > 0
            assert camera.get("aspectRatio", 1.0) > 0
    scene = document["scenes"][document.get("scene", 0)]
    assert all(0 <= index < len(document["nodes"]) for index in scene["nodes"])
    loaded = trimesh.load(path, force="scene", process=False)
    assert sum(len(getattr(g, "vertices", [])) for g in loaded.geometry.values()) == vertices
    return {"info": {"totalVertexCount": vertices, "totalTriangleCount": triangles}}


def _check_texture(document: dict[str, Any], binary: bytes, index: int) -> None:
    texture = document["textures"][index]
    if "sampler" in texture:
        assert texture["sampler"] < len(document["samplers"])
    image = document["images"][texture["source"]]
    view = document["bufferViews"][image["bufferView"]]
    start = view.get("byteOffset", 0)
    stored = binary[start : start + view["byteLength"]]
    assert stored.startswith(IMAGE_MAGIC[image["mimeType"]]), "image bytes vs mimeType"
    decoded = cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None, "the embedded image does not decode"
    assert decoded.size > 0


def drawn_triangles(path: Path) -> int:
    """Count the triangles a GLB draws: those with three distinct indices, in any mode.

    Read here from the index accessors, independently of ``depth2mesh``'s reader: a list's
    triples (mode 4) and a strip's windows ``s[j], s[j+1], s[j+2]`` (mode 5), each counted
    when its three indices differ (a strip's joins repeat one: they draw nothing).
    """
    document, binary = glb_chunks(path.read_bytes())
    count = 0
    for mesh in document["meshes"]:
        for primitive in mesh["primitives"]:
            mode = primitive.get("mode", 4)
            if mode not in (4, 5):
                continue
            indices = _accessor(document, binary, primitive["indices"]).reshape(-1)
            indices = indices.astype(np.int64)
            if mode == 4:
                count += count_drawn(indices.reshape(-1, 3))
            else:
                count += count_drawn(np.stack([indices[:-2], indices[1:-1], indices[2:]], 1))
    return count


def count_drawn(faces: np.ndarray) -> int:
    """Count the (M, 3) triangles with three distinct indices (the others draw nothing)."""
    a, b, c = np.asarray(faces).T
    return int(((a != b) & (b != c) & (c != a)).sum())


def glb_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read a GLB's mesh in scene coordinates, dequantised (``depth2mesh.exchange.gltf_read``).

    Keys as glTF names them: "POSITION" (metres, node transforms applied), "indices" (M, 3),
    and "TEXCOORD_0", "NORMAL", "COLOR_0" (floats) when present. The file is checked first
    (``glb_chunks``). Primitives are concatenated in order.
    """
    data = path.read_bytes()
    glb_chunks(data)
    mesh = read_glb_mesh(data)
    arrays = {"POSITION": mesh.positions, "indices": mesh.faces}
    for name, values in (
        ("TEXCOORD_0", mesh.uvs),
        ("NORMAL", mesh.normals),
        ("COLOR_0", mesh.colors_linear),
    ):
        if values is not None:
            arrays[name] = values
    return arrays


def glb_image(path: Path) -> tuple[bytes, str]:
    """Return the GLB's first image as stored (the file's bytes) and its MIME type."""
    document, binary = glb_chunks(path.read_bytes())
    image = document["images"][0]
    view = document["bufferViews"][image["bufferView"]]
    start = view.get("byteOffset", 0)
    return binary[start : start + view["byteLength"]], image["mimeType"]


def glb_texture(path: Path) -> np.ndarray:
    """Decode the GLB's first image to RGB."""
    encoded = np.frombuffer(glb_image(path)[0], np.uint8)
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def read_cloud(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a PLY point cloud with Open3D: points, sRGB uint8 colours, normals."""
    cloud = o3d.io.read_point_cloud(str(path))
    return (
        np.asarray(cloud.points),
        np.round(np.asarray(cloud.colors) * 255).astype(np.uint8),
        np.asarray(cloud.normals),
    )


def canonical_triangles(faces: np.ndarray) -> np.ndarray:
    """Triangles as sorted rows, each rotated to start at its smallest index (winding kept)."""
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    start = faces.argmin(axis=1)
    rows = np.arange(len(faces))[:, None]
    rotated = faces[rows, (start[:, None] + np.arange(3)) % 3]
    return rotated[np.lexsort(rotated.T[::-1])]


def assert_same_triangles(
    reference: np.ndarray,
    reference_faces: np.ndarray,
    positions: np.ndarray,
    faces: np.ndarray,
    *,
    atol: float,
) -> float:
    """Require that a decoded mesh has the reference's triangles, winding included.

    Every decoded vertex is matched to its nearest reference vertex (within ``atol`` per
    axis), so files that reorder, split or share vertices (Draco, primitives' windows) compare
    by what they draw. Returns the largest per-axis distance of a matched vertex.
    """
    points = np.asarray(reference, np.float64)
    query = np.asarray(positions, np.float64)
    search = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(points))
    search.knn_index()
    found, _ = search.knn_search(o3d.core.Tensor(query), 1)
    nearest = found.numpy().reshape(-1).astype(np.int64)
    used = np.unique(np.asarray(faces).reshape(-1))
    largest = float(np.abs(points[nearest[used]] - query[used]).max())
    assert largest <= atol, f"a vertex moved {largest:.3g} > {atol:.3g}"
    np.testing.assert_array_equal(
        canonical_triangles(nearest[faces]), canonical_triangles(reference_faces)
    )
    return largest
