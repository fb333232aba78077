"""Binary glTF 2.0 (GLB) encoding: numpy arrays in, file bytes out.

The encoder writes nothing to disk: the caller writes the bytes (atomically). Conventions:

- Positions and normals are already in the glTF frame: Y up, -Z forward, metres. The
  conversion from the OpenCV camera frame, ``(x, y, z) -> (x, -y, -z)``, is the caller's job.
- Texture coordinates follow glTF: origin at the image's top-left corner, ``v`` pointing down.
- The texture is the photo as encoded (sRGB); ``COLOR_0`` vertex colours are **linear** floats.
- Faces are triangles. With no faces the vertices are written as a ``POINTS`` primitive
  (mode 0), so a point cloud can be a GLB too.
- Indices are ``UNSIGNED_SHORT`` when every index fits below the primitive-restart value
  65535, otherwise ``UNSIGNED_INT``; with ``strips`` a primitive's triangles may be one
  triangle strip (mode 5) joined by degenerate triangles (:mod:`depth2mesh.exchange.strips`).

The result is meant to pass the Khronos glTF validator with no errors or warnings, and no
infos but one about a photo's size that is not a power of two.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from depth2mesh.exchange.quantize import (
    MAX_RELATIVE_ERROR,
    SHORT_INDEX_VERTICES,
    UINT16_LEVELS,
    FaceChunk,
    bounding_box,
    quantize_colors,
    quantize_normals,
    quantize_positions,
    quantize_unit_interval,
    split_for_short_indices,
)
from depth2mesh.exchange.strips import triangles_to_strip
from depth2mesh.geometry.points import unit_lengths

__all__ = [
    "DEFAULT_GLB_COMPRESSION",
    "DEFAULT_JPEG_QUALITY",
    "DEFAULT_TEXTURE_SIZE",
    "DRACO",
    "GLB_COMPRESSIONS",
    "QUANTIZATION",
    "GlbCompression",
    "GltfCamera",
    "check_compression",
    "decode_glb_json",
    "encode_glb",
    "position_error_bound",
    "read_glb_json",
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
_BYTE = 5120
_UNSIGNED_SHORT = 5123
_UNSIGNED_INT = 5125
_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_LINEAR = 9729
_CLAMP_TO_EDGE = 33071
_MODE_POINTS = 0
_MODE_TRIANGLES = 4
_MODE_TRIANGLE_STRIP = 5

QUANTIZATION: Final = "KHR_mesh_quantization"
"""The glTF extension for integer vertex attributes (``--glb-compression quantized``)."""

DRACO: Final = "KHR_draco_mesh_compression"
"""The glTF extension for Draco-compressed primitives (``--glb-compression draco``)."""

GlbCompression = Literal["none", "quantized", "draco"]
"""How vertex data is stored: float32 ("none"), ``KHR_mesh_quantization`` ("quantized") or
``KHR_draco_mesh_compression`` ("draco", needs the ``draco`` extra)."""

GLB_COMPRESSIONS: Final[tuple[GlbCompression, ...]] = ("none", "quantized", "draco")
"""Every :data:`GlbCompression`, in order of size (largest first)."""

DEFAULT_GLB_COMPRESSION: Final[GlbCompression] = "quantized"
"""What ``depth2mesh convert`` writes unless told otherwise."""

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

    def add_view(self, data: bytes, target: int | None, stride: int | None = None) -> int:
        """Append ``data`` 4-byte aligned as a bufferView; return its index."""
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self.length, "byteLength": len(data)}
        if stride is not None:
            view["byteStride"] = stride
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
    compression: GlbCompression = "none",
    strips: bool = False,
    colored_faces: ArrayLike | None = None,
) -> bytes:
    """Encode a triangle mesh or a point cloud as a binary glTF 2.0 file (GLB).

    The scene holds one node with the mesh and, when ``camera`` is given, a second node named
    "photo camera" at the origin with no rotation (it looks down -Z). The material is PBR
    metallic-roughness with ``metallicFactor`` 0, ``roughnessFactor`` 1, ``baseColorFactor``
    (1, 1, 1, 1) and double-sided; its base colour is the texture when there is one, and glTF
    viewers multiply it with ``COLOR_0`` when there are vertex colours. With ``colors_linear``
    of shape (N, 4) and some alpha below 1 the material is alpha-blended.

    Triangles that repeat a vertex index draw nothing; they are dropped.

    ``compression`` "quantized" stores the vertex data as ``KHR_mesh_quantization`` allows
    (see :mod:`depth2mesh.exchange.quantize`): positions as unsigned shorts (not normalised) on a
    65,535-step grid over their bounding box, whose corner and step become the mesh node's
    ``translation`` and ``scale`` (the camera node stays as it is); texture coordinates and
    linear colours as normalised unsigned shorts; normals as normalised signed bytes; unsigned
    short indices, the triangles split into primitives of at most 65,535 vertices that share
    the material. Positions stay float32 when their bounding box is so much wider than deep
    (more than 13 times) that half a step would exceed 1e-4 of the depth range (the extent
    along z; :func:`position_error_bound`); texture coordinates outside [0, 1] stay float32
    too. "draco" compresses the primitive with ``KHR_draco_mesh_compression`` (DracoPy, the
    ``draco`` extra; see :mod:`depth2mesh.exchange.draco`), positions quantised within the same
    bound. Either extension is
    listed in ``extensionsUsed`` and ``extensionsRequired``.

    ``strips`` writes each primitive's triangles (with "none" or "quantized") as one triangle
    strip (mode 5, :mod:`depth2mesh.exchange.strips`): the triangles in their order, runs of
    triangles that share an edge the way a strip needs joined by triangles that repeat an index
    (they
    have no area; the Khronos validator reports them as information). A pixel grid's rows,
    in :func:`~depth2mesh.geometry.points.grid_faces`' order, take one index per triangle instead of
    three. A primitive whose strip would not be shorter than its list stays a list (mode 4).

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
        compression: "none" (float32 vertex data), "quantized" or "draco", see above.
        strips: Write triangle strips (mode 5) where they are shorter, see above.
        colored_faces: (M,) bool, only with ``texture`` and ``colors_linear``: the triangles
            marked are drawn with their vertex colours and a second material without the
            texture (material 1, "<name> vertex colours"); the others with the texture alone
            (their primitives leave ``COLOR_0`` out, so nothing multiplies the photo). A
            textured mesh whose vertices the photo did not all see (a Poisson surface).

    Returns:
        The GLB file content.

    Raises:
        ValueError: An array has the wrong shape or dtype, holds NaN or infinity, a face
            index is out of range, a normal is not unit length, a colour is outside [0, 1],
            ``uvs`` and ``texture`` are not given together, the texture is not the
            declared image format, or ``compression`` is unknown.
        MissingExtraError: "draco" without DracoPy installed.
    """
    check_compression(compression)
    vertices, triangles = _check_mesh(
        positions, faces, normals, uvs, colors_linear, texture, texture_mime
    )
    groups = _face_groups(faces, colored_faces, vertices, triangles)
    return _assemble_glb(
        vertices,
        groups,
        texture=None if texture is None else bytes(texture),
        texture_mime=texture_mime,
        camera=camera,
        name=name,
        generator=generator,
        compression=compression,
        strips=strips,
    )


def check_compression(compression: str) -> None:
    """Refuse anything but a :data:`GlbCompression`.

    Raises:
        ValueError: ``compression`` is not "none", "quantized" or "draco".
    """
    if compression not in GLB_COMPRESSIONS:
        raise ValueError(
            f"compression must be one of {', '.join(GLB_COMPRESSIONS)}, got {compression!r}"
        )


def position_error_bound(positions: ArrayLike, compression: GlbCompression) -> float:
    """The largest position error that :func:`encode_glb` adds for ``compression``, metres.

    "quantized": half a step of the 65,535 steps over the widest axis of the bounding box, or
    0 when that exceeds :data:`~depth2mesh.exchange.quantize.MAX_RELATIVE_ERROR` of the depth range
    (the extent along z; the positions are then written as float32). "draco": half a step of
    Draco's grid (:func:`depth2mesh.exchange.draco.position_bits`). "none": 0.

    Args:
        positions: (N, 3) float positions in metres, glTF frame; N >= 1.
        compression: The compression.

    Returns:
        The bound, metres (per axis).
    """
    points = np.asarray(positions)
    low, high = bounding_box(points)
    size = high - low
    if compression == "quantized":
        return float(size.max()) / (2 * UINT16_LEVELS) if _quantizable(points) else 0.0
    if compression == "draco":
        from depth2mesh.exchange.draco import position_bits

        bits = position_bits(float(size.max()), float(size[2]))
        return float(size.max()) / (2 * ((1 << bits) - 1))
    return 0.0


def _quantizable(points: NDArray[np.floating]) -> bool:
    """Whether 16-bit positions stay within ``MAX_RELATIVE_ERROR`` of the depth range.

    Args:
        points: (N, 3) float positions, metres, glTF frame (z: along the camera's axis).
    """
    low, high = bounding_box(points)
    size = high - low
    return bool(size.max() / (2 * UINT16_LEVELS) <= MAX_RELATIVE_ERROR * size[2])


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


def _face_groups(
    faces: ArrayLike | None,
    colored_faces: ArrayLike | None,
    vertices: _Vertices,
    triangles: NDArray[np.int64],
) -> list[tuple[NDArray[np.int64], int]]:
    """Split the checked triangles by material: [(triangles, material index)], none empty.

    Without ``colored_faces``: one group, material 0. With it: the unmarked triangles
    (material 0, the texture) then the marked ones (material 1, vertex colours).

    Raises:
        ValueError: ``colored_faces`` without a texture and vertex colours, or not (M,) bool.
    """
    if colored_faces is None:
        return [(triangles, 0)]
    if vertices.uvs is None or vertices.colors is None:
        raise ValueError("colored_faces needs both a texture (with uvs) and colors_linear")
    marks = np.asarray(colored_faces)
    count = 0 if faces is None else np.asarray(faces).reshape(-1, 3).shape[0]
    if marks.dtype != np.bool_ or marks.shape != (count,):
        raise ValueError(f"colored_faces must be a ({count},) bool array, got {marks.shape}")
    if count:  # the degenerate triangles were dropped: drop their marks the same way
        all_faces = np.asarray(faces).reshape(-1, 3)
        distinct = (
            (all_faces[:, 0] != all_faces[:, 1])
            & (all_faces[:, 1] != all_faces[:, 2])
            & (all_faces[:, 2] != all_faces[:, 0])
        )
        marks = marks[distinct]
    groups = [(triangles[~marks], 0), (triangles[marks], 1)]
    return [(part, material) for part, material in groups if part.shape[0]] or [(triangles, 0)]


def _group_attributes(attributes: dict[str, Any], material: int, split: bool) -> dict[str, Any]:
    """The attributes a group's primitives use: the texture's or the vertex colours' only."""
    if not split:
        return attributes
    dropped = "COLOR_0" if material == 0 else "TEXCOORD_0"
    return {name: value for name, value in attributes.items() if name != dropped}


def _assemble_glb(
    vertices: _Vertices,
    groups: list[tuple[NDArray[np.int64], int]],
    *,
    texture: bytes | None,
    texture_mime: str,
    camera: GltfCamera | None,
    name: str,
    generator: str,
    compression: GlbCompression = "none",
    strips: bool = False,
) -> bytes:
    """Build the glTF document and its buffer from checked inputs, and pack them as a GLB.

    The buffer holds, in this order: positions, normals, UVs, colours, indices (per primitive),
    the image (each only when present); with Draco, the compressed primitive instead of the
    vertex data and indices. The order of the calls below fixes it, hence the file's bytes.
    """
    binary = _BinaryBuilder()
    node: dict[str, Any] = {"name": name, "mesh": 0}
    extension = None
    split = len({material for _, material in groups}) > 1 or groups[0][1] != 0
    if compression == "draco" and groups[0][0].shape[0]:
        primitives = [
            _add_draco_primitive(binary, _group_vertices(vertices, material, split), part)
            | {"material": material}
            for part, material in groups
        ]
        extension = DRACO
    elif compression in ("quantized", "draco"):  # Draco needs triangles: points are quantised
        primitives, transform = _add_quantized_primitives(
            binary, vertices, groups, strips=strips, split=split
        )
        node.update(transform)
        extension = QUANTIZATION
    else:
        first = _add_primitive(binary, vertices, groups[0][0], strips=strips)
        every = first["attributes"]
        first.update(
            attributes=_group_attributes(every, groups[0][1], split), material=groups[0][1]
        )
        primitives = [first]
        for part, index in groups[1:]:
            primitive: dict[str, Any] = {
                "attributes": _group_attributes(every, index, split),
                "material": index,
            }
            _add_indices(binary, primitive, part, vertices.count, strips=strips)
            primitives.append(primitive)
    pbr, material = _material(name, blend=vertices.translucent)
    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": generator},
        "scene": 0,
        "scenes": [{"name": name, "nodes": [0]}],
        "nodes": [node],
        "meshes": [{"name": name, "primitives": primitives}],
        "materials": [material],
    }
    if split:
        document["materials"].append(_material(f"{name} vertex colours", blend=False)[1])
    if extension is not None:
        document["extensionsUsed"] = [extension]
        document["extensionsRequired"] = [extension]
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
    binary: _BinaryBuilder, vertices: _Vertices, triangles: NDArray[np.int64], *, strips: bool
) -> dict[str, Any]:
    """Add the vertex attributes, then the indices, to ``binary``; return the primitive.

    Args:
        binary: The buffer being built.
        vertices: The checked vertex arrays.
        triangles: (M, 3) int64 non-degenerate triangles; M = 0 makes a ``POINTS`` primitive.
        strips: Write the triangles as a strip where it is shorter.

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
        _add_indices(binary, primitive, triangles, vertices.count, strips=strips)
    else:
        primitive["mode"] = _MODE_POINTS
    return primitive


@dataclass(frozen=True)
class _SharedAttribute:
    """One vertex attribute of every primitive: a bufferView over all N vertices.

    Attributes:
        view: The bufferView's index.
        stride: Bytes from one vertex to the next (a multiple of 4).
        component_type: The glTF component type.
        accessor_type: "VEC2", "VEC3" or "VEC4".
        normalized: Whether integers are normalised (``q / max``).
        values: (N, K) the stored values (without padding), for POSITION's bounds; else None.
    """

    view: int
    stride: int
    component_type: int
    accessor_type: str
    normalized: bool
    values: NDArray[Any] | None = None

    def accessor(self, chunk: FaceChunk) -> dict[str, Any]:
        """An accessor over this attribute's window of ``chunk``."""
        accessor: dict[str, Any] = {
            "bufferView": self.view,
            "byteOffset": chunk.first_vertex * self.stride,
            "componentType": self.component_type,
            "count": chunk.vertex_count,
            "type": self.accessor_type,
        }
        if self.normalized:
            accessor["normalized"] = True
        if self.values is not None:
            window = self.values[chunk.first_vertex : chunk.first_vertex + chunk.vertex_count]
            columns = range(window.shape[1])
            accessor["min"] = [_json_number(window[:, k].min()) for k in columns]
            accessor["max"] = [_json_number(window[:, k].max()) for k in columns]
        return accessor


