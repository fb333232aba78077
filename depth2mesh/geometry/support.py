"""What the point grid supports: trim a reconstructed surface to it, and say what the photo saw.

A Poisson surface is an implicit function's level set: it closes every gap, so it also holds
sheets where there are no points (below the picture, across an occlusion edge, out to the
octree's bounding cube). The point cloud comes from a depth grid, so the points near a vertex
are found through the camera: project the vertex into the grid, look at the pixels around
where it lands, and take the nearest of their points. Surface farther than a small fraction of
its depth from every such point, or outside the photo's frame, is not supported.

Conventions: the OpenCV camera frame (x right, y down, z forward, metres); the grid's arrays
are (rows, cols) at the intrinsics' size, pixel centres at integer coordinates. Pure functions
over numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from depth2mesh.geometry.camera import Intrinsics
from depth2mesh.geometry.points import project_points

DEFAULT_SUPPORT: Final = 0.01
"""Largest distance from a kept Poisson vertex (or triangle centre) to its nearest point of the
cloud, as a fraction of its depth (``--poisson-support``)."""

SUPPORT_RADIUS: Final = 2
"""Half-width, grid pixels, of the window around a vertex's projection searched for points."""

FRAME_MARGIN: Final = 2.0
"""Grid pixels beyond the photo's frame where a supported vertex may still lie, so that the
triangles along the frame's edge, whose corners straddle it, stay and the view has no gap."""

HIDDEN_MARGIN: Final = 0.03
"""A vertex is hidden from the photo when it lies more than this share of depth behind what the
photo shows where it projects (nearer is seen: nothing of the photo is in front of it)."""

__all__ = [
    "DEFAULT_SUPPORT",
    "FRAME_MARGIN",
    "HIDDEN_MARGIN",
    "SUPPORT_RADIUS",
    "Support",
    "even_sample",
    "nearest_grid_points",
    "supported_faces",
    "unsupported_share",
]


@dataclass(frozen=True)
class Support:
    """Where each vertex of a surface stands against the point grid.

    Attributes:
        distance: (N,) float64 metres to a valid grid point within the window around the
            vertex's projection: the first within the tolerance (pixels nearest the projection
            first), else the nearest; infinity when there is none (outside the frame, behind
            the camera, only invalid pixels around).
        pixel: (N,) int64 row-major grid index of that point (-1 when there is none).
        seen: (N,) bool: the vertex is the surface the photo shows where it projects (inside the
            frame, at most :data:`HIDDEN_MARGIN` behind the grid's depth there).
    """

    distance: NDArray[np.float64]
    pixel: NDArray[np.int64]
    seen: NDArray[np.bool_]


