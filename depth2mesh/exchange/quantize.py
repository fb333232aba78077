"""Quantising vertex data for ``KHR_mesh_quantization``, and splitting meshes for 16-bit indices.

Pure functions over numpy arrays; :mod:`depth2mesh.exchange.gltf` writes what they return. With the
extension, glTF allows vertex attributes stored as normalised integers (``value = q / 65535``
for an unsigned short, ``max(q / 127, -1)`` for a signed byte):

- positions: (N, 3) uint16 on a cube grid over the mesh's bounding box (one step for every
  axis, so that the node's scale is uniform and leaves normals' directions alone); the node's
  ``translation`` and ``scale`` turn them back into metres (``p = translation + scale * q /
  65535``). The largest error is half a step, ``scale / 131070`` per axis;
- texture coordinates in [0, 1]: uint16, error at most 1 / 131070;
- unit normals: int8, error at most 1 / 254 per component;
- linear colours in [0, 1]: uint16 (uint8 would band the dark tones of linear colour).

A mesh of more than 65,535 vertices cannot be indexed with unsigned shorts (65,535 itself is
the primitive-restart value, which glTF forbids): :func:`split_for_short_indices` cuts its
triangles into primitives that each use a window of at most 65,535 consecutive vertices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MAX_RELATIVE_ERROR",
    "SHORT_INDEX_VERTICES",
    "FaceChunk",
    "QuantizedPositions",
    "bounding_box",
    "dequantize_positions",
    "quantize_colors",
    "quantize_normals",
    "quantize_positions",
    "quantize_unit_interval",
    "split_for_short_indices",
]

UINT16_LEVELS: Final = 65535
"""Largest normalised unsigned short: ``q / 65535`` is 1."""

INT8_LEVELS: Final = 127
"""Largest normalised signed byte: ``q / 127`` is 1."""

SHORT_INDEX_VERTICES: Final = 65535
"""Most vertices a primitive with unsigned short indices can use: indices 0..65534 (65535 is
the primitive-restart value, which glTF forbids in index data)."""

MAX_RELATIVE_ERROR: Final = 1e-4
"""Largest position error quantisation may add, as a fraction of the scene's depth range."""


