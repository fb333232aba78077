"""Occlusion edges: tear the grid mesh where a depth network's smooth ramp meets a photo edge.

A depth network sees a few hundred pixels (MiDaS small 256 on the long side), so at the mesh
grid's size the jump from a door to the wall behind it is a ramp several pixels wide: a rubber
sheet of gentle triangles that no depth-ratio cut removes. Cutting every gentle slope instead
would tear floors and walls seen at an angle. Two things tell a ramp from a slanted surface:

- :func:`step_strength`: along the direction of steepest depth change, a slanted plane changes
  its log depth at a steady rate, so the change over ``[-r, r]`` equals the changes over
  ``[-2r, -r]`` and ``[r, 2r]`` together; a ramp puts all of its change in the middle. Their
  difference is the step.
- :func:`photo_edges`: the photo's own edges (Canny) say where, inside the ramp, the step is.

:func:`occlusion_cuts` tears the mesh along photo edges that sit on a step, and along the
middle (:func:`depth_ridges`) of strong steps that have no photo edge.

Conventions: arrays at the mesh grid's size; depth in metres along +z, NaN or non-positive
depth is not measured; the photo is (H, W, 3) uint8 sRGB at the same size. Pure functions over
numpy arrays (OpenCV for filters).
"""

from __future__ import annotations

import math
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

DEFAULT_EDGES: Final = "on"
"""Occlusion edges (``--edges``): "on" tears the grid mesh where a smooth depth ramp meets a
photo edge (see :func:`occlusion_cuts`) and moves the ramp's floating points onto a side;
"off" cuts by :data:`depth2mesh.geometry.points.DEFAULT_EDGE_THRESHOLD` only (rubber sheets
from near objects to what is behind them stay). Known limit: a textured surface that slopes
away, such as an open door that the network makes a ramp, is cut into strands with holes."""

DEFAULT_EDGE_RADIUS: Final = 0.014
"""Half-width of the ramp looked for, as a fraction of the grid's long side (9 pixels of a
640 grid: about three of the 256 pixels MiDaS small sees on that side)."""

DEFAULT_STEP_RATIO: Final = 1.03
"""A photo edge tears the mesh where the depth steps by more than this ratio across it."""

DEFAULT_STRONG_RATIO: Final = 1.15
"""A step above this depth ratio tears the mesh at its middle even without a photo edge."""

__all__ = [
    "DEFAULT_EDGES",
    "DEFAULT_EDGE_RADIUS",
    "DEFAULT_STEP_RATIO",
    "DEFAULT_STRONG_RATIO",
    "depth_ridges",
    "edge_radius_px",
    "occlusion_cuts",
    "photo_edges",
    "settle_ramps",
    "step_strength",
]

CANNY_THRESHOLDS: Final = (15.0, 40.0)
"""Canny's hysteresis thresholds (grey levels of the Sobel gradient) for photo edges."""

SIDE_SAMPLES: Final = (1.0, 2.0)
"""Where each side of a ramp is sampled, in ramp half-widths from the pixel (inner, outer)."""

FLOAT_MARGIN: Final = 0.15
"""A pixel floats when its log depth is more than this share of the step away from both sides."""