def even_sample(valid: NDArray[np.bool_], max_points: int) -> NDArray[np.bool_]:
    """Thin the valid pixels of a grid evenly: every ``s``-th row and column.

    Args:
        valid: (rows, cols) bool, the pixels that are points.
        max_points: Most pixels to keep, >= 1.

    Returns:
        (rows, cols) bool, a subset of ``valid``: all of it when it holds at most
        ``max_points``, else the pixels on a regular lattice of step ``s`` (the smallest that
        keeps at most ``max_points`` of them), centred in each ``s`` x ``s`` block.
    """
    count = int(valid.sum())
    if count <= max_points:
        return valid.copy()
    step = max(2, int(np.ceil(np.sqrt(count / max_points))))
    while True:
        lattice = np.zeros(valid.shape, dtype=bool)
        lattice[step // 2 :: step, step // 2 :: step] = True
        chosen = valid & lattice
        if int(chosen.sum()) <= max_points:
            return chosen
        step += 1


def nearest_grid_points(
    vertices: NDArray[np.floating],
    grid_points: NDArray[np.float32],
    valid: NDArray[np.bool_],
    intrinsics: Intrinsics,
    *,
    radius: int = SUPPORT_RADIUS,
    tolerance: float = DEFAULT_SUPPORT,
) -> Support:
    """Find each vertex's nearest grid point through the camera, and whether the photo saw it.

    Args:
        vertices: (N, 3) float positions, camera frame, metres.
        grid_points: (rows, cols, 3) float32 back-projected points, metres.
        valid: (rows, cols) bool, the pixels that are points of the cloud.
        intrinsics: The camera at the grid's size.
        radius: Half-width of the window searched around each projection, grid pixels.
        tolerance: A vertex stops searching once a point lies within this fraction of its depth.

    Returns:
        The distances, nearest pixels and seen flags (:class:`Support`).
    """
    rows, cols = valid.shape
    positions = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    count = positions.shape[0]
    pixels = project_points(positions, intrinsics)
    finite = np.isfinite(pixels).all(axis=1)
    edge = 0.5 + FRAME_MARGIN  # pixel centres are integers: the frame ends half a pixel out
    inside = (
        finite
        & (pixels[:, 0] >= -edge)
        & (pixels[:, 0] <= cols - 1 + edge)
        & (pixels[:, 1] >= -edge)
        & (pixels[:, 1] <= rows - 1 + edge)
    )
    u = np.clip(np.rint(np.nan_to_num(pixels[:, 0])), 0, cols - 1).astype(np.int64)
    v = np.clip(np.rint(np.nan_to_num(pixels[:, 1])), 0, rows - 1).astype(np.int64)
    flat_points = grid_points.reshape(-1, 3)
    flat_valid = valid.reshape(-1)
    best = np.full(count, np.inf)
    best_pixel = np.full(count, -1, dtype=np.int64)
    enough = tolerance * np.abs(positions[:, 2])
    active = np.flatnonzero(inside)
    offsets = [(dv, du) for dv in range(-radius, radius + 1) for du in range(-radius, radius + 1)]
    offsets.sort(key=lambda offset: offset[0] ** 2 + offset[1] ** 2)
    for dv, du in offsets:  # nearest pixels first; a vertex leaves once a point supports it
        if not active.size:
            break
        rr, cc = v[active] + dv, u[active] + du
        ok = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
        index = np.where(ok, rr * cols + cc, 0)
        ok &= flat_valid[index]
        gap = flat_points[index].astype(np.float64) - positions[active]
        distance = np.where(ok, np.sqrt(np.einsum("ij,ij->i", gap, gap)), np.inf)
        closer = distance < best[active]
        best[active[closer]] = distance[closer]
        best_pixel[active[closer]] = index[closer]
        active = active[best[active] > enough[active]]
    centre = v * cols + u
    grid_depth = flat_points[centre, 2].astype(np.float64)
    seen = (
        inside
        & (np.abs(pixels[:, 0] - u) <= 0.5 + FRAME_MARGIN)
        & (np.abs(pixels[:, 1] - v) <= 0.5 + FRAME_MARGIN)
        & flat_valid[centre]
        & (positions[:, 2] - grid_depth <= HIDDEN_MARGIN * np.abs(grid_depth))
    )
    return Support(best, best_pixel, seen)


def supported_faces(
    vertices: NDArray[np.floating],
    faces: NDArray[np.int64],
    grid_points: NDArray[np.float32],
    valid: NDArray[np.bool_],
    intrinsics: Intrinsics,
    *,
    tolerance: float = DEFAULT_SUPPORT,
    radius: int = SUPPORT_RADIUS,
) -> tuple[NDArray[np.bool_], Support]:
    """Which triangles the point grid supports.

    A triangle is kept when its three corners and its centre each lie within ``tolerance``
    times their depth of a point of the cloud (found through the camera, see
    :func:`nearest_grid_points`), all inside the photo's frame. The centre test removes
    triangles that bridge two surfaces, such as a sheet from a cushion to the wall behind it
    across a torn occlusion edge, even when their corners rest on points.

    Args:
        vertices: (N, 3) float positions, camera frame, metres.
        faces: (M, 3) int64 vertex indices.
        grid_points: (rows, cols, 3) float32 back-projected points, metres.
        valid: (rows, cols) bool, the pixels that are points of the cloud.
        intrinsics: The camera at the grid's size.
        tolerance: Largest distance to the cloud, a fraction of depth.
        radius: Half-width of the searched window, grid pixels.

    Returns:
        (M,) bool, the triangles kept, and the vertices' :class:`Support`.
    """
    positions = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    corners = nearest_grid_points(
        positions, grid_points, valid, intrinsics, radius=radius, tolerance=tolerance
    )
    near = corners.distance <= tolerance * np.abs(positions[:, 2])
    keep: NDArray[np.bool_] = np.asarray(near[faces].all(axis=1), dtype=bool)
    if keep.any():
        centres = positions[faces[keep]].mean(axis=1)
        middle = nearest_grid_points(
            centres, grid_points, valid, intrinsics, radius=radius, tolerance=tolerance
        )
        keep[np.flatnonzero(keep)] = middle.distance <= tolerance * np.abs(centres[:, 2])
    return keep, corners


BARYCENTRIC_SAMPLES: Final = np.array(
    [[1 / 3, 1 / 3, 1 / 3], [2 / 3, 1 / 6, 1 / 6], [1 / 6, 2 / 3, 1 / 6], [1 / 6, 1 / 6, 2 / 3]]
)
"""Where :func:`unsupported_share` samples each triangle: its centre and the centres of the
three sub-triangles at its corners (each stands for a quarter of its area)."""


def unsupported_share(
    vertices: NDArray[np.floating],
    faces: NDArray[np.int64],
    cloud: NDArray[np.floating],
    *,
    tolerance: float = 0.02,
) -> float:
    """Share of a surface's area farther than ``tolerance`` times its depth from every point.

    An exact nearest-neighbour search (Open3D's) from four samples per triangle
    (:data:`BARYCENTRIC_SAMPLES`) to every point of the cloud; each sample stands for a quarter
    of its triangle's area. Any consistent frame (the depth is ``|z|``: the camera frame or
    glTF's, whose z is negated).

    Args:
        vertices: (N, 3) float positions, metres.
        faces: (M, 3) int64 indices.
        cloud: (P, 3) float points, metres, in the same frame.
        tolerance: The distance allowed, a fraction of depth.

    Returns:
        The share of the area, in [0, 1] (0 for a surface without area).
    """
    import open3d as o3d

    positions = np.asarray(vertices, dtype=np.float64)
    corners = positions[faces]
    area = 0.5 * np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1
    )
    total = float(area.sum())
    if total <= 0.0:
        return 0.0
    samples = np.einsum("sk,mkc->msc", BARYCENTRIC_SAMPLES, corners).reshape(-1, 3)
    search = o3d.core.nns.NearestNeighborSearch(
        o3d.core.Tensor.from_numpy(np.ascontiguousarray(cloud, dtype=np.float64))
    )
    search.knn_index()
    _, squared = search.knn_search(o3d.core.Tensor.from_numpy(np.ascontiguousarray(samples)), 1)
    distance = np.sqrt(squared.numpy().reshape(-1))
    far = (distance > tolerance * np.abs(samples[:, 2])).reshape(-1, len(BARYCENTRIC_SAMPLES))
    return float((area * far.mean(axis=1)).sum() / total)
