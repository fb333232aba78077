"""Binary glTF 2.0 (GLB) encoding: numpy arrays in, file bytes out.

The encoder writes nothing to disk: the caller writes the bytes (atomically). Conventions:

- Positions and normals are already in the glTF frame: Y up, -Z forward, metres. The
  conversion from the OpenCV camera frame, ``(x, y, z) -> (x, -y, -z)``, is the caller's job.
- Texture coordinates follow glTF: origin at the image's top-left corner, ``v`` pointing down.
- The texture is the photo as encoded (sRGB); ``COLOR_0`` vertex colours are **linear** floats.
- Faces are triangles. With no faces the vertices are written as a ``POINTS`` primitive
  (mode 0), so a point cloud can be a GLB too.
- Indices are ``UNSIGNED_SHORT`` when every index fits below the primitive-restart value
  65535, otherwise ``UNSIGNED_INT``.

The result is meant to pass the Khronos glTF validator with no errors, warnings or infos.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from depth2mesh.geometry import unit_lengths

__all__ = [
    "DEFAULT_JPEG_QUALITY",
    "DEFAULT_TEXTURE_SIZE",
    "GltfCamera",
    "decode_glb_json",
    "encode_glb",
]

DEFAULT_TEXTURE_SIZE: Final = 4096
"""Longest side of a GLB texture; the photo keeps its resolution up to this."""

DEFAULT_JPEG_QUALITY: Final = 90
"""JPEG quality of a texture that has to be encoded (a JPEG photo that fits is embedded as is)."""

_GLB_MAGIC = b"glTF"
_GLB_VERSION = 2
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942

_FLOAT = 5126
_UNSIGNED_SHORT = 5123
_UNSIGNED_INT = 5125
_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_LINEAR = 9729
_CLAMP_TO_EDGE = 33071
_MODE_POINTS = 0
_MODE_TRIANGLES = 4

_IMAGE_MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}


@dataclass(frozen=True)
class GltfCamera:
    """A glTF perspective camera.

    The camera sits at the origin of the glTF scene and looks down -Z with +Y up, which is
    exactly the photo's camera once camera-frame points are converted with ``(x, -y, -z)``.

    Attributes:
        yfov: Vertical field of view in radians, in (0, pi).
        aspect_ratio: Width over height of the image (unitless), > 0.
        znear: Distance to the near clipping plane in metres, > 0.
        zfar: Distance to the far clipping plane in metres, > ``znear``; ``None`` for an
            infinite projection.
    """

    yfov: float
    aspect_ratio: float
    znear: float = 0.01
    zfar: float | None = None

    def __post_init__(self) -> None:
        """Check the values the glTF specification allows.

        Raises:
            ValueError: A value is out of range or not finite.
        """
        if not (math.isfinite(self.yfov) and 0.0 < self.yfov < math.pi):
            raise ValueError(f"camera yfov must be in (0, pi) radians, got {self.yfov}")
        if not (math.isfinite(self.aspect_ratio) and self.aspect_ratio > 0.0):
            raise ValueError(f"camera aspect_ratio must be > 0, got {self.aspect_ratio}")
        if not (math.isfinite(self.znear) and self.znear > 0.0):
            raise ValueError(f"camera znear must be > 0 metres, got {self.znear}")
        if self.zfar is not None and not (math.isfinite(self.zfar) and self.zfar > self.znear):
            raise ValueError(
                f"camera zfar must be > znear ({self.znear} m) or None, got {self.zfar}"
            )


def _float_array(
    values: ArrayLike, name: str, columns: tuple[int, ...], rows: int | None = None
) -> NDArray[np.float32]:
    """Return ``values`` as a C-contiguous little-endian float32 (rows, k) array, checked."""
    array = np.asarray(values)
    if array.ndim != 2 or array.shape[1] not in columns:
        wanted = " or ".join(f"(N, {k})" for k in columns)
        raise ValueError(f"{name} must have shape {wanted}, got {array.shape}")
    if rows is not None and array.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows (one per vertex), got {array.shape[0]}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} must be a float array, got dtype {array.dtype}")
    result = np.ascontiguousarray(array, dtype="<f4")
    if not np.isfinite(result).all():
        raise ValueError(f"{name} must be finite, got NaN or infinity (or float32 overflow)")
    return result


def _check_faces(faces: ArrayLike | None, vertex_count: int) -> NDArray[np.int64]:
    """Return the faces as an int64 (M, 3) array, checked; (0, 3) for ``None``."""
    if faces is None:
        return np.zeros((0, 3), dtype=np.int64)
    array = np.asarray(faces)
    if array.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"faces must have shape (M, 3), got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"faces must be an integer array, got dtype {array.dtype}")
    result = array.astype(np.int64)
    low, high = int(result.min()), int(result.max())
    if low < 0 or high >= vertex_count:
        raise ValueError(
            f"face indices must be in [0, {vertex_count - 1}], got values in [{low}, {high}]"
        )
    return result


def _check_unit(normals: NDArray[np.float32]) -> NDArray[np.float32]:
    """Renormalise unit vectors to float32 precision; reject vectors that are not unit."""
    lengths = unit_lengths(normals)
    return np.ascontiguousarray(normals / lengths[:, None], dtype="<f4")


def _pad(data: bytes, fill: bytes) -> bytes:
    """Pad ``data`` with ``fill`` to a multiple of 4 bytes."""
    return data + fill * (-len(data) % 4)


class _BinaryBuilder:
    """Collects bufferViews and accessors over one binary buffer."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.length = 0
        self.buffer_views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []

    def add_view(self, data: bytes, target: int | None) -> int:
        """Append ``data`` 4-byte aligned as a bufferView; return its index."""
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self.length, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        padded = _pad(data, b"\x00")
        self.chunks.append(padded)
        self.length += len(padded)
        self.buffer_views.append(view)
        return len(self.buffer_views) - 1

    def add_accessor(
        self,
        array: NDArray[Any],
        component_type: int,
        accessor_type: str,
        target: int,
        *,
        bounds: bool = False,
    ) -> int:
        """Append ``array`` as a bufferView plus an accessor over it; return its index."""
        view = self.add_view(array.tobytes(), target)
        accessor: dict[str, Any] = {
            "bufferView": view,
            "componentType": component_type,
            "count": int(array.shape[0]),
            "type": accessor_type,
        }
        if bounds:
            accessor["min"] = [float(v) for v in array.min(axis=0)]
            accessor["max"] = [float(v) for v in array.max(axis=0)]
        self.accessors.append(accessor)
        return len(self.accessors) - 1


