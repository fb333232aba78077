"""Meshes from a back-projected depth map: the UV-mapped pixel-grid mesh and a Poisson surface.

Both work in the OpenCV camera frame (x right, y down, z forward, metres) and return plain
numpy arrays in a :class:`MeshArrays`; Open3D objects never leave :func:`poisson_mesh`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from depth2mesh.errors import ParameterError
from depth2mesh.geometry.points import DEFAULT_EDGE_THRESHOLD, depth_edge_faces, grid_faces

DEFAULT_GRID: Final = 1024
"""Long side of the mesh grid and point cloud, in vertices (pixels of the resampled photo)."""

DEFAULT_POISSON_DEPTH: Final = 9
"""Octree depth of the Poisson reconstruction (2^9 = 512 cells along the longest side)."""

DEFAULT_DENSITY_QUANTILE: Final = 0.02
"""Fraction of the Poisson vertices with the lowest sample density that are trimmed."""

DEFAULT_POISSON_POINTS: Final = 200_000
"""The point cloud is thinned to at most this many points before Poisson reconstruction."""


@dataclass(frozen=True)
class MeshArrays:
    """A triangle mesh as arrays, in the OpenCV camera frame.

    Attributes:
        vertices: (N, 3) float32 positions, metres.
        faces: (M, 3) int64 vertex indices, counter-clockwise seen from the camera.
        normals: (N, 3) float32 unit normals facing the camera, or None.
        uvs: (N, 2) float32 texture coordinates (origin top-left, v down, glTF's convention)
            into the photo, or None.
        colors: (N, 3) uint8 sRGB vertex colours, or None.
    """

    vertices: NDArray[np.float32]
    faces: NDArray[np.int64]
    normals: NDArray[np.float32] | None = None
    uvs: NDArray[np.float32] | None = None
    colors: NDArray[np.uint8] | None = None


def grid_uvs(height: int, width: int) -> NDArray[np.float32]:
    """Texture coordinates of the pixel centres of a ``height`` x ``width`` grid.

    Grid pixel (v, u) covers the same part of the photo at any resolution, so its centre maps
    to ``((u + 0.5) / width, (v + 0.5) / height)`` whatever the texture's size.

    Returns:
        (height * width, 2) float32, row-major like the grid's vertices.
    """
    u = (np.arange(width, dtype=np.float64) + 0.5) / width
    v = (np.arange(height, dtype=np.float64) + 0.5) / height
    uu, vv = np.meshgrid(u, v)
    return np.stack([uu.ravel(), vv.ravel()], axis=1).astype(np.float32)


def grid_mesh(
    points: NDArray[np.float32],
    depth: NDArray[np.float32],
    normals: NDArray[np.float32],
    *,
    valid: NDArray[np.bool_] | None = None,
    edge_threshold: float = DEFAULT_EDGE_THRESHOLD,
    cut_cells: NDArray[np.bool_] | None = None,
) -> MeshArrays:
    """Build the pixel-grid mesh: one vertex per pixel, two triangles per cell.

    Triangles across depth discontinuities (max/min corner depth above ``edge_threshold``),
    triangles touching an invalid pixel and both triangles of every cell ``cut_cells`` marks
    are removed; vertices no triangle uses are dropped and the rest renumbered.

    Args:
        points: (h, w, 3) float32 back-projected points, metres.
        depth: (h, w) float32 depth, metres.
        normals: (h, w, 3) float32 unit normals.
        valid: (h, w) bool pixels that may become vertices (default: all with finite depth).
        edge_threshold: Largest kept depth ratio within a triangle, > 1.
        cut_cells: (h, w) bool, optional: True removes the cell whose top-left corner is that
            pixel (occlusion cuts, see :func:`depth2mesh.geometry.edges.occlusion_cuts`).

    Returns:
        The mesh with vertices, faces, normals and UVs.
    """
    height, width = depth.shape
    keep = kept_triangles(
        depth, valid=valid, edge_threshold=edge_threshold, cut_cells=cut_cells
    ).reshape(-1)
    faces = grid_faces(height, width)[keep]
    used = np.zeros(height * width, dtype=bool)
    used[faces.ravel()] = True
    renumber = np.cumsum(used, dtype=np.int64) - 1
    return MeshArrays(
        vertices=np.ascontiguousarray(points.reshape(-1, 3)[used]),
        faces=renumber[faces],
        normals=np.ascontiguousarray(normals.reshape(-1, 3)[used]),
        uvs=grid_uvs(height, width)[used],
    )


def kept_triangles(
    depth: NDArray[np.float32],
    *,
    valid: NDArray[np.bool_] | None = None,
    edge_threshold: float = DEFAULT_EDGE_THRESHOLD,
    cut_cells: NDArray[np.bool_] | None = None,
) -> NDArray[np.bool_]:
    """Which triangles of the pixel grid :func:`grid_mesh` keeps (see there for the rules).

    Args:
        depth: (h, w) float32 depth, metres.
        valid: (h, w) bool pixels that may become vertices (default: all with finite depth).
        edge_threshold: Largest kept depth ratio within a triangle, > 1.
        cut_cells: (h, w) bool, optional: True removes the cell whose top-left corner is that
            pixel.

    Returns:
        (h-1, w-1, 2) bool: triangle 0 or 1 of cell ``(v, u)`` is kept (the layout of
        :func:`~depth2mesh.geometry.points.grid_faces`).
    """
    masked = depth if valid is None else np.where(valid, depth, np.nan)
    keep = depth_edge_faces(masked, threshold=edge_threshold)
    if cut_cells is not None:
        keep &= ~cut_cells[:-1, :-1, None]
    return keep


def check_poisson_options(
    *,
    depth: int,
    density_quantile: float,
    face_budget: int | None,
    depth_name: str = "depth",
) -> None:
    """Refuse Poisson options that cannot work (see :func:`poisson_mesh`).

    Args:
        depth: Octree depth, 5..12.
        density_quantile: Fraction of lowest-density vertices trimmed, [0, 1).
        face_budget: Most triangles after decimation (>= 4), or None.
        depth_name: The caller's name for ``depth`` (``poisson_depth`` in ConvertOptions).

    Raises:
        ParameterError: The first option out of range, by name.
    """
    if not 5 <= depth <= 12:
        raise ParameterError(f"{{{depth_name}}} must be between 5 and 12, got {depth}", depth_name)
    if not 0.0 <= density_quantile < 1.0:
        raise ParameterError(
            f"{{density_quantile}} must be in [0, 1), got {density_quantile}", "density_quantile"
        )
    if face_budget is not None and face_budget < 4:
        raise ParameterError(
            f"{{face_budget}} must be at least 4 triangles, got {face_budget}", "face_budget"
        )


def poisson_mesh(
    points: NDArray[np.float32],
    normals: NDArray[np.float32],
    *,
    depth: int = DEFAULT_POISSON_DEPTH,
    density_quantile: float = DEFAULT_DENSITY_QUANTILE,
    max_points: int = DEFAULT_POISSON_POINTS,
    face_budget: int | None = None,
    threads: int = -1,
    seed: int = 0,
) -> MeshArrays:
    """Reconstruct a watertight-ish surface with Open3D's screened Poisson.

    The oriented cloud is thinned to ``max_points`` (a seeded random subset), reconstructed,
    its lowest-density vertices (the ``density_quantile`` fraction: surface invented far from
    any sample) trimmed, cropped to the cloud's bounding box, and optionally decimated to
    ``face_budget`` triangles. The mesh has no colours: the caller colours its vertices
    from the photo (see :func:`depth2mesh.geometry.points.sample_colors`).

    Args:
        points: (N, 3) float32 positions, metres.
        normals: (N, 3) float32 unit normals facing the camera.
        depth: Octree depth, 5..12.
        density_quantile: Fraction of vertices to trim by density, in [0, 1).
        max_points: Most points passed to the reconstruction, >= 100.
        face_budget: Decimate to at most this many triangles (quadric error), or None.
        threads: Open3D worker threads (-1: all cores).
        seed: Seed of the thinning.

    Returns:
        The mesh with vertices, faces and normals (facing the camera side).

    Raises:
        ValueError: Bad options, or fewer than 100 points to reconstruct from.
    """
    check_poisson_options(depth=depth, density_quantile=density_quantile, face_budget=face_budget)
    if max_points < 100:
        raise ParameterError(f"{{max_points}} must be at least 100, got {max_points}", "max_points")
    count = points.shape[0]
    if count < 100:
        raise ValueError(f"Poisson reconstruction needs at least 100 points, got {count}")
    import open3d as o3d  # deferred: a slow import that only this stage needs

    if count > max_points:
        chosen = np.sort(np.random.default_rng(seed).choice(count, max_points, replace=False))
        points, normals = points[chosen], normals[chosen]
    cloud = o3d.geometry.PointCloud()
    cloud.points = o3d.utility.Vector3dVector(points.astype(np.float64))
    cloud.normals = o3d.utility.Vector3dVector(normals.astype(np.float64))
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        surface, densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(
            cloud, depth=depth, n_threads=threads
        )
    density = np.asarray(densities)
    if density_quantile > 0 and density.size:
        surface.remove_vertices_by_mask(density < np.quantile(density, density_quantile))
    bounds = cloud.get_axis_aligned_bounding_box()
    margin = 1e-3 * max(float(np.linalg.norm(bounds.get_extent())), 1e-6)
    surface = surface.crop(  # a plane has a flat box: pad it so that cropping keeps the plane
        o3d.geometry.AxisAlignedBoundingBox(bounds.min_bound - margin, bounds.max_bound + margin)
    )
    if face_budget is not None and len(surface.triangles) > face_budget:
        surface = surface.simplify_quadric_decimation(target_number_of_triangles=face_budget)
    surface.remove_unreferenced_vertices()
    surface.remove_degenerate_triangles()
    surface.compute_vertex_normals()
    vertices = np.asarray(surface.vertices, dtype=np.float32)
    faces = np.asarray(surface.triangles, dtype=np.int64).reshape(-1, 3)
    vertex_normals = np.asarray(surface.vertex_normals, dtype=np.float64)
    return MeshArrays(
        vertices=vertices,
        faces=_facing_camera(vertices, faces),
        normals=_unit_towards_camera(vertices, vertex_normals),
    )


def _facing_camera(vertices: NDArray[np.float32], faces: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return ``faces`` with the overall winding that faces the camera at the origin."""
    if faces.size == 0:
        return faces
    corners = vertices[faces].astype(np.float64)
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    centre = corners.mean(axis=1)
    facing = np.einsum("ij,ij->i", normal, centre) < 0
    if facing.mean() >= 0.5:
        return faces
    return np.ascontiguousarray(faces[:, ::-1])


def _unit_towards_camera(
    vertices: NDArray[np.float32], normals: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Unit normals, flipped where they point away from the camera; fall back to the view ray."""
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    towards = -vertices.astype(np.float64)
    towards /= np.maximum(np.linalg.norm(towards, axis=1, keepdims=True), 1e-12)
    unit = np.where(length > 1e-12, normals / np.maximum(length, 1e-12), towards)
    flip = np.einsum("ij,ij->i", unit, towards) < 0
    unit[flip] *= -1.0
    return unit.astype(np.float32)
