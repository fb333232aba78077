"""Depth from disparity: the near/far guess and the ``--depth-at`` pins.

Disparity (relative inverse depth: larger is nearer, 0 for sky) becomes depth (metres along
+z of the OpenCV camera frame) here and nowhere else: :func:`disparity_to_depth` maps it
linearly in inverse depth between ``near`` and ``far``; :func:`disparity_to_depth_pinned`
and :func:`metric_depth_pinned` fit it through pinned depths instead.

All functions are pure and vectorised over numpy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from depth2mesh.errors import ParameterError

DEFAULT_NEAR: Final = 1.0
"""Depth, in metres, given to the nearest content (disparity at the high percentile)."""

DEFAULT_FAR: Final = 10.0
"""Depth, in metres, given to the farthest content (disparity at the low percentile, sky)."""

MIN_DEPTH_M: Final = 1e-6
"""Smallest ``near`` accepted, metres (a micrometre)."""

MAX_DEPTH_M: Final = 1e9
"""Largest ``far`` accepted, metres (float32 keeps such depths and their inverses finite)."""

DEFAULT_LOW_PERCENTILE: Final = 2.0
"""Disparity percentile mapped to ``far``: the farthest 2 % of pixels are clamped there."""

DEFAULT_HIGH_PERCENTILE: Final = 98.0
"""Disparity percentile mapped to ``near``: the nearest 2 % of pixels are clamped there."""


def disparity_to_depth(
    disparity: npt.ArrayLike,
    *,
    near: float = DEFAULT_NEAR,
    far: float = DEFAULT_FAR,
    low_percentile: float = DEFAULT_LOW_PERCENTILE,
    high_percentile: float = DEFAULT_HIGH_PERCENTILE,
) -> NDArray[np.float32]:
    """Turn relative disparity into depth between ``near`` and ``far``.

    The disparity is normalised robustly: ``t = clip((d - p_low) / (p_high - p_low), 0, 1)``
    with ``p_low``, ``p_high`` its percentiles over the finite pixels (negative values, the
    overshoot of bicubic upsampling next to sky, are clamped to 0 first), so a few hot pixels
    do not flatten the scene. Depth is then linear in inverse depth,
    ``1 / z = t / near + (1 - t) / far``: the nearest content lands at ``near`` and the farthest
    at ``far``. NaN, infinite and negative disparity are treated as farthest (``t = 0``).

    If the percentiles coincide (for instance 98 % of the image is sky at 0), the full range of
    the finite values is used instead. A disparity without any range (constant, or no finite
    value at all) carries no depth information: every pixel is put at ``far``, the place of
    disparity 0 (sky).

    Args:
        disparity: (H, W) any real dtype, relative inverse depth (unitless, larger = nearer).
        near: Depth of the nearest content, metres, at least ``MIN_DEPTH_M`` (1e-6).
        far: Depth of the farthest content, metres, greater than ``near`` and at most
            ``MAX_DEPTH_M`` (1e9).
        low_percentile: Percentile of the disparity mapped to ``far``, in [0, 100).
        high_percentile: Percentile of the disparity mapped to ``near``, in
            (``low_percentile``, 100].

    Returns:
        (H, W) float32 depth in metres, every value in [``near``, ``far``].

    Raises:
        ValueError: The disparity is not 2-D, or near, far or the percentiles are out of range.
    """
    d = np.asarray(disparity)
    if d.ndim != 2:
        raise ValueError(f"disparity must be a 2-D (H, W) array, got shape {d.shape}")
    if not (np.issubdtype(d.dtype, np.floating) or np.issubdtype(d.dtype, np.integer)):
        raise ValueError(f"disparity must hold real numbers, got dtype {d.dtype}")
    if not (math.isfinite(near) and near >= MIN_DEPTH_M):
        raise ValueError(f"near must be at least {MIN_DEPTH_M} metres, got {near}")
    if not (math.isfinite(far) and near < far <= MAX_DEPTH_M):
        raise ValueError(
            f"far must be greater than near ({near} m) and at most {MAX_DEPTH_M:g} m, got {far}"
        )
    if not 0.0 <= low_percentile < high_percentile <= 100.0:
        raise ValueError(
            "percentiles must satisfy 0 <= low_percentile < high_percentile <= 100, got "
            f"{low_percentile} and {high_percentile}"
        )
    finite = np.isfinite(d)
    d = _sky_to_zero(d)
    t = np.zeros(d.shape, dtype=np.float64)
    low, high = _disparity_range(d[finite], low_percentile, high_percentile)
    if high > low:
        t = np.clip((d - low) / (high - low), 0.0, 1.0)
        t[~finite] = 0.0
    inverse = t / near + (1.0 - t) / far  # >= 1 / far > 0: no division by zero
    depth = np.clip(1.0 / inverse, near, far)
    return depth.astype(np.float32)


def _sky_to_zero(disparity: NDArray[Any]) -> NDArray[np.float64]:
    """Disparity as float64 with NaN, infinite and negative values set to 0 (sky, farthest)."""
    d = disparity.astype(np.float64)
    return np.where(np.isfinite(d), np.maximum(d, 0.0), 0.0)


def _disparity_range(
    values: NDArray[np.float64], low_percentile: float, high_percentile: float
) -> tuple[float, float]:
    """The disparities mapped to ``far`` and ``near`` (see :func:`disparity_to_depth`).

    Their percentiles, or the full range when those coincide; (0, 0) without any value.
    """
    if not values.size:
        return 0.0, 0.0
    low, high = np.percentile(values, [low_percentile, high_percentile])
    if not high > low:
        low, high = values.min(), values.max()
    return float(low), float(high)


MAX_PINS: Final = 2
"""At most this many ``--depth-at`` pins: one fixes the scale, two the scale and the shift."""

PIN_FAR_FACTOR: Final = 100.0
"""With pins that fix the shift, the far plane is this many times the farther pin's depth.

