"""MoGe-2 without torch: the token grid, the network input, and the official ``infer`` after it.

MoGe-2 (Wang et al., 2025; microsoft/MoGe, MIT) predicts from one photo an affine point map
(x, y, z up to a z shift), a validity mask, normals and a metric scale. The camera's focal
length and the shift are then recovered from the point map by least squares. This module holds
everything around the network (:mod:`depth2mesh.depth.networks.moge2_torch`, or its ONNX
export), in float32 numpy, with the official semantics:

1. The token grid: ``tokens`` (1200-3600) base tokens shaped like the photo:
   ``rows = round(sqrt(tokens / a))``, ``cols = round(sqrt(tokens * a))``, a = W / H.
2. The input: RGB / 255 resized to ``14 rows`` x ``14 cols`` (bilinear with antialiasing,
   as torch's ``F.interpolate(antialias=True)``), ImageNet-normalised.
3. The network's raw maps (16 rows x 16 cols) resized to the photo (bilinear,
   ``align_corners=False``, no antialiasing), then remapped: points ``exp`` (x y times
   ``exp(z)``, ``exp(z)``) or as the checkpoint's ``remap_output`` says; normals to unit
   length; mask ``sigmoid > 0.5``.
4. :func:`recover_focal_shift`: the focal length (relative to half the image diagonal) and
   the z shift that best make the point map a pinhole projection, on a 64 x 64 nearest
   downsampling of the masked map; with a known field of view only the shift.
5. Depth = z + shift; the mask keeps only positive depth; the points are re-projected from
   the depth through the intrinsics (normalised: ``fx = focal / 2 * sqrt(1 + a^2) / a``,
   ``fy = focal / 2 * sqrt(1 + a^2)``, principal point (0.5, 0.5)); then times the metric
   scale; masked pixels get ``inf`` points and depth and zero normals.

Coordinates are the OpenCV camera frame (x right, y down, z forward), metres after the metric
scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np
from numpy.typing import NDArray

from depth2mesh.depth.networks.base import DepthNetwork
from depth2mesh.depth.networks.dav2_small import PATCH, pos_embed_matrices
from depth2mesh.depth.preprocess import IMAGENET_MEAN, IMAGENET_STD
from depth2mesh.errors import InputError, ParameterError

if TYPE_CHECKING:
    from depth2mesh.depth.registry import ModelSpec

TOKENS_RANGE = (1200, 3600)
"""The base token counts MoGe-2 was trained for (``num_tokens_range``)."""

DEFAULT_TOKENS = 1200
"""The token count used when none is given: MoGe-2's least. Measured here (docs/benchmarks.md,
``benchmarks/moge2.py``): 1800 tokens (a 37 x 49 grid for 4:3, maps of 592 x 784 instead of
480 x 640: 1.5 times the detail and the FLOPs) took 2.6 times as long as 1200 per call in the
same run, which the 12 MP budget cannot afford on two cores; ``--tokens`` buys the detail."""

DOWNSAMPLE = (64, 64)
"""Size (rows, cols) of the point map the focal and shift are solved on (the official one)."""

HEAD_CHANNELS = {"points_head": 3, "normal_head": 3, "mask_head": 1}
"""Channels of each dense head in the network's ``maps``, stacked in this order."""

HEADS_BY_CHANNELS = {
    3: ("points_head",),
    4: ("points_head", "mask_head"),
    6: ("points_head", "normal_head"),
    7: ("points_head", "normal_head", "mask_head"),
}
"""The heads a ``maps`` output holds, by its channel count (always a points head)."""


# --------------------------------------------------------------------------- input


def token_grid(height: int, width: int, tokens: int) -> tuple[int, int]:
    """Return the (rows, cols) token grid of a ``height`` x ``width`` photo (official rule).

    Raises:
        InputError: A grid side would be 0 (a photo more than ``tokens`` times wider than
            tall, or the reverse).
    """
    if height < 1 or width < 1:
        raise InputError(f"photo size must be at least 1x1 pixels, got {width}x{height}")
    aspect = width / height
    rows, cols = round((tokens / aspect) ** 0.5), round((tokens * aspect) ** 0.5)
    if rows < 1 or cols < 1:
        raise InputError(
            f"a {width}x{height} photo is too elongated for MoGe-2 at {tokens} tokens "
            f"(a {rows}x{cols} token grid); crop it to an aspect ratio below {tokens}:1"
        )
    return rows, cols


