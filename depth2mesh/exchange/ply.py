"""Binary PLY encoding: numpy arrays in, file bytes out.

The encoders write nothing to disk: the caller writes the bytes (atomically). Files are
``binary_little_endian 1.0``. Coordinates are used as given (depth2mesh passes the same
Y-up, -Z-forward metre axes as its GLB files, so the two overlay); colours are sRGB uint8.

Vertex properties, in this order: ``float x, y, z``; ``uchar red, green, blue`` when colours
are given; ``float nx, ny, nz`` when normals are given. Meshes add a ``face`` element with
``property list uchar int vertex_indices``, which Open3D, trimesh, Blender and MeshLab read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from depth2mesh.geometry.points import unit_lengths

__all__ = ["encode_ply_mesh", "encode_ply_points"]


def _float_array(values: ArrayLike, name: str, rows: int | None = None) -> NDArray[np.float32]:
    """Return ``values`` as a finite float32 (N, 3) array, checked."""
    array = np.asarray(values)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {array.shape}")
    if rows is not None and array.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows (one per vertex), got {array.shape[0]}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} must be a float array, got dtype {array.dtype}")
    result = array.astype(np.float32)
    if not np.isfinite(result).all():
        raise ValueError(f"{name} must be finite, got NaN or infinity (or float32 overflow)")
    return result


def _colors(values: ArrayLike, rows: int) -> NDArray[np.uint8]:
    """Return sRGB colours as a uint8 (N, 3) array, checked."""
    array = np.asarray(values)
    if array.ndim != 2 or array.shape != (rows, 3):
        raise ValueError(f"colors must have shape ({rows}, 3), got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"colors must be an integer array (sRGB 0-255), got dtype {array.dtype}")
    if array.size and (int(array.min()) < 0 or int(array.max()) > 255):
        raise ValueError(
            f"colors must be in [0, 255], got values in [{int(array.min())}, {int(array.max())}]"
        )
    return array.astype(np.uint8)


def _normals(values: ArrayLike, rows: int) -> NDArray[np.float32]:
    """Return unit normals as a float32 (N, 3) array, checked."""
    normals = _float_array(values, "normals", rows)
    unit_lengths(normals)
    return normals


def _vertex_element(
    points: NDArray[np.float32],
    colors: NDArray[np.uint8] | None,
    normals: NDArray[np.float32] | None,
) -> tuple[list[str], bytes]:
    """Build the vertex element: its header lines and its packed little-endian records."""
    fields: list[tuple[str, str]] = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    lines = ["property float x", "property float y", "property float z"]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
        lines += ["property uchar red", "property uchar green", "property uchar blue"]
    if normals is not None:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
        lines += ["property float nx", "property float ny", "property float nz"]
    records = np.empty(points.shape[0], dtype=np.dtype(fields))  # packed, no alignment
    for axis, key in enumerate("xyz"):
        records[key] = points[:, axis]
    if colors is not None:
        for channel, key in enumerate(("red", "green", "blue")):
            records[key] = colors[:, channel]
    if normals is not None:
        for axis, key in enumerate(("nx", "ny", "nz")):
            records[key] = normals[:, axis]
    return [f"element vertex {points.shape[0]}", *lines], records.tobytes()


def _header(lines: list[str]) -> bytes:
    """Return the PLY header for the given element and property lines."""
    head = [
        "ply",
        "format binary_little_endian 1.0",
        "comment written by depth2mesh",
        *lines,
        "end_header",
    ]
    return ("\n".join(head) + "\n").encode("ascii")


def encode_ply_points(
    points: ArrayLike, colors: ArrayLike, *, normals: ArrayLike | None = None
) -> bytes:
    """Encode a coloured point cloud as a binary little-endian PLY file.

    Args:
        points: (N, 3) float32 positions in metres.
        colors: (N, 3) uint8 sRGB colours (any integer dtype with values in [0, 255]).
        normals: (N, 3) float32 unit normals; lengths within 1e-3 of 1 are accepted.

    Returns:
        The PLY file content: a ``vertex`` element with float ``x y z``, uchar ``red green
        blue`` and, with normals, float ``nx ny nz``.

    Raises:
        ValueError: An array has the wrong shape or dtype, holds NaN or infinity, a colour is
            outside [0, 255], or a normal is not unit length.
    """
    xyz = _float_array(points, "points")
    rgb = _colors(colors, xyz.shape[0])
    unit = None if normals is None else _normals(normals, xyz.shape[0])
    lines, body = _vertex_element(xyz, rgb, unit)
    return _header(lines) + body


def encode_ply_mesh(
    vertices: ArrayLike,
    faces: ArrayLike,
    *,
    colors: ArrayLike | None = None,
    normals: ArrayLike | None = None,
) -> bytes:
    """Encode a triangle mesh as a binary little-endian PLY file.

    Args:
        vertices: (N, 3) float32 positions in metres.
        faces: (M, 3) integer vertex indices of counter-clockwise triangles, in [0, N);
            M may be 0.
        colors: (N, 3) uint8 sRGB vertex colours (any integer dtype with values in
            [0, 255]).
        normals: (N, 3) float32 unit vertex normals; lengths within 1e-3 of 1 are accepted.

    Returns:
        The PLY file content: the ``vertex`` element (as in :func:`encode_ply_points`, the
        colours and normals only when given) and a ``face`` element with
        ``property list uchar int vertex_indices``.

    Raises:
        ValueError: An array has the wrong shape or dtype, holds NaN or infinity, a face
            index is out of range, a colour is outside [0, 255], or a normal is not unit
            length.
    """
    xyz = _float_array(vertices, "vertices")
    count = xyz.shape[0]
    rgb = None if colors is None else _colors(colors, count)
    unit = None if normals is None else _normals(normals, count)
    triangles: NDArray[Any] = np.asarray(faces)
    if triangles.size == 0:
        triangles = np.zeros((0, 3), dtype=np.int64)
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        raise ValueError(f"faces must have shape (M, 3), got {triangles.shape}")
    if not np.issubdtype(triangles.dtype, np.integer):
        raise ValueError(f"faces must be an integer array, got dtype {triangles.dtype}")
    if triangles.size:
        low, high = int(triangles.min()), int(triangles.max())
        if low < 0 or high >= count:
            raise ValueError(
                f"face indices must be in [0, {count - 1}], got values in [{low}, {high}]"
            )
    lines, body = _vertex_element(xyz, rgb, unit)
    records = np.empty(
        triangles.shape[0], dtype=np.dtype([("count", "u1"), ("vertex_indices", "<i4", (3,))])
    )
    records["count"] = 3
    records["vertex_indices"] = triangles
    lines += [f"element face {triangles.shape[0]}", "property list uchar int vertex_indices"]
    return _header(lines) + body + records.tobytes()