@dataclass(frozen=True)
class _Vertices:
    """The checked per-vertex arrays of one mesh, ready to be written.

    Attributes:
        positions: (N, 3) little-endian float32 positions in metres, glTF frame.
        normals: (N, 3) little-endian float32 unit normals, or ``None``.
        uvs: (N, 2) little-endian float32 texture coordinates (glTF convention), or ``None``.
        colors: (N, 3) or (N, 4) little-endian float32 linear colours in [0, 1], or ``None``.
    """

    positions: NDArray[np.float32]
    normals: NDArray[np.float32] | None
    uvs: NDArray[np.float32] | None
    colors: NDArray[np.float32] | None

    @property
    def count(self) -> int:
        """The number of vertices N."""
        return int(self.positions.shape[0])

    @property
    def translucent(self) -> bool:
        """Whether the colours are RGBA with some alpha below 1 (the material blends)."""
        colors = self.colors
        return colors is not None and colors.shape[1] == 4 and float(colors[:, 3].min()) < 1.0


def encode_glb(
    positions: ArrayLike,
    faces: ArrayLike | None,
    *,
    normals: ArrayLike | None = None,
    uvs: ArrayLike | None = None,
    colors_linear: ArrayLike | None = None,
    texture: bytes | None = None,
    texture_mime: str = "image/jpeg",
    camera: GltfCamera | None = None,
    name: str = "depth2mesh",
    generator: str = "depth2mesh",
) -> bytes:
    """Encode a triangle mesh or a point cloud as a binary glTF 2.0 file (GLB).

    The scene holds one node with the mesh and, when ``camera`` is given, a second node named
    "photo camera" at the origin with no rotation (it looks down -Z). The material is PBR
    metallic-roughness with ``metallicFactor`` 0, ``roughnessFactor`` 1, ``baseColorFactor``
    (1, 1, 1, 1) and double-sided; its base colour is the texture when there is one, and glTF
    viewers multiply it with ``COLOR_0`` when there are vertex colours. With ``colors_linear``
    of shape (N, 4) and some alpha below 1 the material is alpha-blended.

    Triangles that repeat a vertex index draw nothing; they are dropped.

    Args:
        positions: (N, 3) float32 vertex positions in metres, in the glTF frame (Y up, -Z
            forward). N >= 1.
        faces: (M, 3) integer vertex indices of counter-clockwise triangles, in [0, N). With
            M = 0 (or ``None``) the vertices are written as a ``POINTS`` primitive.
        normals: (N, 3) float32 unit normals in the glTF frame; lengths within 1e-3 of 1 are
            accepted and renormalised.
        uvs: (N, 2) float32 texture coordinates, glTF convention (origin top-left, v down).
            Required with ``texture`` and allowed only with it.
        colors_linear: (N, 3) RGB or (N, 4) RGBA float32 vertex colours in [0, 1], LINEAR
            (convert sRGB first), written as ``COLOR_0``.
        texture: The encoded base-colour image (the sRGB photo), JPEG or PNG bytes.
        texture_mime: "image/jpeg" or "image/png"; must match the bytes of ``texture``.
        camera: The photo's camera, written as a perspective camera at the origin.
        name: Name of the mesh and of its node.
        generator: ``asset.generator`` string.

    Returns:
        The GLB file content.

    Raises:
        ValueError: An array has the wrong shape or dtype, holds NaN or infinity, a face
            index is out of range, a normal is not unit length, a colour is outside [0, 1],
            ``uvs`` and ``texture`` are not given together, or the texture is not the
            declared image format.
    """
    vertices, triangles = _check_mesh(
        positions, faces, normals, uvs, colors_linear, texture, texture_mime
    )
    return _assemble_glb(
        vertices,
        triangles,
        texture=None if texture is None else bytes(texture),
        texture_mime=texture_mime,
        camera=camera,
        name=name,
        generator=generator,
    )