def check_tokens(tokens: int | None) -> int:
    """Return ``tokens`` (None: :data:`DEFAULT_TOKENS`), checked against :data:`TOKENS_RANGE`.

    Raises:
        InputError: Outside 1200-3600.
    """
    if tokens is None:
        return DEFAULT_TOKENS
    low, high = TOKENS_RANGE
    if (
        isinstance(tokens, bool)
        or not isinstance(tokens, int | np.integer)
        or not (low <= int(tokens) <= high)
    ):
        raise InputError(
            f"tokens must be a whole number from {low} to {high} (MoGe-2's trained range), "
            f"got {tokens!r}"
        )
    return int(tokens)


def antialias_taps(source: int, target: int) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Taps and weights of torch's antialiased bilinear resize along one axis.

    The triangle filter is widened by the scale when shrinking (support ``max(s, 1)``,
    ``s = source / target``), centred on ``s (d + 0.5)``, its weights normalised to sum 1
    (torch's ``_upsample_bilinear2d_aa``, also PIL's bilinear). Computed with torch's CPU
    kernel's float32 roundings (its centre is a float32: near pixel 600 that moves the weights
    by up to 4e-5, which an exact computation would not reproduce).

    Returns:
        (target, k) tap indices (clamped; extra taps carry weight 0) and float32 weights.
    """
    f32 = np.float32
    scale = f32(f32(source) / f32(target))
    support = scale if scale >= 1.0 else f32(1.0)
    inverse = f32(1.0 / np.float64(scale)) if scale >= 1.0 else f32(1.0)
    centre = (np.float64(scale) * (np.arange(target, dtype=np.float64) + 0.5)).astype(f32)
    first = np.maximum(np.trunc((centre - support).astype(np.float64) + 0.5).astype(np.int64), 0)
    last = np.minimum(
        np.trunc((centre + support).astype(np.float64) + 0.5).astype(np.int64), source
    )
    width = int((last - first).max())
    index = first[:, None] + np.arange(width)[None, :]
    offset = (index.astype(f32) - centre[:, None]).astype(np.float64) + 0.5
    argument = np.abs((offset * np.float64(inverse)).astype(f32))
    weights = np.where(argument < 1.0, (1.0 - argument.astype(np.float64)).astype(f32), f32(0))
    weights[index >= last[:, None]] = 0.0
    total = np.zeros(target, f32)
    for tap in range(width):  # torch sums the weights one by one in float32
        total = (total + weights[:, tap]).astype(f32)
    safe = np.where(total != 0, total, f32(1))
    weights = np.where(total[:, None] != 0, weights / safe[:, None], f32(0)).astype(f32)
    return np.minimum(index, source - 1).astype(np.intp), weights


RESIZE_BLOCK = 32
"""Output columns (or rows) per matrix product in :func:`resize_antialias_planes`."""


def resample_matrix(source: int, target: int) -> NDArray[np.float32]:
    """The antialiased bilinear resize along one axis as a (source, target) float32 matrix.

    Column ``d`` holds output ``d``'s weights (:func:`antialias_taps`) at its taps' rows, so
    ``values @ matrix`` resizes the last axis of ``values``. Banded: each column's nonzero
    rows are a few neighbours (about ``2 max(1, source / target)``).
    """
    taps, weights = antialias_taps(source, target)
    matrix = np.zeros((source, target), np.float32)
    outputs = np.broadcast_to(np.arange(target)[:, None], taps.shape)
    np.add.at(matrix, (taps, outputs), weights)  # clamped extra taps carry weight 0
    return matrix


def _band_blocks(matrix: NDArray[np.float32]) -> list[tuple[int, int, int, int]]:
    """(first, last) output and (first, last) source index of each block of the band.

    Blocks of :data:`RESIZE_BLOCK` outputs (columns of ``matrix``), each with the range of
    rows that holds its nonzero weights (ends exclusive).
    """
    nonzero = matrix != 0
    blocks = []
    for start in range(0, matrix.shape[1], RESIZE_BLOCK):
        stop = min(start + RESIZE_BLOCK, matrix.shape[1])
        rows = np.flatnonzero(nonzero[:, start:stop].any(axis=1))
        low, high = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 1)
        blocks.append((start, stop, low, high))
    return blocks


def _resize_last_axis(values: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    """Resize the columns of (n, w) float32 to (n, ``size``): the band, block by block."""
    matrix = resample_matrix(values.shape[1], size)
    out = np.empty((values.shape[0], size), np.float32)
    for start, stop, low, high in _band_blocks(matrix):
        out[:, start:stop] = values[:, low:high] @ matrix[low:high, start:stop]
    return out


def _resize_first_axis(values: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    """Resize the rows of (h, n) float32 to (``size``, n): the band, block by block."""
    matrix = resample_matrix(values.shape[0], size)
    out = np.empty((size, values.shape[1]), np.float32)
    for start, stop, low, high in _band_blocks(matrix):
        out[start:stop] = matrix[low:high, start:stop].T @ values[low:high]
    return out


def resize_antialias_planes(
    planes: NDArray[np.float32], height: int, width: int
) -> NDArray[np.float32]:
    """Resize (C, H, W) float32 planes as ``F.interpolate(bilinear, antialias=True)`` does.

    Separable, as torch's kernel: the columns first (all planes in one product), then the
    rows, each a product with the banded :func:`resample_matrix` taken a block of outputs at
    a time (so the zeros far from the band cost nothing). float32 sums in BLAS's order:
    within 2e-7 of torch on values in [0, 1] (a 12 MP photo to 1200 tokens in about 0.1 s
    here, where one gather per tap took about 1 s). An axis whose size does not change is
    left as it is.

    Returns:
        (C, height, width) float32.
    """
    channels, rows, cols = planes.shape
    out = np.ascontiguousarray(planes, np.float32)
    if width != cols:
        out = _resize_last_axis(out.reshape(channels * rows, cols), width)
    out = out.reshape(channels, rows, width)
    if height != rows:
        out = np.stack([_resize_first_axis(plane, height) for plane in out])
    return out


def resize_antialias(image: NDArray[np.float32], height: int, width: int) -> NDArray[np.float32]:
    """Resize (H, W, C) float32 as ``F.interpolate(bilinear, antialias=True)`` does.

    :func:`resize_antialias_planes` on the channels.

    Returns:
        (height, width, C) float32.
    """
    planes = np.ascontiguousarray(np.moveaxis(np.asarray(image, np.float32), 2, 0))
    resized = resize_antialias_planes(planes, height, width)
    return np.ascontiguousarray(np.moveaxis(resized, 0, 2))


_UNIT = (np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)


def view_span(height: int, width: int) -> NDArray[np.float32]:
    """(span_x, span_y) = (a, 1) / sqrt(1 + a^2), a = W / H: the view plane's half extent."""
    aspect = width / height
    norm = (1 + aspect**2) ** 0.5
    return np.array([aspect / norm, 1 / norm], np.float32)