def _json_number(value: Any) -> float | int:
    """A numpy scalar as JSON: integers as int, floats as float."""
    return int(value) if np.issubdtype(type(value), np.integer) else float(value)


def _padded(values: NDArray[Any], columns: int) -> NDArray[Any]:
    """``values`` (N, K) with zero columns added up to ``columns`` (4-byte aligned vertices)."""
    if values.shape[1] == columns:
        return np.ascontiguousarray(values)
    padded = np.zeros((values.shape[0], columns), dtype=values.dtype)
    padded[:, : values.shape[1]] = values
    return padded


def _shared(
    binary: _BinaryBuilder,
    values: NDArray[Any],
    component_type: int,
    *,
    normalized: bool,
    bounds: bool = False,
) -> _SharedAttribute:
    """Add ``values`` (N, K), padded to 4-byte vertices, as one strided bufferView."""
    kind = f"VEC{values.shape[1]}"
    columns = -(-values.shape[1] * values.itemsize // 4) * 4 // values.itemsize
    stored = _padded(values, columns).astype(values.dtype.newbyteorder("<"), copy=False)
    stride = columns * values.itemsize
    view = binary.add_view(stored.tobytes(), _ARRAY_BUFFER, stride)
    return _SharedAttribute(
        view, stride, component_type, kind, normalized, values if bounds else None
    )


def _group_vertices(vertices: _Vertices, material: int, split: bool) -> _Vertices:
    """The vertex arrays a group's (Draco) primitive carries (see :func:`_group_attributes`)."""
    if not split:
        return vertices
    if material == 0:
        return _Vertices(vertices.positions, vertices.normals, vertices.uvs, None)
    return _Vertices(vertices.positions, vertices.normals, None, vertices.colors)


def _add_quantized_primitives(
    binary: _BinaryBuilder,
    vertices: _Vertices,
    groups: list[tuple[NDArray[np.int64], int]],
    *,
    strips: bool,
    split: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Add the vertex data quantised (``KHR_mesh_quantization``) and the primitives over it.

    Each attribute is one strided bufferView over all vertices; each primitive's accessors are
    windows of it (:func:`~depth2mesh.exchange.quantize.split_for_short_indices`), so vertices
    shared by two primitives are stored once.

    Args:
        binary: The buffer being built.
        vertices: The checked vertex arrays.
        groups: (M, 3) int64 non-degenerate triangles and the material they use, by group;
            one group with M = 0 makes one ``POINTS`` primitive.
        strips: Write each primitive's triangles as a strip where it is shorter.
        split: The groups use different attributes (:func:`_group_attributes`).

    Returns:
        The primitives, and the mesh node's ``translation`` and ``scale`` (empty when the
        positions stay float32).
    """
    transform: dict[str, Any] = {}
    if _quantizable(vertices.positions):
        quantized = quantize_positions(vertices.positions)
        # not normalised: the node's scale is one step, so that readers which ignore
        # ``normalized`` (trimesh) still get the positions right
        position = _shared(binary, quantized.values, _UNSIGNED_SHORT, normalized=False, bounds=True)
        transform = {
            "translation": [float(v) for v in quantized.translation],
            "scale": [float(v) / UINT16_LEVELS for v in quantized.scale],
        }
    else:
        position = _shared(binary, vertices.positions, _FLOAT, normalized=False, bounds=True)
    attributes = {"POSITION": position}
    if vertices.normals is not None:
        normals = quantize_normals(vertices.normals)
        attributes["NORMAL"] = _shared(binary, normals, _BYTE, normalized=True)
    if vertices.uvs is not None:
        uvs = vertices.uvs
        inside = float(uvs.min(initial=0.0)) >= 0.0 and float(uvs.max(initial=0.0)) <= 1.0
        attributes["TEXCOORD_0"] = (
            _shared(binary, quantize_unit_interval(uvs), _UNSIGNED_SHORT, normalized=True)
            if inside
            else _shared(binary, uvs, _FLOAT, normalized=False)
        )
    if vertices.colors is not None:
        colors = quantize_colors(vertices.colors)
        attributes["COLOR_0"] = _shared(binary, colors, _UNSIGNED_SHORT, normalized=True)

    count = vertices.count
    primitives = []
    for triangles, material in groups:
        used = _group_attributes(attributes, material, split)
        for chunk in _chunks(triangles, count):
            primitive: dict[str, Any] = {
                "attributes": {name: shared.accessor(chunk) for name, shared in used.items()},
                "material": material,
            }
            binary.accessors += list(primitive["attributes"].values())
            first = len(binary.accessors) - len(used)
            primitive["attributes"] = {name: first + i for i, name in enumerate(used)}
            if chunk.faces.shape[0]:
                _add_indices(binary, primitive, chunk.faces, chunk.vertex_count, strips=strips)
            else:
                primitive["mode"] = _MODE_POINTS
            primitives.append(primitive)
    return primitives, transform


def _chunks(triangles: NDArray[np.int64], count: int) -> list[FaceChunk]:
    """The triangles in windows of at most 65,535 vertices (one when that cannot be done)."""
    if not triangles.shape[0] or count <= SHORT_INDEX_VERTICES:
        return [FaceChunk(triangles, 0, count)]
    chunks = split_for_short_indices(triangles)
    if chunks is None:  # a triangle spans more than a window: one primitive, 32-bit indices
        return [FaceChunk(triangles, 0, count)]
    return chunks


def _add_indices(
    binary: _BinaryBuilder,
    primitive: dict[str, Any],
    faces: NDArray[np.int64],
    count: int,
    *,
    strips: bool,
) -> None:
    """Add ``faces`` as the primitive's indices: unsigned short when ``count`` allows it.

    Args:
        binary: The buffer being built.
        primitive: The primitive; gets "indices" and its mode: TRIANGLE_STRIP when
            ``strips`` and the strip is shorter than the list, else TRIANGLES.
        faces: (M, 3) int64 non-degenerate triangles, indices in [0, count); M >= 1.
        count: The number of vertices the primitive's accessors hold.
        strips: Try a triangle strip (:func:`~depth2mesh.exchange.strips.triangles_to_strip`).
    """
    wide = count > SHORT_INDEX_VERTICES
    indices, mode = faces.reshape(-1), _MODE_TRIANGLES
    if strips:
        strip = triangles_to_strip(faces)
        if len(strip) < len(indices):
            indices, mode = strip, _MODE_TRIANGLE_STRIP
    primitive["indices"] = binary.add_accessor(
        indices.astype("<u4" if wide else "<u2"),
        _UNSIGNED_INT if wide else _UNSIGNED_SHORT,
        "SCALAR",
        _ELEMENT_ARRAY_BUFFER,
    )
    primitive["mode"] = mode


def _add_draco_primitive(
    binary: _BinaryBuilder, vertices: _Vertices, triangles: NDArray[np.int64]
) -> dict[str, Any]:
    """Add the mesh compressed with Draco (``KHR_draco_mesh_compression``); return the primitive.

    The accessors describe the decoded data (Draco reorders and may split vertices, so their
    counts are the decoded ones) and point at no bufferView; the compressed bytes are one
    bufferView that the primitive's extension names.

    Raises:
        MissingExtraError: DracoPy is not installed.
    """
    from depth2mesh.exchange.draco import compress_mesh

    compressed = compress_mesh(
        vertices.positions,
        triangles,
        uvs=vertices.uvs,
        normals=vertices.normals,
        colors_linear=vertices.colors,
    )
    view = binary.add_view(compressed.data, None)
    attributes: dict[str, int] = {}
    for semantic, (component_type, kind, normalized) in compressed.accessors.items():
        accessor: dict[str, Any] = {
            "componentType": component_type,
            "count": compressed.vertex_count,
            "type": kind,
        }
        if normalized:
            accessor["normalized"] = True
        if semantic == "POSITION":
            accessor["min"] = [float(v) for v in compressed.position_min]
            accessor["max"] = [float(v) for v in compressed.position_max]
        binary.accessors.append(accessor)
        attributes[semantic] = len(binary.accessors) - 1
    wide = compressed.vertex_count > SHORT_INDEX_VERTICES
    binary.accessors.append(
        {
            "componentType": _UNSIGNED_INT if wide else _UNSIGNED_SHORT,
            "count": 3 * compressed.face_count,
            "type": "SCALAR",
        }
    )
    return {
        "attributes": attributes,
        "indices": len(binary.accessors) - 1,
        "material": 0,
        "mode": _MODE_TRIANGLES,
        "extensions": {DRACO: {"bufferView": view, "attributes": compressed.attribute_ids}},
    }


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


def read_glb_json(path: str | Path) -> dict[str, Any]:
    """Read only the JSON chunk of a GLB file (its header and first chunk, not the buffer).

    Raises:
        ValueError: The file does not start with a version 2 GLB header and a JSON chunk.
        OSError: The file cannot be read.
    """
    with open(path, "rb") as stream:
        head = stream.read(20)
        if len(head) < 20:
            raise ValueError(f"{path} is shorter than a GLB header")
        magic, version, _ = struct.unpack_from("<4sII", head, 0)
        length, kind = struct.unpack_from("<II", head, 12)
        if magic != _GLB_MAGIC or version != _GLB_VERSION or kind != _CHUNK_JSON:
            raise ValueError(f"{path} is not a glTF 2 GLB with a JSON chunk first")
        text = stream.read(length)
    try:
        document = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: the GLB JSON chunk is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise ValueError(f"{path}: the GLB JSON chunk is not an object")
    return document


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