def _check_mesh(
    positions: ArrayLike,
    faces: ArrayLike | None,
    normals: ArrayLike | None,
    uvs: ArrayLike | None,
    colors_linear: ArrayLike | None,
    texture: bytes | None,
    texture_mime: str,
) -> tuple[_Vertices, NDArray[np.int64]]:
    """Check :func:`encode_glb`'s arrays and texture (see there for their shapes and units).

    Returns:
        The vertex arrays as little-endian float32 (normals renormalised), and the (M, 3)
        int64 triangles without the degenerate ones.

    Raises:
        ValueError: As :func:`encode_glb` says.
    """
    points = _float_array(positions, "positions", (3,))
    if points.shape[0] == 0:
        raise ValueError("positions must hold at least one vertex, got 0")
    triangles = _drop_degenerate(_check_faces(faces, points.shape[0]))
    vertices = _check_attributes(points, normals, uvs, colors_linear)
    if (vertices.uvs is None) != (texture is None):
        raise ValueError("uvs and texture must be given together (a texture needs UVs)")
    if texture is not None:
        _check_texture(texture, texture_mime)
    return vertices, triangles


def _assemble_glb(
    vertices: _Vertices,
    triangles: NDArray[np.int64],
    *,
    texture: bytes | None,
    texture_mime: str,
    camera: GltfCamera | None,
    name: str,
    generator: str,
) -> bytes:
    """Build the glTF document and its buffer from checked inputs, and pack them as a GLB.

    The buffer holds, in this order: positions, normals, UVs, colours, indices, the image
    (each only when present). The order of the calls below fixes it, hence the file's bytes.
    """
    binary = _BinaryBuilder()
    primitive = _add_primitive(binary, vertices, triangles)
    pbr, material = _material(name, blend=vertices.translucent)
    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": generator},
        "scene": 0,
        "scenes": [{"name": name, "nodes": [0]}],
        "nodes": [{"name": name, "mesh": 0}],
        "meshes": [{"name": name, "primitives": [primitive]}],
        "materials": [material],
    }
    if texture is not None:
        document.update(_texture_entries(binary, texture, texture_mime))
        pbr["baseColorTexture"] = {"index": 0}
    if camera is not None:
        _add_camera(document, camera)
    document["accessors"] = binary.accessors
    document["bufferViews"] = binary.buffer_views
    document["buffers"] = [{"byteLength": binary.length}]
    return pack_glb(document, b"".join(binary.chunks))


