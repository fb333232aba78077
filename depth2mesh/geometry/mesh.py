"""Meshes from a back-projected depth map: the UV-mapped pixel-grid mesh and a Poisson surface.

Both work in the OpenCV camera frame (x right, y down, z forward, metres) and return plain
numpy arrays in a :class:`MeshArrays`; Open3D objects never leave :func:`poisson_mesh`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray

from depth2mesh.errors import ParameterError
from depth2mesh.geometry.camera import Intrinsics
from depth2mesh.geometry.points import DEFAULT_EDGE_THRESHOLD, depth_edge_faces, grid_faces
from depth2mesh.geometry.support import DEFAULT_SUPPORT, nearest_grid_points, supported_faces

_Item = TypeVar("_Item", bound=np.generic)

DEFAULT_GRID: Final = 1024
"""Long side of the mesh grid and point cloud, in vertices (pixels of the resampled photo)."""

POISSON_DEPTHS: Final = (5, 12)
"""Smallest and largest octree depth of the Poisson reconstruction."""

DEFAULT_DENSITY_QUANTILE: Final = 0.0
"""Fraction of the Poisson vertices with the lowest sample density that are trimmed (none: the
support trim, :mod:`depth2mesh.geometry.support`, removes what the points do not hold)."""

DEFAULT_POISSON_POINTS: Final = 35_000
"""The point grid is thinned evenly (every s-th row and column) to at most this many points
before Poisson reconstruction."""

POINTS_PER_CELL: Final = 2.5
"""Grid pixels per octree cell along the grid's long side when the depth is chosen for it."""

AUTO_DEPTH_MAX: Final = 7
"""The deepest octree chosen on its own: depth 8 costs Open3D 2-3x the time of depth 7 (2.9 vs
1.3 s on a 640x480 frame, 35,000 points) for detail the grid mesh shows anyway; on the rooms
both keep 99 % of what the photo saw within 1 % of its depth (``--poisson-depth 8`` asks)."""


def auto_poisson_depth(grid_shape: tuple[int, int]) -> int:
    """The octree depth for a grid: about :data:`POINTS_PER_CELL` grid pixels per cell.

    The octree spans the scene's bounding cube, which a photo's long side about fills: 320
    pixels give depth 7 (128 cells), a 48-pixel grid depth 5; no more than
    :data:`AUTO_DEPTH_MAX` (640 or 1024 pixels: 7).

    Args:
        grid_shape: (rows, cols) of the mesh grid.

    Returns:
        The depth, within :data:`POISSON_DEPTHS`.
    """
    cells = max(grid_shape) / POINTS_PER_CELL
    depth = int(np.floor(np.log2(max(cells, 1.0))))
    return int(np.clip(depth, POISSON_DEPTHS[0], AUTO_DEPTH_MAX))


_preloading: list[threading.Thread] = []
"""The thread :func:`preload_open3d` started, once per process."""

_PRELOAD_LOCK: Final = threading.Lock()


def preload_open3d() -> threading.Thread:
    """Start importing Open3D (about 1.2 s) on a background thread, once; return the thread.

    A conversion that will build a Poisson mesh calls this first (the command line as soon as
    its options are checked), so that the import overlaps the model's load and the depth,
    geometry and grid stages instead of adding to the Poisson stage. Later calls return the
    same thread.
    """
    with _PRELOAD_LOCK:
        if not _preloading:
            thread = threading.Thread(target=_import_open3d, name="import open3d", daemon=True)
            thread.start()
            _preloading.append(thread)
        return _preloading[0]


def _import_open3d() -> None:
    with contextlib.suppress(ImportError):  # reported where the Poisson stage imports it
        importlib.import_module("open3d")


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
    depth: int | None,
    density_quantile: float,
    face_budget: int | None,
    support: float = DEFAULT_SUPPORT,
    depth_name: str = "depth",
) -> None:
    """Refuse Poisson options that cannot work (see :func:`poisson_mesh`).

    Args:
        depth: Octree depth, 5..12, or None (chosen from the grid's size).
        density_quantile: Fraction of lowest-density vertices trimmed, [0, 1).
        face_budget: Most triangles after decimation (>= 4), or None.
        support: Largest distance to the cloud, a fraction of depth, in (0, 1].
        depth_name: The caller's name for ``depth`` (``poisson_depth`` in ConvertOptions).

    Raises:
        ParameterError: The first option out of range, by name.
    """
    low, high = POISSON_DEPTHS
    if depth is not None and not low <= depth <= high:
        raise ParameterError(
            f"{{{depth_name}}} must be between {low} and {high}, got {depth}", depth_name
        )
    if not 0.0 <= density_quantile < 1.0:
        raise ParameterError(
            f"{{density_quantile}} must be in [0, 1), got {density_quantile}", "density_quantile"
        )
    if face_budget is not None and face_budget < 4:
        raise ParameterError(
            f"{{face_budget}} must be at least 4 triangles, got {face_budget}", "face_budget"
        )
    if not (np.isfinite(support) and 0.0 < support <= 1.0):
        raise ParameterError(
            f"{{poisson_support}} must be in (0, 1] (a fraction of depth), got {support}",
            "poisson_support",
        )


