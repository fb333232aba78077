"""Reading GLB files back into arrays: float32, quantised (``KHR_mesh_quantization``) or Draco.

:func:`read_glb_mesh` gives the preview, the web page and the tests one mesh in the scene's
coordinates (glTF axes: Y up, -Z forward, metres) whatever the file's compression: every
primitive of every mesh node, its accessors dequantised (``normalized`` integers divided by
their largest value), its node transforms applied. It reads what
:func:`depth2mesh.exchange.gltf.encode_glb` writes and plain glTF 2.0 meshes like it; it is not a
general glTF importer (no sparse
accessors, skins or morph targets). Draco primitives need DracoPy (the ``draco`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from depth2mesh.exchange.gltf import DRACO, GltfCamera, split_glb
from depth2mesh.exchange.strips import strip_to_triangles

__all__ = [
    "GlbMesh",
    "accessor_array",
    "glb_part_sizes",
    "node_matrices",
    "position_bounds",
    "read_glb_mesh",
]

_COMPONENTS: Final[dict[int, np.dtype[Any]]] = {
    5120: np.dtype("<i1"),
    5121: np.dtype("<u1"),
    5122: np.dtype("<i2"),
    5123: np.dtype("<u2"),
    5125: np.dtype("<u4"),
    5126: np.dtype("<f4"),
}
_WIDTHS: Final = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


@dataclass(frozen=True)
class GlbMesh:
    """Every triangle (or point) of a GLB's scene as one mesh, in scene coordinates.

    Primitives are concatenated in file order; vertices that two primitives share (the
    windows of a split grid) appear once per primitive. Where some primitives lack an
    attribute that others have, glTF's defaults fill in: texture coordinates (0, 0), colour
    white; normals are kept only when every primitive has them.

    Attributes:
        positions: (N, 3) float32 metres, glTF axes, node transforms applied.
        faces: (M, 3) int64 indices into ``positions``; (0, 3) for a point cloud.
        uvs: (N, 2) float32 texture coordinates (glTF convention), or None.
        normals: (N, 3) float32 unit normals in scene coordinates, or None.
        colors_linear: (N, 3) or (N, 4) float32 linear colours in [0, 1], or None.
        texture: The base-colour image's bytes as stored, or None.
        texture_mime: Its MIME type, or None.
        camera: The first perspective camera, or None.
        extensions: The file's ``extensionsUsed``.
        face_materials: (M,) int64, the material index of each face's primitive (0 where a
            primitive names none).
    """

    positions: NDArray[np.float32]
    faces: NDArray[np.int64]
    uvs: NDArray[np.float32] | None = None
    normals: NDArray[np.float32] | None = None
    colors_linear: NDArray[np.float32] | None = None
    texture: bytes | None = None
    texture_mime: str | None = None
    camera: GltfCamera | None = None
    extensions: tuple[str, ...] = ()
    face_materials: NDArray[np.int64] | None = None


def accessor_array(document: dict[str, Any], binary: bytes, index: int) -> NDArray[np.float32]:
    """Read accessor ``index`` as float32, dequantised.

    Normalised integers become ``q / max`` (signed: at least -1); other integers keep their
    values.

    Args:
        document: The glTF JSON document.
        binary: The GLB's binary chunk.
        index: The accessor's index.

    Returns:
        (count, K) float32.

    Raises:
        ValueError: The accessor is sparse, has no bufferView, or runs past its data.
    """
    raw = accessor_raw(document, binary, index)
    spec = document["accessors"][index]
    values = raw.astype(np.float32)
    if spec.get("normalized") and raw.dtype.kind in "iu":
        values /= np.float32(np.iinfo(raw.dtype).max)
        if raw.dtype.kind == "i":
            np.maximum(values, -1.0, out=values)
    return values


def accessor_raw(document: dict[str, Any], binary: bytes, index: int) -> NDArray[Any]:
    """Read accessor ``index`` with its stored dtype: (count, K), strides and offsets applied.

    Raises:
        ValueError: The accessor is sparse, has no bufferView, or runs past its data.
    """
    spec = document["accessors"][index]
    if "sparse" in spec or "bufferView" not in spec:
        raise ValueError(f"accessor {index} has no plain bufferView (sparse or compressed)")
    dtype = _COMPONENTS[spec["componentType"]]
    width = _WIDTHS[spec["type"]]
    view = document["bufferViews"][spec["bufferView"]]
    stride = view.get("byteStride", width * dtype.itemsize)
    start = view.get("byteOffset", 0) + spec.get("byteOffset", 0)
    count = spec["count"]
    end = start + stride * (count - 1) + width * dtype.itemsize
    if count < 1 or end > view.get("byteOffset", 0) + view["byteLength"] or end > len(binary):
        raise ValueError(f"accessor {index} runs past its bufferView")
    rows = np.lib.stride_tricks.as_strided(
        np.frombuffer(binary, np.uint8, count=end - start, offset=start),
        shape=(count, width * dtype.itemsize),
        strides=(stride, 1),
    )
    values: NDArray[Any] = np.ascontiguousarray(rows).view(dtype).reshape(count, width)
    return values


def node_matrices(document: dict[str, Any]) -> list[tuple[int, NDArray[np.float64]]]:
    """The scene's nodes with their world matrices, parents before children.

    Returns:
        (node index, (4, 4) float64 node-to-scene matrix) for every node of the default scene.
    """
    scene = document.get("scenes", [{}])[document.get("scene", 0)]
    found: list[tuple[int, NDArray[np.float64]]] = []
    stack = [(index, np.eye(4)) for index in reversed(scene.get("nodes", []))]
    while stack:
        index, parent = stack.pop()
        node = document["nodes"][index]
        world = parent @ _local_matrix(node)
        found.append((index, world))
        stack += [(child, world) for child in reversed(node.get("children", []))]
    return found


def _local_matrix(node: dict[str, Any]) -> NDArray[np.float64]:
    """A node's local transform: its ``matrix`` (column-major), or T * R * S."""
    if "matrix" in node:
        return np.asarray(node["matrix"], dtype=np.float64).reshape(4, 4).T
    x, y, z, w = node.get("rotation", [0.0, 0.0, 0.0, 1.0])
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    matrix = np.eye(4)
    matrix[:3, :3] = rotation * np.asarray(node.get("scale", [1.0, 1.0, 1.0]))
    matrix[:3, 3] = node.get("translation", [0.0, 0.0, 0.0])
    return matrix