def _check_attributes(
    points: NDArray[np.float32],
    normals: ArrayLike | None,
    uvs: ArrayLike | None,
    colors_linear: ArrayLike | None,
) -> _Vertices:
    """Check the optional per-vertex arrays of :func:`encode_glb` (see there for their shapes).

    Args:
        points: (N, 3) little-endian float32 positions, already checked; N >= 1.
        normals: ``encode_glb``'s ``normals``.
        uvs: ``encode_glb``'s ``uvs``.
        colors_linear: ``encode_glb``'s ``colors_linear``.

    Returns:
        The arrays as little-endian float32, normals renormalised.

    Raises:
        ValueError: An array has the wrong shape, dtype or row count, is not finite, a
            normal is not unit length or a colour is outside [0, 1].
    """
    count = points.shape[0]
    unit_normals = None
    if normals is not None:
        unit_normals = _check_unit(_float_array(normals, "normals", (3,), count))
    texcoords = None if uvs is None else _float_array(uvs, "uvs", (2,), count)
    colors = None
    if colors_linear is not None:
        colors = _float_array(colors_linear, "colors_linear", (3, 4), count)
        low, high = float(colors.min()), float(colors.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"colors_linear must be in [0, 1], got values in [{low:.6g}, {high:.6g}]"
            )
    return _Vertices(points, unit_normals, texcoords, colors)


def _drop_degenerate(triangles: NDArray[np.int64]) -> NDArray[np.int64]:
    """Drop the triangles that repeat a vertex index.

    Args:
        triangles: (M, 3) int64 vertex indices; M may be 0.

    Returns:
        (K, 3) int64, the triangles with three distinct indices, in their order.

    Raises:
        ValueError: M > 0 and every triangle is degenerate.
    """
    if not triangles.shape[0]:
        return triangles
    keep = (
        (triangles[:, 0] != triangles[:, 1])
        & (triangles[:, 1] != triangles[:, 2])
        & (triangles[:, 2] != triangles[:, 0])
    )
    kept: NDArray[np.int64] = triangles[keep]
    if kept.shape[0] == 0:
        raise ValueError("faces are all degenerate (each repeats a vertex index)")
    return kept


def _check_texture(texture: bytes, texture_mime: str) -> None:
    """Check that ``texture`` is an image of the declared type.

    Raises:
        ValueError: ``texture_mime`` is not JPEG or PNG, or the bytes do not start with its
            signature.
    """
    if texture_mime not in _IMAGE_MAGIC:
        raise ValueError(f"texture_mime must be 'image/jpeg' or 'image/png', got {texture_mime!r}")
    if not bytes(texture).startswith(_IMAGE_MAGIC[texture_mime]):
        raise ValueError(f"texture bytes are not a {texture_mime} image")


