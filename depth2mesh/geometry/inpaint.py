"""The background layer: what the photo never saw behind every torn edge, guessed.

Where the grid mesh is torn (an occlusion edge: a near object in front of a farther surface),
a viewer who steps aside sees a hole. This module fills it the way a layered depth image does,
without a learned network:

- :func:`far_side`: the pixels on the far side of each torn cell, and the depth of the near
  side next to them.
- :func:`background_layer`: from every far-side pixel, the far surface is carried on behind
  the near object, in a straight line in inverse depth (a plane in the camera's space is a
  linear function of inverse depth over the image, so a slanted floor stays a floor), over a
  band as wide as the parallax that a move of ``baseline`` metres makes between the two sides
  (``f * baseline * (1/z_near - 1/z_far)`` pixels); only pixels that lie in front of the
  carried-on surface (the near object) get a layer pixel, so it stays hidden behind the near
  object from the photo's camera. Its colours come from the far side only: each layer pixel
  takes the colour of its mirror image across the edge on the far side (or of the nearest
  far-side pixel where the mirror image falls on something else).
  Where a band reaches past the grid's edge (a frame or a near object along the photo's
  border hides a background that goes on beyond it), the layer goes on out there too
  (:func:`border_padding`).
- :func:`layer_mesh`: triangles of the layer, joined to the far side through its own pixels
  (the same positions as the grid mesh's vertices: no crack), cut into tiles whose colours
  are packed into a strip of the texture (:func:`layer_strip`).
- :func:`border_skirt`: a half-pixel rim beyond the grid's border, so that the photo camera's
  rays through the border pixels' centres hit the mesh.

Conventions: arrays at the mesh grid's size (rows, cols); depth in metres along +z of the
OpenCV camera frame, NaN where unmeasured; colours (rows, cols, 3) uint8 sRGB. Pure functions
over numpy arrays (OpenCV for distance transforms and sampling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from depth2mesh.geometry.camera import Intrinsics
from depth2mesh.geometry.points import depth_edge_faces, grid_faces

InpaintMode = Literal["on", "off"]

DEFAULT_INPAINT: Final[InpaintMode] = "on"
"""The background layer (``--inpaint``): "on" adds it to the grid GLB; "off" leaves the
grid mesh as it was (the files byte for byte as before the layer existed)."""

BASELINE_M: Final = 0.3
"""How far a viewer is expected to move beside the photo's camera, metres: the layer's band is
as wide as the parallax of this move between the two sides of an edge."""

BAND_MARGIN_PX: Final = 2.0
"""Pixels added to the parallax band (the turn of a viewer's camera, rounding)."""

MAX_BAND: Final = 0.15
"""Widest band, as a fraction of the grid's long side."""

FAR_RATIO: Final = 1.03
"""A torn cell's corner is on the far side when its depth exceeds the cell's nearest corner's
by more than this ratio."""

BEHIND_RATIO: Final = 1.02
"""A layer pixel lies at least this ratio behind the near surface the photo saw there."""

PARALLAX_CLASSES_PX: Final = (32.0, 12.0, 3.0, 0.0)
"""Far-side pixels are carried on in passes, those whose step's parallax is at least each of
these many pixels first: a wide step's band is not taken by the smaller tears inside a curved
surface or a frame in front of it (see :func:`background_layer`)."""

INNER_CORNER_PX: Final = 32.0
"""Passes of steps whose parallax is at least this many pixels look for inner corners
(:func:`_inner_corners`)."""

SLOPE_STEP_PX: Final = 3.0
"""The far side's slope is measured over this many pixels (and twice as many, to check that
it is steady)."""

STEADY_SLOPE: Final = 0.02
"""The far side counts as a plane when its inverse depth's second difference over
:data:`SLOPE_STEP_PX` is below this share of its inverse depth; otherwise it is carried on
flat."""

MAX_INVERSE_CHANGE: Final = 0.5
"""The carried-on inverse depth stays within this share of the edge's own."""

TILE_CELLS: Final = 24
"""The layer's mesh is cut into tiles of this many cells a side; each tile's colours fill one
slot of the texture strip."""

SLOT_TEXELS: Final = 32
"""Side of a tile's slot in the texture strip, texels (a multiple of JPEG's 16-pixel blocks,
so no block mixes two tiles); the tile's (TILE_CELLS + 1)-texel block sits inside, its border
repeated around it."""

SLOT_OFFSET: Final = (SLOT_TEXELS - TILE_CELLS - 1) // 2
"""Texels of repeated border before a tile's block in its slot."""


@dataclass(frozen=True)
class BackgroundLayer:
    """The guessed surface behind the near side of every torn edge, on the mesh grid.

    Its arrays are (rows, cols): the grid's, plus any padding beyond its edges (``origin``).

    Attributes:
        depth: (rows, cols) float32 metres along +z: the layer's depth on its pixels, the
            photo's own depth on the other corners of torn cells (the far side it joins, and
            cells torn within one side, which it mends), NaN elsewhere.
        colors: (rows, cols, 3) uint8 sRGB: the layer's colours on its pixels, the photo's on
            the far side, and everywhere else the colour of the nearest of those (so that
            texture filtering never reaches the near object's colours).
        layer: (rows, cols) bool, the layer's own pixels (behind the near surface).
        far: (rows, cols) bool, far-side pixels of torn cells (the layer starts there).
        origin: (row, column) of the grid's first pixel in these arrays: where a band
            reaches past the grid's edge (a near object or a frame along the photo's border),
            the arrays are padded on that side (see :func:`border_padding`) and the layer
            goes on out there; (0, 0) and the grid's own size where nothing reaches out.
    """

    depth: NDArray[np.float32]
    colors: NDArray[np.uint8]
    layer: NDArray[np.bool_]
    far: NDArray[np.bool_]
    origin: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class LayerMesh:
    """The layer's triangles, tile by tile, with texture coordinates in the strip.

    Attributes:
        vertices: (N, 3) float32 camera-frame positions, metres.
        faces: (M, 3) int64 indices into ``vertices``, wound like the grid mesh's.
        texels: (N, 2) float64 (column, row) texel centres in the strip, texels (add the
            strip's place in the texture and divide by its size for texture coordinates).
        tiles: (K, 2) int64 (tile row, tile column) of each slot, in slot order.
    """

    vertices: NDArray[np.float32]
    faces: NDArray[np.int64]
    texels: NDArray[np.float64]
    tiles: NDArray[np.int64]


def far_side(
    depth: NDArray[np.floating], kept: NDArray[np.bool_], *, ratio: float = FAR_RATIO
) -> tuple[NDArray[np.bool_], NDArray[np.float32]]:
    """Find the far side of every torn cell, and the near side's depth beside it.

    A cell is torn when its four corners have depth but a triangle of it is not kept. Its
    corners deeper than its nearest corner by more than ``ratio`` are on the far side.

    Args:
        depth: (rows, cols) float depth, metres (NaN: unmeasured).
        kept: (rows-1, cols-1, 2) bool triangles of the grid mesh
            (:func:`~depth2mesh.geometry.mesh.kept_triangles`).
        ratio: Least depth ratio between a far corner and the cell's nearest corner (> 1).

    Returns:
        (rows, cols) bool far-side pixels, and (rows, cols) float32 depth of the nearest
        corner of the torn cells around each pixel, metres (inf where none).
    """
    z = np.asarray(depth, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        usable = z > 0  # False for NaN
    usable &= np.isfinite(z)
    measured = usable[:-1, :-1] & usable[:-1, 1:] & usable[1:, :-1] & usable[1:, 1:]
    torn = measured & ~(kept[..., 0] & kept[..., 1])
    lowest = np.minimum(np.minimum(z[:-1, :-1], z[:-1, 1:]), np.minimum(z[1:, :-1], z[1:, 1:]))
    cell_near = np.where(torn, lowest, np.float32(np.inf))
    near = np.full(z.shape, np.inf, dtype=np.float32)
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        view = near[dr : dr + z.shape[0] - 1, dc : dc + z.shape[1] - 1]
        np.minimum(view, cell_near, out=view)
    with np.errstate(invalid="ignore"):
        far = np.isfinite(near) & (z > ratio * near)
    return np.asarray(far), near


def _nearest(
    mask: NDArray[np.bool_], reach: float, free: NDArray[np.bool_]
) -> tuple[NDArray[np.intp], NDArray[np.float32], NDArray[np.intp]]:
    """The ``free`` pixels within ``reach`` of a True pixel of ``mask`` (not on it).

    Only the box around ``mask``'s pixels widened by ``reach`` is searched (the distance
    transform's paths between two pixels of a box stay inside it: the same result).

    Returns:
        Their flat indices (ascending), their distances (pixels) to the nearest True pixel
        and that pixel's flat index, each (N,).
    """
    height, width = mask.shape
    rows, cols = np.nonzero(mask)
    margin = math.ceil(reach)
    top, left = max(int(rows.min()) - margin, 0), max(int(cols.min()) - margin, 0)
    bottom = min(int(rows.max()) + margin + 1, height)
    right = min(int(cols.max()) + margin + 1, width)
    box = mask[top:bottom, left:right]
    distance, labels = cv2.distanceTransformWithLabels(
        (~box).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    label_to_pixel = np.zeros(int(labels.max()) + 1, dtype=np.intp)
    label_to_pixel[labels[rows - top, cols - left]] = rows * width + cols
    local = np.flatnonzero((distance > 0) & (distance <= reach) & free[top:bottom, left:right])
    local_row, local_col = np.divmod(local, right - left)
    flat = (local_row + top) * width + local_col + left
    found: NDArray[np.float32] = np.asarray(distance, np.float32).ravel()[local]
    return flat, found, label_to_pixel[labels.ravel()[local]]


def _bilinear(
    image: NDArray[np.float32], cols: NDArray[np.floating], rows: NDArray[np.floating]
) -> NDArray[np.float32]:
    """Sample ``image`` bilinearly at float positions, its border repeated.

    Args:
        image: (H, W) or (H, W, C) float32.
        cols: (N,) float column positions, pixels.
        rows: (N,) float row positions, pixels.

    Returns:
        (N,) or (N, C) float32.
    """
    count = len(cols)
    if count == 0:
        return np.zeros((0, *image.shape[2:]), np.float32)
    width = 4096  # cv2.remap takes maps under 32767 a side
    padded = -(-count // width) * width
    map_x = np.zeros(padded, np.float32)
    map_y = np.zeros(padded, np.float32)
    map_x[:count] = cols
    map_y[:count] = rows
    sampled = cv2.remap(
        image,
        map_x.reshape(-1, width),
        map_y.reshape(-1, width),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    flat = np.asarray(sampled, np.float32).reshape(padded, *image.shape[2:])
    return flat[:count]


def background_layer(
    depth: NDArray[np.floating],
    colors: NDArray[np.uint8],
    kept: NDArray[np.bool_],
    *,
    focal_px: float,
    baseline: float = BASELINE_M,
) -> BackgroundLayer:
    """Carry the far side of every torn edge on behind the near object, with its colours.

    Each pixel within the band of its nearest far-side pixel ``q`` (band: the parallax of a
    ``baseline`` move between ``q``'s depth and the near side's, plus
    :data:`BAND_MARGIN_PX`, at most :data:`MAX_BAND` of the long side) whose first step from
    ``q`` towards it crosses the tear (that neighbour is nearer than ``q`` by
    :data:`FAR_RATIO`) gets the far surface carried on from ``q`` along the line through both:
    inverse depth ``w(q) + k * d`` with ``k`` the far side's slope per pixel measured over
    :data:`SLOPE_STEP_PX` (0 where the slope is not steady), ``d`` the distance. It becomes a
    layer pixel when that lies :data:`BEHIND_RATIO` behind its own depth. Its colour is the
    photo's at its mirror image ``2q - p`` when that lies on the far side (not nearer than
    ``q`` by 10 %), else halfway there, else ``q``'s. Bands that reach past the grid's edge
    go on beyond it: the layer's arrays are padded there (:func:`border_padding`,
    :attr:`BackgroundLayer.origin`) and the pixels out there are free for the layer.

    Args:
        depth: (rows, cols) float depth, metres (NaN: unmeasured).
        colors: (rows, cols, 3) uint8 sRGB photo at the grid's size.
        kept: (rows-1, cols-1, 2) bool triangles of the grid mesh.
        focal_px: The grid camera's focal length, grid pixels.
        baseline: The viewer's move, metres (> 0).

    Returns:
        The layer (its arrays padded where bands reach past the grid's edges).

    Raises:
        ValueError: Shapes that do not match, or a baseline or focal length that is not
            positive.
    """
    z = np.asarray(depth, dtype=np.float32)
    rows, cols = z.shape
    if colors.shape != (rows, cols, 3) or kept.shape != (rows - 1, cols - 1, 2):
        raise ValueError(
            f"colors must be (rows, cols, 3) and kept (rows-1, cols-1, 2) for depth {z.shape}, "
            f"got {colors.shape} and {kept.shape}"
        )
    if not (math.isfinite(baseline) and baseline > 0 and math.isfinite(focal_px) and focal_px > 0):
        raise ValueError(f"baseline and focal_px must be positive, got {baseline}, {focal_px}")
    far, near = far_side(z, kept)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(np.isfinite(z) & (z > 0), 1.0 / z, 0.0).astype(np.float32)
        parallax = np.where(far, focal_px * baseline * (1.0 / near - inverse), 0.0)
    band = np.where(far, np.minimum(parallax + BAND_MARGIN_PX, MAX_BAND * max(rows, cols)), 0)
    pads = border_padding(band)
    top, left = pads[0][0], pads[1][0]
    if any(pads[0]) or any(pads[1]):
        z = np.pad(z, pads, constant_values=np.nan)
        colors = np.pad(colors, (*pads, (0, 0)), mode="edge")
        inverse = np.pad(inverse, pads)
        parallax = np.pad(parallax, pads)
        band = np.pad(band, pads)
        far = np.pad(far, pads)
        near = np.pad(near, pads, constant_values=np.inf)
    outside = np.ones(z.shape, dtype=bool)
    outside[top : top + rows, left : left + cols] = False
    layer = np.zeros(z.shape, dtype=bool)
    layer_depth = np.full(z.shape, np.nan, dtype=np.float32)
    layer_colors = colors.copy()
    if far.any():
        farthest = np.float32(np.nanmax(z))
        measured = np.isfinite(z) | outside  # beyond the grid's edge: free for the layer
        free_sources = far.copy()
        # wide steps first: the small tears inside a curved surface must not take the pixels
        # that lie within a wide step's band
        for least in PARALLAX_CLASSES_PX:
            sources = far & (parallax >= least)
            if not sources.any() or (least > 0 and not (sources & free_sources).any()):
                continue
            free_sources &= ~sources
            flat, q, z_layer = _carry_on(z, inverse, sources, band, near, free=~layer & measured)
            if least >= INNER_CORNER_PX:  # inner corners behind the wide steps
                z_layer = _inner_corners(z, inverse, sources, band, flat, z_layer)
            # never beyond what the photo saw, never in front of the near surface
            z_layer = np.fmax(np.minimum(z_layer, farthest), BEHIND_RATIO * z.ravel()[flat])
            layer.ravel()[flat] = True
            layer_depth.ravel()[flat] = z_layer
            layer_colors.reshape(-1, 3)[flat] = _far_colors(
                z, colors, np.divmod(flat, z.shape[1]), np.divmod(q, z.shape[1]), z.ravel()[q]
            )
    torn_corner = np.isfinite(near)  # every corner of a torn cell: the layer may mend it
    layer_depth = np.where(layer, layer_depth, np.where(torn_corner, z, np.nan))
    layer_depth = layer_depth.astype(np.float32)
    # everything else takes the colour of the nearest layer or far-side pixel: a texture
    # filter that reaches past the layer's edge finds far-side colours, never the near object
    layer_colors = _spread(layer_colors, layer | torn_corner)
    return BackgroundLayer(layer_depth, layer_colors, layer, far, (top, left))


def border_padding(band: NDArray[np.floating]) -> tuple[tuple[int, int], tuple[int, int]]:
    """How far the bands of far-side pixels reach past each edge of the grid.

    A near object (or a frame) along the photo's border hides a background that goes on
    beyond the border; a viewer who steps aside sees it there, so the layer goes on past the
    edge as far as the bands reach.

    Args:
        band: (rows, cols) float band width at each far-side pixel, pixels (0 elsewhere).

    Returns:
        ((top, bottom), (left, right)) whole pixels to pad on each side (0 where no band
        reaches out).
    """
    rows, cols = band.shape
    row, col = np.nonzero(band > 0)
    if row.size == 0:
        return (0, 0), (0, 0)
    reach = band[row, col]

    def out(distance: NDArray[np.intp]) -> int:
        return math.ceil(max(0.0, float(np.max(reach - distance))))

    return (out(row), out(rows - 1 - row)), (out(col), out(cols - 1 - col))


def _spread(colors: NDArray[np.uint8], known: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """Give the pixels beside ``known`` ones the mean colour of their known 8-neighbours.

    Two rounds: a texture filter between layer texels reaches at most one pixel past them.
    Only the pixels next to known ones are visited.

    Args:
        colors: (rows, cols, 3) uint8 sRGB.
        known: (rows, cols) bool pixels whose colours stay.

    Returns:
        (rows, cols, 3) uint8 sRGB.
    """
    rows, cols = known.shape
    # one pixel of padding: every neighbour of a pixel of the grid exists
    spread = np.zeros((rows + 2, cols + 2, 3), np.uint8)
    spread[1:-1, 1:-1] = colors
    weight = np.zeros((rows + 2, cols + 2), np.uint8)
    weight[1:-1, 1:-1] = known
    width = cols + 2
    offsets = np.array([dr * width + dc for dr in (-1, 0, 1) for dc in (-1, 0, 1)], np.intp)
    flat_colors = spread.reshape(-1, 3)
    flat_weight = weight.ravel()
    for _ in range(2):
        grown = cv2.dilate(weight[1:-1, 1:-1], np.ones((3, 3), np.uint8))
        fill_row, fill_col = np.nonzero(grown > weight[1:-1, 1:-1])
        if fill_row.size == 0:
            break
        fill = (fill_row + 1) * width + fill_col + 1
        around = fill[:, None] + offsets[None, :]  # (N, 9)
        counted = flat_weight[around].astype(np.float32)
        total = np.einsum("nk,nkc->nc", counted, flat_colors[around].astype(np.float32))
        mean = total / counted.sum(axis=1)[:, None]
        flat_colors[fill] = np.clip(np.rint(mean), 0, 255).astype(np.uint8)
        flat_weight[fill] = 1
    return np.ascontiguousarray(spread[1:-1, 1:-1])


def _carry_on(
    z: NDArray[np.float32],
    inverse: NDArray[np.float32],
    sources: NDArray[np.bool_],
    band: NDArray[np.floating],
    near: NDArray[np.float32],
    *,
    free: NDArray[np.bool_],
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32]]:
    """Carry the far surface on from the nearest of ``sources`` (see :func:`background_layer`).

    Args:
        z: (rows, cols) float32 depth, metres (NaN: unmeasured).
        inverse: (rows, cols) float32 inverse depth, 1/metres (0 where unmeasured).
        sources: (rows, cols) bool far-side pixels to carry on from.
        band: (rows, cols) float band width at each far-side pixel, pixels.
        near: (rows, cols) float32 the near side's depth beside each far-side pixel, metres.
        free: (rows, cols) bool pixels that may still become layer pixels (measured ones,
            or beyond the grid's edge).

    Returns:
        The layer pixels found (flat indices), their far-side pixels (flat indices) and their
        layer depths (metres), each (N,).
    """
    rows, cols = z.shape
    flat, d, q = _nearest(sources, float(band[sources].max()), free)
    within = d <= band.ravel()[q]
    flat, d, q = flat[within], d[within], q[within]
    p_row, p_col = np.divmod(flat, cols)
    q_row, q_col = np.divmod(q, cols)
    n_row = (q_row - p_row) / d  # unit step from p towards q (into the far side)
    n_col = (q_col - p_col) / d
    z_q = z.ravel()[q]
    middle = np.sqrt(z_q * near.ravel()[q])  # halfway through the step, in log depth
    # the pixel lies on the near side: nearer than the step's middle, or the first steps
    # from q back towards it cross the tear (not the far surface going on) and the pixel is
    # on that step's side (not a farther surface beyond the corner of a near object that the
    # steps clip)
    z_p = z.ravel()[flat]
    crosses = z_p < middle
    for step in (1.0, 1.5, 2.0):
        step_row = np.clip(np.rint(q_row - step * n_row), 0, rows - 1).astype(np.intp)
        step_col = np.clip(np.rint(q_col - step * n_col), 0, cols - 1).astype(np.intp)
        z_step = z[step_row, step_col]
        with np.errstate(invalid="ignore"):
            side = ~(z_p >= np.sqrt(z_step * z_q))  # beyond the grid's edge (NaN): its side
            crosses |= (z_step < middle) & (step <= d) & side
    flat, q = flat[crosses], q[crosses]
    return flat, q, _carried_depth(inverse, flat, q)


def _carried_depth(
    inverse: NDArray[np.float32], pixels: NDArray[np.intp], sources: NDArray[np.intp]
) -> NDArray[np.float32]:
    """Carry the far surface at ``sources`` on to ``pixels`` in a straight line.

    The line is one of inverse depth, through both pixels, with the far side's slope measured
    over :data:`SLOPE_STEP_PX` beyond the source (flat where that slope is not steady), kept
    within :data:`MAX_INVERSE_CHANGE` of the source's inverse depth.

    Args:
        inverse: (rows, cols) float32 inverse depth, 1/metres (0 where unmeasured).
        pixels: (N,) flat indices of the pixels.
        sources: (N,) flat indices of their far-side pixels.

    Returns:
        (N,) float32 depth, metres.
    """
    cols = inverse.shape[1]
    p_row, p_col = np.divmod(pixels, cols)
    q_row, q_col = np.divmod(sources, cols)
    d = np.maximum(np.hypot(q_row - p_row, q_col - p_col), 1e-6)
    n_row = (q_row - p_row) / d
    n_col = (q_col - p_col) / d
    w_q = inverse.ravel()[sources]
    s = SLOPE_STEP_PX
    w1 = _bilinear(inverse, q_col + s * n_col, q_row + s * n_row)
    w2 = _bilinear(inverse, q_col + 2 * s * n_col, q_row + 2 * s * n_row)
    steady = (w1 > 0) & (w2 > 0) & (np.abs(w_q - 2 * w1 + w2) <= STEADY_SLOPE * w_q)
    slope = np.where(steady, (w_q - w1) / s, 0.0)
    carried = np.clip(
        w_q + slope * d, (1 - MAX_INVERSE_CHANGE) * w_q, (1 + MAX_INVERSE_CHANGE) * w_q
    )
    depth: NDArray[np.float32] = (1.0 / carried).astype(np.float32)
    return depth


def _inner_corners(
    z: NDArray[np.float32],
    inverse: NDArray[np.float32],
    sources: NDArray[np.bool_],
    band: NDArray[np.floating],
    pixels: NDArray[np.intp],
    z_layer: NDArray[np.float32],
) -> NDArray[np.float32]:
    """Where two far surfaces meet behind the near object, the nearer of them carried on.

    Each layer pixel's far surface is carried on from its nearest far-side pixel; the nearest
    far-side pixels straight to its left, right, above and below (within their bands, across
    the tear) are carried on to it too, and the nearest result that still lies behind the
    near surface wins: two walls (or a wall and the floor) meet in an inner corner, where
    each one carried on past the corner lies behind the other.

    Args:
        z: (rows, cols) float32 depth, metres.
        inverse: (rows, cols) float32 inverse depth, 1/metres.
        sources: (rows, cols) bool far-side pixels.
        band: (rows, cols) float band width at each far-side pixel, pixels.
        pixels: (N,) flat indices of the layer pixels.
        z_layer: (N,) float32 their layer depth, metres.

    Returns:
        (N,) float32 layer depth, metres.
    """
    rows, cols = z.shape
    p_row, p_col = np.divmod(pixels, cols)
    best = z_layer.copy()
    floor = BEHIND_RATIO * z.ravel()[pixels]
    column = np.arange(cols, dtype=np.int32)[None, :]
    row = np.arange(rows, dtype=np.int32)[:, None]
    none = np.int32(-1)
    before_col = np.maximum.accumulate(np.where(sources, column, none), axis=1)
    flipped = np.maximum.accumulate(np.where(sources, cols - 1 - column, none)[:, ::-1], axis=1)
    after_col = cols - 1 - flipped[:, ::-1]  # cols where there is none
    before_row = np.maximum.accumulate(np.where(sources, row, none), axis=0)
    flipped = np.maximum.accumulate(np.where(sources, rows - 1 - row, none)[::-1], axis=0)
    after_row = rows - 1 - flipped[::-1]
    for found, vertical, sign in (
        (before_col, False, -1),
        (after_col, False, 1),
        (before_row, True, -1),
        (after_row, True, 1),
    ):
        at = found[p_row, p_col]
        valid = (at >= 0) & (at < (rows if vertical else cols))
        q_row = np.where(vertical, at, p_row)
        q_col = np.where(vertical, p_col, at)
        q = np.where(valid, q_row * cols + q_col, 0)
        distance = np.abs(at - (p_row if vertical else p_col))
        # the step from q towards the pixel crosses the tear
        s_row = np.clip(q_row - (sign if vertical else 0), 0, rows - 1)
        s_col = np.clip(q_col - (0 if vertical else sign), 0, cols - 1)
        with np.errstate(invalid="ignore"):
            crosses = z[s_row, s_col] * FAR_RATIO < z.ravel()[q]
        use = np.flatnonzero(valid & (distance > 0) & (distance <= band.ravel()[q]) & crosses)
        if use.size == 0:
            continue
        candidate = _carried_depth(inverse, pixels[use], q[use])
        better = (candidate < best[use]) & (candidate > floor[use])
        best[use[better]] = candidate[better]
    return best


def _far_colors(
    depth: NDArray[np.float32],
    colors: NDArray[np.uint8],
    pixels: tuple[NDArray[np.intp], NDArray[np.intp]],
    sources: tuple[NDArray[np.intp], NDArray[np.intp]],
    source_depth: NDArray[np.float32],
) -> NDArray[np.uint8]:
    """Pick the far side's colour for each layer pixel.

    Its mirror image across the edge (``2q - p``) where that lies on the far side (not nearer
    than ``q`` by 10 %), else the point halfway there, else ``q``'s own colour.

    Args:
        depth: (rows, cols) float32 depth, metres.
        colors: (rows, cols, 3) uint8 sRGB.
        pixels: (row, col) int arrays (N,) of the layer pixels.
        sources: (row, col) int arrays (N,) of their far-side pixels.
        source_depth: (N,) float32 the far-side pixels' depth, metres.

    Returns:
        (N, 3) uint8 sRGB.
    """
    rows, cols = depth.shape
    p_row, p_col = pixels
    q_row, q_col = sources
    chosen = colors[q_row, q_col].astype(np.float32)
    colors_float = colors.astype(np.float32)
    for reach in (0.5, 1.0):  # the later (the whole mirror image) wins where it is usable
        m_row = q_row + reach * (q_row - p_row)
        m_col = q_col + reach * (q_col - p_col)
        inside = (m_row >= 0) & (m_row <= rows - 1) & (m_col >= 0) & (m_col <= cols - 1)
        r = np.clip(np.rint(m_row), 0, rows - 1).astype(np.intp)
        c = np.clip(np.rint(m_col), 0, cols - 1).astype(np.intp)
        with np.errstate(invalid="ignore"):
            usable = inside & (depth[r, c] * 1.1 >= source_depth)
        if usable.any():
            sampled = _bilinear(colors_float, m_col[usable], m_row[usable])
            chosen[usable] = sampled
    return np.clip(np.rint(chosen), 0, 255).astype(np.uint8)


def layer_mesh(
    layer: BackgroundLayer,
    kept: NDArray[np.bool_],
    intrinsics: Intrinsics,
    *,
    edge_threshold: float,
    slots_per_row: int,
) -> LayerMesh:
    """Triangulate the layer, tile by tile, and place each tile in a slot of the strip.

    A triangle of the grid's layout (:func:`~depth2mesh.geometry.points.grid_faces`) belongs
    to the layer when its three corners have layer depth, its depth ratio is at most
    ``edge_threshold``, and a corner is a layer pixel or the grid mesh left the triangle out
    (a torn cell whose corners are close in depth is mended: from beside the photo it would
    be a crack). Triangles are
    grouped by tile (:data:`TILE_CELLS` cells a side); each tile has its own copy of its
    vertices (tiles share only positions), whose texels lie in the tile's slot.

    Args:
        layer: The layer.
        kept: (rows-1, cols-1, 2) bool triangles of the grid mesh (at the grid's size: the
            cells of the layer's padding count as kept).
        intrinsics: The grid's camera (its size is the grid's).
        edge_threshold: Largest depth ratio within a triangle (> 1).
        slots_per_row: Slots across the strip (>= 1).

    Returns:
        The layer's mesh (empty arrays when it has no triangle).
    """
    rows, cols = layer.depth.shape
    top, left = layer.origin
    if kept.shape != (rows - 1, cols - 1, 2):  # the layer goes on past the grid's edges
        padded = np.ones((rows - 1, cols - 1, 2), dtype=bool)
        padded[top : top + kept.shape[0], left : left + kept.shape[1]] = kept
        kept = padded
    own = layer.layer
    # triangle 0: top-left, bottom-left, top-right; triangle 1: top-right, bottom-left,
    # bottom-right (grid_faces' layout)
    candidate = np.stack(
        [
            own[:-1, :-1] | own[1:, :-1] | own[:-1, 1:] | ~kept[..., 0],
            own[:-1, 1:] | own[1:, :-1] | own[1:, 1:] | ~kept[..., 1],
        ],
        axis=2,
    )
    cell_row, cell_col, which = np.nonzero(candidate)
    offsets = np.array([[[0, 0], [1, 0], [0, 1]], [[0, 1], [1, 0], [1, 1]]], dtype=np.int64)
    corner_row = cell_row[:, None] + offsets[which, :, 0]
    corner_col = cell_col[:, None] + offsets[which, :, 1]
    corner_depth = layer.depth[corner_row, corner_col]
    with np.errstate(invalid="ignore"):  # NaN corners: not kept
        low, high = corner_depth.min(axis=1), corner_depth.max(axis=1)
        good = (low > 0) & (high <= edge_threshold * low)
    cell_row, cell_col = cell_row[good], cell_col[good]
    corner_row, corner_col = corner_row[good], corner_col[good]
    if cell_row.size == 0:
        return LayerMesh(
            np.zeros((0, 3), np.float32),
            np.zeros((0, 3), np.int64),
            np.zeros((0, 2), np.float64),
            np.zeros((0, 2), np.int64),
        )
    tiles_across = -(-(cols - 1) // TILE_CELLS)
    tile = (cell_row // TILE_CELLS) * tiles_across + cell_col // TILE_CELLS
    used_tiles, slot = np.unique(tile, return_inverse=True)
    tile_row = (used_tiles // tiles_across)[slot]
    tile_col = (used_tiles % tiles_across)[slot]
    local_row = corner_row - (tile_row * TILE_CELLS)[:, None]
    local_col = corner_col - (tile_col * TILE_CELLS)[:, None]
    side = TILE_CELLS + 1
    key = (slot[:, None] * side + local_row) * side + local_col
    used = np.zeros(len(used_tiles) * side * side, dtype=bool)  # keys are dense: no sort
    used[key.ravel()] = True
    unique = np.flatnonzero(used)
    renumber = np.cumsum(used, dtype=np.int64) - 1
    faces = renumber[key.ravel()]
    vertex_slot, rest = np.divmod(unique, side * side)
    vertex_local_row, vertex_local_col = np.divmod(rest, side)
    vertex_row = (used_tiles // tiles_across)[vertex_slot] * TILE_CELLS + vertex_local_row
    vertex_col = (used_tiles % tiles_across)[vertex_slot] * TILE_CELLS + vertex_local_col
    # back-projected as depth_to_points does it (float64, then float32): a far-side vertex
    # lands exactly on the grid mesh's own vertex there
    z = layer.depth[vertex_row, vertex_col].astype(np.float64)
    points = np.empty((len(z), 3), dtype=np.float32)
    points[:, 0] = (vertex_col.astype(np.float64) - (intrinsics.cx + left)) / intrinsics.fx * z
    points[:, 1] = (vertex_row.astype(np.float64) - (intrinsics.cy + top)) / intrinsics.fy * z
    points[:, 2] = z
    slot_row, slot_col = np.divmod(vertex_slot, slots_per_row)
    texels = np.stack(
        [
            slot_col * SLOT_TEXELS + SLOT_OFFSET + vertex_local_col + 0.5,
            slot_row * SLOT_TEXELS + SLOT_OFFSET + vertex_local_row + 0.5,
        ],
        axis=1,
    ).astype(np.float64)
    tiles = np.stack([used_tiles // tiles_across, used_tiles % tiles_across], axis=1)
    return LayerMesh(
        vertices=points,
        faces=faces.reshape(-1, 3).astype(np.int64),
        texels=texels,
        tiles=tiles.astype(np.int64),
    )


def layer_strip(
    colors: NDArray[np.uint8], tiles: NDArray[np.int64], *, slots_per_row: int
) -> NDArray[np.uint8]:
    """The texture strip of the layer's tiles: one :data:`SLOT_TEXELS` slot per tile.

    Slot ``k`` (row ``k // slots_per_row``, column ``k % slots_per_row``) holds the colours of
    tile ``tiles[k]``'s (TILE_CELLS + 1)-pixel block at :data:`SLOT_OFFSET`, its border pixels
    repeated out to the slot's edges (so that filtering and JPEG blocks stay within the tile).

    Args:
        colors: (rows, cols, 3) uint8 sRGB (:attr:`BackgroundLayer.colors`).
        tiles: (K, 2) int64 tile (row, column) per slot (:attr:`LayerMesh.tiles`), K >= 1.
        slots_per_row: Slots across the strip (>= 1).

    Returns:
        (ceil(K / slots_per_row) * SLOT_TEXELS, slots_per_row * SLOT_TEXELS, 3) uint8.
    """
    rows, cols = colors.shape[:2]
    count = len(tiles)
    slot_rows = -(-count // slots_per_row)
    inside = np.clip(np.arange(SLOT_TEXELS) - SLOT_OFFSET, 0, TILE_CELLS)
    source_row = np.clip(tiles[:, 0, None] * TILE_CELLS + inside[None, :], 0, rows - 1)
    source_col = np.clip(tiles[:, 1, None] * TILE_CELLS + inside[None, :], 0, cols - 1)
    blocks = colors[source_row[:, :, None], source_col[:, None, :]]  # (K, S, S, 3)
    padded = np.zeros((slot_rows * slots_per_row, SLOT_TEXELS, SLOT_TEXELS, 3), np.uint8)
    padded[:count] = blocks
    if count < len(padded):
        padded[count:] = blocks[-1]
    grid = padded.reshape(slot_rows, slots_per_row, SLOT_TEXELS, SLOT_TEXELS, 3)
    return np.ascontiguousarray(
        grid.transpose(0, 2, 1, 3, 4).reshape(
            slot_rows * SLOT_TEXELS, slots_per_row * SLOT_TEXELS, 3
        )
    )


@dataclass(frozen=True)
class Skirt:
    """A rim around the grid mesh: the border pixels' surface carried half a pixel out.

    Attributes:
        vertices: (N, 3) float32 camera-frame positions, metres.
        faces: (M, 3) int64 indices into ``vertices``, wound like the grid mesh's.
        pixels: (N, 2) float64 (row, column) grid position of each vertex, pixels: a border
            pixel's centre, or half a pixel beyond it (-0.5, rows - 0.5 or cols - 0.5: the
            edge of the photo) with that border pixel's depth.
    """

    vertices: NDArray[np.float32]
    faces: NDArray[np.int64]
    pixels: NDArray[np.float64]


def border_skirt(
    depth: NDArray[np.floating], intrinsics: Intrinsics, *, edge_threshold: float
) -> Skirt:
    """The grid's border pixels carried half a pixel outward, at their own depth.

    The grid mesh ends exactly on its border pixels' centres, so the photo camera's rays
    through those centres graze its last edge and may miss it (its positions are quantised in
    the GLB). The rim reaches half a pixel beyond, to the photo's edge (where no ray through a
    pixel centre of the photo goes), with the border pixels' depth and colours: through the
    photo's camera the border pixels show their own colours, and nothing else changes; its
    texture coordinates stay within the photo's.

    Along each side the rim is a two-row grid (the border pixels and their copies half a
    pixel out), triangulated like the grid mesh (:func:`~depth2mesh.geometry.points.grid_faces`)
    and cut where the border itself is (depth ratio above ``edge_threshold``, unmeasured
    pixels). Border vertices lie exactly on the grid mesh's own (same float32 positions).

    Args:
        depth: (rows, cols) float depth, metres (NaN: unmeasured), rows and cols >= 2.
        intrinsics: The grid's camera (its size is the grid's).
        edge_threshold: Largest depth ratio within a triangle (> 1).

    Returns:
        The rim (empty arrays where no border pixel is measured).
    """
    rows, cols = depth.shape
    z = np.asarray(depth, dtype=np.float64)
    along_c = np.arange(cols, dtype=np.int64)
    along_r = np.arange(rows, dtype=np.int64)
    zeros_c, zeros_r = np.zeros(cols, np.int64), np.zeros(rows, np.int64)
    # per side: (vertex row, vertex column, source row, source column), each of the mini
    # grid's shape; rows before columns as in the grid (the outer row first at the top)
    out = 0.5  # the rim's outer vertices: the photo's edge
    sides = (
        (np.stack([zeros_c - out, zeros_c]), np.stack([along_c, along_c]), zeros_c, along_c),
        (
            np.stack([zeros_c + rows - 1, zeros_c + rows - 1 + out]),
            np.stack([along_c, along_c]),
            zeros_c + rows - 1,
            along_c,
        ),
        (
            np.stack([along_r, along_r], 1),
            np.stack([zeros_r - out, zeros_r], 1),
            along_r,
            zeros_r,
        ),
        (
            np.stack([along_r, along_r], 1),
            np.stack([zeros_r + cols - 1, zeros_r + cols - 1 + out], 1),
            along_r,
            zeros_r + cols - 1,
        ),
    )
    vertices, faces, pixels = [], [], []
    count = 0
    for vertex_row, vertex_col, source_row, source_col in sides:
        shape = vertex_row.shape
        src_r = np.broadcast_to(source_row.reshape((1, -1) if shape[0] == 2 else (-1, 1)), shape)
        src_c = np.broadcast_to(source_col.reshape((1, -1) if shape[0] == 2 else (-1, 1)), shape)
        side_depth = z[src_r, src_c]
        keep = depth_edge_faces(side_depth, threshold=edge_threshold).reshape(-1)
        side_faces = grid_faces(*shape)[keep]
        used = np.zeros(side_depth.size, dtype=bool)
        used[side_faces.ravel()] = True
        renumber = np.cumsum(used, dtype=np.int64) - 1
        zz = side_depth.ravel()[used]
        points = np.empty((len(zz), 3), dtype=np.float32)
        points[:, 0] = (vertex_col.ravel()[used] - intrinsics.cx) / intrinsics.fx * zz
        points[:, 1] = (vertex_row.ravel()[used] - intrinsics.cy) / intrinsics.fy * zz
        points[:, 2] = zz
        vertices.append(points)
        faces.append(renumber[side_faces] + count)
        pixels.append(np.stack([vertex_row.ravel()[used], vertex_col.ravel()[used]], axis=1))
        count += len(zz)
    return Skirt(
        np.concatenate(vertices).astype(np.float32),
        np.concatenate(faces).astype(np.int64).reshape(-1, 3),
        np.concatenate(pixels).astype(np.float64).reshape(-1, 2),
    )