def network_inputs(image: NDArray[np.uint8], tokens: int) -> list[NDArray[np.float32]]:
    """The network's four inputs for an RGB photo (see ``MoGe2.forward``).

    Args:
        image: (H, W, 3) uint8 RGB.
        tokens: Base token count, 1200-3600.

    Returns:
        [image (1, 3, 14 r, 14 c), pos_rows (r, 37), pos_cols (c, 37), view_span (2,)],
        float32.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(
            f"expected an (H, W, 3) uint8 RGB image, got {image.dtype} of shape {image.shape}"
        )
    height, width = image.shape[:2]
    rows, cols = token_grid(height, width, tokens)
    # the channels as planes, / 255 in float32 by a lookup table (OpenCV's is threaded)
    planes = np.ascontiguousarray(image.transpose(2, 0, 1)).reshape(3 * height, width)
    unit = np.asarray(cv2.LUT(planes, _UNIT), np.float32).reshape(3, height, width)
    resized = resize_antialias_planes(unit, rows * PATCH, cols * PATCH)
    mean = np.array(IMAGENET_MEAN, np.float32)[:, None, None]
    std = np.array(IMAGENET_STD, np.float32)[:, None, None]
    normalised = (resized - mean) / std
    pos_rows, pos_cols = pos_embed_matrices(rows, cols)
    return [
        np.ascontiguousarray(normalised[None], np.float32),
        pos_rows,
        pos_cols,
        view_span(height, width),
    ]


# --------------------------------------------------------------------------- output


@dataclass(frozen=True)
class PointsPrediction:
    """What :func:`infer` gives for one photo (the official ``infer``'s outputs).

    Attributes:
        points: (H, W, 3) float32, OpenCV camera frame, metres (metric models) or relative
            units; ``inf`` where ``mask`` is False.
        depth: (H, W) float32 z, same unit; ``inf`` where ``mask`` is False.
        mask: (H, W) bool, valid pixels (not sky or background, positive depth).
        normals: (H, W, 3) float32 unit normals (OpenCV frame), zero where ``mask`` is
            False; None for a model without a normal head.
        intrinsics: (3, 3) float32, normalised (fx, fy in image widths/heights, principal
            point (0.5, 0.5)).
        focal: Focal length relative to half the image diagonal.
        shift: The z shift added to the affine point map (before the metric scale).
        metric_scale: The metric scale the points were multiplied by (1 without a scale head).
    """

    points: NDArray[np.float32]
    depth: NDArray[np.float32]
    mask: NDArray[np.bool_]
    normals: NDArray[np.float32] | None
    intrinsics: NDArray[np.float32]
    focal: float
    shift: float
    metric_scale: float

    @property
    def fov_x(self) -> float:
        """Horizontal field of view, degrees."""
        return math.degrees(2 * math.atan(0.5 / float(self.intrinsics[0, 0])))


def resize_bilinear_planes(
    planes: NDArray[np.float32], height: int, width: int
) -> NDArray[np.float32]:
    """Resize (C, h, w) float32 as ``F.interpolate(bilinear, align_corners=False)`` does.

    Source position ``(d + 0.5) s - 0.5`` (clamped at 0), ``s = h / height``; OpenCV's
    ``INTER_LINEAR`` computes the same samples, one plane at a time (no interleaved copy).

    Returns:
        (C, height, width) float32.
    """
    out = np.empty((planes.shape[0], height, width), np.float32)
    for index, plane in enumerate(planes):
        if plane.shape == (height, width):
            out[index] = plane
        else:
            out[index] = cv2.resize(
                np.ascontiguousarray(plane, np.float32),
                (width, height),
                interpolation=cv2.INTER_LINEAR,
            )
    return out


def resize_bilinear(values: NDArray[np.float32], height: int, width: int) -> NDArray[np.float32]:
    """Resize (h, w, C) float32 as ``F.interpolate(bilinear, align_corners=False)`` does.

    :func:`resize_bilinear_planes` on the channels.

    Returns:
        (height, width, C) float32.
    """
    planes = np.ascontiguousarray(np.moveaxis(np.asarray(values, np.float32), 2, 0))
    return np.ascontiguousarray(np.moveaxis(resize_bilinear_planes(planes, height, width), 0, 2))


def remap_points(raw: NDArray[np.float32], remap: str) -> NDArray[np.float32]:
    """The official ``_remap_points`` of (H, W, 3) raw outputs: linear, sinh, exp, sinh_exp.

    Its z is :func:`remap_depth`'s.
    """
    xy, z = raw[..., :2], remap_depth(raw[..., 2:], remap)
    if remap == "linear":
        return np.concatenate([xy, z], axis=-1)
    if remap == "exp":
        return np.concatenate([xy * z, z], axis=-1)
    return np.concatenate([np.sinh(xy), z], axis=-1)  # sinh, sinh_exp


def remap_depth(raw_z: NDArray[np.float32], remap: str) -> NDArray[np.float32]:
    """The z of :func:`remap_points` from the raw z alone (any shape), float32."""
    if remap == "linear":
        return np.asarray(raw_z, np.float32)
    if remap == "sinh":
        return np.asarray(np.sinh(raw_z), np.float32)
    if remap in ("exp", "sinh_exp"):
        return np.asarray(np.exp(raw_z), np.float32)
    raise ValueError(f"unknown remap_output {remap!r}")


def normalized_view_plane_uv(height: int, width: int) -> NDArray[np.float32]:
    """(H, W, 2) float32 view-plane coordinates: pixel centres, corners at +-(W, H)/diagonal."""
    span_x, span_y = view_span(height, width)
    u = np.float32(span_x) * ((2 * np.arange(width, dtype=np.float32) + 1) / width - 1)
    v = np.float32(span_y) * ((2 * np.arange(height, dtype=np.float32) + 1) / height - 1)
    uv = np.empty((height, width, 2), np.float32)
    uv[..., 0] = u[None, :]
    uv[..., 1] = v[:, None]
    return uv


def _nearest_index(source: int, target: int) -> NDArray[np.intp]:
    scale = np.float32(source / target)
    index = np.floor(np.arange(target, dtype=np.float32) * scale).astype(np.intp)
    return np.asarray(np.minimum(index, source - 1), np.intp)


def recover_focal_shift(
    points: NDArray[np.floating[Any]],
    mask: NDArray[np.bool_] | None = None,
    focal: float | None = None,
    *,
    downsample: tuple[int, int] = DOWNSAMPLE,
) -> tuple[float, float]:
    """Recover the focal length and the z shift of an affine point map (official semantics).

    Solves ``min over (f, s) of sum |f (x, y) / (z + s) - uv|^2`` over the pixels of a
    nearest-neighbour 64 x 64 downsampling of the (masked) map, ``uv`` the view-plane
    coordinates (:func:`normalized_view_plane_uv`): for each shift the best focal is closed
    form; the shift is found as the official code does (Levenberg-Marquardt from 0, ``ftol``
    1e-3, see :func:`_solve_shift`). With ``focal`` given, only the shift.

    Args:
        points: (H, W, 3) float32 affine point map (the network's, before any shift).
        mask: (H, W) bool valid pixels, or None for all.
        focal: Known focal length relative to half the image diagonal, or None.
        downsample: (rows, cols) of the downsampled map the solve runs on.

    Returns:
        (focal, shift); (1.0, 0.0) when fewer than 2 pixels are valid (as the official code).
    """
    points = np.asarray(points, np.float32)
    height, width = points.shape[:2]
    rows = _nearest_index(height, downsample[0])
    cols = _nearest_index(width, downsample[1])
    keep = None if mask is None else np.asarray(mask, bool)[rows][:, cols]
    return _focal_shift_of_samples(points[rows][:, cols], keep, (height, width), focal)


def _sample_grid(height: int, width: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Rows and columns of the nearest :data:`DOWNSAMPLE` sampling of a map (official)."""
    return _nearest_index(height, DOWNSAMPLE[0]), _nearest_index(width, DOWNSAMPLE[1])


def _focal_shift_of_samples(
    points_lr: NDArray[np.float32],
    keep: NDArray[np.bool_] | None,
    size: tuple[int, int],
    focal: float | None,
) -> tuple[float, float]:
    """:func:`recover_focal_shift` from the sampled map: (r, c, 3) points, (r, c) mask.

    The samples are at the rows and columns :func:`_nearest_index` picks in a map of
    ``size`` (rows, cols) to a (r, c) grid; their view-plane coordinates are those of
    :func:`normalized_view_plane_uv` there.
    """
    height, width = size
    rows = _nearest_index(height, points_lr.shape[0])
    cols = _nearest_index(width, points_lr.shape[1])
    span_x, span_y = view_span(height, width)
    u = np.float32(span_x) * ((2 * cols.astype(np.float32) + 1) / width - 1)
    v = np.float32(span_y) * ((2 * rows.astype(np.float32) + 1) / height - 1)
    uv_grid = np.empty((rows.size, cols.size, 2), np.float32)
    uv_grid[..., 0] = u[None, :]
    uv_grid[..., 1] = v[:, None]
    if keep is not None:
        points_lr, uv_grid = points_lr[keep], uv_grid[keep]
    points_lr = points_lr.reshape(-1, 3)
    uv_lr = uv_grid.reshape(-1, 2)
    if uv_lr.shape[0] < 2:
        return 1.0, 0.0
    xy, z = points_lr[:, :2], points_lr[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return _solve(uv_lr, xy, z, focal)


def _solve(
    uv_lr: NDArray[np.float32], xy: NDArray[np.float32], z: NDArray[np.float32], focal: float | None
) -> tuple[float, float]:
    if focal is None:
        shift = _solve_shift(uv_lr, xy, z, None)
        projected = xy / (z + np.float32(shift))[:, None]
        best = (projected * uv_lr).sum() / np.square(projected).sum()
        return float(np.float32(best)), float(shift)
    return float(focal), float(_solve_shift(uv_lr, xy, z, float(focal)))


def _residuals(
    shift: float,
    uv: NDArray[np.float32],
    xy: NDArray[np.float32],
    z: NDArray[np.float64],
    focal: float | None,
) -> NDArray[np.float64]:
    projected = xy / (z + shift)[:, None]
    f = (projected * uv).sum() / np.square(projected).sum() if focal is None else focal
    return np.asarray((f * projected - uv).ravel(), np.float64)


def _solve_shift(
    uv: NDArray[np.float32],
    xy: NDArray[np.float32],
    z: NDArray[np.float32],
    focal: float | None,
) -> np.float32:
    """The official shift solve: MINPACK's Levenberg-Marquardt (``lmder``) for one unknown.

    As ``scipy.optimize.least_squares(method="lm", x0=0, ftol=1e-3)`` runs it (scipy >= 1.16):
    a forward-difference derivative (step ``sqrt(eps) max(1, |s|)``), MINPACK's trust region
    (initial bound 100, the variable scaled by the derivative's largest norm so far), its
    Levenberg-Marquardt parameter (:func:`_lm_parameter`) and its stopping tests (``ftol``
    1e-3, ``xtol`` and ``gtol`` 1e-8, at most 100 evaluations). Written for one variable, so
    that the result is the official iterate, not only a nearby minimum.
    """
    z64 = z.astype(np.float64)

    def residuals(s: float) -> NDArray[np.float64]:
        return _residuals(s, uv, xy, z64, focal)

    ftol, xtol, gtol, factor, most = 1e-3, 1e-8, 1e-8, 100.0, 100
    machine = float(np.finfo(np.float64).eps)
    relative = math.sqrt(machine)
    x = 0.0
    fvec = residuals(x)
    evaluations = 1
    fnorm = float(np.linalg.norm(fvec))
    delta = diag = xnorm = par = 0.0
    iteration = 1
    while True:
        step = relative * max(1.0, abs(x)) * (1.0 if x >= 0 else -1.0)
        step = (x + step) - x
        jac = (residuals(x + step) - fvec) / step
        jnorm = float(np.linalg.norm(jac))
        if iteration == 1:
            diag = jnorm if jnorm != 0.0 else 1.0
            xnorm = diag * abs(x)
            delta = factor * xnorm or factor
        jf = float(jac @ fvec)
        gnorm = abs(jf) / fnorm / jnorm if fnorm != 0.0 and jnorm != 0.0 else 0.0
        if gnorm <= gtol:
            return np.float32(x)
        diag = max(diag, jnorm)
        while True:
            par, gauss = _lm_parameter(jnorm, jf, diag, delta, par)
            p = -gauss
            pnorm = diag * abs(p)
            if iteration == 1:
                delta = min(delta, pnorm)
            trial = x + p
            ftrial = residuals(trial)
            evaluations += 1
            fnorm1 = float(np.linalg.norm(ftrial))
            actred = 1.0 - (fnorm1 / fnorm) ** 2 if 0.1 * fnorm1 < fnorm else -1.0
            temp1 = jnorm * abs(p) / fnorm
            temp2 = math.sqrt(par) * pnorm / fnorm
            prered = temp1**2 + temp2**2 / 0.5
            dirder = -(temp1**2 + temp2**2)
            ratio = actred / prered if prered != 0.0 else 0.0
            if ratio <= 0.25:
                temp = 0.5 if actred >= 0 else 0.5 * dirder / (dirder + 0.5 * actred)
                if 0.1 * fnorm1 >= fnorm or temp < 0.1:
                    temp = 0.1
                delta = temp * min(delta, pnorm / 0.1)
                par = par / temp
            elif par == 0.0 or ratio >= 0.75:
                delta = pnorm / 0.5
                par = 0.5 * par
            if ratio >= 1e-4:
                x, fvec, fnorm = trial, ftrial, fnorm1
                xnorm = diag * abs(x)
                iteration += 1
            converged = abs(actred) <= ftol and prered <= ftol and 0.5 * ratio <= 1.0
            if converged or delta <= xtol * xnorm or evaluations >= most:
                return np.float32(x)
            stuck = abs(actred) <= machine and prered <= machine and 0.5 * ratio <= 1.0
            if stuck or delta <= machine * xnorm or gnorm <= machine:
                return np.float32(x)
            if ratio >= 1e-4:
                break


def _lm_parameter(
    jnorm: float, jf: float, diag: float, delta: float, par: float
) -> tuple[float, float]:
    """MINPACK ``lmpar`` for one unknown: the parameter and the (negated) step it gives.

    With ``j`` the derivative column, the step for a parameter ``par`` is
    ``x(par) = jf / (j^2 + par diag^2)`` (the caller moves by ``-x``). ``par`` 0 (Gauss-Newton)
    when ``|diag x(0)|`` is within 1.1 ``delta``; else ``lmpar``'s safeguarded Newton iteration
    on ``|diag x(par)| - delta`` from the caller's ``par``, between the bounds ``parl`` and
    ``paru``, until within 10 % of ``delta`` (at most 10 steps).

    Returns:
        (par, x(par)).
    """
    dwarf = float(np.finfo(np.float64).tiny)
    j2, d2 = jnorm * jnorm, diag * diag
    gauss = jf / j2
    dxnorm = diag * abs(gauss)
    fp = dxnorm - delta
    if fp <= 0.1 * delta:
        return 0.0, gauss
    parl = fp / delta * j2 / d2
    gnorm = abs(jf) / diag
    paru = gnorm / delta
    if paru == 0.0:
        paru = dwarf / min(delta, 0.1)
    par = min(max(par, parl), paru)
    if par == 0.0:
        par = gnorm / dxnorm
    for iteration in range(1, 11):
        if par == 0.0:
            par = max(dwarf, 0.001 * paru)
        step = jf / (j2 + par * d2)
        dxnorm = diag * abs(step)
        previous, fp = fp, dxnorm - delta
        if (
            abs(fp) <= 0.1 * delta
            or (parl == 0.0 and fp <= previous and previous < 0.0)
            or iteration == 10
        ):
            return par, step
        correction = fp / delta * (j2 + par * d2) / d2
        if fp > 0.0:
            parl = max(parl, par)
        if fp < 0.0:
            paru = min(paru, par)
        par = max(parl, par + correction)
    return par, jf / (j2 + par * d2)


# --------------------------------------------------------------------------- infer


def infer(
    maps: NDArray[np.float32],
    metric_scale: float,
    height: int,
    width: int,
    *,
    heads: Sequence[str] | None = None,
    remap: str = "exp",
    fov_x: float | None = None,
) -> PointsPrediction:
    """The official ``infer`` after the network, in float32 numpy.

    Args:
        maps: (C, 16 r, 16 c) float32 raw head maps (``MoGe2.forward``'s ``maps``).
        metric_scale: The network's metric scale (1 without a scale head).
        height: Photo height, pixels.
        width: Photo width, pixels.
        heads: The heads present, in the order their channels are stacked; None: told by the
            channel count (3 points; 4 points, mask; 6 points, normal; 7 all three).
        remap: The checkpoint's ``remap_output``.
        fov_x: Known horizontal field of view in degrees (then only the shift is solved), or
            None to recover the focal length.

    Returns:
        The :class:`PointsPrediction`.
    """
    if fov_x is not None and not (0.0 < fov_x < 180.0):
        raise InputError(f"fov_x must be between 0 and 180 degrees, got {fov_x}")
    if heads is None:
        heads = HEADS_BY_CHANNELS[maps.shape[0]]
    # planes (C, H, W) throughout: the full-size x and y of the affine map are never needed
    # (the points are re-projected from the depth), only their 64 x 64 samples for the solve
    resized = resize_bilinear_planes(maps, height, width)
    first: dict[str, int] = {}
    start = 0
    for head in heads:
        first[head] = start
        start += HEAD_CHANNELS[head]
    raw_points = resized[first["points_head"] : first["points_head"] + 3]
    has_mask = "mask_head" in first
    # the mask head's logits: sigmoid > 0.5
    mask = resized[first["mask_head"]] > 0 if has_mask else np.ones((height, width), bool)
    rows, cols = _sample_grid(height, width)
    samples = remap_points(
        np.ascontiguousarray(raw_points[:, rows][:, :, cols].transpose(1, 2, 0)), remap
    ).astype(np.float32, copy=False)
    keep = mask[rows][:, cols] if has_mask else None
    aspect = width / height
    if fov_x is None:
        focal, shift = _focal_shift_of_samples(samples, keep, (height, width), None)
        if not math.isfinite(focal) or focal == 0:
            # a 1-pixel photo: every view-plane coordinate is 0, the least-squares focal 0
            # (the official code fails there); the official fallback for too few pixels
            focal, shift = 1.0, 0.0
    else:
        focal_32 = np.float32(aspect / (1 + aspect**2) ** 0.5) / np.tan(
            np.float32(math.radians(fov_x)) / np.float32(2)
        )
        focal = float(np.float32(focal_32))
        _, shift = _focal_shift_of_samples(samples, keep, (height, width), focal)
    fx = np.float32(focal / 2 * (1 + aspect**2) ** 0.5 / aspect)
    fy = np.float32(focal / 2 * (1 + aspect**2) ** 0.5)
    intrinsics = np.array([[fx, 0, 0.5], [0, fy, 0.5], [0, 0, 1]], np.float32)
    depth = remap_depth(raw_points[2], remap)
    depth += np.float32(shift)
    mask &= depth > 0
    u = (np.arange(width, dtype=np.float32) + np.float32(0.5)) / np.float32(width)
    v = (np.arange(height, dtype=np.float32) + np.float32(0.5)) / np.float32(height)
    scale = np.float32(metric_scale)
    points_out = np.empty((height, width, 3), np.float32)
    points_out[..., 0] = (u - np.float32(0.5))[None, :] / fx * depth
    points_out[..., 1] = (v - np.float32(0.5))[:, None] / fy * depth
    points_out[..., 2] = depth
    points_out *= scale
    depth *= scale
    unmasked = ~mask
    points_out[unmasked] = np.inf
    depth[unmasked] = np.inf
    normals = None
    if "normal_head" in first:
        raw = resized[first["normal_head"] : first["normal_head"] + 3]
        length = np.sqrt(raw[0] * raw[0] + raw[1] * raw[1] + raw[2] * raw[2])
        np.maximum(length, np.float32(1e-12), out=length)
        normals = np.empty((height, width, 3), np.float32)
        for axis in range(3):
            np.divide(raw[axis], length, out=normals[..., axis])
        normals[unmasked] = 0.0
    return PointsPrediction(
        points=points_out,
        depth=depth,
        mask=mask,
        normals=normals,
        intrinsics=intrinsics,
        focal=float(focal),
        shift=float(shift),
        metric_scale=float(metric_scale),
    )


def heads_of(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The dense heads a ``model_config`` has, in the network's stacking order."""
    return tuple(head for head in HEAD_CHANNELS if config.get(head) is not None)


# --------------------------------------------------------------------------- the seam


class MoGe2Network(DepthNetwork):
    """MoGe-2 as depth2mesh runs it: its "input size" is the base token count (1200-3600).

    One export per weights file serves every token grid (the positional embedding's
    resampling and the view-plane span are graph inputs). Its output is not one map but the
    raw head maps and the metric scale; :meth:`predict_points` runs the official ``infer``
    after the network.
    """

    name: ClassVar[str] = "moge2"
    size_multiple: ClassVar[int] = PATCH
    export_tag: ClassVar[str] = "opset17-moge2-v1"
    least_input_size: ClassVar[int] = TOKENS_RANGE[0]
    largest_input_size: ClassVar[int] = TOKENS_RANGE[1]

    def check_input_size(self, model: str, default: int, input_size: int | None) -> int:
        """The token count: ``input_size`` (1200-3600, any whole number) or ``default``."""
        if input_size is None:
            return default
        low, high = TOKENS_RANGE
        if not low <= input_size <= high:
            raise ParameterError(
                f"{{input_size}} of {model} is its token count, from {low} to {high} (more is "
                f"slower and finer; default {default}), got {input_size}",
                "input_size",
            )
        return input_size

    def preprocess(self, image: NDArray[np.uint8], input_size: int) -> NDArray[np.float32]:
        """The photo resized to the token grid and normalised (:func:`network_inputs`)."""
        return network_inputs(image, input_size)[0]

    def graph_inputs(self, network_input: NDArray[np.float32]) -> tuple[NDArray[np.float32], ...]:
        """The resampling matrices and the view-plane span of the network input's own aspect.

        :meth:`predict_points` passes the photo's span instead (its aspect is the photo's).
        """
        rows, cols = network_input.shape[2] // PATCH, network_input.shape[3] // PATCH
        pos_rows, pos_cols = pos_embed_matrices(rows, cols)
        return pos_rows, pos_cols, view_span(rows, cols)

    def resize_output(
        self, output: NDArray[np.float32], height: int, width: int
    ) -> NDArray[np.float32]:
        """Bilinear, ``align_corners=False``, as the official ``forward`` resizes its maps."""
        return resize_bilinear(np.ascontiguousarray(output[..., None]), height, width)[..., 0]

    def build(self, path: Path, spec: ModelSpec) -> Any:
        """Read ``path`` (its ``model_config`` and strictly checked weights), build the network."""
        from depth2mesh.depth.networks import moge2_torch

        config, state = moge2_torch.read_checkpoint(path)
        return moge2_torch.build_network(config, state)

    def export(self, network: Any, path: Path, *, backend: str, output_name: str) -> None:
        """:func:`~.moge2_torch.export_onnx` (one graph for both runtimes)."""
        del backend, output_name
        from depth2mesh.depth.networks.moge2_torch import export_onnx

        export_onnx(network, path)

    def predict_points(
        self,
        image: NDArray[np.uint8],
        run: Callable[..., tuple[NDArray[np.float32], ...]],
        input_size: int,
        *,
        fov_x: float | None,
        size: tuple[int, int] | None = None,
    ) -> PointsPrediction:
        """:func:`network_inputs`, the network (``run``), then :func:`infer` at ``size``.

        ``size`` (rows, cols; default the photo's): the maps are resized straight to it and
        the official ``infer`` runs there (a mesh grid needs no 12 MP point map; the focal
        length and shift are then solved on the grid's 64 x 64 samples).
        """
        inputs = network_inputs(image, input_size)
        outputs = run(*inputs)
        maps = np.asarray(outputs[0], np.float32)[0]
        scale = float(np.asarray(outputs[1]).reshape(-1)[0])
        rows, cols = size if size is not None else image.shape[:2]
        return infer(maps, scale, rows, cols, fov_x=fov_x)


NETWORK = MoGe2Network()
"""The one instance the registry's MoGe-2 entry uses."""