def _log_depth(depth: NDArray[np.floating]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Log depth with unmeasured pixels filled from their neighbourhood, and the measured mask."""
    z = np.asarray(depth, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"depth must be a 2-D (H, W) array, got shape {z.shape}")
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(z) & (z > 0)
    if not usable.any():
        return np.zeros(z.shape, np.float32), usable
    log_z = np.log(np.where(usable, z, 1.0)).astype(np.float32)
    if not usable.all():  # holes take their nearest measured value: no step from a hole
        _, nearest = cv2.distanceTransformWithLabels(
            usable.astype(np.uint8) ^ 1, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
        )
        rows, cols = np.nonzero(usable)
        label_to_pixel = np.zeros(nearest.max() + 1, dtype=np.intp)
        label_to_pixel[nearest[rows, cols]] = rows * z.shape[1] + cols
        log_z = log_z.ravel()[label_to_pixel[nearest]].reshape(z.shape)
    return log_z, usable


def _directions(
    log_z: NDArray[np.float32], sigma: float
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Unit direction of steepest increase of the smoothed log depth, and its magnitude."""
    smooth = cv2.GaussianBlur(log_z, (0, 0), sigma)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.hypot(gx, gy).astype(np.float32)
    norm = np.maximum(magnitude, np.float32(1e-12))
    return (gx / norm).astype(np.float32), (gy / norm).astype(np.float32), magnitude


def _sample(
    image: NDArray[np.float32], dx: NDArray[np.float32], dy: NDArray[np.float32], step: float
) -> NDArray[np.float32]:
    """``image`` at each pixel moved by ``step`` along (dx, dy), bilinear, border replicated."""
    height, width = image.shape
    xx, yy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    moved = cv2.remap(
        image,
        xx + np.float32(step) * dx,
        yy + np.float32(step) * dy,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return np.asarray(moved, dtype=np.float32)


def step_strength(depth: NDArray[np.floating], *, radius: float) -> NDArray[np.float32]:
    """Measure, at every pixel, the depth step that a ramp of half-width ``radius`` makes there.

    With ``L`` the log depth sampled along the direction ``d`` of its steepest increase (of
    ``L`` smoothed by a Gaussian of ``radius / 3``): ``(L(+r) - L(-r)) - (L(+2r) - L(+r)) -
    (L(-r) - L(-2r))``. A surface whose log depth changes steadily (a plane seen at an angle)
    gives 0; a ramp whose change lies within ``[-r, r]`` gives its whole log-depth change.

    Args:
        depth: (H, W) float depth, metres (NaN or <= 0: unmeasured; filled from the nearest
            measured pixel, so a hole makes no step).
        radius: Ramp half-width, pixels (> 0).

    Returns:
        (H, W) float32 step, natural log of a depth ratio (``log(1.1)`` for a 10 % step).

    Raises:
        ValueError: ``depth`` is not 2-D, or ``radius`` is not positive.
    """
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a positive number of pixels, got {radius}")
    log_z, _ = _log_depth(depth)
    return _step_of_log(log_z, radius)


def _step_of_log(log_z: NDArray[np.float32], radius: float) -> NDArray[np.float32]:
    """:func:`step_strength` on log depth that :func:`_log_depth` filled already."""
    dx, dy, _ = _directions(log_z, max(1.0, radius / 3.0))
    before2, before, after, after2 = (
        _sample(log_z, dx, dy, k * radius) for k in (-2.0, -1.0, 1.0, 2.0)
    )
    step: NDArray[np.float32] = (after - before) - (after2 - after) - (before - before2)
    return step


def depth_ridges(depth: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Find the middle of every slope: pixels where the depth gradient peaks across the slope.

    Non-maximum suppression of the log depth's gradient magnitude (smoothed by a Gaussian of
    1 pixel) along its own direction, as Canny does for intensity.

    Args:
        depth: (H, W) float depth, metres (NaN or <= 0: unmeasured, filled as in
            :func:`step_strength`).

    Returns:
        (H, W) bool, True on the ridge lines (one or two pixels wide) of the gradient.
    """
    log_z, _ = _log_depth(depth)
    return _ridges_of(*_directions(log_z, 1.0))


def _ridges_of(
    dx: NDArray[np.float32], dy: NDArray[np.float32], magnitude: NDArray[np.float32]
) -> NDArray[np.bool_]:
    """:func:`depth_ridges` from the gradient directions and magnitude of :func:`_directions`."""
    ahead = _sample(magnitude, dx, dy, 1.0)
    behind = _sample(magnitude, dx, dy, -1.0)
    return np.asarray((magnitude >= ahead) & (magnitude >= behind) & (magnitude > 0))


def photo_edges(
    rgb: NDArray[np.uint8], *, thresholds: tuple[float, float] = CANNY_THRESHOLDS
) -> NDArray[np.bool_]:
    """Find the photo's edges: Canny on the grey image smoothed by a 5x5 Gaussian (sigma 1).

    Args:
        rgb: (H, W, 3) uint8 sRGB photo.
        thresholds: Canny's low and high hysteresis thresholds (0 <= low <= high).

    Returns:
        (H, W) bool, True on edge pixels (one pixel wide).

    Raises:
        ValueError: ``rgb`` is not (H, W, 3) uint8.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    grey = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (5, 5), 1.0)
    return np.asarray(cv2.Canny(grey, thresholds[0], thresholds[1]) > 0)


def occlusion_cuts(
    depth: NDArray[np.floating],
    rgb: NDArray[np.uint8],
    *,
    radius: float,
    step_ratio: float = DEFAULT_STEP_RATIO,
    strong_ratio: float = DEFAULT_STRONG_RATIO,
) -> NDArray[np.bool_]:
    """Find the pixels where the grid mesh is torn at an occlusion edge.

    A pixel is cut when it is on a ramp (its own log-depth slope at least half the ramp's
    mean, step / (2 radius)) whose depth steps by more than ``step_ratio``
    (:func:`step_strength` at half-width ``radius``) and on a photo edge
    (:func:`photo_edges`), or on the ramp's middle (:func:`depth_ridges`) when its step
    exceeds ``strong_ratio``.
    Exact depth with sharp steps is torn at its steps by the ridges alone; smooth surfaces,
    flat or slanted, have no step and are never cut.

    Args:
        depth: (H, W) float depth, metres (NaN or <= 0: unmeasured).
        rgb: (H, W, 3) uint8 sRGB photo at the same size.
        radius: Half-width of the ramps looked for, pixels (> 0).
        step_ratio: Least depth ratio of a step torn at a photo edge (> 1).
        strong_ratio: Least depth ratio of a step torn without a photo edge (> 1).

    Returns:
        (H, W) bool, True where the cell whose top-left corner is that pixel is to be removed.

    Raises:
        ValueError: Shapes that do not match, or options out of range.
    """
    z = np.asarray(depth)
    if z.ndim != 2 or rgb.shape[:2] != z.shape:
        raise ValueError(
            f"depth must be (H, W) and rgb (H, W, 3) of the same size, got {z.shape}, {rgb.shape}"
        )
    for value, name in ((step_ratio, "step_ratio"), (strong_ratio, "strong_ratio")):
        if not (math.isfinite(value) and value > 1.0):
            raise ValueError(f"{name} must be a finite depth ratio above 1, got {value}")
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a positive number of pixels, got {radius}")
    log_z, _ = _log_depth(z)  # once: the step, the slope and the ridges all read it
    step = _step_of_log(log_z, radius)
    # on the ramp itself: the depth changes here at least at half the ramp's mean rate (a
    # photo edge beside a sharp step, on the flat part, is not torn)
    dx, dy, magnitude = _directions(log_z, 1.0)
    slope = 0.5 * (_sample(log_z, dx, dy, 1.0) - _sample(log_z, dx, dy, -1.0))
    on_ramp = slope >= step / (4.0 * radius)
    cuts = photo_edges(rgb) & on_ramp & (step > math.log(step_ratio))
    cuts |= _ridges_of(dx, dy, magnitude) & on_ramp & (step > math.log(strong_ratio))
    return np.asarray(cuts)


def settle_ramps(
    depth: NDArray[np.floating],
    cuts: NDArray[np.bool_],
    *,
    radius: float,
    step_ratio: float = DEFAULT_STEP_RATIO,
    margin: float = FLOAT_MARGIN,
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Move the pixels left floating on a ramp beside an occlusion cut onto the nearer side.

    Near a cut (within ``radius`` of a cut pixel, a square window), the log depth ``L`` is
    sampled along its direction of steepest increase (as in :func:`step_strength`) at
    ``-2r, -r, r, 2r``; each side's surface is carried on to the pixel in a straight line:
    near ``2 L(-r) - L(-2r)``, far ``2 L(r) - L(2r)`` (on a steady slope both are ``L(0)``:
    nothing floats on a slanted floor), each kept within the four sampled depths, so a settled
    pixel never lies beyond the surfaces around it (nor beyond a metric model's maximum). A
    pixel floats ("flying pixels") when the sides differ by more than ``step_ratio`` and its
    own log depth lies more than ``margin`` of that difference away from both; it takes the
    depth of the side nearer in log depth. On exact
    depth a step has no pixel in between, so nothing floats and nothing moves; a network's
    ramp is split onto its two surfaces.

    Args:
        depth: (H, W) float depth, metres (NaN or <= 0: unmeasured, never floating).
        cuts: (H, W) bool occlusion cuts (:func:`occlusion_cuts`).
        radius: Ramp half-width, pixels (> 0), as given to :func:`occlusion_cuts`.
        step_ratio: Least depth ratio between the two sides (> 1).
        margin: Share of the step (0 <= margin < 0.5) that counts as lying on a side.

    Returns:
        (H, W) float32 depth, metres, with the floating pixels moved (the others as given),
        and the (H, W) bool floating pixels.

    Raises:
        ValueError: Shapes that do not match, or options out of range.
    """
    z = np.asarray(depth)
    if z.ndim != 2 or cuts.shape != z.shape:
        raise ValueError(
            f"depth and cuts must be (H, W) arrays of one size, got {z.shape}, {cuts.shape}"
        )
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a positive number of pixels, got {radius}")
    if not (math.isfinite(step_ratio) and step_ratio > 1.0):
        raise ValueError(f"step_ratio must be a finite depth ratio above 1, got {step_ratio}")
    if not (0.0 <= margin < 0.5):
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    settled = z.astype(np.float32)
    if not cuts.any():
        return settled, np.zeros(z.shape, dtype=bool)
    size = 2 * math.ceil(radius) + 1
    near_cut = cv2.dilate(cuts.astype(np.uint8), np.ones((size, size), np.uint8)) > 0
    log_z, usable = _log_depth(z)
    dx, dy, _ = _directions(log_z, max(1.0, radius / 3.0))
    inner, outer = (k * radius for k in SIDE_SAMPLES)
    before2, before, after, after2 = (
        _sample(log_z, dx, dy, k) for k in (-outer, -inner, inner, outer)
    )
    reach = np.float32(inner / (outer - inner))
    near = before + reach * (before - before2)  # each side's surface carried on to the pixel
    far = after + reach * (after - after2)
    step = far - near  # as step_strength: 0 on a steady slope
    gap = np.float32(margin) * step
    between = (log_z > near + gap) & (log_z < far - gap)
    # a ramp climbs gently through the pixel; a measured step jumps beside it (exact depth)
    ahead = _sample(log_z, dx, dy, 1.0) - log_z
    behind = log_z - _sample(log_z, dx, dy, -1.0)
    gentle = (np.maximum(ahead, behind) < 0.5 * step) & (np.minimum(ahead, behind) > 0)
    floating = near_cut & usable & between & gentle & (step > math.log(step_ratio))
    side = np.where(log_z - near <= far - log_z, near, far)
    # carried on, a side never leaves the depths it was sampled from (a metric model's depth
    # stays within its maximum; a steep side does not overshoot past its own far samples)
    lowest = np.minimum(np.minimum(before2, before), np.minimum(after, after2))
    highest = np.maximum(np.maximum(before2, before), np.maximum(after, after2))
    side = np.clip(side, lowest, highest)
    settled[floating] = np.exp(side[floating])
    return settled, np.asarray(floating)


def edge_radius_px(radius: float, shape: tuple[int, int]) -> float:
    """Turn a ramp half-width given as a fraction of the long side into pixels (at least 1).

    Args:
        radius: Fraction of the grid's long side (> 0).
        shape: (rows, cols) of the grid.

    Returns:
        The half-width in grid pixels.
    """
    return max(1.0, radius * max(shape))
