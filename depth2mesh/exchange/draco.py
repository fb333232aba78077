"""Draco mesh compression for GLB files (``KHR_draco_mesh_compression``), through DracoPy.

DracoPy is optional: ``pip install 'depth2mesh[draco]'``. Only this module imports it.
:func:`compress_mesh` compresses one triangle mesh and decodes the result once, because the
glTF accessors must state what a decoder gets back (Draco reorders vertices and splits some at
non-manifold corners); :func:`decompress_mesh` is the reader's side.

Draco quantises positions on a cube grid over the mesh's bounding box: :func:`position_bits`
chooses enough bits that half a step stays within
:data:`~depth2mesh.exchange.quantize.MAX_RELATIVE_ERROR` of the depth range (the extent along z).
Texture coordinates take 16 bits (1/65535 of the photo), normals 10; linear colours are kept
as 16-bit integers (a generic attribute, no loss beyond that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from depth2mesh.errors import ParameterError
from depth2mesh.exchange.quantize import MAX_RELATIVE_ERROR, UINT16_LEVELS, quantize_colors

__all__ = [
    "CompressedMesh",
    "DecodedMesh",
    "compress_mesh",
    "decompress_mesh",
    "draco_installed",
    "position_bits",
    "require_draco",
]

MIN_POSITION_BITS: Final = 12
"""Fewest position bits used, whatever the scene."""

MAX_POSITION_BITS: Final = 24
"""Most position bits used (a flat scene's depth range is 0: it gets these)."""

UV_BITS: Final = 16
"""Draco quantisation bits of texture coordinates."""

NORMAL_BITS: Final = 10
"""Draco quantisation bits of normals."""

COMPRESSION_LEVEL: Final = 7
"""Draco's speed/size trade-off, 0 (fastest) to 10 (smallest)."""

_FLOAT, _UNSIGNED_SHORT = 5126, 5123
_DRACO_POSITION, _DRACO_NORMAL, _DRACO_TEXCOORD = 0, 1, 3
_COLOR_NAME = "COLOR_0"


def draco_installed() -> bool:
    """Whether DracoPy can be imported."""
    try:
        import DracoPy  # noqa: F401
    except ImportError:
        return False
    return True


def require_draco(parameter: str = "glb_compression") -> None:
    """Refuse Draco when DracoPy is missing, naming the parameter that asked for it.

    Raises:
        ParameterError: DracoPy is not installed.
    """
    if not draco_installed():
        raise ParameterError(
            f"{{{parameter}}} 'draco' needs DracoPy: pip install 'depth2mesh[draco]' "
            "(or use quantized, the default)",
            parameter,
        )


def position_bits(size: float, depth_range: float) -> int:
    """Bits per position component that keep Draco's error within the relative bound.

    Draco quantises on a cube of side ``size`` with ``2**bits - 1`` steps; the error is half
    a step.

    Args:
        size: The widest extent of the bounding box, metres, >= 0.
        depth_range: The extent along z, metres, >= 0.

    Returns:
        Bits in [:data:`MIN_POSITION_BITS`, :data:`MAX_POSITION_BITS`].
    """
    allowed = 2.0 * MAX_RELATIVE_ERROR * depth_range
    if size <= 0.0:
        return MIN_POSITION_BITS
    if allowed <= 0.0:
        return MAX_POSITION_BITS
    bits = math.ceil(math.log2(size / allowed + 1.0))
    return min(max(bits, MIN_POSITION_BITS), MAX_POSITION_BITS)


@dataclass(frozen=True)
class CompressedMesh:
    """A Draco-compressed mesh and what its glTF accessors must say.

    Attributes:
        data: The Draco bytes.
        vertex_count: Vertices a decoder gets back.
        face_count: Triangles a decoder gets back.
        position_min: (3,) float64 minimum corner of the decoded positions, metres.
        position_max: (3,) float64 maximum corner.
        attribute_ids: Draco attribute id per glTF semantic ("POSITION", ...).
        accessors: (componentType, type, normalized) per glTF semantic.
    """

    data: bytes
    vertex_count: int
    face_count: int
    position_min: NDArray[np.float64]
    position_max: NDArray[np.float64]
    attribute_ids: dict[str, int]
    accessors: dict[str, tuple[int, str, bool]]


@dataclass(frozen=True)
class DecodedMesh:
    """A decoded Draco mesh (see :func:`decompress_mesh`).

    Attributes:
        positions: (N, 3) float32 metres.
        faces: (M, 3) int64.
        uvs: (N, 2) float32, or None.
        normals: (N, 3) float32, or None.
        colors_linear: (N, 3) or (N, 4) float32 linear colours in [0, 1], or None.
    """

    positions: NDArray[np.float32]
    faces: NDArray[np.int64]
    uvs: NDArray[np.float32] | None = None
    normals: NDArray[np.float32] | None = None
    colors_linear: NDArray[np.float32] | None = None


def compress_mesh(
    positions: NDArray[np.float32],
    faces: NDArray[np.int64],
    *,
    uvs: NDArray[np.float32] | None = None,
    normals: NDArray[np.float32] | None = None,
    colors_linear: NDArray[np.float32] | None = None,
) -> CompressedMesh:
    """Compress a triangle mesh with Draco.

    Args:
        positions: (N, 3) float32 metres (glTF frame: z is the depth axis).
        faces: (M, 3) int64 indices, M >= 1.
        uvs: (N, 2) float32 texture coordinates, or None.
        normals: (N, 3) float32 unit normals, or None.
        colors_linear: (N, 3) or (N, 4) float32 linear colours in [0, 1], or None.

    Returns:
        The compressed mesh and its decoded counts, bounds and attribute ids.

    Raises:
        ParameterError: DracoPy is not installed.
    """
    require_draco()
    import DracoPy

    points = np.asarray(positions, dtype=np.float64)
    size = np.ptp(points, axis=0)
    options: dict[str, Any] = {
        "quantization_bits": position_bits(float(size.max()), float(size[2])),
        "compression_level": COMPRESSION_LEVEL,
    }
    if uvs is not None:
        options.update(tex_coord=np.asarray(uvs, np.float64), tex_coord_quantization_bits=UV_BITS)
    if normals is not None:
        options.update(
            normals=np.asarray(normals, np.float64), normal_quantization_bits=NORMAL_BITS
        )
    if colors_linear is not None:
        options["generic_attributes"] = {_COLOR_NAME: quantize_colors(colors_linear)}
    data = bytes(DracoPy.encode(points, np.asarray(faces, np.uint32), **options))
    decoded = DracoPy.decode(data)
    restored = np.asarray(decoded.points, dtype=np.float64)
    ids, accessors = _attribute_map(decoded, colors_linear)
    return CompressedMesh(
        data=data,
        vertex_count=int(restored.shape[0]),
        face_count=int(np.asarray(decoded.faces).shape[0]),
        position_min=restored.min(axis=0),
        position_max=restored.max(axis=0),
        attribute_ids=ids,
        accessors=accessors,
    )


def _attribute_map(
    decoded: Any, colors_linear: NDArray[np.float32] | None
) -> tuple[dict[str, int], dict[str, tuple[int, str, bool]]]:
    """The Draco attribute id and the accessor (type, normalisation) of each glTF semantic."""
    by_type = {_DRACO_POSITION: "POSITION", _DRACO_NORMAL: "NORMAL", _DRACO_TEXCOORD: "TEXCOORD_0"}
    kinds = {
        "POSITION": (_FLOAT, "VEC3", False),
        "NORMAL": (_FLOAT, "VEC3", False),
        "TEXCOORD_0": (_FLOAT, "VEC2", False),
    }
    ids: dict[str, int] = {}
    accessors: dict[str, tuple[int, str, bool]] = {}
    for attribute in decoded.attributes:
        semantic = by_type.get(attribute["attribute_type"])
        if attribute.get("name") == _COLOR_NAME and colors_linear is not None:
            semantic = _COLOR_NAME
            kinds[semantic] = (_UNSIGNED_SHORT, f"VEC{colors_linear.shape[1]}", True)
        if semantic is not None:
            ids[semantic] = int(attribute["unique_id"])
            accessors[semantic] = kinds[semantic]
    order = ("POSITION", "NORMAL", "TEXCOORD_0", _COLOR_NAME)
    ordered = {name: accessors[name] for name in order if name in accessors}
    return {name: ids[name] for name in ordered}, ordered


def decompress_mesh(data: bytes, attribute_ids: dict[str, int]) -> DecodedMesh:
    """Decode a Draco mesh as ``KHR_draco_mesh_compression`` describes it.

    Args:
        data: The Draco bytes of one primitive.
        attribute_ids: The extension's ``attributes``: Draco attribute id per glTF semantic.

    Returns:
        The decoded arrays (float32; colours as linear floats in [0, 1]).

    Raises:
        ParameterError: DracoPy is not installed.
        ValueError: The data does not decode, or lacks an attribute it names.
    """
    require_draco()
    import DracoPy

    try:
        decoded = DracoPy.decode(bytes(data))
    except Exception as error:  # DracoPy raises its own, undocumented, failure types
        raise ValueError(f"the Draco data does not decode: {error}") from error
    by_id = {int(a["unique_id"]): a for a in decoded.attributes}
    arrays: dict[str, NDArray[Any]] = {}
    for semantic, draco_id in attribute_ids.items():
        if draco_id not in by_id:
            raise ValueError(f"the Draco data has no attribute {draco_id} ({semantic})")
        arrays[semantic] = np.asarray(by_id[draco_id]["data"])
    positions = arrays.get("POSITION", np.asarray(decoded.points))
    colors = arrays.get(_COLOR_NAME)
    if colors is not None:
        scale = UINT16_LEVELS if colors.dtype == np.uint16 else np.iinfo(colors.dtype).max
        colors = colors.astype(np.float32) / np.float32(scale)
    return DecodedMesh(
        positions=positions.astype(np.float32),
        faces=np.asarray(decoded.faces, dtype=np.int64).reshape(-1, 3),
        uvs=None if "TEXCOORD_0" not in arrays else arrays["TEXCOORD_0"].astype(np.float32),
        normals=None if "NORMAL" not in arrays else arrays["NORMAL"].astype(np.float32),
        colors_linear=colors,
    )