def position_bounds(document: dict[str, Any]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The scene's bounding box from the POSITION accessors' ``min``/``max`` (no data read).

    Each accessor's box (dequantised when normalised) is carried through its node's world
    matrix by its eight corners.

    Args:
        document: The glTF JSON document.

    Returns:
        (3,) float64 minimum and maximum corners, metres, scene coordinates.

    Raises:
        ValueError: No mesh in the scene, or a POSITION accessor without min/max.
    """
    corners = []
    for index, world in node_matrices(document):
        node = document["nodes"][index]
        if "mesh" not in node:
            continue
        for primitive in document["meshes"][node["mesh"]]["primitives"]:
            spec = document["accessors"][primitive["attributes"]["POSITION"]]
            if "min" not in spec or "max" not in spec:
                raise ValueError("the GLB has a POSITION accessor without min/max bounds")
            box = np.array([spec["min"], spec["max"]], dtype=np.float64)
            if spec.get("normalized") and spec["componentType"] != 5126:
                box = np.maximum(box / np.iinfo(_COMPONENTS[spec["componentType"]]).max, -1.0)
            pick = np.array([[i >> k & 1 for k in range(3)] for i in range(8)])
            points = box[pick, np.arange(3)]
            corners.append(points @ world[:3, :3].T + world[:3, 3])
    if not corners:
        raise ValueError("the GLB holds no mesh")
    every = np.concatenate(corners)
    return every.min(axis=0), every.max(axis=0)


def read_glb_mesh(data: bytes) -> GlbMesh:
    """Read every mesh of a GLB's default scene into one mesh in scene coordinates.

    Args:
        data: The GLB file content.

    Returns:
        The mesh (see :class:`GlbMesh`).

    Raises:
        ValueError: Not a GLB, no mesh in the scene, or data that cannot be read.
        ParameterError: A Draco file without DracoPy installed.
    """
    document, binary = split_glb(data)
    parts: list[dict[str, NDArray[Any]]] = []
    for index, world in node_matrices(document):
        node = document["nodes"][index]
        if "mesh" not in node:
            continue
        for primitive in document["meshes"][node["mesh"]]["primitives"]:
            part = _transformed(_primitive_arrays(document, binary, primitive), world)
            part["materials"] = np.full(len(part["faces"]), primitive.get("material", 0))
            parts.append(part)
    if not parts:
        raise ValueError("the GLB's scene holds no mesh")
    names = set().union(*parts) - {"faces", "materials"}
    if any("normals" not in part for part in parts):
        names.discard("normals")
    for part in parts:  # glTF's defaults where a primitive lacks an attribute
        count = len(part["positions"])
        if "uvs" in names and "uvs" not in part:
            part["uvs"] = np.zeros((count, 2), np.float32)
        if "colors_linear" in names and "colors_linear" not in part:
            width = max(p["colors_linear"].shape[1] for p in parts if "colors_linear" in p)
            part["colors_linear"] = np.ones((count, width), np.float32)
    offsets = np.cumsum([0] + [len(part["positions"]) for part in parts[:-1]])
    faces = np.concatenate(
        [part["faces"] + offset for part, offset in zip(parts, offsets, strict=True)]
    )
    merged = {name: np.concatenate([part[name] for part in parts]) for name in names}
    texture, mime = _texture(document, binary)
    return GlbMesh(
        positions=merged["positions"].astype(np.float32),
        faces=faces.astype(np.int64),
        uvs=merged.get("uvs"),
        normals=merged.get("normals"),
        colors_linear=merged.get("colors_linear"),
        texture=texture,
        texture_mime=mime,
        camera=_camera(document),
        extensions=tuple(document.get("extensionsUsed", [])),
        face_materials=np.concatenate([part["materials"] for part in parts]).astype(np.int64),
    )


def _primitive_arrays(
    document: dict[str, Any], binary: bytes, primitive: dict[str, Any]
) -> dict[str, NDArray[Any]]:
    """One primitive's positions, faces and optional attributes, in the node's frame."""
    draco = primitive.get("extensions", {}).get(DRACO)
    if draco is not None:
        from depth2mesh.exchange.draco import decompress_mesh

        view = document["bufferViews"][draco["bufferView"]]
        start = view.get("byteOffset", 0)
        decoded = decompress_mesh(binary[start : start + view["byteLength"]], draco["attributes"])
        arrays: dict[str, NDArray[Any]] = {"positions": decoded.positions, "faces": decoded.faces}
        for name in ("uvs", "normals", "colors_linear"):
            value = getattr(decoded, name)
            if value is not None:
                arrays[name] = value
        return arrays
    attributes = primitive["attributes"]
    arrays = {"positions": accessor_array(document, binary, attributes["POSITION"])}
    for semantic, name in (
        ("TEXCOORD_0", "uvs"),
        ("NORMAL", "normals"),
        ("COLOR_0", "colors_linear"),
    ):
        if semantic in attributes:
            arrays[name] = accessor_array(document, binary, attributes[semantic])
    mode = primitive.get("mode", 4)
    if mode in (4, 5) and "indices" in primitive:
        indices = accessor_raw(document, binary, primitive["indices"]).reshape(-1)
    elif mode in (4, 5):
        indices = np.arange(len(arrays["positions"]))
    elif mode == 0:
        indices = np.zeros(0, dtype=np.int64)
    else:
        raise ValueError(f"primitive mode {mode} is not read (only triangles, strips, points)")
    if mode == 5:  # a strip's degenerate joins draw nothing: dropped
        arrays["faces"] = strip_to_triangles(indices)
    else:
        arrays["faces"] = indices.astype(np.int64).reshape(-1, 3)
    return arrays


def _transformed(arrays: dict[str, NDArray[Any]], world: NDArray[np.float64]) -> dict[str, Any]:
    """Apply a node's matrix to positions (and its inverse transpose to normals)."""
    result = dict(arrays)
    positions = arrays["positions"].astype(np.float64)
    result["positions"] = positions @ world[:3, :3].T + world[:3, 3]
    if "normals" in arrays:
        normals = arrays["normals"].astype(np.float64) @ np.linalg.inv(world[:3, :3])
        lengths = np.linalg.norm(normals, axis=1, keepdims=True)
        result["normals"] = (normals / np.where(lengths > 0, lengths, 1.0)).astype(np.float32)
    return result


def _texture(document: dict[str, Any], binary: bytes) -> tuple[bytes | None, str | None]:
    """The first material's base-colour image bytes and MIME type, if any."""
    for material in document.get("materials", []):
        info = material.get("pbrMetallicRoughness", {}).get("baseColorTexture")
        if info is None:
            continue
        image = document["images"][document["textures"][info["index"]]["source"]]
        view = document["bufferViews"][image["bufferView"]]
        start = view.get("byteOffset", 0)
        return binary[start : start + view["byteLength"]], image.get("mimeType")
    return None, None


def _camera(document: dict[str, Any]) -> GltfCamera | None:
    """The first perspective camera, or None."""
    for camera in document.get("cameras", []):
        perspective = camera.get("perspective")
        if camera.get("type") == "perspective" and perspective is not None:
            return GltfCamera(
                yfov=float(perspective["yfov"]),
                aspect_ratio=float(perspective.get("aspectRatio", 1.0)),
                znear=float(perspective["znear"]),
                zfar=None if "zfar" not in perspective else float(perspective["zfar"]),
            )
    return None


def glb_part_sizes(data: bytes) -> dict[str, int]:
    """Bytes of each part of a GLB: what its bufferViews hold, by what uses them.

    Keys: "positions", "normals", "uvs", "colors", "indices", "texture", "draco" (a Draco
    primitive's compressed vertex data and indices together), "other" (the JSON chunk,
    headers and padding); each is present with 0 when nothing uses it. They add up to
    ``len(data)``.

    Raises:
        ValueError: ``data`` is not a GLB.
    """
    document, _ = split_glb(data)
    roles: dict[int, str] = {}
    semantic = {"POSITION": "positions", "NORMAL": "normals", "TEXCOORD_0": "uvs"}
    semantic["COLOR_0"] = "colors"
    accessors = document.get("accessors", [])
    for mesh in document.get("meshes", []):
        for primitive in mesh["primitives"]:
            draco = primitive.get("extensions", {}).get(DRACO)
            if draco is not None:
                roles[draco["bufferView"]] = "draco"
            for name, index in primitive["attributes"].items():
                if "bufferView" in accessors[index]:
                    roles[accessors[index]["bufferView"]] = semantic.get(name, "other")
            if "indices" in primitive and "bufferView" in accessors[primitive["indices"]]:
                roles[accessors[primitive["indices"]]["bufferView"]] = "indices"
    for image in document.get("images", []):
        if "bufferView" in image:
            roles[image["bufferView"]] = "texture"
    sizes = dict.fromkeys(
        ("positions", "normals", "uvs", "colors", "indices", "texture", "draco", "other"), 0
    )
    for index, view in enumerate(document.get("bufferViews", [])):
        sizes[roles.get(index, "other")] += int(view["byteLength"])
    sizes["other"] += len(data) - sum(sizes.values())
    return sizes