An affine map of disparity reaches infinite depth at a finite disparity, and sky (disparity 0)
can land beyond it; such pixels are put at the far plane instead (``--drop-far`` drops them).
"""

PIN_TOLERANCE: Final = 1e-5
"""Largest relative error of a pin's depth in the result before the pins are refused (float32
rounding is about 1e-7; more means a neighbouring pixel had to be clamped)."""


@dataclass(frozen=True)
class DepthPin:
    """A pixel of the photo and its known depth: one ``--depth-at U,V=METRES``.

    Pixel coordinates are those of the photo as shown, upright (after its EXIF orientation),
    at its full stored size, with pixel centres at integers: ``(0, 0)`` is the centre of the
    top-left pixel, ``(W - 1, H - 1)`` that of the bottom-right one. Fractions are allowed.

    Attributes:
        u: Column, pixels, in [0, W - 1].
        v: Row, pixels (down), in [0, H - 1].
        metres: Depth of that pixel along the camera's axis (+z, as a depth camera or NYU's
            ground truth gives it), not the distance along the ray; positive.
    """

    u: float
    v: float
    metres: float

    def __str__(self) -> str:
        return f"{self.u:g},{self.v:g}={self.metres:g}"


@dataclass(frozen=True)
class PinFit:
    """How pins set the depth: ``1 / depth = scale * reading + shift``, as the sidecar records it.

    Attributes:
        pins: The pins, in the order given.
        readings: What the source says at each pin, read linearly over the mesh's triangles:
            disparity (unitless) for a relative source, inverse depth (1/metres) for a metric
            one.
        source: "disparity" (a relative source) or "inverse depth" (a metric one): what
            ``readings`` are.
        fit: "scale" (one pin) or "scale and shift" (two pins).
        scale: ``a`` in ``1 / depth = a * reading + b`` (1/metres per reading unit). With one
            pin on a relative source it holds between the disparity's percentiles (the
            near/far mapping's straight part, see :func:`disparity_to_depth_pinned`).
        shift: ``b``, 1/metres.
        near: The near plane, metres, when the mapping has one (one pin on a relative source),
            else None.
        far: The far plane, metres: no depth is larger (NaN excepted).
        at_far: How many grid pixels lie at the far plane.
    """

    pins: tuple[DepthPin, ...]
    readings: tuple[float, ...]
    source: Literal["disparity", "inverse depth"]
    fit: Literal["scale", "scale and shift"]
    scale: float
    shift: float
    near: float | None
    far: float
    at_far: int

    def to_dict(self) -> dict[str, Any]:
        """The fit as plain JSON-ready values (for the sidecar).

        Each pin's reading is under "disparity" or "inverse_depth_per_m" (by ``source``).
        """
        key = "disparity" if self.source == "disparity" else "inverse_depth_per_m"
        return {
            "pins": [
                {"u": pin.u, "v": pin.v, "metres": pin.metres, key: reading}
                for pin, reading in zip(self.pins, self.readings, strict=True)
            ],
            "fit": self.fit,
            "scale": self.scale,
            "shift": self.shift,
            "near_m": self.near,
            "far_m": self.far,
            "pixels_at_far": self.at_far,
        }


def parse_depth_pin(text: str) -> DepthPin:
    """Read one ``--depth-at`` value: ``U,V=METRES`` (column, row of the upright photo; metres).

    Args:
        text: For example ``"320,240=2.5"`` or ``"320.5, 240 = 2.5"`` (spaces are ignored).

    Returns:
        The pin; its numbers are checked by :func:`check_pins`.

    Raises:
        ParameterError: Not of the form ``U,V=METRES`` with three numbers (names ``depth_at``).
    """
    pixel, equals, metres = text.replace(" ", "").partition("=")
    parts = pixel.split(",")
    try:
        if not equals or len(parts) != 2:
            raise ValueError(text)
        return DepthPin(float(parts[0]), float(parts[1]), float(metres))
    except ValueError:
        raise ParameterError(
            f"{{depth_at}} must be U,V=METRES (pixel column and row of the upright photo, then "
            f"its depth in metres), e.g. 320,240=2.5; got {text!r}",
            "depth_at",
        ) from None


def check_pins(depth_at: Sequence[DepthPin], photo_size: tuple[int, int] | None = None) -> None:
    """Refuse pins that cannot work, before any depth is read.

    Args:
        depth_at: The pins.
        photo_size: (H, W) of the upright photo, to refuse pins outside it; None: not checked.

    Raises:
        ParameterError: More than :data:`MAX_PINS`, a depth that is not a positive number of
            metres (at most ``MAX_DEPTH_M``), a coordinate that is not finite, two pins on the
            same pixel, or a pin outside the photo (names ``depth_at``).
    """
    if len(depth_at) > MAX_PINS:
        raise ParameterError(
            f"{{depth_at}} takes one pin (the scale) or two (scale and shift), got "
            f"{len(depth_at)}: {', '.join(map(str, depth_at))}",
            "depth_at",
        )
    for pin in depth_at:
        if not (math.isfinite(pin.metres) and MIN_DEPTH_M <= pin.metres <= MAX_DEPTH_M):
            raise ParameterError(
                f"{{depth_at}} {pin}: the depth must be a positive number of metres (from "
                f"{MIN_DEPTH_M:g} to {MAX_DEPTH_M:g}), got {pin.metres:g}",
                "depth_at",
            )
        if not (math.isfinite(pin.u) and math.isfinite(pin.v)):
            raise ParameterError(
                f"{{depth_at}} {pin}: the pixel's column and row must be finite numbers",
                "depth_at",
            )
        if photo_size is not None:
            height, width = photo_size
            if not (0.0 <= pin.u <= width - 1 and 0.0 <= pin.v <= height - 1):
                raise ParameterError(
                    f"{{depth_at}} {pin}: pixel ({pin.u:g}, {pin.v:g}) is outside the photo, "
                    f"whose columns are 0..{width - 1} and rows 0..{height - 1} (upright, "
                    "as shown)",
                    "depth_at",
                )
    if len(depth_at) == 2 and (depth_at[0].u, depth_at[0].v) == (depth_at[1].u, depth_at[1].v):
        raise ParameterError(
            f"{{depth_at}} {depth_at[0]} and {depth_at[1]} pin the same pixel: give two "
            "different pixels, or one pin",
            "depth_at",
        )


def grid_position(
    u: float, v: float, photo_size: tuple[int, int], grid_shape: tuple[int, int]
) -> tuple[float, float]:
    """Where a photo pixel lies on a grid that covers the same picture at another size.

    Pixel centres are at integers on both, and both cover the same area, so
    ``u_grid = (u + 0.5) * cols / W - 0.5`` (as :meth:`Intrinsics.resized` moves the principal
    point). The result is clamped to the grid's outer vertices (within half a grid cell of the
    border a photo pixel lies outside the mesh).

    Args:
        u: Column in the photo, pixels.
        v: Row in the photo, pixels.
        photo_size: (H, W) of the photo.
        grid_shape: (rows, cols) of the grid.

    Returns:
        (column, row) on the grid, fractional.
    """
    height, width = photo_size
    rows, cols = grid_shape
    u_grid = (u + 0.5) * cols / width - 0.5
    v_grid = (v + 0.5) * rows / height - 0.5
    return min(max(u_grid, 0.0), cols - 1.0), min(max(v_grid, 0.0), rows - 1.0)


def sample_on_triangles(values: npt.ArrayLike, u: float, v: float) -> float:
    """Read a grid map at a fractional position, linearly over the grid mesh's triangles.

    The cell with top-left vertex ``(floor(v), floor(u))`` is split as :func:`grid_faces`
    splits it (the diagonal from its top-right to its bottom-left corner), and the value is
    the barycentric mix of the three corners of the triangle the position falls in. For
    inverse depth this is exactly the grid mesh's own surface: a flat triangle's inverse
    depth is linear in the image, so the mesh passes through the value read here. At
    vertices and along cell edges it equals bilinear interpolation.

    Args:
        values: (rows, cols) any real dtype, rows and cols at least 2.
        u: Column, in [0, cols - 1].
        v: Row, in [0, rows - 1].

    Returns:
        The value (float); NaN when a corner of that triangle is NaN.

    Raises:
        ValueError: The map is not 2-D with at least 2x2 values, or the position is outside.
    """
    grid = np.asarray(values, dtype=np.float64)
    if grid.ndim != 2 or min(grid.shape) < 2:
        raise ValueError(f"values must be a 2-D map of at least 2x2, got shape {grid.shape}")
    rows, cols = grid.shape
    if not (0.0 <= u <= cols - 1 and 0.0 <= v <= rows - 1):
        raise ValueError(f"position ({u}, {v}) is outside the {cols}x{rows} grid")
    u0 = min(math.floor(u), cols - 2)
    v0 = min(math.floor(v), rows - 2)
    fu, fv = u - u0, v - v0
    top_left, top_right = grid[v0, u0], grid[v0, u0 + 1]
    bottom_left, bottom_right = grid[v0 + 1, u0], grid[v0 + 1, u0 + 1]
    if fu + fv <= 1.0:  # triangle 0: top-left, bottom-left, top-right
        corners = (top_left, top_right, bottom_left)
        weights = (1.0 - fu - fv, fu, fv)
    else:  # triangle 1: top-right, bottom-left, bottom-right
        corners = (bottom_right, bottom_left, top_right)
        weights = (fu + fv - 1.0, 1.0 - fu, 1.0 - fv)
    return float(sum(w * c for w, c in zip(weights, corners, strict=True)))


def disparity_to_depth_pinned(
    disparity: npt.ArrayLike,
    depth_at: Sequence[DepthPin],
    *,
    photo_size: tuple[int, int],
    low_percentile: float = DEFAULT_LOW_PERCENTILE,
    high_percentile: float = DEFAULT_HIGH_PERCENTILE,
) -> tuple[NDArray[np.float32], PinFit]:
    """Turn relative disparity into depth that puts the pinned pixels at their depths.

    The disparity is read at each pin linearly over the grid mesh's triangles (see
    :func:`sample_on_triangles`; the pin's photo pixel is mapped to the grid by
    :func:`grid_position`), so the grid mesh passes through each pinned depth exactly, at
    whole and fractional pixels alike. Negative and non-finite disparity counts as 0 (sky).

    - One pin: the shape of :func:`disparity_to_depth` with the default near and far (1 and
      10 m, the same percentiles) is kept and the whole scene is scaled so that the pin holds:
      near and far become ``k`` and ``10 k`` metres. Relative disparity cannot tell its shift,
      so one pin cannot fix it; the default far/near ratio stays.
    - Two pins: MiDaS-like disparity is affine in inverse depth, ``1 / z = a * d + b``; the
      two pins give ``a`` and ``b`` and both pixels lie at their depths. The farther pin's
      depth times :data:`PIN_FAR_FACTOR` is the far plane: pixels the line puts farther, or
      beyond infinity (sky, when ``b <= 0``), are put there. Nothing is nearer than
      ``MIN_DEPTH_M``.

    Args:
        disparity: (rows, cols) any real dtype, relative inverse depth at the grid's size.
        depth_at: One or two pins, in photo pixels (see :class:`DepthPin`).
        photo_size: (H, W) of the upright photo the pins refer to.
        low_percentile: Percentile mapped to the far plane (one pin only).
        high_percentile: Percentile mapped to the near plane (one pin only).

    Returns:
        (rows, cols) float32 depth in metres, and the fit (for the sidecar).

    Raises:
        ParameterError: Pins that cannot work (see :func:`check_pins`), a pin on sky
            (disparity 0 there), two pins with the same disparity, or a farther pin (smaller
            disparity) given a depth no larger than the nearer one's (names ``depth_at``).
        ValueError: No pin, or the disparity is not a 2-D map of at least 2x2.
    """
    d = np.asarray(disparity)
    if d.ndim != 2 or not (
        np.issubdtype(d.dtype, np.floating) or np.issubdtype(d.dtype, np.integer)
    ):
        raise ValueError(f"disparity must be a 2-D (H, W) real array, got {d.dtype} {d.shape}")
    if not depth_at:
        raise ValueError("disparity_to_depth_pinned needs at least one pin")
    check_pins(depth_at, photo_size)
    finite = np.isfinite(d)
    clean = _sky_to_zero(d)
    readings = _readings(clean, depth_at, photo_size)
    for pin, reading in zip(depth_at, readings, strict=True):
        if not reading > 0:
            raise ParameterError(
                f"{{depth_at}} {pin}: the disparity there is {reading:.3g} (sky, infinitely "
                "far): a pin must lie on something at a finite distance",
                "depth_at",
            )
    if len(depth_at) == 1:
        base = disparity_to_depth(
            d,
            near=DEFAULT_NEAR,
            far=DEFAULT_FAR,
            low_percentile=low_percentile,
            high_percentile=high_percentile,
        )
        # scale k: the mesh's inverse depth at the pin, (read 1 / base) / k, is 1 / metres
        (u, v), pin = _grid_positions(depth_at, photo_size, d.shape)[0], depth_at[0]
        k = pin.metres * sample_on_triangles(1.0 / base.astype(np.float64), u, v)
        depth = (base.astype(np.float64) * k).astype(np.float32)
        low, high = _disparity_range(clean[finite], low_percentile, high_percentile)
        slope = (1.0 / DEFAULT_NEAR - 1.0 / DEFAULT_FAR) / (high - low) if high > low else 0.0
        near, far = DEFAULT_NEAR * k, DEFAULT_FAR * k
        fit = PinFit(
            tuple(depth_at),
            readings,
            "disparity",
            "scale",
            slope / k,
            (1.0 / DEFAULT_FAR - slope * low) / k,
            near,
            far,
            int(far_mask(depth, far).sum()),
        )
    else:
        depth, fit = _two_pins(clean, depth_at, readings, "disparity")
    _check_pins_hold(depth, depth_at, photo_size)
    return depth, fit


def metric_depth_pinned(
    depth: npt.ArrayLike, depth_at: Sequence[DepthPin], *, photo_size: tuple[int, int]
) -> tuple[NDArray[np.float32], PinFit]:
    """Correct metric depth (a depth file, a metric network) so that the pins hold.

    The source's inverse depth ``1 / z`` is read at each pin as
    :func:`disparity_to_depth_pinned` reads disparity (linearly over the mesh's triangles,
    so the grid mesh passes through the pins exactly).

    - One pin: scale only, ``z' = k z``: a metric source's usual error is its scale (an
      unknown focal length, a sensor's unit).
    - Two pins: scale and shift of inverse depth, ``1 / z' = a / z + b``, the same model as
      for a relative source, with the same far plane (:data:`PIN_FAR_FACTOR` times the
      farther pin's depth) for pixels it would put farther.

    Args:
        depth: (rows, cols) any real dtype, metres at the grid's size; NaN, 0 or negative
            where unmeasured (stays NaN).
        depth_at: One or two pins, in photo pixels (see :class:`DepthPin`).
        photo_size: (H, W) of the upright photo the pins refer to.

    Returns:
        (rows, cols) float32 depth in metres (NaN where unmeasured), and the fit.

    Raises:
        ParameterError: Pins that cannot work (see :func:`check_pins`), a pin on an
            unmeasured pixel (or next to one), two pins at the same source depth, or pins whose
            order of depth is the reverse of the source's (names ``depth_at``).
        ValueError: No pin, or the depth is not a 2-D map of at least 2x2.
    """
    z = np.asarray(depth)
    if z.ndim != 2 or not (
        np.issubdtype(z.dtype, np.floating) or np.issubdtype(z.dtype, np.integer)
    ):
        raise ValueError(f"depth must be a 2-D (H, W) real array, got {z.dtype} {z.shape}")
    if not depth_at:
        raise ValueError("metric_depth_pinned needs at least one pin")
    check_pins(depth_at, photo_size)
    z = z.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        inverse = np.where(np.isfinite(z) & (z > 0), 1.0 / z, np.nan)
    readings = _readings(inverse, depth_at, photo_size)
    for pin, reading in zip(depth_at, readings, strict=True):
        if not math.isfinite(reading):
            raise ParameterError(
                f"{{depth_at}} {pin}: the depth there is not measured (a hole of the depth map "
                "at or next to that pixel): pin a measured pixel",
                "depth_at",
            )
    if len(depth_at) == 1:
        k = depth_at[0].metres * readings[0]
        pinned = (z * k).astype(np.float32)
        pinned[np.isnan(inverse)] = np.nan
        measured = pinned[np.isfinite(pinned)]
        far = float(measured.max())
        fit = PinFit(tuple(depth_at), readings, "inverse depth", "scale", 1 / k, 0.0, None, far, 0)
    else:
        pinned, fit = _two_pins(inverse, depth_at, readings, "inverse depth")
    _check_pins_hold(pinned, depth_at, photo_size)
    return pinned, fit


def _grid_positions(
    depth_at: Sequence[DepthPin], photo_size: tuple[int, int], grid_shape: tuple[int, ...]
) -> list[tuple[float, float]]:
    rows, cols = grid_shape
    return [grid_position(pin.u, pin.v, photo_size, (rows, cols)) for pin in depth_at]


def _readings(
    values: NDArray[np.float64], depth_at: Sequence[DepthPin], photo_size: tuple[int, int]
) -> tuple[float, ...]:
    """The values at each pin, read over the mesh's triangles."""
    positions = _grid_positions(depth_at, photo_size, values.shape)
    return tuple(sample_on_triangles(values, u, v) for u, v in positions)


def _two_pins(
    readings_map: NDArray[np.float64],
    depth_at: Sequence[DepthPin],
    readings: tuple[float, ...],
    source: Literal["disparity", "inverse depth"],
) -> tuple[NDArray[np.float32], PinFit]:
    """Fit ``1 / z = a * reading + b`` through two pins and apply it (NaN stays NaN)."""
    (first, second), (r1, r2) = depth_at, readings
    if abs(r1 - r2) <= 1e-6 * max(abs(r1), abs(r2)):
        raise ParameterError(
            f"{{depth_at}} {first} and {second}: both pixels have the same {source} "
            f"({r1:.6g}), so they cannot fix a scale and a shift; pin pixels at different "
            "depths, or give one pin",
            "depth_at",
        )
    nearer, farther = (first, second) if r1 > r2 else (second, first)
    if not nearer.metres < farther.metres:
        raise ParameterError(
            f"{{depth_at}} {first} and {second} contradict the depth map: pixel "
            f"({nearer.u:g}, {nearer.v:g}) is nearer than ({farther.u:g}, {farther.v:g}) "
            f"({source} {max(r1, r2):.4g} > {min(r1, r2):.4g}) but is given a depth of "
            f"{nearer.metres:g} m, not less than {farther.metres:g} m",
            "depth_at",
        )
    scale = (1.0 / first.metres - 1.0 / second.metres) / (r1 - r2)
    shift = 1.0 / first.metres - scale * r1
    far = min(PIN_FAR_FACTOR * farther.metres, MAX_DEPTH_M)
    with np.errstate(invalid="ignore"):
        inverse = scale * readings_map + shift
        at_far = inverse <= 1.0 / far
        inverse = np.clip(inverse, 1.0 / far, 1.0 / MIN_DEPTH_M)
    depth = (1.0 / inverse).astype(np.float32)
    at_far_count = int(at_far.sum())
    fit = PinFit(
        tuple(depth_at), readings, source, "scale and shift", scale, shift, None, far, at_far_count
    )
    return depth, fit


def _check_pins_hold(
    depth: NDArray[np.float32], depth_at: Sequence[DepthPin], photo_size: tuple[int, int]
) -> None:
    """Refuse a result in which a pin does not hold (a neighbouring pixel had to be clamped)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = 1.0 / depth.astype(np.float64)
    for pin, reading in zip(depth_at, _readings(inverse, depth_at, photo_size), strict=True):
        if not abs(reading * pin.metres - 1.0) <= PIN_TOLERANCE:
            raise ParameterError(
                f"{{depth_at}} {pin}: the pins put a pixel next to this one beyond the far "
                "plane, so it cannot lie at its depth; check the pins' depths",
                "depth_at",
            )


def far_mask(depth: npt.ArrayLike, far: float, *, tolerance: float = 1e-6) -> NDArray[np.bool_]:
    """Find the pixels at the far plane (to drop them, e.g. sky with ``--drop-far``).

    Args:
        depth: (H, W) any real dtype, depth in metres, as from :func:`disparity_to_depth`.
        far: The far plane, metres, positive and finite.
        tolerance: Relative tolerance: depth >= ``far * (1 - tolerance)`` counts as far, which
            absorbs float32 rounding. In [0, 1).

    Returns:
        (H, W) bool, True at and beyond the far plane (also for +inf; False for NaN).

    Raises:
        ValueError: The depth is not 2-D, or far or tolerance is out of range.
    """
    z = np.asarray(depth)
    if z.ndim != 2:
        raise ValueError(f"depth must be a 2-D (H, W) array, got shape {z.shape}")
    if not (math.isfinite(far) and far > 0):
        raise ValueError(f"far must be a positive finite depth in metres, got {far}")
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    with np.errstate(invalid="ignore"):
        return np.asarray(z.astype(np.float64) >= far * (1.0 - tolerance), dtype=np.bool_)
