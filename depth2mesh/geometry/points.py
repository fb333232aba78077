"""Geometry on pixel grids: back-projection, normals, mesh faces, colours, axes.

Conventions: the OpenCV camera frame (x right, y down, z forward, metres) with pixel centres at
integer ``(u, v)``; ``u`` is the column, ``v`` the row; depth is the distance along +z in
metres. The glTF axes ``(x, -y, -z)`` are applied at export time only, never here.

All functions are pure and vectorised over numpy arrays.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from depth2mesh.geometry.camera import Intrinsics

DEFAULT_EDGE_THRESHOLD: Final = 1.1
"""Largest depth ratio (max / min of a triangle's corners) of a kept grid-mesh triangle.

1.1 keeps smooth surfaces, including floors and walls seen at a grazing angle (a few percent
of depth change per pixel), and cuts the triangles that would stretch across an occlusion
boundary, where the depth changes by more than 10 % from one pixel to the next.
"""


def depth_to_points(depth: npt.ArrayLike, intrinsics: Intrinsics) -> NDArray[np.float32]:
    """Back-project a depth map to 3D points in the OpenCV camera frame.

    ``X = (u - cx) * Z / fx``, ``Y = (v - cy) * Z / fy``, ``Z = depth`` for the pixel at column
    ``u``, row ``v`` (pixel centres at integer coordinates), computed in float64. Non-finite
    depth gives non-finite points.

    Args:
        depth: (H, W) any real dtype, depth along +z in metres.
        intrinsics: The camera; its ``(height, width)`` must be the depth's shape.

    Returns:
        (H, W, 3) float32 points ``(X, Y, Z)`` in metres.

    Raises:
        ValueError: The depth's shape is not ``(intrinsics.height, intrinsics.width)``.
    """
    z = np.asarray(depth)
    expected = (intrinsics.height, intrinsics.width)
    if z.shape != expected:
        raise ValueError(
            f"depth must have the intrinsics' shape (height, width) = {expected}, got {z.shape}"
        )
    z = z.astype(np.float64)
    u = (np.arange(intrinsics.width, dtype=np.float64) - intrinsics.cx) / intrinsics.fx
    v = (np.arange(intrinsics.height, dtype=np.float64) - intrinsics.cy) / intrinsics.fy
    points = np.empty((*expected, 3), dtype=np.float32)
    points[..., 0] = u[None, :] * z
    points[..., 1] = v[:, None] * z
    points[..., 2] = z
    return points


def camera_facing_normals(
    points: npt.ArrayLike, *, valid: npt.ArrayLike | None = None
) -> NDArray[np.float32]:
    """Estimate unit normals of a point grid, turned towards the camera at the origin.

    The normal is the cross product of the grid's derivatives along ``u`` and ``v``: central
    differences where both neighbours are usable, one-sided differences at the image border or
    next to an unusable neighbour. It is flipped where needed so that
    ``dot(normal, point) <= 0``. Where it cannot be computed (a pixel left out by ``valid``, no
    usable neighbour along ``u`` or ``v``, or a degenerate cross product) it falls back to the
    direction to the camera, ``-point / |point|``, and to ``(0, 0, -1)`` for a point at the
    origin or not finite.

    Args:
        points: (H, W, 3) any real dtype, points in the camera frame, metres.
        valid: (H, W) bool, optional: pixels whose points may be used (e.g. not at the far
            plane). Non-finite points are never used.

    Returns:
        (H, W, 3) float32 unit normals, finite everywhere.

    Raises:
        ValueError: The points are not (H, W, 3) or ``valid`` is not (H, W).
    """
    p = np.asarray(points)
    if p.ndim != 3 or p.shape[2] != 3:
        raise ValueError(f"points must be an (H, W, 3) array, got shape {p.shape}")
    p = p.astype(np.float64)
    finite = np.all(np.isfinite(p), axis=2)
    usable = finite.copy()
    if valid is not None:
        mask = np.asarray(valid)
        if mask.shape != p.shape[:2]:
            raise ValueError(f"valid must have shape {p.shape[:2]}, got {mask.shape}")
        usable &= mask.astype(bool)
    # One (H, W) plane per coordinate: faster and lighter than (H, W, 3) arrays.
    x, y, z = (np.where(usable, p[..., i], 0.0) for i in range(3))
    weights_u = _difference_weights(usable, axis=1)
    weights_v = _difference_weights(usable, axis=0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # Directions only: scale every vector by its largest component first, so that the
        # products below neither underflow nor overflow whatever the points' magnitude.
        ux, uy, uz = _per_pixel_unit_scale(*(_derivative(c, weights_u, axis=1) for c in (x, y, z)))
        vx, vy, vz = _per_pixel_unit_scale(*(_derivative(c, weights_v, axis=0) for c in (x, y, z)))
        px, py, pz = _per_pixel_unit_scale(*(np.where(finite, p[..., i], 0.0) for i in range(3)))
        nx = uy * vz - uz * vy
        ny = uz * vx - ux * vz
        nz = ux * vy - uy * vx
        length = np.hypot(np.hypot(nx, ny), nz)
        scale = np.hypot(np.hypot(ux, uy), uz) * np.hypot(np.hypot(vx, vy), vz)
        good = usable & (length > 1e-9 * scale) & (length > 0) & np.isfinite(length)
        # Unit length, and the sign that makes dot(normal, point) <= 0.
        sign = np.where(nx * px + ny * py + nz * pz > 0, -1.0, 1.0)
        factor = np.where(good, sign / np.where(good, length, 1.0), 0.0)
        # The fallback, the direction to the camera, also for points left out by `valid`.
        distance = np.hypot(np.hypot(px, py), pz)
        at_camera = ~((distance > 0) & np.isfinite(distance))
        towards = np.where(at_camera, 0.0, -1.0 / np.where(at_camera, 1.0, distance))
        normals = np.empty((*usable.shape, 3), dtype=np.float32)
        normals[..., 0] = np.where(good, nx * factor, px * towards)
        normals[..., 1] = np.where(good, ny * factor, py * towards)
        normals[..., 2] = np.where(good, nz * factor, np.where(at_camera, -1.0, pz * towards))
    return normals


def model_normals(
    normals: npt.ArrayLike,
    points: npt.ArrayLike,
    *,
    usable: npt.ArrayLike,
    fallback: npt.ArrayLike,
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Take a network's normals where they can be used, turned towards the camera.

    A pixel takes the network's normal where ``usable`` says so and the normal and the point
    are finite and the normal is not (near) zero (MoGe-2 gives zero where its mask leaves a
    pixel out); the normal is scaled to unit length and flipped where it faces away from the
    camera at the origin (``dot(normal, point) > 0``), as :func:`camera_facing_normals` turns
    its own. Every other pixel keeps ``fallback``.

    Args:
        normals: (H, W, 3) any real dtype, the network's normals in the OpenCV camera frame
            (x right, y down, z forward; MoGe-2's normal map is in this frame, as its points).
        points: (H, W, 3) any real dtype, the points in the same frame, metres.
        usable: (H, W) bool, pixels where the network's normal describes the surface.
        fallback: (H, W, 3) unit normals for the other pixels (float32 after the cast).

    Returns:
        (H, W, 3) float32 unit normals, and (H, W) bool: the pixels that took the network's.

    Raises:
        ValueError: The arrays' shapes do not match.
    """
    n = np.asarray(normals, dtype=np.float32)
    p = np.asarray(points, dtype=np.float32)
    keep = np.asarray(usable, dtype=bool)
    fallback_32 = np.asarray(fallback, dtype=np.float32)
    if n.ndim != 3 or n.shape[2] != 3 or n.shape != p.shape or n.shape != fallback_32.shape:
        raise ValueError(
            f"normals, points and fallback must be the same (H, W, 3) shape, got {n.shape}, "
            f"{p.shape} and {fallback_32.shape}"
        )
    if keep.shape != n.shape[:2]:
        raise ValueError(f"usable must have shape {n.shape[:2]}, got {keep.shape}")
    # float32 throughout (whole planes, no gathers): a 1024 grid in tens of milliseconds
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        length = np.sqrt(np.einsum("hwc,hwc->hw", n, n))
        facing = np.einsum("hwc,hwc->hw", n, p)  # its sign is the unit normal's
        taken = keep & (length > 1e-6) & np.isfinite(length) & np.isfinite(facing)
        scale = np.where(facing > 0, -1.0 / length, 1.0 / length).astype(np.float32)
        result = np.where(taken[..., None], n * scale[..., None], fallback_32)
    return result, taken


def _per_pixel_unit_scale(
    x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Divide each (x, y, z) vector by its largest absolute component (zero vectors stay)."""
    largest = np.maximum(np.maximum(np.abs(x), np.abs(y)), np.abs(z))
    largest = np.where((largest > 0) & np.isfinite(largest), largest, 1.0)
    return x / largest, y / largest, z / largest


def _difference_weights(
    usable: NDArray[np.bool_], *, axis: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Weights of the forward and backward differences along ``axis`` (0 rows, 1 columns).

    1/2 and 1/2 where both neighbours are usable (the central difference), 1 for the only
    usable one, 0 and 0 where none is (or the pixel itself is not usable).
    """
    here, ahead = _shifted_slices(axis)
    has_forward = np.zeros(usable.shape, dtype=bool)
    has_forward[here] = usable[ahead] & usable[here]
    has_backward = np.zeros(usable.shape, dtype=bool)
    has_backward[ahead] = has_forward[here]
    count = np.maximum(has_forward.astype(np.float64) + has_backward, 1.0)
    return has_forward / count, has_backward / count


def _derivative(
    c: NDArray[np.float64],
    weights: tuple[NDArray[np.float64], NDArray[np.float64]],
    *,
    axis: int,
) -> NDArray[np.float64]:
    """Derivative of one coordinate plane ``c`` (H, W) along ``axis``, with the given weights."""
    here, ahead = _shifted_slices(axis)
    forward = np.zeros_like(c)
    forward[here] = c[ahead] - c[here]
    backward = np.zeros_like(c)
    backward[ahead] = forward[here]
    result: NDArray[np.float64] = forward * weights[0] + backward * weights[1]
    return result


def _shifted_slices(axis: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Index pairs selecting each pixel (first) and its next neighbour along ``axis`` (second)."""
    if axis == 0:
        return (slice(0, -1), slice(None)), (slice(1, None), slice(None))
    return (slice(None), slice(0, -1)), (slice(None), slice(1, None))


def grid_faces(height: int, width: int) -> NDArray[np.int64]:
    """Triangles of the pixel-grid mesh, two per cell of four neighbouring pixels.

    Vertex ``v * width + u`` is the pixel at row ``v``, column ``u``. Cell ``(v, u)`` gives
    triangle 0 = ``(v, u), (v+1, u), (v, u+1)`` and triangle 1 = ``(v, u+1), (v+1, u),
    (v+1, u+1)``, in this order, cells in row-major order: the same order as the mask of
    :func:`depth_edge_faces` flattened, so ``faces[keep.reshape(-1)]`` are the kept faces.

    Winding: in the glTF frame ``(x, -y, -z)`` the corners run counter-clockwise seen from the
    camera, so the faces are front-facing (right-hand normal towards the camera). The flip is a
    rotation, so the normal also points towards the camera in the OpenCV frame.

    Args:
        height: Grid rows (image height), pixels, at least 1.
        width: Grid columns (image width), pixels, at least 1.

    Returns:
        (2 * (height - 1) * (width - 1), 3) int64 vertex indices.

    Raises:
        ValueError: A size is not an integer of at least 1.
    """
    for value, name in ((height, "height"), (width, "width")):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"grid {name} must be an integer of at least 1, got {value!r}")
    rows = np.arange(height - 1, dtype=np.int64)[:, None]
    cols = np.arange(width - 1, dtype=np.int64)[None, :]
    top_left = rows * width + cols
    top_right = top_left + 1
    bottom_left = top_left + width
    bottom_right = bottom_left + 1
    faces = np.stack(
        [
            np.stack([top_left, bottom_left, top_right], axis=-1),
            np.stack([top_right, bottom_left, bottom_right], axis=-1),
        ],
        axis=2,
    )
    return faces.reshape(-1, 3)


def depth_edge_faces(
    depth: npt.ArrayLike, *, threshold: float = DEFAULT_EDGE_THRESHOLD
) -> NDArray[np.bool_]:
    """Decide which grid-mesh triangles to keep: cut those across depth discontinuities.

    A triangle (see :func:`grid_faces` for the layout) is kept when the ratio of the largest to
    the smallest depth of its three corners is at most ``threshold``. The rule is scale-free:
    it does not depend on ``near``/``far`` units, only on relative depth change. Triangles with
    a non-finite or non-positive corner are dropped.

    Args:
        depth: (H, W) any real dtype, depth in metres.
        threshold: Largest kept max/min depth ratio, greater than 1 (finite).

    Returns:
        (H-1, W-1, 2) bool: True where triangle 0 or 1 of cell ``(v, u)`` is kept.

    Raises:
        ValueError: The depth is not 2-D or the threshold is not a finite number above 1.
    """
    z = np.asarray(depth)
    if z.ndim != 2:
        raise ValueError(f"depth must be a 2-D (H, W) array, got shape {z.shape}")
    if not (math.isfinite(threshold) and threshold > 1.0):
        raise ValueError(f"threshold must be a finite depth ratio above 1, got {threshold}")
    z = z.astype(np.float64)
    usable = np.isfinite(z) & (z > 0)
    z = np.where(usable, z, np.nan)
    top_left, top_right = z[:-1, :-1], z[:-1, 1:]
    bottom_left, bottom_right = z[1:, :-1], z[1:, 1:]
    keep = np.empty((*top_left.shape, 2), dtype=bool)
    with np.errstate(invalid="ignore"):
        for k, corners in enumerate(
            ((top_left, bottom_left, top_right), (top_right, bottom_left, bottom_right))
        ):
            stacked = np.stack(corners)
            low = np.min(stacked, axis=0)
            high = np.max(stacked, axis=0)
            # NaN (unusable) corners make the comparison False: the triangle is dropped.
            keep[..., k] = high <= threshold * low
    return keep


def srgb_to_linear(rgb: npt.ArrayLike) -> NDArray[np.float32]:
    """Decode sRGB colours to linear light (the IEC 61966-2-1 transfer function).

    Args:
        rgb: (..., C) uint8 sRGB values, 0..255 (any shape).

    Returns:
        Same shape, float32 linear values in [0, 1].

    Raises:
        ValueError: The colours are not uint8.
    """
    c = np.asarray(rgb)
    if c.dtype != np.uint8:
        raise ValueError(f"sRGB colours must be uint8 (0..255), got dtype {c.dtype}")
    x = c.astype(np.float64) / 255.0
    linear = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    return linear.astype(np.float32)


def linear_to_srgb(linear: npt.ArrayLike) -> NDArray[np.uint8]:
    """Encode linear-light colours as sRGB uint8 (the IEC 61966-2-1 transfer function).

    Args:
        linear: (..., C) any real dtype, linear values; clipped to [0, 1], NaN becomes 0.

    Returns:
        Same shape, uint8 sRGB values 0..255, rounded to nearest.

    Raises:
        ValueError: The values are not real numbers.
    """
    x = np.asarray(linear)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"linear colours must be real numbers, got dtype {x.dtype}")
    x = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    x = np.clip(x, 0.0, 1.0)
    encoded = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1.0 / 2.4) - 0.055)
    result: NDArray[np.uint8] = np.round(np.clip(encoded, 0.0, 1.0) * 255.0).astype(np.uint8)
    return result


def project_points(points: npt.ArrayLike, intrinsics: Intrinsics) -> NDArray[np.float64]:
    """Project camera-frame points to pixel coordinates (the inverse of back-projection).

    Args:
        points: (N, 3) any real dtype, OpenCV camera frame, metres, with Z > 0.
        intrinsics: The camera.

    Returns:
        (N, 2) float64 pixel coordinates ``(u, v)`` (column, row; pixel centres at integers).
        Points with Z <= 0 get NaN.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(p[:, 2] > 0, p[:, 2], np.nan)
        u = intrinsics.fx * p[:, 0] / z + intrinsics.cx
        v = intrinsics.fy * p[:, 1] / z + intrinsics.cy
    return np.stack([u, v], axis=1)


def sample_colors(rgb: NDArray[np.uint8], pixels: npt.ArrayLike) -> NDArray[np.uint8]:
    """Look up photo colours at sub-pixel positions (bilinear; outside: the nearest border).

    Args:
        rgb: (H, W, 3) uint8 sRGB photo.
        pixels: (N, 2) float pixel coordinates ``(u, v)``; NaN gives the border colour too.

    Returns:
        (N, 3) uint8 sRGB colours.
    """
    uv = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    height, width = rgb.shape[:2]
    u = np.clip(np.nan_to_num(uv[:, 0], nan=0.0), 0, width - 1)
    v = np.clip(np.nan_to_num(uv[:, 1], nan=0.0), 0, height - 1)
    u0 = np.minimum(np.floor(u).astype(np.intp), width - 2 if width > 1 else 0)
    v0 = np.minimum(np.floor(v).astype(np.intp), height - 2 if height > 1 else 0)
    u1 = np.minimum(u0 + 1, width - 1)
    v1 = np.minimum(v0 + 1, height - 1)
    fu = (u - u0)[:, None]
    fv = (v - v0)[:, None]
    # gather the four neighbours first: never the whole photo in float64 (290 MB at 12 MP)
    top = rgb[v0, u0].astype(np.float64) * (1 - fu) + rgb[v0, u1].astype(np.float64) * fu
    bottom = rgb[v1, u0].astype(np.float64) * (1 - fu) + rgb[v1, u1].astype(np.float64) * fu
    colors: NDArray[np.uint8] = np.clip(np.round(top * (1 - fv) + bottom * fv), 0, 255).astype(
        np.uint8
    )
    return colors


UNIT_TOLERANCE: Final = 1e-3
"""How far from 1 the length of a "unit" normal may be before it is refused."""


def unit_lengths(normals: NDArray[np.floating]) -> NDArray[np.float64]:
    """Return the lengths of unit vectors, refusing any that is not of unit length.

    Args:
        normals: (N, 3) float normals.

    Returns:
        (N,) float64 lengths, each within :data:`UNIT_TOLERANCE` of 1.

    Raises:
        ValueError: A vector's length is off by more than the tolerance (names the first).
    """
    lengths: NDArray[np.float64] = np.linalg.norm(normals.astype(np.float64), axis=1)
    bad = ~(np.abs(lengths - 1.0) <= UNIT_TOLERANCE)  # NaN is not unit length either
    if bad.any():
        index = int(np.argmax(bad))
        raise ValueError(
            f"normals must be unit vectors, got length {lengths[index]:.6g} at vertex {index}"
        )
    return lengths


GLTF_FROM_CAMERA = np.array([1.0, -1.0, -1.0], dtype=np.float32)
"""Per-axis signs taking the OpenCV camera frame (x right, y down, z forward) to glTF's
(x right, y up, -z forward): ``(x, y, z) -> (x, -y, -z)``."""


def camera_to_gltf(vectors: NDArray[np.floating]) -> NDArray[np.float32]:
    """Convert points or normals from the OpenCV camera frame to glTF axes.

    Args:
        vectors: (..., 3) float, camera frame (metres for points).

    Returns:
        (..., 3) float32 in glTF axes (Y up, -Z forward); PLY output uses the same axes.
    """
    return (np.asarray(vectors, dtype=np.float32) * GLTF_FROM_CAMERA).astype(np.float32)