def _add_primitive(
    binary: _BinaryBuilder, vertices: _Vertices, triangles: NDArray[np.int64]
) -> dict[str, Any]:
    """Add the vertex attributes, then the indices, to ``binary``; return the primitive.

    Args:
        binary: The buffer being built.
        vertices: The checked vertex arrays.
        triangles: (M, 3) int64 non-degenerate triangles; M = 0 makes a ``POINTS`` primitive.

    Returns:
        The glTF mesh primitive (attributes, material 0, indices when M > 0, mode).
    """
    attributes: dict[str, int] = {
        "POSITION": binary.add_accessor(
            vertices.positions, _FLOAT, "VEC3", _ARRAY_BUFFER, bounds=True
        )
    }
    if vertices.normals is not None:
        attributes["NORMAL"] = binary.add_accessor(vertices.normals, _FLOAT, "VEC3", _ARRAY_BUFFER)
    if vertices.uvs is not None:
        attributes["TEXCOORD_0"] = binary.add_accessor(vertices.uvs, _FLOAT, "VEC2", _ARRAY_BUFFER)
    if vertices.colors is not None:
        kind = "VEC4" if vertices.colors.shape[1] == 4 else "VEC3"
        attributes["COLOR_0"] = binary.add_accessor(vertices.colors, _FLOAT, kind, _ARRAY_BUFFER)

    primitive: dict[str, Any] = {"attributes": attributes, "material": 0}
    if triangles.shape[0]:
        wide = vertices.count > 65535
        flat = triangles.reshape(-1).astype("<u4" if wide else "<u2")
        primitive["indices"] = binary.add_accessor(
            flat, _UNSIGNED_INT if wide else _UNSIGNED_SHORT, "SCALAR", _ELEMENT_ARRAY_BUFFER
        )
        primitive["mode"] = _MODE_TRIANGLES
    else:
        primitive["mode"] = _MODE_POINTS
    return primitive