def bounding_box(points: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The minimum and maximum corners of (N, 3) points, N >= 1 (column by column: fast).

    Returns:
        (3,) float64 each, in the points' unit.
    """
    low = np.array([points[:, axis].min() for axis in range(3)], dtype=np.float64)
    high = np.array([points[:, axis].max() for axis in range(3)], dtype=np.float64)
    return low, high


def _row_min(values: NDArray[np.integer]) -> NDArray[np.int64]:
    """The smallest of each (M, 3) row (elementwise: much faster than ``min(axis=1)``)."""
    smallest: NDArray[np.int64] = np.minimum(np.minimum(values[:, 0], values[:, 1]), values[:, 2])
    return smallest.astype(np.int64)


def _row_max(values: NDArray[np.integer]) -> NDArray[np.int64]:
    """The largest of each (M, 3) row."""
    largest: NDArray[np.int64] = np.maximum(np.maximum(values[:, 0], values[:, 1]), values[:, 2])
    return largest.astype(np.int64)


@dataclass(frozen=True)
class QuantizedPositions:
    """Positions as normalised unsigned shorts plus the transform that restores them.

    Attributes:
        values: (N, 3) uint16, ``q``; the position is ``translation + scale * q / 65535``.
        translation: (3,) float64 metres, the bounding box's minimum corner.
        scale: (3,) float64 metres, the bounding box's largest size, the same for each axis
            (1 when every point is the same).
    """

    values: NDArray[np.uint16]
    translation: NDArray[np.float64]
    scale: NDArray[np.float64]

    @property
    def step(self) -> float:
        """One step of the grid, metres: the error is at most half of it per axis."""
        return float(self.scale[0]) / UINT16_LEVELS


def quantize_unit_interval(values: NDArray[np.floating]) -> NDArray[np.uint16]:
    """Quantise values in [0, 1] to normalised unsigned shorts (``q / 65535``).

    Args:
        values: (N, K) float in [0, 1] (unitless).

    Returns:
        (N, K) uint16, rounded to the nearest level (error at most 1 / 131070).

    Raises:
        ValueError: A value lies outside [0, 1] or is not finite.
    """
    array = np.asarray(values, dtype=np.float64)
    inside = (array >= 0.0) & (array <= 1.0)  # False for NaN too
    if not inside.all():
        raise ValueError("normalised unsigned values must be finite and in [0, 1]")
    return np.rint(array * UINT16_LEVELS).astype(np.uint16)


def quantize_positions(positions: NDArray[np.floating]) -> QuantizedPositions:
    """Quantise positions to unsigned shorts on a cube grid over their bounding box.

    Args:
        positions: (N, 3) float positions, metres; N >= 1, finite.

    Returns:
        The quantised values and the transform that restores them.
    """
    low, high = bounding_box(positions)
    size = float((high - low).max())
    scale = np.full(3, size if size > 0.0 else 1.0)
    steps = (np.asarray(positions, dtype=np.float64) - low) * (UINT16_LEVELS / scale[0])
    values = np.rint(steps).astype(np.uint16)
    return QuantizedPositions(values, low, scale)


def dequantize_positions(
    values: NDArray[np.integer], translation: NDArray[np.floating], scale: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Restore quantised positions: ``translation + scale * q / 65535``.

    Args:
        values: (N, 3) uint16 normalised positions.
        translation: (3,) metres.
        scale: (3,) metres.

    Returns:
        (N, 3) float64 positions, metres.
    """
    steps = np.asarray(values, dtype=np.float64) / UINT16_LEVELS
    restored: NDArray[np.float64] = np.asarray(translation) + steps * np.asarray(scale)
    return restored


def quantize_normals(normals: NDArray[np.floating]) -> NDArray[np.int8]:
    """Quantise unit normals to normalised signed bytes (``max(q / 127, -1)``).

    Each component is rounded to the nearest level, so a vector's length stays within about
    1 % of 1 (a quantised unit vector can seldom be exactly unit length).

    Args:
        normals: (N, 3) float unit vectors.

    Returns:
        (N, 3) int8 in [-127, 127].
    """
    unit = np.asarray(normals, dtype=np.float64)
    values = np.clip(np.rint(unit * INT8_LEVELS), -INT8_LEVELS, INT8_LEVELS)
    return values.astype(np.int8)


def quantize_colors(colors_linear: NDArray[np.floating]) -> NDArray[np.uint16]:
    """Quantise linear colours in [0, 1] to normalised unsigned shorts.

    Args:
        colors_linear: (N, 3) or (N, 4) float linear RGB(A) in [0, 1].

    Returns:
        (N, 3) or (N, 4) uint16 (error at most 1 / 131070).
    """
    return quantize_unit_interval(colors_linear)


@dataclass(frozen=True)
class FaceChunk:
    """One primitive's share of a mesh split for unsigned short indices.

    Attributes:
        faces: (K, 3) int64 indices local to the window (``global - first_vertex``), each in
            [0, vertex_count).
        first_vertex: The window's first vertex in the mesh's vertex arrays.
        vertex_count: The window's length, at most :data:`SHORT_INDEX_VERTICES`.
    """

    faces: NDArray[np.int64]
    first_vertex: int
    vertex_count: int


def split_for_short_indices(
    faces: NDArray[np.integer], *, limit: int = SHORT_INDEX_VERTICES
) -> list[FaceChunk] | None:
    """Cut triangles into chunks that each use a window of at most ``limit`` consecutive vertices.

    Triangles are taken in the order of their smallest index (a pixel grid's row-major faces
    already are; others are sorted, stably), and each chunk grows while its window fits. The
    windows may overlap (a grid's chunks share a row of vertices), so no vertex is copied: each
    primitive's accessors look at its window of the one vertex array.

    Args:
        faces: (M, 3) integer vertex indices, M >= 1.
        limit: Most vertices in a window.

    Returns:
        The chunks, in order, together holding every triangle once; None when some triangle's
        indices lie ``limit`` or more apart (no window holds it).
    """
    triangles = np.asarray(faces, dtype=np.int64)
    lows, highs = _row_min(triangles), _row_max(triangles)
    if int((highs - lows).max()) >= limit:
        return None
    if (np.diff(lows) < 0).any():
        order = np.argsort(lows, kind="stable")
        triangles, lows, highs = triangles[order], lows[order], highs[order]
    chunks: list[FaceChunk] = []
    start, count = 0, len(triangles)
    while start < count:
        first = int(lows[start])
        # only triangles that start inside the window [first, first + limit) can join it;
        # of those, the chunk takes the run until the first one that ends beyond it
        candidates = int(np.searchsorted(lows, first + limit, side="left"))
        reach = np.maximum.accumulate(highs[start:candidates])
        stop = start + max(int(np.searchsorted(reach, first + limit, side="left")), 1)
        last = int(reach[stop - start - 1])
        chunks.append(FaceChunk(triangles[start:stop] - first, first, last - first + 1))
        start = stop
    return chunks