def poisson_threads() -> int:
    """Open3D's threads for the reconstruction: one on two cores or fewer, else all (-1).

    On two cores one thread was the faster (octree depth 7, 35,000 points, frame 00065, quiet
    machine: 0.89-0.97 s against 1.13-1.31 s on both; depth 8 the same, 2.1 s), and its
    surface is the same from run to run (with several threads the vertices' order and last
    bits change).
    """
    return 1 if (os.cpu_count() or 1) <= 2 else -1


def poisson_mesh(
    points: NDArray[np.float32],
    normals: NDArray[np.float32],
    *,
    depth: int = 8,
    density_quantile: float = DEFAULT_DENSITY_QUANTILE,
    threads: int | None = None,
) -> MeshArrays:
    """Reconstruct a surface from an oriented cloud with Open3D's screened Poisson.

    The untrimmed level set (it closes every gap, out to the octree's cube): trim it with
    :func:`trim_poisson`. Optionally the ``density_quantile`` fraction of vertices with the
    lowest sample density is removed first.

    Args:
        points: (N, 3) float32 positions, metres, N >= 100.
        normals: (N, 3) float32 unit normals facing the camera.
        depth: Octree depth, 5..12.
        density_quantile: Fraction of vertices to trim by density, in [0, 1).
        threads: Open3D worker threads (-1: all cores); None: :func:`poisson_threads`.

    Returns:
        The mesh with vertices and faces only (float32 metres, int64 indices).

    Raises:
        ValueError: Bad options, or fewer than 100 points to reconstruct from.
    """
    check_poisson_options(depth=depth, density_quantile=density_quantile, face_budget=None)
    count = points.shape[0]
    if count < 100:
        raise ValueError(f"Poisson reconstruction needs at least 100 points, got {count}")
    import open3d as o3d  # deferred (see preload_open3d): a slow import only this stage needs

    cloud = o3d.geometry.PointCloud()
    cloud.points = o3d.utility.Vector3dVector(points.astype(np.float64))
    cloud.normals = o3d.utility.Vector3dVector(normals.astype(np.float64))
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        surface, densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(
            cloud, depth=depth, n_threads=poisson_threads() if threads is None else threads
        )
    vertices = np.asarray(surface.vertices, dtype=np.float32)
    faces = np.asarray(surface.triangles, dtype=np.int64).reshape(-1, 3)
    density = np.asarray(densities)
    if density_quantile > 0 and density.size:
        low_density = density < np.quantile(density, density_quantile)
        faces = faces[~low_density[faces].any(axis=1)]
    return MeshArrays(vertices=vertices, faces=faces)


@dataclass(frozen=True)
class PoissonSurface:
    """A trimmed Poisson surface and how it stands against the photo.

    Attributes:
        mesh: Vertices, faces (facing the camera) and unit normals, camera frame.
        seen: (N,) bool: the vertex is what the photo shows where it projects.
        pixel: (N,) int64 row-major grid index of each vertex's nearest point of the cloud.
        trimmed: False when no triangle was within the support tolerance and the surface was
            kept whole rather than left empty.
    """

    mesh: MeshArrays
    seen: NDArray[np.bool_]
    pixel: NDArray[np.int64]
    trimmed: bool = True


def trim_poisson(
    surface: MeshArrays,
    grid_points: NDArray[np.float32],
    valid: NDArray[np.bool_],
    intrinsics: Intrinsics,
    *,
    support: float = DEFAULT_SUPPORT,
    face_budget: int | None = None,
) -> PoissonSurface:
    """Keep the part of a Poisson surface that the point grid supports.

    Triangles are removed where a corner or the centre lies farther than ``support`` times its
    depth from every point of the cloud, or outside the photo's frame
    (:func:`~depth2mesh.geometry.support.supported_faces`): the sheets Poisson invents below
    the picture, out to its cube and across torn occlusion edges. Unused vertices are dropped;
    with ``face_budget`` the rest is decimated (quadric error, Open3D) to at most that many
    triangles and the support found again.

    Args:
        surface: The untrimmed mesh (:func:`poisson_mesh`), camera frame.
        grid_points: (rows, cols, 3) float32 back-projected points of the grid, metres.
        valid: (rows, cols) bool, the pixels that are points of the cloud.
        intrinsics: The camera at the grid's size.
        support: Largest distance to the cloud, a fraction of depth.
        face_budget: Decimate to at most this many triangles, or None.

    Returns:
        The trimmed mesh with camera-facing normals, and each vertex's seen flag and pixel.
        When no triangle at all is supported, the surface is kept whole (``trimmed`` False).
    """
    keep, found = supported_faces(
        surface.vertices, surface.faces, grid_points, valid, intrinsics, tolerance=support
    )
    trimmed = bool(keep.any())
    if not trimmed:  # nothing within the tolerance (a coarse octree on a tiny grid): keep all
        keep = np.ones(len(surface.faces), dtype=bool)
    vertices, faces, used = _compact(surface.vertices, surface.faces[keep])
    seen, pixel = found.seen[used], found.pixel[used]
    if face_budget is not None and len(faces) > face_budget:
        vertices, faces, _ = _decimate(vertices, faces, face_budget)
        found = nearest_grid_points(vertices, grid_points, valid, intrinsics, tolerance=support)
        seen, pixel = found.seen, found.pixel
    faces = _facing_camera(vertices, faces)
    normals = _unit_towards_camera(vertices, vertex_normals(vertices, faces))
    mesh = MeshArrays(vertices=vertices, faces=faces, normals=normals)
    return PoissonSurface(mesh, seen, pixel, trimmed)