def _material(name: str, *, blend: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The mesh's material: white, not metallic, fully rough, double-sided.

    Args:
        name: The mesh's name; the material is "<name> material".
        blend: Make it alpha-blended (``alphaMode`` "BLEND").

    Returns:
        Its ``pbrMetallicRoughness`` block (the caller adds a texture to it) and the material.
    """
    pbr: dict[str, Any] = {
        "baseColorFactor": [1.0, 1.0, 1.0, 1.0],
        "metallicFactor": 0.0,
        "roughnessFactor": 1.0,
    }
    material: dict[str, Any] = {"name": f"{name} material", "pbrMetallicRoughness": pbr}
    material["doubleSided"] = True
    if blend:
        material["alphaMode"] = "BLEND"
    return pbr, material


def _texture_entries(binary: _BinaryBuilder, texture: bytes, mime: str) -> dict[str, Any]:
    """Add the encoded image to ``binary``; return the document's image, sampler and texture.

    Args:
        binary: The buffer being built (the image becomes its last bufferView).
        texture: The JPEG or PNG bytes.
        mime: Their MIME type.

    Returns:
        The ``images``, ``samplers`` (bilinear, clamped) and ``textures`` entries, in order.
    """
    image_view = binary.add_view(texture, None)
    return {
        "images": [{"bufferView": image_view, "mimeType": mime}],
        "samplers": [
            {
                "magFilter": _LINEAR,
                "minFilter": _LINEAR,
                "wrapS": _CLAMP_TO_EDGE,
                "wrapT": _CLAMP_TO_EDGE,
            }
        ],
        "textures": [{"sampler": 0, "source": 0}],
    }


def _add_camera(document: dict[str, Any], camera: GltfCamera) -> None:
    """Add ``camera`` to ``document`` as camera 0, on a new node "photo camera" in scene 0.

    The node has no transform: the camera sits at the origin and looks down -Z.
    """
    perspective: dict[str, Any] = {
        "yfov": float(camera.yfov),
        "aspectRatio": float(camera.aspect_ratio),
        "znear": float(camera.znear),
    }
    if camera.zfar is not None:
        perspective["zfar"] = float(camera.zfar)
    document["cameras"] = [
        {"name": "photo camera", "type": "perspective", "perspective": perspective}
    ]
    document["nodes"].append({"name": "photo camera", "camera": 0})
    document["scenes"][0]["nodes"].append(1)


def pack_glb(document: dict[str, Any], binary: bytes) -> bytes:
    """Pack a glTF JSON document and its binary buffer into GLB bytes.

    The JSON is compact UTF-8 padded with spaces, the binary chunk padded with zeros, both to
    4 bytes (the buffer's ``byteLength`` is the caller's to state). No binary chunk is
    written when ``binary`` is empty.

    Args:
        document: The glTF JSON document.
        binary: The content of buffer 0.

    Returns:
        The GLB file content: header, JSON chunk, binary chunk.
    """
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    chunks = [(_pad(text, b" "), _CHUNK_JSON)]
    if binary:
        chunks.append((_pad(binary, b"\x00"), _CHUNK_BIN))
    total = 12 + sum(8 + len(chunk) for chunk, _ in chunks)
    parts = [struct.pack("<4sII", _GLB_MAGIC, _GLB_VERSION, total)]
    for chunk, kind in chunks:
        parts += [struct.pack("<II", len(chunk), kind), chunk]
    return b"".join(parts)


def split_glb(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Unpack GLB bytes into the glTF JSON document and its binary buffer (see :func:`pack_glb`).

    Args:
        data: The GLB file content.

    Returns:
        The parsed JSON document, and the binary chunk's bytes (b"" when there is none).

    Raises:
        ValueError: ``data`` is not a version 2 GLB whose first chunk is valid JSON and whose
            second chunk, if any, is a complete binary chunk.
    """
    document = decode_glb_json(data)
    (json_length,) = struct.unpack_from("<I", data, 12)
    at = 20 + json_length
    if at == len(data):
        return document, b""
    if len(data) < at + 8:
        raise ValueError(f"GLB has {len(data) - at} bytes after its JSON chunk, not a chunk")
    bin_length, bin_type = struct.unpack_from("<II", data, at)
    if bin_type != _CHUNK_BIN or len(data) < at + 8 + bin_length:
        raise ValueError("GLB second chunk must be a complete binary chunk")
    return document, data[at + 8 : at + 8 + bin_length]


def decode_glb_json(data: bytes) -> dict[str, Any]:
    """Read the JSON chunk of a GLB file (the binary chunk is not looked at: :func:`split_glb`).

    Args:
        data: The GLB file content.

    Returns:
        The parsed glTF JSON document.

    Raises:
        ValueError: ``data`` is not a version 2 GLB file whose first chunk is valid JSON.
    """
    if len(data) < 20:
        raise ValueError(f"GLB data must be at least 20 bytes, got {len(data)}")
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != _GLB_MAGIC or version != _GLB_VERSION:
        raise ValueError(f"expected a glTF 2 GLB header, got magic {magic!r} version {version}")
    if length != len(data):
        raise ValueError(f"GLB header declares {length} bytes, got {len(data)}")
    chunk_length, chunk_type = struct.unpack_from("<II", data, 12)
    if chunk_type != _CHUNK_JSON or 20 + chunk_length > len(data):
        raise ValueError("GLB first chunk must be a complete JSON chunk")
    try:
        document = json.loads(data[20 : 20 + chunk_length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"GLB JSON chunk is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise ValueError(f"GLB JSON chunk must be an object, got {type(document).__name__}")
    return document