def _compact(
    vertices: NDArray[np.float32], faces: NDArray[np.int64]
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.bool_]]:
    """Drop the vertices no face uses and renumber the faces; also return the mask kept."""
    used = np.zeros(vertices.shape[0], dtype=bool)
    used[faces.reshape(-1)] = True
    renumber = np.cumsum(used, dtype=np.int64) - 1
    return np.ascontiguousarray(vertices[used]), renumber[faces].reshape(-1, 3), used


def _decimate(
    vertices: NDArray[np.float32], faces: NDArray[np.int64], budget: int
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.bool_]]:
    """Quadric decimation (Open3D) to at most ``budget`` triangles."""
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(vertices.astype(np.float64)),
        o3d.utility.Vector3iVector(faces.astype(np.int32)),
    )
    mesh = mesh.simplify_quadric_decimation(target_number_of_triangles=budget)
    mesh.remove_unreferenced_vertices()
    mesh.remove_degenerate_triangles()
    return _compact(
        np.asarray(mesh.vertices, dtype=np.float32),
        np.asarray(mesh.triangles, dtype=np.int64).reshape(-1, 3),
    )


def vertex_normals(vertices: NDArray[np.float32], faces: NDArray[np.int64]) -> NDArray[np.float64]:
    """Area-weighted vertex normals (not normalised; zero for a vertex without faces).

    Args:
        vertices: (N, 3) float32 positions.
        faces: (M, 3) int64 indices.

    Returns:
        (N, 3) float64 sums of the adjacent triangles' cross products.
    """
    corners = vertices[faces].astype(np.float64)
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros((vertices.shape[0], 3))
    for column in range(3):
        for corner in range(3):
            normals[:, column] += np.bincount(
                faces[:, corner], weights=cross[:, column], minlength=vertices.shape[0]
            )
    return normals


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


def split_in_four(mesh: MeshArrays) -> tuple[MeshArrays, NDArray[np.int64]]:
    """Split every triangle into four at its edges' midpoints (the surface does not move).

    Used where colours live only at vertices (the Poisson PLY): half the spacing lets them
    follow the photo's detail. The original vertices keep their indices; each edge's midpoint
    is appended after them, with the mean of its ends' normal (renormalised), texture
    coordinates and colour. The four triangles keep their parent's winding.

    Args:
        mesh: Vertices (N, 3) float32, faces (M, 3) int64 and optional per-vertex attributes.

    Returns:
        The mesh with N + E vertices and 4 M faces, and the (E, 2) int64 vertex indices of the
        edge each new vertex halves (new vertex N + i halves edge ``edges[i]``).
    """
    faces = mesh.faces
    count = mesh.vertices.shape[0]
    sides = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    keys = np.sort(sides, axis=1)
    edges, which = np.unique(keys[:, 0] * count + keys[:, 1], return_inverse=True)
    edges = np.stack([edges // count, edges % count], axis=1).astype(np.int64)
    middle = (count + which.reshape(3, -1)).T  # (M, 3): the midpoints of sides 01, 12, 20
    a, b, c = faces.T
    ab, bc, ca = middle.T
    split = np.stack(
        [
            np.stack(corners, axis=1)
            for corners in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))
        ],
        axis=1,
    ).reshape(-1, 3)
    normals = None
    if mesh.normals is not None:
        normals = _halfway(mesh.normals, edges)
        length = np.linalg.norm(normals[count:], axis=1, keepdims=True)
        normals[count:] /= np.maximum(length, 1e-12)
    return (
        MeshArrays(
            vertices=_halfway(mesh.vertices, edges),
            faces=np.ascontiguousarray(split, dtype=np.int64),
            normals=normals,
            uvs=None if mesh.uvs is None else _halfway(mesh.uvs, edges),
            colors=None if mesh.colors is None else _halfway(mesh.colors, edges),
        ),
        edges,
    )


def _halfway(values: NDArray[_Item], edges: NDArray[np.int64]) -> NDArray[_Item]:
    """``values`` with each edge's mean appended (rounded for integers), in ``values``' dtype."""
    ends = values[edges[:, 0]].astype(np.float64), values[edges[:, 1]].astype(np.float64)
    mean = (ends[0] + ends[1]) / 2
    if np.issubdtype(values.dtype, np.integer):
        mean = np.round(mean)
    return np.concatenate([values, mean.astype(values.dtype)])
